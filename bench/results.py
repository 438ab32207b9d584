"""Collect bench/out/*.json into bench/RESULTS.md: one table per benchmark, each beside the reference it was
measured against in the same run. `make bench` runs every benchmark, then this.

    .venv/bin/python bench/results.py
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"


def _load(name: str) -> dict[str, Any] | None:
    path = OUT / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _missing(name: str, command: str) -> list[str]:
    return [f"_not run: `{command}` writes bench/out/{name}.json_", ""]


def drift() -> list[str]:
    d = _load("drift")
    lines = ["## Drift statistics", ""]
    if d is None:
        return lines + _missing("drift", ".venv/bin/python bench/drift.py")
    n = d["rows_per_window"]
    lines += [
        f"{n:,} + {n:,} rows x {d['columns']} columns ({d['categorical_columns']} categorical), "
        f"{d['cells_both_windows']:,} cells over both windows, {d['cpus']} CPUs; memory: {d['memory']}.",
        "",
        "| implementation | seconds | cells/s | peak memory MiB | ours is faster by |",
        "|---|---|---|---|---|",
    ]
    ours = d["ours"]["seconds"]
    for key, label in (
        ("ours", "Headrace (profile cached)"),
        ("reference", "per-column scipy/pandas"),
        ("evidently", "Evidently"),
    ):
        row = d.get(key)
        if not row or row.get("seconds") is None:
            lines.append(f"| {label} | not run | | | |")
            continue
        version = f" {row['version']}" if row.get("version") else ""
        lines.append(
            f"| {label}{version} | {row['seconds']:.2f} | {row['cells_per_s'] / 1e6:.1f}M "
            f"| {row['peak_rss_mib']:.0f} | {row['seconds'] / ours:.0f}x |"
        )
    agreement = d["ours"].get("agreement", {})
    lines += [
        "",
        "KS statistic vs scipy.stats.ks_2samp: max |diff| "
        f"{agreement.get('ks_statistic_max_abs_diff_vs_scipy')}.",
        "",
    ]
    return lines


def quality() -> list[str]:
    q = _load("quality")
    lines = ["## Quality check", ""]
    if q is None:
        return lines + _missing("quality", ".venv/bin/python bench/quality.py")
    agreement = q["agreement"]
    ours, ref = q["ours"], q["reference"]
    return [
        *lines,
        f"{q['captured_rows']:,} captured inferences joined with {q['label_rows']:,} labels (1% unknown, "
        f"1% late duplicates), then AUC, logloss and accuracy; {q['cpus']} CPUs; memory: {q['memory']}.",
        "",
        f"Input, the same arrays for both: {q.get('key_form', 'ids as object arrays of str')}; scores and "
        "labels float64, rows int64. Ours: `join_labels` + `QualityPartial.add` + `result()`; reference: "
        "pandas `drop_duplicates(keep='last')` + `merge`, then scikit-learn `roc_auc_score`, `log_loss`, "
        "`accuracy_score`. Best of the interleaved repeats.",
        "",
        "| implementation | seconds | CPU seconds | peak memory MiB | ours is faster by |",
        "|---|---|---|---|---|",
        f"| Headrace join + mergeable partial | {ours['seconds']:.3f} | {ours.get('cpu_seconds', 0):.3f} "
        f"| {ours['peak_rss_mib']:.0f} | 1x |",
        f"| pandas merge + scikit-learn | {ref['seconds']:.3f} | {ref.get('cpu_seconds', 0):.3f} "
        f"| {ref['peak_rss_mib']:.0f} | {ref['seconds'] / ours['seconds']:.1f}x |",
        "",
        f"CPU time ratio {q.get('cpu_ratio_reference_over_ours', 0):.1f}x. Memory bound of the join: "
        f"{q.get('memory_bound', 'not stated')}.",
        "",
        f"AUC vs roc_auc_score: |diff| {agreement['auc_abs_diff']:.1e} within the stated bound "
        f"{agreement['auc_error_bound']:.1e}; logloss |diff| {agreement['logloss_abs_diff']:.1e}; accuracy "
        f"|diff| {agreement['accuracy_abs_diff']:.1e}. Load average before/after: "
        f"{q['load_average_before'][0]:.1f} / {q['load_average_after'][0]:.1f}.",
        "",
    ]


def serving() -> list[str]:
    s = _load("serving")
    lines = ["## Inference server", ""]
    if s is None:
        return lines + _missing("serving", ".venv/bin/python bench/serving.py")
    lines += [
        "Loopback HTTP, one client connection; reference: Flask + gunicorn serving the same model.",
        "",
        "| request | ours req/s | p50 ms | p99 ms | reference req/s | p50 ms | p99 ms | ratio req/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind in ("single", "batch_100"):
        o, r = s["ours"][kind], s["reference"][kind]
        ratio = s["ratios"][kind]["req_per_s_ours_over_reference"]
        cells = [kind, f"{o['req_per_s']:,.0f}", f"{o['p50_ms']:.2f}", f"{o['p99_ms']:.2f}"]
        cells += [f"{r['req_per_s']:,.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{ratio:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    single = s["ratios"]["single"]
    lines += [
        "",
        f"HTTP layer over the model, single row: {single['http_overhead_ms_ours']:.3f} ms over the booster's "
        f"predict, {single['http_overhead_ms_ours_beyond_encode']:.3f} ms over encode + predict "
        f"(reference: {single['http_overhead_ms_reference']:.3f} ms).",
        "",
    ]
    return lines


def cold_start() -> list[str]:
    c = _load("cold_start")
    lines = ["## Lambda cold start and package size", ""]
    if c is None:
        return lines + _missing("cold_start", ".venv/bin/python bench/cold_start.py")
    cpu = c.get("reference_boto3_cpu_ms")
    lines += [
        f"Reference: `import boto3` + one client = {c['reference_boto3_ms']:.0f} ms"
        + (f", main-thread CPU {cpu:.0f} ms" if cpu else "")
        + " (same run, rounds interleaved with the functions'; each function probed in its staged asset with "
        "its template's environment); budget: 400 ms, and 1.5x the reference.",
        "",
        "| function | import ms | init ms | total ms | x boto3 floor | CPU ms | x floor, CPU | package MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in c["functions"].items():
        size = c["package_bytes"].get(name)
        total = r["import_ms"] + r["init_ms"]
        ratio = f"{r.get('x_floor', total / c['reference_boto3_ms']):.2f}"
        shown = f"{size / 1e6:.2f}" if size else "-"
        cpu_ms = f"{r['cpu_ms']:.0f}" if "cpu_ms" in r else "-"
        cpu_x = f"{r['x_floor_cpu']:.2f}" if "x_floor_cpu" in r else "-"
        lines.append(
            f"| {name} | {r['import_ms']:.0f} | {r['init_ms']:.0f} | {total:.0f} | {ratio} "
            f"| {cpu_ms} | {cpu_x} | {shown} |"
        )
    return [*lines, ""]


def loop() -> list[str]:
    t, lo = _load("training_local"), _load("loop_local")
    lines = ["## The loop on the local plane", ""]
    if t is None and lo is None:
        return lines + _missing("training_local", ".venv/bin/python bench/training_local.py")
    lines += ["| path | seconds | reference |", "|---|---|---|"]
    if t:
        lines.append(
            f"| drop → registered ({t['rows']:,} rows) | {t['drop_to_registered_s']:.1f} "
            f"| trainer alone {t['trainer_alone_s']:.1f} s |"
        )
        if "approval_to_serving_s" in t:
            lines.append(f"| approval → serving | {t['approval_to_serving_s']:.1f} | |")
            lines.append(
                f"| drop → serving ({t['rows']:,} rows) | {t['drop_to_serving_s']:.1f} | budget 60 s |"
            )
    if lo:
        lines.append(
            f"| drifted traffic → drift check ({lo['traffic_rows']:,} rows) "
            f"| {lo['traffic_to_check_s']:.1f} | |"
        )
        lines.append(
            f"| drifted traffic → alarm → retrained version serving "
            f"| {lo['traffic_to_retrained_serving_s']:.1f} "
            f"| of which the rollout's configured waits {lo['rollout_waits_s']} s |"
        )
    return [*lines, ""]


def batch() -> list[str]:
    b = _load("batch")
    lines = ["## Batch scoring", ""]
    if b is None:
        return lines + _missing("batch", ".venv/bin/python bench/batch.py")
    plane_rate, reference_rate = b["rows"] / b["plane_s"], b["rows"] / b["in_process_s"]
    lines += [
        f"{b['rows']:,} rows ({b['csv_mb']:.0f} MB CSV) dropped under `churn/batch/incoming/` on the local "
        f"plane, {b['instances']} transform instance(s), until the output is complete and recorded; "
        "reference: the same rows encoded and predicted in-process with the same booster.",
        "",
        "| path | seconds | rows/s | of in-process |",
        "|---|---|---|---|",
        f"| drop → output complete | {b['plane_s']:.1f} | {plane_rate:,.0f} | {b['ratio']:.2f}x |",
        f"| in-process encode + predict | {b['in_process_s']:.1f} | {reference_rate:,.0f} | 1x |",
        "",
        f"Goal: {b['goal']}x ({'met' if b['ratio'] >= b['goal'] else 'not met'}). Stages: ingest "
        "(read, validate, write the transform input) "
        f"{b['ingest_s']:.1f} s, transform job {b['transform_s']:.1f} s, Resolve/Record and the drift check "
        "of the inputs "
        f"{b['record_s']:.1f} s.",
    ]
    return [*lines, ""]


def trainer() -> list[str]:
    d = _load("trainer_device")
    lines = ["## Trainer: CPU vs GPU", ""]
    if d is None:
        return lines + _missing("trainer_device", ".venv/bin/python bench/trainer_device.py")
    if d.get("gpu_s"):
        lines.append(
            f"{d['rows']:,} rows: CPU {d['cpu_s']:.1f} s, GPU {d['gpu_s']:.1f} s: the GPU is "
            f"{d['cpu_over_gpu']:.1f}x faster."
        )
    else:
        lines.append(f"{d['rows']:,} rows: CPU {d['cpu_s']:.1f} s; no GPU run: {d['no_gpu_because']}.")
    return [*lines, ""]


def tuning() -> list[str]:
    t = _load("tuning")
    lines = ["## Tuning", ""]
    if t is None:
        return lines + _missing("tuning", ".venv/bin/python bench/tuning.py")
    # SageMaker passes tuned values as text: a continuous one at full precision.
    best = ", ".join(
        f"{k} {float(v):.3g}" if "." in v else f"{k} {v}"
        for k, v in sorted(t["best_hyperparameters"].items())
    )
    default = ", ".join(f"{k} {v}" for k, v in sorted(t["default_hyperparameters"].items()))
    statuses = ", ".join(f"{n} {s.lower()}" for s, n in t["statuses"].items() if n)
    lines += [
        f"{t['rows']:,} churn rows with {t['label_noise']:.0%} of the labels shuffled; a {t['strategy']} "
        f"tuning job of {t['trials']} trials, {t['parallel']} at a time, on the local plane "
        f"({t['cpus']} CPUs; "
        f"{statuses}). References on the same splits: the shipped defaults ({default}) as one training job, "
        "and the same trials one after another.",
        "",
        f"| | {t['objective']} | seconds |",
        "|---|---|---|",
        f"| best trial ({best}) | {t['best_objective']:.4f} | tuning job {t['tuning_s']:.1f} |",
        f"| shipped defaults | {t['default_objective']:.4f} | |",
        f"| the {t['trials']} trials one after another | | {t['sequential_s']:.1f} |",
        "",
        f"Best over defaults: {t['best_objective'] - t['default_objective']:+.4f}; the tuning job took "
        f"{t['tuning_s'] / t['sequential_s']:.0%} of the sequential wall time ({t['speedup']:.2f}x); "
        f"drop → run ended {t['drop_to_end_s']:.1f} s.",
    ]
    return [*lines, ""]


def main() -> int:
    header = [
        "# Benchmark results",
        "",
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"Python {platform.python_version()}. Each figure is beside the reference measured in the same run.",
        "",
    ]
    body = [*drift(), *quality(), *serving(), *cold_start(), *loop(), *batch(), *trainer(), *tuning()]
    (REPO / "bench" / "RESULTS.md").write_text("\n".join([*header, *body]))
    print("\n".join([*header, *body]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
