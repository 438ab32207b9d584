"""Parsing the S3 Object Created notification that EventBridge delivers to the ingest function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from headrace.ingest import InvalidEvent, parse_object_created

LoadEvent = Callable[[str], dict[str, Any]]


def test_the_sample_event_parses_into_the_object_it_names(load_event: LoadEvent) -> None:
    notice = parse_object_created(load_event("s3_object_created"))

    assert (notice.bucket, notice.key) == (
        "headrace-dev-data-databucket-example",
        "churn/incoming/2026-11-23/customers.csv",
    )
    assert (notice.version_id, notice.size) == ("IYV3p45BhqmxZzOjhjqoOdDRKQbHIC3K", 48211)
    assert notice.time.isoformat() == "2026-11-23T10:15:32+00:00"


def test_a_url_encoded_key_is_decoded(load_event: LoadEvent) -> None:
    event = load_event("s3_object_created")
    event["detail"]["object"]["key"] = "churn/incoming/march+2026/a%2Bb.csv"

    assert parse_object_created(event).key == "churn/incoming/march 2026/a+b.csv"


def test_an_object_without_version_id_is_accepted(load_event: LoadEvent) -> None:
    event = load_event("s3_object_created")
    del event["detail"]["object"]["version-id"]

    assert parse_object_created(event).version_id is None


def test_a_missing_field_is_named_in_the_error(load_event: LoadEvent) -> None:
    event = load_event("s3_object_created")
    del event["detail"]["bucket"]

    with pytest.raises(InvalidEvent, match=r"detail\.bucket: Field required"):
        parse_object_created(event)


def test_every_wrong_field_is_named_at_once(load_event: LoadEvent) -> None:
    event = load_event("s3_object_created")
    del event["detail"]["object"]["key"]
    event["time"] = "yesterday"

    with pytest.raises(InvalidEvent) as raised:
        parse_object_created(event)

    assert "time:" in str(raised.value)
    assert "detail.object.key:" in str(raised.value)


def test_an_object_deleted_event_is_refused(load_event: LoadEvent) -> None:
    event = load_event("s3_object_created")
    event["detail-type"] = "Object Deleted"

    with pytest.raises(InvalidEvent, match=r"expected source 'aws\.s3' and detail-type 'Object Created'"):
        parse_object_created(event)


@pytest.mark.parametrize("event", [None, [], 42])
def test_something_that_is_not_an_event_is_refused(event: Any) -> None:
    with pytest.raises(InvalidEvent, match="expected an EventBridge event"):
        parse_object_created(event)


def test_an_event_for_another_bucket_is_refused(load_event: LoadEvent) -> None:
    with pytest.raises(InvalidEvent, match="this function ingests 'data'"):
        parse_object_created(load_event("s3_object_created"), bucket="data")
