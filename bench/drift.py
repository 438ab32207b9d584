"""Drift statistics: ours (headrace.drift, reference profile cached) against a per-column scipy/pandas
reference and Evidently, on the same data, in the same run.

The data: a reference (training) window and a current window of `--rows` rows each, `--columns` columns of
which `--categorical` are text categories; numeric columns cycle through normal, log-normal, small integers
(many ties), Cauchy (heavy tails) and uniform, some with missing values, every third one shifted in the
current window, and one categorical column gains a category. It is written once to bench/out/drift-data/
as Parquet, and each contender runs in its own process on it:

- ours: `compute_drift(reference, current, monitoring)` with the reference profile built and compiled
  beforehand (the drift Lambda keeps it in memory between invocations; both costs are reported apart).
  Threads: one per CPU, and again with one thread.
- reference: what a careful per-column scipy/pandas check does: decile PSI from `np.quantile` bins,
  `scipy.stats.ks_2samp` against the whole reference column, missing rates, and per categorical column
  `value_counts`, `chi2_contingency` and `jensenshannon`. It recomputes from the raw reference each time.
- Evidently (`EVIDENTLY`, pinned): `Report([DataDriftPreset()])` with its default per-column tests, in its
  own virtual environment bench/.venv-evidently (created here from PyPI on first use; its pins clash with
  ours). If it cannot be installed, the table says why and reports the others.

Cells are counted over both windows: (reference rows + current rows) x columns, for every contender, though
ours reads only the current window (the reference is the cached profile). Time: best of `--repeat` runs.
Memory: peak resident set size during the timed call minus the resident size just before it (Linux:
VmHWM after resetting it through /proc/self/clear_refs), so the loaded data frames are not counted; for
ours also tracemalloc's peak (numpy reports its buffers to tracemalloc). Agreement: our KS statistic and
p-value against `scipy.stats.ks_2samp(profile sample, current values)` for every numeric column.

    .venv/bin/python bench/drift.py [--rows 1000000] [--columns 25] [--categorical 5] [--repeat 3]
                                    [--skip-evidently]

Results go to bench/out/drift.json; a markdown table goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
DATA = OUT / "drift-data"
EVIDENTLY_VENV = REPO / "bench" / ".venv-evidently"
EVIDENTLY = "evidently==0.7.23"
# Evidently 0.7.23 does not import under pandas 3 (it uses pandas.core.dtypes.common.infer_dtype_from_object,
# gone in 3.0): its venv gets our own pandas/numpy/pyarrow pins, which also keeps the comparison fair.
EVIDENTLY_PINS = [EVIDENTLY, "pandas==2.3.3", "numpy==2.2.6", "pyarrow==21.0.0"]
CATEGORIES = [f"c{i:02d}" for i in range(12)]


# --- data ---------------------------------------------------------------------------------------------------


def _numeric_column(rng: np.random.Generator, j: int, rows: int, current: bool) -> np.ndarray:
    shift = 0.1 if current and j % 3 == 0 else 0.0
    kind = j % 5
    if kind == 0:
        values = rng.normal(shift, 1.0, rows)
    elif kind == 1:
        values = rng.lognormal(shift, 1.0, rows)
    elif kind == 2:
        values = rng.integers(0, 40, rows).astype(np.float64) + round(10 * shift)
    elif kind == 3:
        values = rng.standard_cauchy(rows) + shift
    else:
        values = rng.uniform(shift, 1.0 + shift, rows)
    if j % 4 == 1:
        values[rng.random(rows) < 0.05] = np.nan
    return values


def _categorical_column(rng: np.random.Generator, j: int, rows: int, current: bool) -> np.ndarray:
    weights = np.linspace(1.0, 3.0, len(CATEGORIES))
    labels = list(CATEGORIES)
    if current and j == 0:
        labels.append("new")
        weights = np.append(weights, 1.5)
    return rng.choice(np.array(labels, dtype=object), size=rows, p=weights / weights.sum())


def make_data(rows: int, columns: int, categorical: int, seed: int = 20_240_901) -> dict[str, Any]:
    """Writes reference.parquet and current.parquet under DATA; returns the column kinds."""
    numeric = [f"num_{j:02d}" for j in range(columns - categorical)]
    categories = [f"cat_{j:02d}" for j in range(categorical)]
    meta = {"rows": rows, "numeric": numeric, "categorical": categories, "seed": seed}
    marker = DATA / "meta.json"
    if marker.exists() and json.loads(marker.read_text()) == meta:
        return meta
    DATA.mkdir(parents=True, exist_ok=True)
    for offset, name in enumerate(["reference", "current"]):
        rng = np.random.default_rng(seed + offset)
        frame = pd.DataFrame(
            {c: _numeric_column(rng, j, rows, name == "current") for j, c in enumerate(numeric)}
            | {c: _categorical_column(rng, j, rows, name == "current") for j, c in enumerate(categories)}
        )
        frame.to_parquet(DATA / f"{name}.parquet", index=False)
    marker.write_text(json.dumps(meta))
    return meta


def load_data() -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    meta = json.loads((DATA / "meta.json").read_text())
    return pd.read_parquet(DATA / "reference.parquet"), pd.read_parquet(DATA / "current.parquet"), meta


# --- measuring ----------------------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure(work: Callable[[], object], repeat: int) -> dict[str, Any]:
    """Best wall time of `repeat` calls, the CPU time of that call (all threads), and the largest peak RSS
    above the RSS just before a call (MiB)."""
    runs, peaks = [], []
    for _ in range(repeat):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        before = _status_kib("VmRSS")
        cpu, started = time.process_time(), time.perf_counter()
        work()
        runs.append((time.perf_counter() - started, time.process_time() - cpu))
        peaks.append((_status_kib("VmHWM") - before) / 1024)
    wall, cpu_s = min(runs)
    return {
        "seconds": wall,
        "cpu_seconds": cpu_s,
        "all_seconds": [round(w, 4) for w, _ in runs],
        "peak_rss_mib": max(peaks),
    }


# --- contenders (each runs in its own process: `--worker NAME`) ------------------------------------------


def worker_ours(repeat: int) -> dict[str, Any]:
    import tracemalloc

    from scipy import stats

    from headrace.config import MonitoringConfig
    from headrace.drift import compile_reference, compute_drift
    from headrace.drift.partial import default_workers
    from headrace.profile import FeatureInfo, NumericProfile, build_profile

    reference, current, meta = load_data()
    info = FeatureInfo(
        features=meta["numeric"] + meta["categorical"],
        categorical={c: CATEGORIES for c in meta["categorical"]},
    )
    started = time.perf_counter()
    profile = build_profile(reference, info)
    built = time.perf_counter() - started
    started = time.perf_counter()
    compiled = compile_reference(profile)
    compiled_s = time.perf_counter() - started
    monitoring = MonitoringConfig()
    result: dict[str, Any] = {"profile_build_s": round(built, 3), "compile_s": round(compiled_s, 4)}
    threads = 1 if os.environ.get("BENCH_DRIFT_ONE_THREAD") else default_workers()
    result["threads"] = threads
    result |= measure(lambda: compute_drift(compiled, current, monitoring, workers=threads), repeat)
    if threads == 1:
        return result
    tracemalloc.start()
    report = compute_drift(compiled, current, monitoring)
    result["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    statistic_diff, pvalue_rel = 0.0, 0.0
    for name in meta["numeric"]:
        feature = profile.features[name]
        assert isinstance(feature, NumericProfile)
        values = current[name].to_numpy()
        expected = stats.ks_2samp(np.asarray(feature.sample), values[np.isfinite(values)])
        ours = report.feature(name)
        assert ours.ks_statistic is not None and ours.ks_pvalue is not None
        statistic_diff = max(statistic_diff, abs(ours.ks_statistic - float(expected.statistic)))
        if expected.pvalue > 1e-300:
            pvalue_rel = max(pvalue_rel, abs(ours.ks_pvalue / float(expected.pvalue) - 1.0))
    result["agreement"] = {
        "ks_statistic_max_abs_diff_vs_scipy": statistic_diff,
        "ks_pvalue_max_rel_diff_vs_scipy": pvalue_rel,
    }
    result["drifted_features"] = report.drifted_features
    return result


def _psi(reference: np.ndarray, current: np.ndarray) -> float:
    r = np.where(reference > 0, reference / reference.sum(), 1e-4)
    c = np.where(current > 0, current / current.sum(), 1e-4)
    return float(np.sum((c - r) * np.log(c / r)))


def reference_check(reference: pd.DataFrame, current: pd.DataFrame, meta: dict[str, Any]) -> dict[str, Any]:
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    out: dict[str, Any] = {}
    for name in meta["numeric"]:
        r, c = reference[name], current[name]
        rv, cv = r.dropna().to_numpy(), c.dropna().to_numpy()
        edges = np.unique(np.quantile(rv, np.arange(1, 10) / 10))
        rb = np.bincount(np.searchsorted(edges, rv), minlength=edges.size + 1)
        cb = np.bincount(np.searchsorted(edges, cv), minlength=edges.size + 1)
        ks = stats.ks_2samp(rv, cv)
        out[name] = (_psi(rb, cb), ks.statistic, ks.pvalue, r.isna().mean(), c.isna().mean())
    for name in meta["categorical"]:
        r, c = reference[name], current[name]
        table = pd.concat([r.value_counts(), c.value_counts()], axis=1).fillna(0).to_numpy().T
        chi2 = stats.chi2_contingency(table, correction=False)
        js = jensenshannon(table[0], table[1], base=2)
        out[name] = (
            _psi(table[0], table[1]),
            chi2.statistic,
            chi2.pvalue,
            js,
            r.isna().mean(),
            c.isna().mean(),
        )
    return out


def worker_reference(repeat: int) -> dict[str, Any]:
    reference, current, meta = load_data()
    return measure(lambda: reference_check(reference, current, meta), repeat)


def worker_evidently(repeat: int) -> dict[str, Any]:
    import evidently
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference, current, meta = load_data()
    definition = DataDefinition(numerical_columns=meta["numeric"], categorical_columns=meta["categorical"])

    def run() -> object:
        ref = Dataset.from_pandas(reference, data_definition=definition)
        cur = Dataset.from_pandas(current, data_definition=definition)
        return Report([DataDriftPreset()]).run(cur, ref)

    result = measure(run, repeat)
    result["version"] = evidently.__version__
    return result


WORKERS: dict[str, Callable[[int], dict[str, Any]]] = {
    "ours": worker_ours,
    "reference": worker_reference,
    "evidently": worker_evidently,
}


# --- orchestration ------------------------------------------------------------------------------------------


def ensure_evidently() -> tuple[Path | None, str]:
    """The Evidently venv's python, created and installed on first use; or None and why not."""
    python = EVIDENTLY_VENV / "bin" / "python"
    check = [str(python), "-c", "import evidently.presets; print(evidently.__version__)"]
    try:
        if not python.exists():
            subprocess.run(
                [sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True, capture_output=True
            )
        probe = subprocess.run(check, capture_output=True, text=True)
        if probe.returncode != 0 or probe.stdout.strip() != EVIDENTLY.split("==")[1]:
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    *EVIDENTLY_PINS,
                ],
                check=True,
                capture_output=True,
                text=True,
                timeout=1800,
            )
            probe = subprocess.run(check, capture_output=True, text=True)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = (getattr(exc, "stderr", "") or str(exc)).strip()
        return None, f"could not install {EVIDENTLY}: {detail.splitlines()[-1] if detail else exc!r}"
    if probe.returncode != 0:
        lines = probe.stderr.strip().splitlines()
        return None, f"{EVIDENTLY} does not import: {lines[-1] if lines else probe.returncode}"
    return python, ""


