"""Where the user's project is, found as git finds a repository: the models directory and the local plane are
looked for from the current directory upward, unless named (--models-dir / $HEADRACE_MODELS_DIR,
--work-dir / $HEADRACE_WORK_DIR).

`headrace local up` records each plane it starts in a per-user list (`$XDG_STATE_HOME/headrace/planes/`), so
that `headrace local env` finds a running plane from any directory. The list holds only where a plane's work
dir is; its `plane.json` (with the secret) stays there.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from headrace.config import DEFAULT_MODELS_DIR, MODEL_FILE
from headrace.local.plane_info import RUNTIME_FILE, PlaneInfo, read_info

MODELS_DIR_ENV = "HEADRACE_MODELS_DIR"
WORK_DIR_ENV = "HEADRACE_WORK_DIR"
MODELS_DIR_NAME = "models"
WORK_DIR_NAME = ".headrace"


@dataclass(frozen=True)
class Found:
    """A directory and how it was found, for the line every command prints about what it uses."""

    path: Path
    how: str


@dataclass(frozen=True)
class Plane:
    info: PlaneInfo
    work_dir: Path
    how: str


def _upward(start: Path | None = None) -> list[Path]:
    here = (start or Path.cwd()).resolve()
    return [here, *here.parents]


def _has_models(directory: Path) -> bool:
    patterns = ("*.yaml", "*.yml", f"*/{MODEL_FILE}")
    return directory.is_dir() and any(any(directory.glob(pattern)) for pattern in patterns)


def models_dir(explicit: Path | None = None, start: Path | None = None) -> Found:
    """The models directory the user means: named, else the nearest `models/` holding a config from the
    current directory upward, else the example models shipped beside the package."""
    if explicit is not None:
        return Found(explicit.resolve(), "--models-dir")
    if os.environ.get(MODELS_DIR_ENV):
        return Found(Path(os.environ[MODELS_DIR_ENV]).resolve(), f"${MODELS_DIR_ENV}")
    for directory in _upward(start):
        candidate = directory / MODELS_DIR_NAME
        if _has_models(candidate):
            return Found(candidate, "found from the current directory")
    return Found(DEFAULT_MODELS_DIR, "no models/ here or above: the example shipped with headrace")


def new_models_dir(explicit: Path | None = None, start: Path | None = None) -> Found:
    """Where a new model config goes: as `models_dir`, but `./models` rather than the shipped example."""
    found = models_dir(explicit, start)
    if found.path == DEFAULT_MODELS_DIR and explicit is None and not os.environ.get(MODELS_DIR_ENV):
        return Found((start or Path.cwd()).resolve() / MODELS_DIR_NAME, "new, in the current directory")
    return found


def work_dir(explicit: Path | None = None, start: Path | None = None) -> Found:
    """Where `local up` keeps a plane's runtime files: named, else the nearest `.headrace/` upward, else
    beside the models directory found upward, else `./.headrace`."""
    if explicit is not None:
        return Found(explicit.resolve(), "--work-dir")
    if os.environ.get(WORK_DIR_ENV):
        return Found(Path(os.environ[WORK_DIR_ENV]).resolve(), f"${WORK_DIR_ENV}")
    for directory in _upward(start):
        if (directory / WORK_DIR_NAME).is_dir():
            return Found(directory / WORK_DIR_NAME, "found from the current directory")
    models = models_dir(None, start)
    if models.how == "found from the current directory":
        return Found(models.path.parent / WORK_DIR_NAME, "beside the models directory")
    return Found((start or Path.cwd()).resolve() / WORK_DIR_NAME, "new, in the current directory")


def registry_dir() -> Path:
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "headrace" / "planes"


def _entry(work: Path) -> Path:
    return registry_dir() / f"{hashlib.sha256(str(work.resolve()).encode()).hexdigest()[:16]}"


def record(work: Path) -> None:
    """Remember a started plane's work dir, so that other directories can find it."""
    entry = _entry(work)
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(str(work.resolve()))


def forget(work: Path) -> None:
    _entry(work).unlink(missing_ok=True)


def recorded_planes() -> list[Plane]:
    """Every plane `local up` started that still runs, most recently started first; dead entries go."""
    planes: list[Plane] = []
    folder = registry_dir()
    if not folder.is_dir():
        return planes
    for entry in folder.iterdir():
        work = Path(entry.read_text().strip())
        info = _live(work)
        if info is None:
            entry.unlink(missing_ok=True)
            continue
        planes.append(Plane(info, work, "the most recently started plane"))
    return sorted(planes, key=lambda p: p.info.started_at, reverse=True)


def _live(work: Path) -> PlaneInfo | None:
    try:
        return read_info(work) if (work / RUNTIME_FILE).exists() else None
    except (OSError, ValueError):
        return None  # unreadable or from another version: not a plane we can talk to


def find_plane(
    explicit: Path | None = None, start: Path | None = None, follow_endpoint: bool = True
) -> Plane | None:
    """The running plane the user means: named by --work-dir / $HEADRACE_WORK_DIR; else the one at
    $AWS_ENDPOINT_URL (after `eval "$(headrace local env)"`); else the nearest `.headrace/` upward with a
    running plane; else the most recently started one. None: no plane (commands talk to AWS).
    `follow_endpoint=False` (`local env`, `down`): a stale $AWS_ENDPOINT_URL does not hide a running plane."""
    if explicit is not None or os.environ.get(WORK_DIR_ENV):
        named = work_dir(explicit, start)
        info = _live(named.path)
        return Plane(info, named.path, named.how) if info else None
    nearby = [
        Plane(info, directory / WORK_DIR_NAME, "found from the current directory")
        for directory in _upward(start)
        if (info := _live(directory / WORK_DIR_NAME))
    ]
    candidates = nearby + recorded_planes()
    endpoint = os.environ.get("AWS_ENDPOINT_URL") if follow_endpoint else None
    if endpoint:
        at = next((p for p in candidates if p.info.endpoint == endpoint.rstrip("/")), None)
        return Plane(at.info, at.work_dir, "at $AWS_ENDPOINT_URL") if at else None
    return candidates[0] if candidates else None
