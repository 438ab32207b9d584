"""Lambda cold start per function: the import of its handler and the build of its runtime (settings, models,
clients, observability), each in a fresh interpreter as a new Lambda environment would; and the size of
each function's deployment package.

What is measured is what deploys: a synth of the real app (app.py) stages every function's asset (its
handler, the domain package, models.json), and each probe runs in that asset's folder with the environment
variables the synthesized template gives the function (stacks/wiring.py: references to other resources,
which only resolve at deploy time, become placeholders), importing `handler` as Lambda's `handler.handler`
does. Only the connection variables are the bench's own: Lambda sets AWS_REGION itself, and the endpoint
points at a closed port (nothing connects at init).

Bytecode as on Lambda, which cannot write any (only /tmp is writable): the deploy's synth, on Lambda's
Python, ships the package's bytecode (stacks/assets.py `compile_for_lambda`); this machine's Python is
another, so the bench compiles the staged asset the same way with its own, and probes write none.
Libraries (the runtime's boto3, the layers) are pip-installed, which compiles them, as here.
`--no-bytecode` measures a package shipped without it (a synth on another Python than Lambda's).

Reference, measured in the same run: `import boto3` plus one client, the floor every Python function that
talks to AWS pays. Budgets (DESIGN.md): import + init under 400 ms, and at most 1.5x the floor.

    .venv/bin/python bench/cold_start.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stacks.bytecode import compile_for_lambda

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS = sorted(p.name for p in (REPO / "functions").iterdir() if (p / "handler.py").is_file())
# Where boto3 connects: Lambda provides the region; the endpoint is a closed port, so a client that did
# connect at init would fail loudly instead of timing the network.
CONNECTION = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
}
# What Lambda's runtime sets besides: a function's name (headrace/cold_start.py acts on it).
LAMBDA = {"AWS_LAMBDA_FUNCTION_NAME": "headrace-cold-start-bench"}
NO_BYTECODE = {"PYTHONDONTWRITEBYTECODE": "1"}
# A deploy-time reference (Ref, Fn::ImportValue, Fn::GetAtt) in a template's environment: a name or an ARN,
# either of which every settings field accepts.
PLACEHOLDER = "arn:aws:states:us-east-1:123456789012:stateMachine:placeholder"
PROBE = """
import time, importlib, json
t0, c0 = time.perf_counter(), time.thread_time()
module = importlib.import_module("handler")
t1, c1 = time.perf_counter(), time.thread_time()
build = getattr(module, "_runtime", None)
error = None
if build is not None:
    try:
        build()
    except Exception as exc:  # reported: an init that fails early would understate the cost
        error = f"{type(exc).__name__}: {exc}"[:200]
t2, c2 = time.perf_counter(), time.thread_time()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "init_ms": (t2 - t1) * 1e3, "cpu_ms": (c2 - c0) * 1e3,
                  "init_error": error}))
"""
REFERENCE = """
import time, json
t0, c0 = time.perf_counter(), time.thread_time()
import boto3
boto3.client("s3")
print(json.dumps({"import_ms": (time.perf_counter() - t0) * 1e3, "init_ms": 0.0,
                  "cpu_ms": (time.thread_time() - c0) * 1e3}))
