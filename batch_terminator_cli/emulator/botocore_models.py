"""botocore data directories for exercising model differences (an older runtime's botocore)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import boto3
import botocore
import botocore.session

BATCH_MODEL = Path(botocore.__file__).parent / "data" / "batch" / "2016-08-10" / "service-2.json.gz"


def batch_model_without(operation: str, root: Path) -> Path:
    """A data directory whose Batch model lacks `operation`, as an older botocore's does."""
    model = json.loads(gzip.decompress(BATCH_MODEL.read_bytes()))
    del model["operations"][operation]
    target = root / "batch" / "2016-08-10"
    target.mkdir(parents=True)
    (target / "service-2.json").write_text(json.dumps(model))
    return root


def batch_client_with_data_path(*paths: Path, region: str = "us-east-1") -> Any:
    """A Batch client whose botocore looks in `paths` first, as AWS_DATA_PATH makes it do."""
    session = botocore.session.Session()
    session.set_config_variable("data_path", ":".join(str(p) for p in paths))
    return boto3.Session(botocore_session=session, region_name=region).client("batch")
