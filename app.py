#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth` runs it; so can `CDK_OUTDIR=out python app.py`."""

from __future__ import annotations

import sys

from aws_cdk import App

from batch_terminator_cli.fleet_file import FleetFileError
from batch_terminator_cli.policies_file import PoliciesFileError
from infra.application import build
from infra.bytecode import BytecodeError
from infra.settings import SettingsError


def main() -> int:
    app = App()
    try:
        build(app)
    except (PoliciesFileError, FleetFileError, SettingsError, BytecodeError) as error:
        # A broken policies file, fleet file or context value, or a package the runtime's
        # Python cannot compile, stops the synth with its one-line message.
        print(error, file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