"""

# What a function pays beyond the floor, piece by piece (--parts): each line adds one import to the one above
# (the numpy, pyarrow and pandas lines each to the pydantic one), in a fresh interpreter, main-thread CPU ms;
# the differences are the pieces' marginal costs. The pyarrow lines: what a CSV parser without pandas costs.
_MODEL = "from pydantic import BaseModel\nclass _M(BaseModel):\n    x: int\n"
_OBSERVE = "from aws_lambda_powertools import Logger, Metrics\nLogger(); Metrics()\n"
PARTS = {
    "import boto3": "import boto3\n",
    "+ one client (the floor)": "import boto3\nboto3.client('s3')\n",
    "import boto3 + Powertools Logger, Metrics": "import boto3\n" + _OBSERVE,
    "+ pydantic and a first model": "import boto3\n" + _OBSERVE + _MODEL,
    "+ numpy": "import boto3, numpy\n" + _OBSERVE + _MODEL,
    "+ pyarrow.csv (numpy), no pandas": "import boto3, pyarrow.csv\n" + _OBSERVE + _MODEL,
    "+ pyarrow.csv and pyarrow.compute, no pandas": "import boto3, pyarrow.csv, pyarrow.compute\n"
    + _OBSERVE
    + _MODEL,
    "+ pandas (numpy, pyarrow)": "import boto3, pandas\n" + _OBSERVE + _MODEL,
}
PART = """
import time, json
c0 = time.thread_time()
{code}
print(json.dumps({{"cpu_ms": (time.thread_time() - c0) * 1e3}}))
"""


@dataclass(frozen=True)
class Deployed:
    """One function as the template deploys it: its staged asset and its environment."""

    asset: Path
    environment: dict[str, str]


def rendered(value: Any) -> str:
    """A template environment value as the function would read it, deploy-time references as placeholders."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(rendered(p) for p in parts)
    return PLACEHOLDER


def deployed_functions(outdir: Path) -> dict[str, Deployed]:
    """Every function folder's asset and environment, from the synthesized templates (first stage found)."""
    sources = {f: (REPO / "functions" / f / "handler.py").read_text() for f in FUNCTIONS}
    found: dict[str, Deployed] = {}
    for template in sorted(outdir.glob("*.template.json")):
        resources = json.loads(template.read_text()).get("Resources", {})
        for resource in resources.values():
            if resource.get("Type") != "AWS::Lambda::Function":
                continue
            properties = resource["Properties"]
            key = properties.get("Code", {}).get("S3Key")
            asset = outdir / f"asset.{str(key).removesuffix('.zip')}"
            handler = asset / "handler.py"
            if not handler.is_file():
                continue  # CDK's own functions (bucket notifications) ship no handler of ours
            name = next((f for f, text in sources.items() if text == handler.read_text()), None)
            if name is None or name in found:
                continue
            variables = properties.get("Environment", {}).get("Variables", {})
            found[name] = Deployed(asset, {k: rendered(v) for k, v in variables.items()})
    missing = sorted(set(FUNCTIONS) - set(found))
    if missing:
        raise SystemExit(f"no deployed function in the synthesized app for functions/{', '.join(missing)}")
    return found


def synth(outdir: Path) -> None:
    """The real app over the repository's models, the first with `rollout.idle_hours` and `trainer.tuning`
    set if none has them: the idle sweep's and the tuning result's functions only deploy where a model asks
    for them."""
    models = outdir / "models"
    models.mkdir()
    configs = {p.name: yaml.safe_load(p.read_text()) for p in sorted((REPO / "models").glob("*.yaml"))}
    first = next(iter(configs.values()))
    if not any((c.get("rollout") or {}).get("idle_hours") for c in configs.values()):
        first["rollout"] = {**(first.get("rollout") or {}), "idle_hours": 24}
    if not any((c.get("trainer") or {}).get("tuning") for c in configs.values()):
        first["trainer"] = {
            **first["trainer"],
            "tuning": {"ranges": {"min_child_weight": {"min": 1.0, "max": 10.0}}},
        }
    for name, config in configs.items():
        (models / name).write_text(yaml.safe_dump(config))
    env = {**os.environ, "CDK_OUTDIR": str(outdir), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    command = [sys.executable, str(REPO / "app.py"), "-c", f"models_dir={models}"]
    subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)


def probe(code: str, cwd: Path, environment: dict[str, str]) -> dict[str, Any]:
    # The bench's own HEADRACE_* and POWERTOOLS_* variables must not leak into a function's environment.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("HEADRACE_", "POWERTOOLS_"))}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**inherited, **environment, **CONNECTION},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def package_bytes(asset: Path) -> int:
    return sum(p.stat().st_size for p in asset.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def parts(repeat: int) -> int:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in PARTS}
    for _ in range(repeat):
        for name, code in PARTS.items():
            runs[name].append(probe(PART.format(code=code), REPO, {}))
    print(f"CPU ms, medians of {repeat}; load average {os.getloadavg()[0]:.1f}")
    for name in PARTS:
        print(f"{median(runs[name], 'cpu_ms'):6.0f}  {name}")
    return 0