def run_worker(python: Path | str, name: str, repeat: int, **env_extra: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **env_extra}
    completed = subprocess.run(
        [str(python), str(Path(__file__).resolve()), "--worker", name, "--repeat", str(repeat)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit {completed.returncode}"}
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def table(results: dict[str, Any], cells: int) -> str:
    ours = results["ours"].get("seconds")
    lines = [
        "| contender | seconds | M cells/s | CPU seconds | M cells per CPU-s | peak RSS above data (MiB) "
        "| time vs ours |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [
        (f"ours, {results['ours'].get('threads', '?')} threads (profile cached)", results["ours"]),
        ("ours, 1 thread (profile cached)", results["ours_one_thread"]),
        ("per-column scipy/pandas", results["reference"]),
        (f"Evidently {results['evidently'].get('version', EVIDENTLY.split('==')[1])}", results["evidently"]),
    ]
    for label, entry in rows:
        if "seconds" not in entry:
            lines.append(f"| {label} | - | - | - | - | - | {entry.get('error', 'not run')} |")
            continue
        ratio = f"{entry['seconds'] / ours:.1f}x" if ours else "-"
        lines.append(
            f"| {label} | {entry['seconds']:.3f} | {cells / entry['seconds'] / 1e6:.1f} | "
            f"{entry['cpu_seconds']:.3f} | {cells / entry['cpu_seconds'] / 1e6:.1f} | "
            f"{entry['peak_rss_mib']:.0f} | {ratio} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in each window")
    parser.add_argument("--columns", type=int, default=25)
    parser.add_argument("--categorical", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--evidently-repeat", type=int, default=1)
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.repeat)))
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    meta = make_data(args.rows, args.columns, args.categorical)
    cells = 2 * args.rows * args.columns
    results: dict[str, Any] = {
        "rows_per_window": args.rows,
        "columns": args.columns,
        "categorical_columns": args.categorical,
        "cells_both_windows": cells,
        "cpus": len(os.sched_getaffinity(0)),
        "memory": "peak RSS during the call minus RSS before it (VmHWM reset via /proc/self/clear_refs)",
    }
    results["load_average_before"] = os.getloadavg()
    results["ours"] = run_worker(sys.executable, "ours", args.repeat)
    results["ours_one_thread"] = run_worker(sys.executable, "ours", args.repeat, BENCH_DRIFT_ONE_THREAD="1")
    results["reference"] = run_worker(sys.executable, "reference", args.repeat)
    if args.skip_evidently:
        results["evidently"] = {"error": "skipped (--skip-evidently)"}
    else:
        python, why = ensure_evidently()
        results["evidently"] = (
            run_worker(python, "evidently", args.evidently_repeat) if python else {"error": why}
        )
    results["load_average_after"] = os.getloadavg()
    for name in ("ours", "ours_one_thread", "reference", "evidently"):
        if "seconds" in results[name]:
            results[name]["cells_per_s"] = cells / results[name]["seconds"]
            results[name]["cells_per_cpu_s"] = cells / results[name]["cpu_seconds"]
    ours = results["ours"].get("seconds")
    if ours:
        results["ratios"] = {
            f"{name}_seconds_over_ours": results[name]["seconds"] / ours
            for name in ("reference", "evidently")
            if "seconds" in results[name]
        }
    (OUT / "drift.json").write_text(json.dumps(results, indent=1) + "\n")
    shape = f"{args.rows:,} + {args.rows:,} rows x {args.columns} columns"
    print(
        f"{shape} ({len(meta['categorical'])} categorical) = {cells / 1e6:.0f}M cells; {results['cpus']} CPUs"
    )
    print(table(results, cells))
    load = results["load_average_before"][0], results["load_average_after"][0]
    print(
        f"load average (1 min) before/after: {load[0]:.2f} / {load[1]:.2f} (other processes share these CPUs)"
    )
    if "agreement" in results["ours"]:
        print(f"agreement with scipy.stats.ks_2samp(sample, current): {results['ours']['agreement']}")
        print(
            f"ours: profile build {results['ours']['profile_build_s']}s (training time), "
            f"compile {results['ours']['compile_s']}s (once per profile), "
            f"tracemalloc peak {results['ours']['tracemalloc_peak_mib']:.1f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
