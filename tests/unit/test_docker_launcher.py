"""How the docker compute starts SageMaker's containers (the command line, not Docker itself: the
docker-marked tests in tests/local/test_images.py run the real thing)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from headrace.local.sagemaker import docker, images
from headrace.local.sagemaker.containers import Entry, SubprocessLauncher
from headrace.local.sagemaker.images import debian_mirror
from headrace.local.sagemaker.launchers import launcher_for


class FakeImages:
    def image_for(self, context: Path) -> str:
        return f"built/{context.name}:abc"


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    commands: list[list[str]] = []
    real_popen = subprocess.Popen

    def popen(command: list[str], **kwargs: Any) -> Any:
        commands.append(command)
        return real_popen(["true"], stdout=subprocess.PIPE, text=True)

    monkeypatch.setattr(subprocess, "Popen", popen)
    return commands


def _launch(tmp_path: Path, **options: Any) -> None:
    launcher = docker.DockerLauncher(FakeImages())  # type: ignore[arg-type]
    entry: Entry = "serve" if "port" in options else "train"
    launcher.start(tmp_path / "image", entry, tmp_path, {"GREETING": "hi"}, **options).wait()


def test_an_isolated_training_job_runs_train_with_opt_ml_mounted_and_no_network(
    tmp_path: Path, started: list[list[str]]
) -> None:
    _launch(tmp_path, network_isolation=True)
    command = started[0]
    assert command[:2] == ["docker", "run"]
    assert command[-2:] == ["built/image:abc", "train"]
    assert f"{tmp_path.resolve()}:/opt/ml" in command
    assert command[command.index("--network") + 1] == "none"
    assert "GREETING=hi" in command


def test_a_training_job_without_isolation_keeps_docker_s_default_network(
    tmp_path: Path, started: list[list[str]]
) -> None:
    _launch(tmp_path)
    assert "--network" not in started[0]


def test_a_serving_container_listens_on_8080_published_on_a_loopback_port(
    tmp_path: Path, started: list[list[str]]
) -> None:
    _launch(tmp_path, port=41234)
    command = started[0]
    assert command[-1] == "serve"
    assert command[command.index("--publish") + 1] == "127.0.0.1:41234:8080"
    assert not any(part.startswith(("PORT=", "HEADRACE_")) for part in command)


def test_the_debian_mirror_is_the_one_apt_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEADRACE_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
    )
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_without_apt_sources_the_mirror_is_debian_s_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEADRACE_DEBIAN_MIRROR", raising=False)
    assert debian_mirror(tmp_path) == "http://deb.debian.org/debian"


def test_docker_compute_without_a_daemon_is_refused_saying_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "docker_available", lambda: "no Docker daemon is reachable")
    with pytest.raises(ValueError, match="--compute docker: no Docker daemon is reachable"):
        launcher_for("docker")


def test_subprocess_compute_is_the_default_launcher() -> None:
    assert isinstance(launcher_for("subprocess"), SubprocessLauncher)