def warm_up(functions: Iterable[Deployed], *, bytecode: bool) -> None:
    """One unmeasured probe each: it compiles the libraries a function imports (as pip did for the layers);
    then the asset's own bytecode is what the deploy ships (module docstring)."""
    for function in functions:
        probe(PROBE, function.asset, function.environment)
        for cache in list(function.asset.rglob("__pycache__")):
            shutil.rmtree(cache)
        if bytecode:
            compile_for_lambda(function.asset)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("functions", nargs="*", help="function folders to measure (default: all)")
    parser.add_argument("--parts", action="store_true", help="the shared imports' CPU ms only")
    parser.add_argument(
        "--no-bytecode", action="store_true", help="the function packages without their bytecode"
    )
    args = parser.parse_args()
    if args.parts:
        return parts(args.repeat)
    with tempfile.TemporaryDirectory() as staged:
        outdir = Path(staged)
        synth(outdir)
        deployed = deployed_functions(outdir)
        chosen = {f: deployed[f] for f in (args.functions or FUNCTIONS)}
        sizes = {f: package_bytes(d.asset) for f, d in chosen.items()}
        warm_up(chosen.values(), bytecode=not args.no_bytecode)
        # Rounds interleave the reference with every function, so a machine shared with other work loads both
        # alike and the ratios hold even when the absolute times drift.
        reference: list[dict[str, Any]] = []
        runs: dict[str, list[dict[str, Any]]] = {f: [] for f in chosen}
        for _ in range(args.repeat):
            reference.append(probe(REFERENCE, REPO, {}))
            for name, staged_function in chosen.items():
                runs[name].append(
                    probe(
                        PROBE, staged_function.asset, {**staged_function.environment, **LAMBDA, **NO_BYTECODE}
                    )
                )
    floor = median(reference, "import_ms")
    # The main thread's CPU time beside wall time: on a machine shared with other work the wall clock waits
    # for a core, the CPU clock does not, so its ratio is the steadier of the two. The main thread's only:
    # numpy's OpenBLAS starts a thread pool at import whose threads spin on other cores (40 ms CPU on 2 cores,
    # no wall time), which a process clock would add to a cost the event does not wait for.
    floor_cpu = median(reference, "cpu_ms")
    results: dict[str, dict[str, float]] = {}
    for function, probes in runs.items():
        r = {key: median(probes, key) for key in ("import_ms", "init_ms", "cpu_ms")}
        r["x_floor"] = (r["import_ms"] + r["init_ms"]) / floor
        r["x_floor_cpu"] = r["cpu_ms"] / floor_cpu
        results[function] = r
        if probes[0].get("init_error"):
            print(f"{function}: init failed in this probe: {probes[0]['init_error']}", file=sys.stderr)
    load = os.getloadavg()[0]
    print(
        f"reference: import boto3 + one client: {floor:.0f} ms, CPU {floor_cpu:.0f} ms "
        f"(medians of {args.repeat}); load average {load:.1f}"
    )
    print("| function | import ms | init ms | total ms | x floor | CPU ms | x floor, CPU | package MB |")
    print("|---|---|---|---|---|---|---|---|")
    for function, r in results.items():
        total = r["import_ms"] + r["init_ms"]
        row = [function, f"{r['import_ms']:.0f}", f"{r['init_ms']:.0f}", f"{total:.0f}"]
        row += [f"{r['x_floor']:.2f}", f"{r['cpu_ms']:.0f}", f"{r['x_floor_cpu']:.2f}"]
        row.append(f"{sizes[function] / 1e6:.2f}")
        print("| " + " | ".join(row) + " |")
    if not args.functions:
        out = REPO / "bench" / "out"
        out.mkdir(exist_ok=True)
        document: dict[str, Any] = {"reference_boto3_ms": floor, "reference_boto3_cpu_ms": floor_cpu}
        document |= {"load_average": load, "functions": results, "package_bytes": sizes}
        (out / "cold_start.json").write_text(json.dumps(document, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
