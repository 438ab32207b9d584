"""Where a run trains: `cuda` when a GPU can be used, else `cpu`.

XGBoost: `cuda` when this build supports CUDA and a GPU answers a one-round probe. A model's own code
(`choose_user_device`): `cuda` when a GPU is visible; whether its framework can use it is the code's business,
`context.device` only says what the machine has.
`device=auto` never fails: any doubt (no CUDA build, no visible GPU, a probe that errors) means the CPU.
`device=cuda` asked for explicitly fails the job when no GPU can be used, rather than training slowly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xgboost as xgb

from trainer.failure import TrainingFailure

# CUDA_VISIBLE_DEVICES values that hide every GPU.
_HIDDEN = {"", "-1", "none", "nodevfiles", "void"}


@dataclass(frozen=True)
class Device:
    name: str
    why: str


def cuda_build() -> bool:
    return bool(xgb.build_info().get("USE_CUDA"))


def gpu_visible() -> bool:
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and hidden.strip().lower() in _HIDDEN:
        return False
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi:
        try:
            listing = subprocess.run(
                [nvidia_smi, "-L"], capture_output=True, text=True, timeout=20, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return listing.returncode == 0 and any(
            line.startswith("GPU ") for line in listing.stdout.splitlines()
        )
    return Path("/dev/nvidia0").exists()


def probe_cuda() -> str | None:
    """None when one boosting round on a tiny matrix runs on `cuda`, else XGBoost's complaint."""
    data = xgb.DMatrix(np.arange(8, dtype=np.float32).reshape(4, 2), label=np.array([0, 1, 0, 1]))
    try:
        xgb.train({"device": "cuda", "tree_method": "hist", "objective": "binary:logistic"}, data, 1)
    except xgb.core.XGBoostError as exc:
        return str(exc).split("Stack trace:", 1)[0].strip()
    return None


def choose_device(requested: str) -> Device:
    if requested == "cpu":
        return Device("cpu", "requested")
    if requested == "cuda":
        if not cuda_build():
            raise TrainingFailure(
                "Hyperparameter 'device' is cuda, but this image's XGBoost was built without CUDA support."
            )
        problem = probe_cuda()
        if problem:
            raise TrainingFailure(f"Hyperparameter 'device' is cuda, but no GPU can be used: {problem}")
        return Device("cuda", "requested")
    if not cuda_build():
        return Device("cpu", "auto: this XGBoost build has no CUDA support")
    if not gpu_visible():
        return Device("cpu", "auto: no GPU is visible")
    problem = probe_cuda()
    if problem:
        return Device("cpu", f"auto: the GPU probe failed ({problem})")
    return Device("cuda", "auto: a GPU is visible")


def choose_user_device(requested: str) -> Device:
    """The device a model's own code is told to use (`context.device`)."""
    if requested == "cpu":
        return Device("cpu", "requested")
    visible = gpu_visible()
    if requested == "cuda":
        if not visible:
            raise TrainingFailure("Hyperparameter 'device' is cuda, but no GPU is visible to the container.")
        return Device("cuda", "requested")
    return Device("cuda", "auto: a GPU is visible") if visible else Device("cpu", "auto: no GPU is visible")
