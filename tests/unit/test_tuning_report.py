"""A tuned run as people read it: the trials table in launch order with the best marked, the top trials by the
objective's own direction, and the HTML report's plot (objective per trial, best and stopped-early marked)."""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime
from typing import Any

import pytest

from headrace.runs import RunRecord
from headrace.training.tuning import summarize
from headrace.tuning_report import (
    MalformedTuning,
    NotTuned,
    best_trials,
    comparison_rows,
    render_report,
    summary,
    trial_columns,
    trial_rows,
    tuning_of,
)

JOB = "leads-1a2b3c4d-0f0e0d0c"


def trial(n: int, status: str, objective: float | None, eta: float, depth: int) -> dict[str, Any]:
    return {
        "name": f"{JOB}-{n:03d}-{n:08x}",
        "status": status,
        "objective_status": "Succeeded" if objective is not None else "Failed",
        "hyperparameters": {"eta": str(eta), "max_depth": str(depth)},
        "objective": objective,
        "created_at": f"2026-12-01T10:0{n}:00+00:00",
    }


# The run record's `tuning` as TuningResult writes it (headrace/training/tuning.py summarize): six trials,
# recorded out of launch order here so that the order shown is proven to be the launch order.
TRIALS = [
    trial(2, "Completed", 0.81, 0.3, 6),
    trial(1, "Completed", 0.78, 0.1, 3),
    trial(3, "Stopped", 0.70, 0.45, 9),
    trial(4, "Completed", 0.86, 0.05, 4),
    trial(5, "Failed", None, 0.2, 2),
    trial(6, "Completed", 0.84, 0.08, 5),
]
TUNING: dict[str, Any] = {
    "job_name": JOB,
    "job_arn": f"arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{JOB}",
    "status": "Completed",
    "strategy": "Bayesian",
    "objective": {"name": "validation:auc", "type": "Maximize"},
    "warm_start_parents": ["leads-1a2b3c4d-99887766"],
    "trials": TRIALS,
    "best": {
        "name": f"{JOB}-004-00000004",
        "objective": 0.86,
        "hyperparameters": {"eta": "0.05", "max_depth": "4"},
        "why": "highest validation:auc (0.86) of 4 completed trials (1 stopped early, 1 failed)",
    },
}


def run(tuning: dict[str, Any] | None = None, **fields: Any) -> RunRecord:
    return RunRecord(
        model="leads",
        job_name="leads-20261201T100000Z-abc",
        status="registered",
        version=3,
        tuning=TUNING if tuning is None else tuning,
        **fields,
    )


def minimized() -> dict[str, Any]:
    flipped = copy.deepcopy(TUNING)
    flipped["objective"] = {"name": "validation:logloss", "type": "Minimize"}
    flipped["best"] = {"name": f"{JOB}-003-00000003", "objective": 0.70, "why": "lowest"}
    return flipped


def test_trials_are_listed_in_launch_order_with_each_tuned_hyperparameter_and_the_best_marked() -> None:
    tuning = tuning_of(run())
    assert trial_columns(tuning) == [
        "#",
        "trial",
        "status",
        "stopped early",
        "eta",
        "max_depth",
        "validation:auc",
        "",
    ]
    rows = trial_rows(tuning)
    assert [r[1][-12:-9] for r in rows] == ["001", "002", "003", "004", "005", "006"]
    assert rows[3] == ["4", f"{JOB}-004-00000004", "Completed", "", "0.05", "4", "0.8600", "best"]
    assert rows[2][3] == "yes"  # Stopped: early stopping ended it
    assert rows[4][6] == ""  # the failed trial reported no objective
    assert [r[-1] for r in rows].count("best") == 1


def test_the_best_trials_follow_the_objective_direction_and_leave_out_trials_without_one() -> None:
    assert [t.objective for t in best_trials(tuning_of(run()), 3)] == [0.86, 0.84, 0.81]
    assert [t.objective for t in best_trials(tuning_of(run(minimized())), 3)] == [0.70, 0.78, 0.81]
    assert len(best_trials(tuning_of(run()), 10)) == 5


def test_the_best_trials_side_by_side_show_status_objective_and_every_tuned_hyperparameter() -> None:
    tuning = tuning_of(run())
    rows = comparison_rows(tuning, best_trials(tuning, 2))
    assert rows == [
        ["trial", f"{JOB}-004-00000004", f"{JOB}-006-00000006"],
        ["status", "Completed (best)", "Completed"],
        ["validation:auc", "0.8600", "0.8400"],
        ["hp.eta", "0.05", "0.08"],
        ["hp.max_depth", "4", "5"],
    ]


def test_a_tuned_run_sums_up_as_its_trial_count_and_best_and_an_untuned_one_as_nothing() -> None:
    assert summary(run()) == f"tuned: 6 trials, best {JOB}-004-00000004"
    assert summary(run({})) == ""


def test_an_untuned_run_is_refused_naming_the_run() -> None:
    with pytest.raises(NotTuned, match="run leads-20261201T100000Z-abc of leads was not tuned"):
        tuning_of(run({}))


