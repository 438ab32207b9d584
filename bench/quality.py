"""Quality check: our join + metrics (headrace.quality) against a straightforward pandas merge +
scikit-learn metrics, on the same in-memory rows, in the same run.

The data: `--rows` captured binary:logistic inferences (uuid inference ids, row 0, a score) and labels
for 90% of them in another order plus 1% labels of unknown inferences and 1% late duplicates. Both
contenders take the SAME in-memory arrays and produce the labelled rows' AUC, logloss and accuracy.

Input form (`--keys`): `bytes` (default) hands both the ids as fixed-width UTF-8 byte arrays (numpy 'S', made
by headrace.quality.join.key_array), the form the quality check's readers are to produce; `str` hands both
object arrays of distinct str objects (as parsing two files gives them), which ours must encode first,
inside its timing.

- ours: join_labels (later label wins) + QualityPartial.add + result() (AUC from the score histogram).
- reference: DataFrames, drop_duplicates(keep="last"), merge on (inference_id, row), then roc_auc_score,
  log_loss, accuracy_score (scikit-learn, exact AUC).

Time: best of `--repeat`. Memory: peak RSS during the call minus RSS before it (as bench/drift.py measures).
Agreement: |our AUC - scikit-learn's| beside our stated error bound; logloss and accuracy differences.

    .venv/bin/python bench/quality.py [--rows 1000000] [--repeat 3] [--keys bytes|str]

Results go to bench/out/quality.json; a markdown table goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from drift import OUT, measure  # one copy of the measuring

# What headrace/quality/join.py's docstring states, in figures; the check joins one Distributed Map batch of
# captures at a time, so this is per batch.
MEMORY_BOUND = (
    "O(captures + labels) and nothing per row beyond: per label at most 40 bytes (hash table 16-32, hash 8), "
    "per capture about 32 (hash, lookup, matched pair), temporaries a fixed 65,536 rows at a time; a check "
    "joins one batch of captured objects at a time"
)
KEY_FORMS = {
    "bytes": "ids as fixed-width UTF-8 byte arrays (numpy 'S', headrace.quality.join.key_array)",
    "str": "ids as object arrays of distinct str objects (ours encodes them inside its timing)",
}


def make_data(rows: int, seed: int = 16, keys: str = "bytes") -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    ids = [str(uuid.UUID(int=int(v))) for v in rng.integers(0, 2**63, rows, dtype=np.uint64)]
    labels_of = (rng.random(rows) < 0.3).astype(np.float64)
    scores = np.clip(rng.beta(2, 5, rows) + 0.2 * labels_of, 0.0, 1.0)
    chosen = rng.permutation(rows)[: rows * 9 // 10]
    late = chosen[: rows // 100]
    unknown = [str(uuid.UUID(int=int(v))) for v in rng.integers(0, 2**63, rows // 100, dtype=np.uint64)]
    # Fresh str objects on the label side, as a second file's parser makes them.
    fresh = [ids[i].encode().decode() for i in chosen]
    label_ids = fresh + unknown + [ids[i].encode().decode() for i in late]
    label_values = np.concatenate([labels_of[chosen], np.zeros(len(unknown)), labels_of[late]])
    from headrace.quality.join import key_array

    form = key_array if keys == "bytes" else (lambda values: np.array(values, dtype=object))
    return {
        "key_form": keys,
        "inference_ids": form(ids),
        "inference_rows": np.zeros(rows, np.int64),
        "scores": scores,
        "label_ids": form(label_ids),
        "label_rows": np.zeros(len(label_ids), np.int64),
        "labels": label_values,
    }


def ours(data: dict[str, Any]) -> dict[str, Any]:
    from headrace.quality.join import join_labels
    from headrace.quality.metrics import QualityPartial

    joined = join_labels(data["inference_ids"], data["inference_rows"], data["label_ids"], data["label_rows"])
    partial = QualityPartial.empty("binary:logistic", 2, [])
    partial.add(data["scores"][joined.inference], data["labels"][joined.label], {})
    result = partial.result()
    return {"rows": result.rows, **result.metrics, "auc_bound": result.error_bounds["auc"]}


def reference(data: dict[str, Any]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    captures = pd.DataFrame(
        {"inference_id": data["inference_ids"], "row": data["inference_rows"], "score": data["scores"]}
    )
    labels = pd.DataFrame(
        {"inference_id": data["label_ids"], "row": data["label_rows"], "label": data["labels"]}
    )
    labels = labels.drop_duplicates(["inference_id", "row"], keep="last")
    merged = captures.merge(labels, on=["inference_id", "row"], how="inner")
    y, s = merged["label"].to_numpy(), merged["score"].to_numpy()
    return {
        "rows": len(merged),
        "auc": float(roc_auc_score(y, s)),
        "logloss": float(log_loss(y, s)),
        "accuracy": float(accuracy_score(y, s > 0.5)),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keys", choices=("bytes", "str"), default="bytes")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    data = make_data(args.rows, keys=args.keys)
    answers = {"ours": ours(data), "reference": reference(data)}
    results: dict[str, Any] = {
        "captured_rows": args.rows,
        "key_form": KEY_FORMS[args.keys],
        "label_rows": len(data["label_ids"]),
        "cpus": len(os.sched_getaffinity(0)),
        "memory": "peak RSS during the call minus RSS before it (VmHWM reset via /proc/self/clear_refs)",
        "memory_bound": MEMORY_BOUND,
        "load_average_before": os.getloadavg(),
    }
    # Interleaved, so both see the same load on these shared CPUs.
    timings: dict[str, list[dict[str, Any]]] = {"ours": [], "reference": []}
    for _ in range(args.repeat):
        timings["ours"].append(measure(lambda: ours(data), 1))
        timings["reference"].append(measure(lambda: reference(data), 1))
    for name, runs in timings.items():
        best = min(runs, key=lambda r: r["seconds"])
        results[name] = best | {"peak_rss_mib": max(r["peak_rss_mib"] for r in runs), "answer": answers[name]}
    results["load_average_after"] = os.getloadavg()
    a, b = answers["ours"], answers["reference"]
    results["agreement"] = {
        "rows_equal": a["rows"] == b["rows"],
        "auc_abs_diff": abs(a["auc"] - b["auc"]),
        "auc_error_bound": a["auc_bound"],
        "logloss_abs_diff": abs(a["logloss"] - b["logloss"]),
        "accuracy_abs_diff": abs(a["accuracy"] - b["accuracy"]),
    }
    results["ratio_reference_over_ours"] = results["reference"]["seconds"] / results["ours"]["seconds"]
    results["cpu_ratio_reference_over_ours"] = (
        results["reference"]["cpu_seconds"] / results["ours"]["cpu_seconds"]
    )
    (OUT / "quality.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"{args.rows:,} captured inferences, {results['label_rows']:,} labels; {results['cpus']} CPUs")
    print(f"input: {results['key_form']}")
    print("| contender | seconds | CPU seconds | peak RSS above data (MiB) | time vs ours |")
    print("|---|---:|---:|---:|---:|")
    for name, label in (("ours", "headrace join + partial"), ("reference", "pandas merge + scikit-learn")):
        row = results[name]
        ratio = row["seconds"] / results["ours"]["seconds"]
        print(
            f"| {label} | {row['seconds']:.3f} | {row['cpu_seconds']:.3f} | {row['peak_rss_mib']:.0f} "
            f"| {ratio:.1f}x |"
        )
    print(json.dumps(results["agreement"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
