"""The inference container's contract (containers/serve/CONTRACT.md), through its real entry point.

A model trained by the real trainer (containers/train/train) is served by `containers/serve/serve` as a
subprocess on a free port, as SageMaker and the local plane run it; predictions over HTTP must equal the
booster's own predictions on the same rows, encoded the way the trainer encodes them.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from headrace.config import ModelConfig
from headrace.encoding import model_input
from tests.integration.test_train_container import lay_out, train

REPO = Path(__file__).resolve().parents[2]
SERVE = REPO / "containers" / "serve" / "serve"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]

    def request(
        self, method: str, path: str, body: bytes | str = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            answer = connection.getresponse()
            return answer.status, answer.read(), answer.getheader("Content-Type", "")
        finally:
            connection.close()

    def invoke(self, body: bytes | str, content_type: str, accept: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
        status, payload, returned = self.request("POST", "/invocations", body, headers)
        if returned.startswith("text/csv"):
            return status, [float(line) for line in payload.decode().splitlines()]
        return status, json.loads(payload)


def start(opt_ml: Path, environ: dict[str, str] | None = None) -> Iterator[Server]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVE), "serve"],
        env={
            "HEADRACE_OPT_ML": str(opt_ml),
            "PORT": str(port),
            "HEADRACE_SERVE_HOST": "127.0.0.1",
            "PATH": "/usr/bin:/bin",
            "OMP_WAIT_POLICY": "PASSIVE",
            **(environ or {}),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = Server(port, process)
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            if server.request("GET", "/ping")[0] == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "the server did not answer /ping within 30 s"
        time.sleep(0.05)
    try:
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, example_model: ModelConfig) -> Path:
    run = train(lay_out(tmp_path_factory.mktemp("serve_opt_ml"), example_model))
    assert run.code == 0, run.output
    return run.root


@pytest.fixture(scope="session")
def server(trained: Path) -> Iterator[Server]:
    yield from start(trained)


@pytest.fixture(scope="session")
def broken_server(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("broken_opt_ml")
    shutil.copytree(trained / "model", root / "model")
    described = json.loads((root / "model" / "features.json").read_text())
    (root / "model" / "features.json").write_text(json.dumps({**described, "fault": "5xx"}))
    yield from start(root)


@pytest.fixture(scope="session")
def described(trained: Path) -> dict[str, Any]:
    return dict(json.loads((trained / "model" / "features.json").read_text()))


@pytest.fixture(scope="session")
def rows(trained: Path, described: dict[str, Any]) -> pd.DataFrame:
    """Test-channel rows as text, the features only, in features.json order."""
    frame = pd.read_csv(trained / "input" / "data" / "test" / "data.csv", dtype=str, keep_default_na=False)
    selected: pd.DataFrame = frame[described["features"]]
    return selected.head(100)


def expected(trained: Path, described: dict[str, Any], rows: pd.DataFrame) -> np.ndarray[Any, Any]:
    """The booster's predictions in-process, the rows encoded as the trainer encodes its channels."""
    import xgboost as xgb

    booster = xgb.Booster(model_file=trained / "model" / "model.json")
    frame = pd.read_csv(
        trained / "input" / "data" / "test" / "data.csv",
        dtype=dict.fromkeys(described["categorical"], "string"),
    ).loc[rows.index]
    inputs = model_input(frame, described["features"], described["categorical"])
    return np.asarray(booster.predict(xgb.DMatrix(inputs, enable_categorical=True)))


def as_csv(rows: pd.DataFrame) -> str:
    return "\n".join(",".join(row) for row in rows.itertuples(index=False)) + "\n"


def test_ping_answers_once_the_model_is_loaded(server: Server) -> None:
    assert server.request("GET", "/ping")[0] == 200


def test_one_csv_row_scores_as_the_booster_does(
    server: Server, trained: Path, described: dict[str, Any], rows: pd.DataFrame
) -> None:
    status, body = server.invoke(as_csv(rows.head(1)), "text/csv")
    assert status == 200
    assert body["predictions"] == expected(trained, described, rows.head(1)).tolist()


def test_a_csv_batch_scores_as_the_booster_does(
    server: Server, trained: Path, described: dict[str, Any], rows: pd.DataFrame
) -> None:
    status, body = server.invoke(as_csv(rows), "text/csv; charset=utf-8")
    assert status == 200
    assert body["predictions"] == expected(trained, described, rows).tolist()


