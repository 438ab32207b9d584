"""Turning a handler's Embedded Metric Format lines into CloudWatch metric data (the local plane's job)."""

from __future__ import annotations

from headrace.local.telemetry import emf_metric_data


def test_an_emf_record_becomes_metric_data_with_its_dimensions() -> None:
    record = {
        "_aws": {
            "Timestamp": 1,
            "CloudWatchMetrics": [
                {
                    "Namespace": "Headrace",
                    "Dimensions": [["model"]],
                    "Metrics": [{"Name": "Rejected", "Unit": "Count"}],
                }
            ],
        },
        "model": "churn",
        "Rejected": [1.0, 2.0],
    }
    namespace, data = emf_metric_data(record) or ("", [])
    assert namespace == "Headrace"
    assert [d["Value"] for d in data] == [1.0, 2.0]
    assert data[0]["Dimensions"] == [{"Name": "model", "Value": "churn"}]


def test_a_plain_log_line_is_not_a_metric() -> None:
    assert emf_metric_data({"level": "INFO", "message": "hello"}) is None
