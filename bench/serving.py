"""Serving: our inference container (containers/serve/serve) against a Flask+gunicorn reference.

Both serve the same model (trained here by the real trainer, containers/train/train) with the same
encoding and the same predict call (inference.payload.encode, inference.model.Model.predict): only the
HTTP stack differs. The reference is in the style of SageMaker's scikit-learn container (Flask app under
gunicorn, one worker); gunicorn is installed into bench/out/ref-site, never into the project.

One client process measures over loopback with keep-alive (a raw socket client, so its own cost is small):
single-row and 100-row CSV requests, req/s and p50/p99, plus the model's own cost in-process, and prints the
ratios. Results go to bench/out/serving.json.

    .venv/bin/python bench/serving.py [--single 3000] [--batch 500]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
REF_SITE = OUT / "ref-site"
SERVE_DIR = REPO / "containers" / "serve"
GUNICORN = "gunicorn==23.0.0"
ROWS = 4_000


# --- the reference application (gunicorn imports this module: `serving:reference_app()`) ----------------


def reference_app() -> Any:
    """Flask, as SageMaker's scikit-learn serving container does it: /ping and /invocations views."""
    sys.path[:0] = [str(SERVE_DIR), str(REPO)]
    import flask
    from inference.model import Model, ModelFault, model_dir
    from inference.payload import PayloadError, encode, media_type, render

    model = Model.load(model_dir())
    app = flask.Flask("reference")

    @app.route("/ping", methods=["GET"])
    def ping() -> Any:
        return flask.Response("{}", status=200, mimetype="application/json")

    @app.route("/invocations", methods=["POST"])
    def invocations() -> Any:
        request = flask.request
        try:
            matrix = encode(
                request.get_data(), media_type(request.content_type), model.features, model.encoder
            )
            body, content_type = render(model.predict(matrix), media_type(request.headers.get("Accept")))
        except PayloadError as exc:
            return flask.Response(json.dumps(exc.body()), status=exc.status, mimetype="application/json")
        except ModelFault as exc:
            return flask.Response(json.dumps({"error": str(exc)}), status=500, mimetype="application/json")
        return flask.Response(body, status=200, mimetype=content_type)

    return app


# --- setup --------------------------------------------------------------------------------------------------


def train_model(root: Path) -> None:
    from headrace.config import load_models
    from headrace.datagen import generate
    from headrace.training_job import hyperparameters_for

    model = next(m for m in load_models() if m.name == "churn")
    frame = generate(model, ROWS, seed=7)
    bounds = {"train": (0, 2400), "validation": (2400, 3200), "test": (3200, ROWS)}
    for channel, (start, end) in bounds.items():
        (root / "input" / "data" / channel).mkdir(parents=True)
        frame.iloc[start:end].to_csv(root / "input" / "data" / channel / "data.csv", index=False)
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters_for(model)))
    subprocess.run(
        [sys.executable, str(REPO / "containers" / "train" / "train")],
        env={**os.environ, "HEADRACE_OPT_ML": str(root), "OMP_WAIT_POLICY": "PASSIVE"},
        check=True,
        capture_output=True,
    )