def test_a_malformed_tuning_record_is_refused_naming_the_field() -> None:
    broken = copy.deepcopy(TUNING)
    broken["trials"][1]["objective"] = "high"
    with pytest.raises(MalformedTuning, match=r"tuning record: tuning\.trials\.1\.objective"):
        tuning_of(run(broken))
    assert summary(run(broken)) == ""


def test_a_tuning_record_read_from_the_ledger_as_json_text_is_the_same() -> None:
    assert RunRecord.model_validate(run().model_dump() | {"tuning": json.dumps(TUNING)}).tuning == TUNING


def _plot(page: str) -> ElementTree.Element:
    match = re.search(r"<svg .*?</svg>", page, re.S)
    assert match, page
    return ElementTree.fromstring(match.group(0))


def _marks(svg: ElementTree.Element, tag: str, kind: str) -> list[ElementTree.Element]:
    return [e for e in svg.iter(tag) if e.get("class") == kind]


def test_the_report_plots_one_mark_per_trial_the_best_highest_stopped_and_failed_marked_apart() -> None:
    svg = _plot(render_report(run(), tuning_of(run())))
    best = _marks(svg, "circle", "best")
    others = _marks(svg, "circle", "trial")
    stopped = _marks(svg, "rect", "stopped")
    failed = _marks(svg, "line", "no-objective")
    assert (len(best), len(others), len(stopped), len(failed)) == (1, 3, 1, 1)
    # SVG's y grows downwards: the maximized objective's best is the highest mark.
    assert all(float(best[0].get("cy", "")) < float(o.get("cy", "")) for o in others)
    assert "004" in (best[0].findtext("title") or "")
    # x = launch order: trial 1 leftmost, the failed trial 5 fifth of six.
    xs = sorted(float(c.get("cx", "")) for c in [*best, *others])
    assert float(failed[0].get("x1", "")) == pytest.approx(xs[2] + (xs[3] - xs[2]) / 2)


def test_the_report_of_a_minimized_objective_puts_the_best_lowest_even_when_early_stopping_ended_it() -> None:
    svg = _plot(render_report(run(minimized()), tuning_of(run(minimized()))))
    best = _marks(svg, "circle", "best")
    assert len(best) == 1 and "003" in (best[0].findtext("title") or "")
    assert _marks(svg, "rect", "stopped") == []  # marked best, not as stopped
    assert all(float(best[0].get("cy", "")) > float(o.get("cy", "")) for o in _marks(svg, "circle", "trial"))


def test_the_report_says_how_the_best_was_chosen_and_lists_every_trial() -> None:
    page = render_report(run(), tuning_of(run()))
    assert "highest validation:auc (0.86) of 4 completed trials (1 stopped early, 1 failed)" in page
    assert "Warm-started from: leads-1a2b3c4d-99887766" in page
    assert "strategy Bayesian" in page and "(v3)" in page
    assert page.count('<tr class="best">') == 1 and page.count('<tr class="stopped">') == 1
    assert all(t["name"] in page for t in TRIALS)


def test_the_report_escapes_what_it_did_not_write() -> None:
    hostile = copy.deepcopy(TUNING)
    hostile["trials"][0]["hyperparameters"]["grow_policy"] = "<script>alert(1)</script>"
    page = render_report(run(hostile), tuning_of(run(hostile)))
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_a_run_where_no_trial_reported_an_objective_says_so_instead_of_a_plot() -> None:
    empty = copy.deepcopy(TUNING)
    for t in empty["trials"]:
        t["objective"] = None
    empty["best"] = None
    page = render_report(run(empty), tuning_of(run(empty)))
    assert "no trial reported an objective" in page and "<svg" not in page
    assert "No best trial" in page


def test_the_document_tuning_result_writes_is_the_one_read_here() -> None:
    def listed(n: int, status: str, value: float | None) -> dict[str, Any]:
        final = {} if value is None else {"FinalHyperParameterTuningJobObjectiveMetric": {"Value": value}}
        return {
            "TrainingJobName": f"{JOB}-{n:03d}-{n:08x}",
            "TrainingJobStatus": status,
            "ObjectiveStatus": "Succeeded" if value is not None else "Failed",
            "TunedHyperParameters": {"eta": "0.1", "max_depth": str(n)},
            "CreationTime": datetime(2026, 12, 1, 10, n, tzinfo=UTC),
            **final,
        }

    summaries = [listed(1, "Completed", 0.8), listed(2, "Stopped", 0.7), listed(3, "Failed", None)]
    description = {
        "HyperParameterTuningJobName": JOB,
        "HyperParameterTuningJobStatus": "Completed",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
        },
        "BestTrainingJob": summaries[0],
    }
    tuning = tuning_of(run(summarize(description, summaries)))
    assert [r[2] for r in trial_rows(tuning)] == ["Completed", "Stopped", "Failed"]
    assert [r[-1] for r in trial_rows(tuning)] == ["best", "", ""]
    assert summary(run(summarize(description, summaries))) == f"tuned: 3 trials, best {JOB}-001-00000001"
