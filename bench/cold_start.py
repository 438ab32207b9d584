"""Lambda cold start per handler: the import of its module and the build of its runtime (settings, models,
clients, observability), each in a fresh interpreter as a new Lambda environment would; and the size of
each function's deployment package (the staged CDK asset: its folder, the domain package, models.json).

Reference, measured in the same run: `import boto3` plus one client, the floor every Python function that
talks to AWS pays. Budgets (DESIGN.md): import + init under 400 ms, package far under Lambda's 250 MB.

    .venv/bin/python bench/cold_start.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS = sorted(p.name for p in (REPO / "functions").iterdir() if (p / "handler.py").is_file())
# What every function's settings need; the values only have to parse (nothing connects at init).
ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "Headrace",
    "HEADRACE_STAGE": "dev",
    "LEDGER_TABLE": "ledger",
    "DATA_BUCKET": "bucket",
    "EVENT_BUS_NAME": "default",
    "TRAINING_STATE_MACHINES": json.dumps(
        {
            path.stem: f"arn:aws:states:us-east-1:123456789012:stateMachine:{path.stem}-training"
            for path in (REPO / "models").glob("*.yaml")
        }
    ),
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "HEADRACE_MODELS_DIR": str(REPO / "models"),
}
PROBE = """
import time, importlib, json
t0 = time.perf_counter()
module = importlib.import_module({module!r})
t1 = time.perf_counter()
build = getattr(module, "_runtime", None)
error = None
if build is not None:
    try:
        build()
    except Exception as exc:  # reported: an init that fails early would understate the cost
        error = f"{{type(exc).__name__}}: {{exc}}"[:200]
t2 = time.perf_counter()
print(json.dumps({{"import_ms": (t1 - t0) * 1e3, "init_ms": (t2 - t1) * 1e3, "init_error": error}}))
"""
REFERENCE = """
import time, json
t0 = time.perf_counter()
import boto3
boto3.client("s3")
print(json.dumps({"import_ms": (time.perf_counter() - t0) * 1e3, "init_ms": 0.0}))
"""


def probe(code: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, **ENVIRONMENT},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def package_sizes() -> dict[str, int]:
    """Bytes of each function's staged asset, from a synth of the real app."""
    with tempfile.TemporaryDirectory() as outdir:
        env = {**os.environ, "CDK_OUTDIR": outdir, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
        subprocess.run(
            [sys.executable, str(REPO / "app.py")], cwd=REPO, env=env, check=True, capture_output=True
        )
        sizes: dict[str, int] = {}
        for asset in Path(outdir).glob("asset.*"):
            handler = asset / "handler.py"
            if not handler.is_file():
                continue
            text = handler.read_text()
            name = next((f for f in FUNCTIONS if f"functions/{f}" in text or f'"{f}"' in text), None)
            name = name or next(
                (f for f in FUNCTIONS if (REPO / "functions" / f / "handler.py").read_text() == text),
                asset.name,
            )
            sizes[name] = sum(p.stat().st_size for p in asset.rglob("*") if p.is_file())
        return sizes


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    # Rounds interleave the reference with every function, so a machine shared with other work loads both
    # alike and the ratios hold even when the absolute times drift.
    reference: list[dict[str, Any]] = []
    runs: dict[str, list[dict[str, Any]]] = {function: [] for function in FUNCTIONS}
    for _ in range(args.repeat):
        reference.append(probe(REFERENCE))
        for function in FUNCTIONS:
            runs[function].append(probe(PROBE.format(module=f"functions.{function}.handler")))
    floor = median(reference, "import_ms")
    results: dict[str, dict[str, float]] = {}
    for function, probes in runs.items():
        results[function] = {"import_ms": median(probes, "import_ms"), "init_ms": median(probes, "init_ms")}
        results[function]["x_floor"] = (results[function]["import_ms"] + results[function]["init_ms"]) / floor
        if probes[0].get("init_error"):
            print(f"{function}: init failed in this probe: {probes[0]['init_error']}", file=sys.stderr)
    sizes = package_sizes()
    print(f"reference: import boto3 + one client: {floor:.0f} ms (median of {args.repeat})")
    print("| function | import ms | init ms | total ms | x boto3 floor | package |")
    print("|---|---|---|---|---|---|")
    for function, r in results.items():
        total = r["import_ms"] + r["init_ms"]
        size = sizes.get(function)
        shown = f"{size / 1e6:.2f} MB" if size else "-"
        row = [
            function,
            f"{r['import_ms']:.0f}",
            f"{r['init_ms']:.0f}",
            f"{total:.0f}",
            f"{total / floor:.2f}",
        ]
        print("| " + " | ".join([*row, shown]) + " |")
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "cold_start.json").write_text(
        json.dumps({"reference_boto3_ms": floor, "functions": results, "package_bytes": sizes}, indent=1)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