def ensure_gunicorn() -> None:
    if (REF_SITE / "gunicorn").is_dir():
        return
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(REF_SITE), GUNICORN],
        check=True,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with Client(port) as client:
                if client.call(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not answer /ping")


def start_ours(root: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HEADRACE_OPT_ML": str(root), "PORT": str(port), "HEADRACE_SERVE_HOST": "127.0.0.1"}
    return subprocess.Popen(
        [sys.executable, str(SERVE_DIR / "serve"), "serve"], env=env, stderr=subprocess.DEVNULL
    )


def start_reference(root: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HEADRACE_OPT_ML": str(root),
        "PYTHONPATH": os.pathsep.join([str(REF_SITE), str(REPO / "bench")]),
    }
    # gthread: the gunicorn worker class that keeps connections alive (the sync worker closes each one).
    command = [sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "gthread"]
    command += ["--threads", "1", "--keep-alive", "60", "--bind", f"127.0.0.1:{port}"]
    command += ["--log-level", "warning", "serving:reference_app()"]
    return subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)


# --- the client ---------------------------------------------------------------------------------------------


class Client:
    """One keep-alive connection; a request is pre-built bytes, a response is read by its Content-Length."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()

    def call(self, request: bytes) -> tuple[int, bytes]:
        self.sock.sendall(request)
        data = self.pending
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += self.sock.recv(65536)
        self.pending = rest[length:]
        return int(head[9:12]), rest[:length]


def post(body: bytes) -> bytes:
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: bench\r\nContent-Type: text/csv\r\nContent-Length: {len(body)}"
    )
    return head.encode() + b"\r\n\r\n" + body


def measure(port: int, request: bytes, count: int) -> dict[str, float]:
    with Client(port) as client:
        for _ in range(min(200, count)):
            status, _ = client.call(request)
            assert status == 200, status
        times = np.empty(count)
        started = time.perf_counter()
        for i in range(count):
            t0 = time.perf_counter_ns()
            client.call(request)
            times[i] = time.perf_counter_ns() - t0
        elapsed = time.perf_counter() - started
    return {
        "requests": count,
        "req_per_s": round(count / elapsed, 1),
        "p50_ms": round(float(np.percentile(times, 50)) / 1e6, 4),
        "p99_ms": round(float(np.percentile(times, 99)) / 1e6, 4),
    }


def in_process(root: Path, body: bytes, count: int) -> dict[str, float]:
    """The model's own cost: predict on encoded rows, and encode + predict, both in this process."""
    sys.path[:0] = [str(SERVE_DIR)]
    from inference.model import Model
    from inference.payload import encode

    model = Model.load(root / "model")
    matrix = encode(body, "text/csv", model.features, model.encoder)

    def median_us(work: Callable[[], object]) -> float:
        for _ in range(200):
            work()
        samples = []
        for _ in range(count):
            t0 = time.perf_counter_ns()
            work()
            samples.append(time.perf_counter_ns() - t0)
        return round(statistics.median(samples) / 1e6, 4)

    return {
        # A fresh array each call, as a request has: XGBoost is faster on an array it has just seen.
        "predict_ms": median_us(lambda: model.predict(matrix.copy())),
        "encode_predict_ms": median_us(
            lambda: model.predict(encode(body, "text/csv", model.features, model.encoder))
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--single", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    ensure_gunicorn()
    results: dict[str, Any] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        train_model(root)
        lines = (root / "input" / "data" / "test" / "data.csv").read_text().splitlines()[1:101]
        # The test rows without their label (the last column).
        rows = [line.rsplit(",", 1)[0] for line in lines]
        bodies = {"single": (rows[0] + "\n").encode(), "batch_100": ("\n".join(rows) + "\n").encode()}
        counts = {"single": args.single, "batch_100": args.batch}
        results["model"] = {name: in_process(root, body, counts[name]) for name, body in bodies.items()}
        for name, start in (("ours", start_ours), ("reference", start_reference)):
            port = free_port()
            process = start(root, port)
            try:
                wait_ready(port, process)
                results[name] = {k: measure(port, post(body), counts[k]) for k, body in bodies.items()}
                results[name]["ping"] = measure(
                    port, b"GET /ping HTTP/1.1\r\nHost: bench\r\n\r\n", args.single
                )
            finally:
                process.terminate()
                process.wait(timeout=10)
    results["ratios"] = {
        kind: {
            "req_per_s_ours_over_reference": round(
                results["ours"][kind]["req_per_s"] / results["reference"][kind]["req_per_s"], 2
            ),
            "p50_reference_over_ours": round(
                results["reference"][kind]["p50_ms"] / results["ours"][kind]["p50_ms"], 2
            ),
            "p99_reference_over_ours": round(
                results["reference"][kind]["p99_ms"] / results["ours"][kind]["p99_ms"], 2
            ),
            "http_overhead_ms_ours": round(
                results["ours"][kind]["p50_ms"] - results["model"][kind]["predict_ms"], 4
            ),
            "http_overhead_ms_ours_beyond_encode": round(
                results["ours"][kind]["p50_ms"] - results["model"][kind]["encode_predict_ms"], 4
            ),
            "http_overhead_ms_reference": round(
                results["reference"][kind]["p50_ms"] - results["model"][kind]["predict_ms"], 4
            ),
        }
        for kind in bodies
    }
    (OUT / "serving.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
