"""Where a dropped key goes (headrace/ingest/routing.py): datasets, production datasets, ground truth, our own
output, or misplaced; and the data-arrival rule leaves out exactly the pipeline's own output."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from headrace.config import ModelConfig
from headrace.ingest.routing import RouteKind, lineage_uri, route
from headrace.quality.labels import accepted_key
from stacks.ingest import pipeline_output_keys


@pytest.fixture
def models(example_model: ModelConfig) -> dict[str, ModelConfig]:
    return {"churn": example_model}


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("churn/incoming/customers.csv", RouteKind.INGEST),
        ("churn/incoming/2026/customers.csv", RouteKind.INGEST),
        ("churn/incoming/production/20261123T101532Z-check.csv", RouteKind.PRODUCTION),
        ("churn/ground-truth/incoming/labels.jsonl", RouteKind.GROUND_TRUTH),
        ("churn/ground-truth/incoming/2026/11/labels.csv", RouteKind.GROUND_TRUTH),
        ("churn/ground-truth/accepted/2026/11/23/10/x.csv", RouteKind.IGNORE),
        ("churn/ground-truth/labels.csv", RouteKind.MISPLACED),
    ],
)
def test_each_key_takes_its_route(models: dict[str, ModelConfig], key: str, kind: RouteKind) -> None:
    assert route(key, models).kind is kind


def test_ground_truth_dropped_beside_incoming_says_where_it_belongs(models: dict[str, ModelConfig]) -> None:
    where = route("churn/ground-truth/labels.csv", models)
    assert where.reason.endswith("did you mean churn/ground-truth/incoming/labels.csv?")


def test_a_production_dataset_names_the_lineage_of_the_check_that_wrote_it() -> None:
    uri = lineage_uri("data", "churn/incoming/production/20261123T101532Z-abc.csv")
    assert uri == "s3://data/churn/monitoring/quality/20261123T101532Z-abc/lineage.json"


def test_the_arrival_rule_leaves_out_accepted_ground_truth_but_not_its_drops() -> None:
    left_out = pipeline_output_keys(["churn"])
    assert "churn/ground-truth/accepted/*" in left_out
    assert not any(
        k.startswith("churn/ground-truth/incoming") or k == "churn/ground-truth/*" for k in left_out
    )


def test_accepted_copies_are_keys_the_router_ignores(models: dict[str, ModelConfig]) -> None:
    key = accepted_key("churn", datetime(2026, 11, 23, tzinfo=UTC), "0" * 64)
    assert route(key, models).kind is RouteKind.IGNORE
