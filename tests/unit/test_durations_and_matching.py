from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch_terminator.logic.durations import format_duration, format_limit, parse_duration
from batch_terminator.logic.matching import job_definition_matches, queue_matches, tags_match


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("6h", 21600), ("2d", 172800), ("1h30m", 5400), (" 12H ", 43200)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "6", "h", "1.5h", "-1h", "30m1h", "0m", "soon"])
def test_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (30, "30s"),
        (125, "2m05s"),
        (2700, "45m"),
        (43200, "12h"),
        (43620, "12h07m"),
        (183600, "2d03h"),
    ],
)
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


@given(st.integers(min_value=1, max_value=10**7))
def test_format_limit_round_trips(seconds: int) -> None:
    assert parse_duration(format_limit(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


def test_queue_matching() -> None:
    arn = "arn:aws:batch:us-east-1:123456789012:job-queue/gpu-training"
    assert queue_matches(arn, ["gpu-training"])
    assert queue_matches(arn, ["gpu-*"])
    assert queue_matches(arn, [arn])
    assert queue_matches("gpu-training", ["*"])
    assert not queue_matches(arn, ["GPU-training"])
    assert not queue_matches(arn, ["cpu-*"])


def test_job_definition_matching() -> None:
    arn = "arn:aws:batch:us-east-1:123456789012:job-definition/train-bert:7"
    assert job_definition_matches(arn, ["train-bert"])
    assert job_definition_matches(arn, ["train-*"])
    assert job_definition_matches(arn, ["train-bert:7"])
    assert not job_definition_matches(arn, ["train-bert:6"])
    assert not job_definition_matches(arn, ["etl-*"])


def test_tags_matching() -> None:
    assert tags_match({"team": "ml", "env": "prod"}, {"team": "ml"})
    assert tags_match({"team": "ml"}, {"team": "*"})
    assert not tags_match({"team": "bio"}, {"team": "ml"})
    assert not tags_match({}, {"team": "*"})


# Every decimal digit Unicode knows (category Nd) that is not an ASCII digit: Python's `\d` and
# int() take them all.
non_ascii_digits = st.characters(whitelist_categories=("Nd",)).filter(lambda c: not c.isascii())


@given(
    st.lists(st.sampled_from("0123456789") | non_ascii_digits, min_size=1, max_size=4).filter(
        lambda digits: any(not c.isascii() for c in digits)
    ),
    st.sampled_from("smhd"),
)
def test_a_duration_with_a_digit_of_another_script_is_invalid(digits: list[str], unit: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("".join(digits) + unit)


@given(st.integers(min_value=1, max_value=366), st.sampled_from("hd"))
def test_ascii_digits_still_read(amount: int, unit: str) -> None:
    assert parse_duration(f"{amount}{unit}") == timedelta(
        seconds=amount * {"h": 3_600, "d": 86_400}[unit]
    )
