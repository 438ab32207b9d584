"""The trainer on CPU and, when this machine has a usable GPU, on CUDA: same rows, same hyperparameters,
wall time of the whole `train` entry point (reading channels, boosting, evaluation, writing the model).

Reference: the CPU run, measured in the same run. The GPU run needs an XGBoost built with CUDA (the `xgboost`
wheel; the project pins `xgboost-cpu` for laptops and CI, the training image installs the CUDA one).

    .venv/bin/python bench/trainer_device.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from training_local import trainer_alone

REPO = Path(__file__).resolve().parents[1]


def gpu_usable() -> str | None:
    """None when CUDA training can run here, else why not."""
    if shutil.which("nvidia-smi") is None:
        return "no NVIDIA GPU on this machine (nvidia-smi not found)"
    sys.path.insert(0, str(REPO / "containers" / "train"))
    from trainer.device import cuda_build, probe_cuda

    if not cuda_build():
        return "this XGBoost build has no CUDA support (install the `xgboost` wheel, not `xgboost-cpu`)"
    return probe_cuda()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    cpu = trainer_alone(args.rows, seed=1, device="cpu")
    why_not = gpu_usable()
    gpu = None if why_not else trainer_alone(args.rows, seed=1, device="cuda")
    print(f"trainer on {args.rows:,} rows: cpu {cpu:.1f}s", end="")
    print(f"; cuda {gpu:.1f}s; cpu/gpu {cpu / gpu:.1f}x" if gpu else f"; no GPU run: {why_not}")
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    result = {"rows": args.rows, "cpu_s": cpu, "gpu_s": gpu, "cpu_over_gpu": cpu / gpu if gpu else None}
    (out / "trainer_device.json").write_text(json.dumps({**result, "no_gpu_because": why_not}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