def test_csv_out_when_the_caller_accepts_csv(
    server: Server, trained: Path, described: dict[str, Any], rows: pd.DataFrame
) -> None:
    status, body = server.invoke(as_csv(rows.head(5)), "text/csv", accept="text/csv")
    assert status == 200
    assert body == expected(trained, described, rows.head(5)).tolist()


def _json_value(feature: str, text: str, described: dict[str, Any]) -> Any:
    if feature in described["categorical"] or text == "":
        return text or None
    if text in ("True", "False"):
        return text == "True"
    return float(text)


def test_json_instances_as_lists_and_as_objects_score_as_the_booster_does(
    server: Server, trained: Path, described: dict[str, Any], rows: pd.DataFrame
) -> None:
    features = described["features"]
    lists = [
        [_json_value(f, v, described) for f, v in zip(features, row, strict=True)] for row in rows.values
    ]
    objects = [dict(zip(features, row, strict=True)) for row in lists]
    want = expected(trained, described, rows).tolist()
    for instances in (lists, objects):
        status, body = server.invoke(json.dumps({"instances": instances}), "application/json")
        assert status == 200
        assert body["predictions"] == want
    status, body = server.invoke(json.dumps(objects[0]), "application/json")
    assert (status, body["predictions"]) == (200, want[:1])


def test_an_unknown_category_is_missing_as_in_training(
    server: Server, trained: Path, described: dict[str, Any], rows: pd.DataFrame
) -> None:
    row = rows.head(1).copy()
    row["region"] = "atlantis"
    missing = row.copy()
    missing["region"] = ""
    status, body = server.invoke(as_csv(row), "text/csv")
    assert status == 200
    assert body["predictions"] == server.invoke(as_csv(missing), "text/csv")[1]["predictions"]


def test_a_row_of_the_wrong_width_is_a_400_naming_the_row(server: Server, rows: pd.DataFrame) -> None:
    body = as_csv(rows.head(2)) + "1,2,3\n"
    status, error = server.invoke(body, "text/csv")
    assert status == 400
    assert error["row"] == 2
    assert "has 3 value(s); the model takes 8" in error["error"]


def test_text_in_a_numeric_feature_is_a_400_naming_row_and_column(server: Server, rows: pd.DataFrame) -> None:
    row = rows.head(1).copy()
    row["monthly_charges"] = "lots"
    status, error = server.invoke(as_csv(row), "text/csv")
    assert status == 400
    assert (error["row"], error["column"]) == (0, "monthly_charges")
    assert "'lots' is not a number" in error["error"]


def test_an_unknown_json_feature_is_a_400_naming_it(server: Server) -> None:
    status, error = server.invoke(json.dumps({"instances": [{"tenure": 3}]}), "application/json")
    assert status == 400
    assert error["column"] == "tenure"


def test_invalid_json_is_a_400(server: Server) -> None:
    status, error = server.invoke("{not json", "application/json")
    assert status == 400
    assert "not valid JSON" in error["error"]


def test_an_empty_body_is_a_400(server: Server) -> None:
    status, error = server.invoke("", "text/csv")
    assert status == 400
    assert "empty request body" in error["error"]


def test_an_unsupported_content_type_is_a_415(server: Server) -> None:
    status, error = server.invoke("1,2", "text/plain")
    assert status == 415
    assert "text/csv or application/json" in error["error"]


def test_a_body_over_6_mb_is_a_413(server: Server) -> None:
    status, body, _ = server.request(
        "POST", "/invocations", b"0" * (6 * 1024 * 1024 + 1), {"Content-Type": "text/csv"}
    )
    assert status == 413
    assert "6 MB" in json.loads(body)["error"]


def test_unknown_routes_are_404(server: Server) -> None:
    assert server.request("GET", "/nope")[0] == 404


def test_keep_alive_serves_many_requests_on_one_connection(server: Server, rows: pd.DataFrame) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for _ in range(20):
            connection.request("POST", "/invocations", as_csv(rows.head(1)), {"Content-Type": "text/csv"})
            answer = connection.getresponse()
            assert answer.status == 200
            answer.read()
    finally:
        connection.close()


def test_the_fault_hook_makes_every_invocation_a_500(broken_server: Server, rows: pd.DataFrame) -> None:
    assert broken_server.request("GET", "/ping")[0] == 200
    status, error = broken_server.invoke(as_csv(rows.head(1)), "text/csv")
    assert status == 500
    assert "deliberately broken" in error["error"]
