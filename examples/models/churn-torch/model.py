"""Churn with a PyTorch network: Headrace's training-code contract (containers/train/CONTRACT.md).

A small MLP on `context.device` ("cuda" when the training instance has a GPU, else "cpu"). Every epoch
goes through `context.report` (the metric line SageMaker scrapes; True once validation stopped improving
for `early_stopping_rounds` epochs) and ends with a checkpoint in `context.checkpoints`: a spot instance
that is reclaimed resumes from the last finished epoch instead of starting over.

The inputs the network needs (numbers imputed with the training median and standardized, categoricals
one-hot, a missing category all zeros) are computed from the frame by `_Inputs`, whose statistics are
saved with the weights, so `predict` takes Headrace's frame as `fit` did. The fitted network is returned
on the CPU: scoring is the same on the training instance and on the CPU-only endpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

if TYPE_CHECKING:  # the types Headrace passes in; never needed at run time
    from headrace.usercode import Context, Dataset

MODEL_FILE = "model.pt"
CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class _Inputs:
    """Frame → float32 matrix: the statistics come from the training rows only."""

    numeric: dict[str, tuple[float, float]]  # column → (median, standard deviation)
    categorical: dict[str, list[str]]  # column → declared categories

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _Inputs:
        categorical = {
            c: [str(v) for v in frame[c].cat.categories]
            for c in frame.columns
            if isinstance(frame[c].dtype, pd.CategoricalDtype)
        }
        numeric = {}
        for c in frame.columns:
            if c not in categorical:
                values = frame[c].to_numpy(dtype=np.float64)
                seen = values[~np.isnan(values)]
                median = float(np.median(seen)) if seen.size else 0.0
                spread = float(seen.std()) if seen.size else 0.0
                numeric[c] = (median, spread if spread > 0 else 1.0)
        return cls(numeric=numeric, categorical=categorical)

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(c) for c in self.categorical.values())

    def matrix(self, frame: pd.DataFrame) -> torch.Tensor:
        parts = []
        for column, (median, spread) in self.numeric.items():
            values = frame[column].to_numpy(dtype=np.float64)
            parts.append(((np.where(np.isnan(values), median, values) - median) / spread)[:, None])
        for column, categories in self.categorical.items():
            # Codes against the saved categories; -1 (missing) matches no column: all zeros.
            codes = pd.Categorical(frame[column], categories=categories).codes
            parts.append((codes[:, None] == np.arange(len(categories))[None, :]).astype(np.float64))
        return torch.from_numpy(np.hstack(parts).astype(np.float32))


def _network(width: int, hidden: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)
    )


@dataclass
class Model:
    """What `predict` scores with and `save` writes."""

    inputs: _Inputs
    hidden: int
    network: nn.Module


def _scores(network: nn.Module, x: torch.Tensor) -> np.ndarray:
    network.eval()
    with torch.no_grad():
        return torch.sigmoid(network(x)).squeeze(1).double().cpu().numpy()


def fit(train: Dataset, validation: Dataset, hyperparameters: dict[str, Any], context: Context) -> Model:
    torch.manual_seed(context.seed)
    device = torch.device(context.device)
    inputs = _Inputs.of(train.features)
    hidden = int(hyperparameters.get("hidden", 32))
    network = _network(inputs.width, hidden).to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=float(hyperparameters.get("learning_rate", 3e-3)))
    x_train = inputs.matrix(train.features).to(device)
    y_train = torch.as_tensor(train.labels, dtype=torch.float32, device=device)
    x_validation = inputs.matrix(validation.features).to(device)
    epochs, batch_size = int(hyperparameters.get("epochs", 40)), int(hyperparameters.get("batch_size", 256))
    first, best = 0, {"epoch": None, "score": None, "network": None}
    saved = context.checkpoints / CHECKPOINT
    if saved.exists():  # a restarted (spot) job: go on after the last finished epoch
        state = torch.load(saved, map_location=device, weights_only=True)
        network.load_state_dict(state["network"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        best, first = state["best"], epochs if state["stopped"] else state["epoch"] + 1
        context.log(f"resumed after epoch {state['epoch']}, the best so far epoch {best['epoch']}")
        # Early stopping's memory: the best epoch reported again, so patience counts from it.
        context.report(best["epoch"], validation=best["score"])
    loss_of = nn.BCEWithLogitsLoss()
    for epoch in range(first, epochs):
        network.train()
        for batch in torch.randperm(len(x_train)).split(batch_size):
            optimizer.zero_grad()
            loss_of(network(x_train[batch]).squeeze(1), y_train[batch]).backward()
            optimizer.step()
        stop = context.report(
            epoch,
            train=context.score(train.labels, _scores(network, x_train)),
            validation=context.score(validation.labels, _scores(network, x_validation)),
        )
        if context.best_epoch == epoch:
            weights = {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}
            best = {"epoch": epoch, "score": context.best_score, "network": weights}
        checkpoint = {
            "network": network.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "best": best,
            "epoch": epoch,
            "stopped": stop,
        }
        # Written aside and renamed: a job reclaimed mid-write leaves the previous checkpoint whole.
        torch.save(checkpoint, saved.with_suffix(".tmp"))
        saved.with_suffix(".tmp").replace(saved)
        if stop:
            break
    context.log(f"kept epoch {best['epoch']}, the best on validation")
    network = _network(inputs.width, hidden)
    network.load_state_dict(best["network"])
    return Model(inputs=inputs, hidden=hidden, network=network)


def predict(model: Model, features: pd.DataFrame) -> np.ndarray:
    """P(churned = 1), one per row, computed on the CPU."""
    return _scores(model.network, model.inputs.matrix(features))


def save(model: Model, directory: Path) -> None:
    state = {"inputs": asdict(model.inputs), "hidden": model.hidden, "network": model.network.state_dict()}
    torch.save(state, directory / MODEL_FILE)


def load(directory: Path) -> Model:
    state = torch.load(directory / MODEL_FILE, map_location="cpu", weights_only=True)
    inputs = _Inputs(**state["inputs"])
    network = _network(inputs.width, state["hidden"])
    network.load_state_dict(state["network"])
    return Model(inputs=inputs, hidden=state["hidden"], network=network)
