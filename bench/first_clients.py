"""A first event's clients: S3, then DynamoDB, then SageMaker built one after another in a fresh process, each
from a boto3 Session of its own (what every lazy client did before) against headrace.aws.clients.client (one
Session per AWS_* environment, shared). Main-thread CPU ms, medians over fresh interpreters.

    .venv/bin/python bench/first_clients.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("s3", "dynamodb", "sagemaker")
PROBE = """
import sys, time, boto3
from headrace.aws import clients
own = sys.argv[1] == "own"
for service in sys.argv[2:]:
    started = time.process_time()
    if own:
        boto3.Session().client(service, config=clients.CLIENT_CONFIG)
    else:
        clients.client(service)
    print((time.process_time() - started) * 1000)
"""
WAYS = {"own": "a Session per client", "shared": "headrace.aws.clients (shared Session)"}


def probe(way: str) -> list[float]:
    # Credentials and region as Lambda gives them; nothing connects while a client is built.
    region = {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    env = os.environ | region | {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, way, *SERVICES],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return [float(line) for line in done.stdout.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    runs: dict[str, list[list[float]]] = {way: [] for way in WAYS}
    for _ in range(args.repeat):  # interleaved, so load changes hit both alike
        for way in WAYS:
            runs[way].append(probe(way))
    print(
        "| clients built | "
        + " | ".join(f"then {s}" if i else s for i, s in enumerate(SERVICES))
        + " | all |"
    )
    print("|---" * (len(SERVICES) + 2) + "|")
    for way, label in WAYS.items():
        medians = [statistics.median(column) for column in zip(*runs[way], strict=True)]
        print(f"| {label} | " + " | ".join(f"{m:.0f}" for m in medians) + f" | {sum(medians):.0f} |")
    print(f"\nmain-thread CPU ms, medians of {args.repeat}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
