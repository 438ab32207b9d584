"""The training and serving images, built with Docker from their Dockerfiles on a local base image.

Public registries may be out of reach, so the Dockerfiles' `BASE_IMAGE` (the real base by default) is a
Debian bookworm made here with debootstrap from the Debian mirror apt already uses, with the host's CA
bundle (pip inside the build verifies certificates against it). Each image is built from the context
`cdk synth` stages (stacks/assets.py), so the image that runs locally is the one `cdk deploy` would build.

`python -m headrace.local.sagemaker.images` (`make images`) builds the base once and both images.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Final

BASE_IMAGE: Final = "headrace-local/base:bookworm"
TRAIN_IMAGE: Final = "headrace-local/train:latest"
SERVE_IMAGE: Final = "headrace-local/serve:latest"
SUITE: Final = "bookworm"
# What both Dockerfiles install with apt: present in the base, their `apt-get install` has nothing to fetch.
BASE_PACKAGES: Final = ("python3", "python3-venv", "ca-certificates", "libgomp1")
HOST_CA_BUNDLE: Final = Path("/etc/ssl/certs/ca-certificates.crt")
DEFAULT_MIRROR: Final = "http://deb.debian.org/debian"
# `docker build` without BuildKit: the Debian docker.io engine has no buildx, and the classic builder's
# cache still makes a rebuild of an unchanged context a matter of seconds.
BUILD_ENVIRONMENT: Final = {"DOCKER_BUILDKIT": "0"}


class ImageBuildError(RuntimeError):
    """Docker is missing, or a base or image build failed (the message carries the tool's output tail)."""


def docker_available() -> str | None:
    """None when a Docker daemon answers, else why not (for skips and errors)."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed (apt-get install docker.io)"
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer in 30 s"
    if probe.returncode != 0:
        return f"no Docker daemon is reachable: {probe.stderr.strip().splitlines()[-1:] or ['']}"[:300]
    return None


def image_exists(tag: str) -> bool:
    return (
        subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False).returncode == 0
    )


def debian_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The Debian mirror apt uses on this machine (deb822 `.sources` or one-line `sources.list`)."""
    if mirror := os.environ.get("HEADRACE_DEBIAN_MIRROR"):
        return mirror
    files = [*sorted(sources.glob("sources.list.d/*.sources")), sources / "sources.list"]
    files += sorted(sources.glob("sources.list.d/*.list"))
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for match in re.finditer(r"^(?:URIs:|deb)\s+(\S+)", text, re.MULTILINE):
            uri = match.group(1)
            if "debian" in uri and "security" not in uri:
                return uri
    return DEFAULT_MIRROR


def ensure_base(tag: str = BASE_IMAGE, progress: bool = True) -> str:
    """The local base image, made once (debootstrap, ~1 minute) and reused while Docker keeps it."""
    if image_exists(tag):
        return tag
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap is not installed (apt-get install debootstrap)")
    mirror = debian_mirror()
    with tempfile.TemporaryDirectory(prefix="headrace-base-") as scratch:
        root = Path(scratch) / "rootfs"
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                SUITE,
                str(root),
                mirror,
            ],
            "debootstrap",
            progress,
        )
        # pip in the image builds verifies TLS against this bundle: the host's may hold a proxy's CA.
        if HOST_CA_BUNDLE.is_file():
            shutil.copy2(HOST_CA_BUNDLE, root / "etc" / "ssl" / "certs" / "ca-certificates.crt")
        shutil.rmtree(root / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["docker", "import", "-", tag], stdin=tar.stdout, capture_output=True, text=True
        )
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise ImageBuildError(f"docker import of the base failed: {imported.stderr.strip()[-2000:]}")
    return tag


def build_image(context: Path, tag: str, base: str = BASE_IMAGE, progress: bool = True) -> str:
    """`docker build` of a staged context (its Dockerfile at the root) on `base`, tagged `tag`."""
    _run(
        [
            "docker",
            "build",
            "--network",
            "host",
            "--build-arg",
            f"BASE_IMAGE={base}",
            "--tag",
            tag,
            str(context),
        ],
        f"docker build of {context}",
        progress,
    )
    return tag


class ContextImages:
    """Staged build contexts -> built images, each built once per process (the local plane's docker
    compute asks for an image every time a job or a fleet starts)."""

    def __init__(self, base: str = BASE_IMAGE) -> None:
        self._base = base
        self._built: dict[Path, str] = {}
        self._lock = threading.Lock()

    def image_for(self, context: Path) -> str:
        with self._lock:
            if context not in self._built:
                ensure_base(self._base, progress=False)
                self._built[context] = build_image(context, context_tag(context), self._base, progress=False)
            return self._built[context]


def context_tag(context: Path) -> str:
    """A tag that names the image's entry point and its context's content: the same staged files give the
    same tag, so the plane reuses an image `make images` or an earlier run built."""
    entry = next((e for e in ("train", "serve") if (context / e).is_file()), context.name)
    digest = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(context).as_posix().encode())
        digest.update(path.read_bytes())
    return f"headrace-local/{entry}:{digest.hexdigest()[:12]}"


def stage_contexts(destination: Path) -> dict[str, Path]:
    """Both images' build contexts, staged as `cdk synth` stages them."""
    from stacks.assets import (
        SERVE_IMAGE_FILES,
        SERVE_IMAGE_SOURCE,
        TRAIN_IMAGE_FILES,
        TRAIN_IMAGE_SOURCE,
        stage_image_context,
    )

    return {
        "train": stage_image_context(TRAIN_IMAGE_SOURCE, TRAIN_IMAGE_FILES, destination / "train"),
        "serve": stage_image_context(SERVE_IMAGE_SOURCE, SERVE_IMAGE_FILES, destination / "serve"),
    }


def build_all(work_dir: Path, base: str = BASE_IMAGE, progress: bool = True) -> dict[str, str]:
    """The base (once), then the training and serving images, tagged TRAIN_IMAGE and SERVE_IMAGE."""
    if reason := docker_available():
        raise ImageBuildError(reason)
    ensure_base(base, progress)
    contexts = stage_contexts(work_dir)
    tags = {"train": TRAIN_IMAGE, "serve": SERVE_IMAGE}
    return {name: build_image(contexts[name], tags[name], base, progress) for name in ("train", "serve")}


def _run(command: list[str], what: str, progress: bool) -> None:
    environment = {**os.environ, **BUILD_ENVIRONMENT}
    if progress:
        print(f"+ {' '.join(command)}", flush=True)
        shown = subprocess.run(command, env=environment, check=False)
        if shown.returncode != 0:
            raise ImageBuildError(f"{what} failed with exit code {shown.returncode} (output above)")
        return
    done = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip()[-3000:]
        raise ImageBuildError(f"{what} failed with exit code {done.returncode}:\n{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m headrace.local.sagemaker.images")
    parser.add_argument("--work-dir", type=Path, default=Path(".headrace") / "images")
    parser.add_argument("--base", default=BASE_IMAGE, help="the base image tag (made with debootstrap)")
    args = parser.parse_args(argv)
    try:
        built = build_all(args.work_dir, args.base)
    except ImageBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, tag in built.items():
        print(f"{name}: {tag}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
