"""Boosting with per-round metric lines, early stopping on validation, and checkpoints that survive spot.

Rounds are counted across restarts: a run resumed from the checkpoint written after round 30 goes on with
round 30 (0-based, as XGBoost numbers them) and trains only the rounds still missing. The best round and
its score travel in the checkpoint (booster attributes), so early stopping keeps its memory too. One
callback does the per-round work in a fixed order (print, track the best, checkpoint, decide to stop),
because XGBoost stops asking callbacks once one of them says stop.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import xgboost as xgb

from headrace.early_stopping import EarlyStopping
from headrace.training_job import Hyperparameters, metric_line

CHECKPOINT_INTERVAL: Final = 10
CHECKPOINTS_KEPT: Final = 3
_CHECKPOINT = re.compile(r"^checkpoint-(\d{6,})\.json$")


def checkpoint_name(rounds: int) -> str:
    return f"checkpoint-{rounds:06d}.json"


@dataclass(frozen=True)
class Resume:
    booster: xgb.Booster
    rounds: int
    best_round: int | None
    best_score: float | None
    path: Path


@dataclass(frozen=True)
class FitResult:
    # Truncated to the best round: what model.json holds and what the evaluation scored.
    booster: xgb.Booster
    best_iteration: int
    # The validation score of best_iteration (None: that round ran before a resume and none was saved).
    best_score: float | None
    rounds_trained: int
    resumed_from: int | None
    seconds: float


def _last(evals_log: Any, data: str, metric: str) -> float:
    scores = evals_log[data]
    values = scores[metric] if metric in scores else scores[next(reversed(scores))]
    last = values[-1]
    return float(last[0] if isinstance(last, tuple) else last)


class Progress(xgb.callback.TrainingCallback):
    def __init__(
        self, hp: Hyperparameters, checkpoints: Path, offset: int, resume: Resume | None, interval: int
    ) -> None:
        self.metric = hp.metric
        self.checkpoints = checkpoints
        self.offset = offset
        self.interval = interval
        self.stopping = EarlyStopping(
            hp.metric,
            hp.early_stopping_rounds,
            best_epoch=resume.best_round if resume else None,
            best_score=resume.best_score if resume else None,
        )
        # Every round's validation score this run saw (and the resumed best's), by round.
        self.scores: dict[int, float] = (
            {resume.best_round: resume.best_score}
            if resume and resume.best_round is not None and resume.best_score is not None
            else {}
        )

    @property
    def best_round(self) -> int | None:
        return self.stopping.best_epoch

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        round_ = self.offset + epoch
        validation = _last(evals_log, "validation", self.metric)
        self.scores[round_] = validation
        print(
            metric_line(round_, self.metric, _last(evals_log, "train", self.metric), validation), flush=True
        )
        if self.stopping.record(round_, validation):
            model.set_attr(best_iteration=str(round_), best_score=repr(validation))
        if (round_ + 1) % self.interval == 0:
            save_checkpoint(model, self.checkpoints, round_ + 1)
        return self.should_stop(round_)

    def should_stop(self, round_: int) -> bool:
        return self.stopping.should_stop(round_)


def save_checkpoint(booster: xgb.Booster, directory: Path, rounds: int) -> Path:
    """Write atomically (a spot interruption mid-write leaves the previous checkpoints intact), keep a few."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / checkpoint_name(rounds)
    partial = directory / f".partial-{final.name}"
    booster.save_model(partial)
    partial.replace(final)
    for old in sorted(_checkpoints(directory), reverse=True)[CHECKPOINTS_KEPT:]:
        old[1].unlink(missing_ok=True)
    return final


def _checkpoints(directory: Path) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _CHECKPOINT.match(p.name))]
    return sorted(found)


def _float_attr(booster: xgb.Booster, name: str) -> float | None:
    value = booster.attr(name)
    return float(value) if value is not None else None


def find_resume(directory: Path, features: list[str]) -> tuple[Resume | None, list[str]]:
    """The newest checkpoint that loads and fits these features, and why newer ones were passed over."""
    skipped: list[str] = []
    for rounds, path in reversed(_checkpoints(directory)):
        try:
            booster = xgb.Booster(model_file=path)
        except xgb.core.XGBoostError as exc:
            skipped.append(f"{path.name} does not load ({str(exc).splitlines()[0]})")
            continue
        if booster.num_boosted_rounds() != rounds:
            skipped.append(f"{path.name} holds {booster.num_boosted_rounds()} rounds")
            continue
        if list(booster.feature_names or []) != features:
            skipped.append(f"{path.name} was trained on other features")
            continue
        best = booster.attr("best_iteration")
        return Resume(
            booster=booster,
            rounds=rounds,
            best_round=int(best) if best is not None else None,
            best_score=_float_attr(booster, "best_score"),
            path=path,
        ), skipped
    return None, skipped


def fit(
    params: dict[str, Any],
    train: xgb.DMatrix,
    validation: xgb.DMatrix,
    hp: Hyperparameters,
    checkpoints: Path,
    interval: int = CHECKPOINT_INTERVAL,
) -> FitResult:
    resume, skipped = find_resume(checkpoints, list(train.feature_names or []))
    for reason in skipped:
        print(f"checkpoint skipped: {reason}", flush=True)
    offset = resume.rounds if resume else 0
    progress = Progress(hp, checkpoints, offset, resume, interval)
    remaining = hp.num_round - offset
    if resume:
        print(
            f"resumed from round {resume.rounds} (checkpoint {resume.path.name}: "
            f"{resume.rounds} rounds done, {max(remaining, 0)} to go)",
            flush=True,
        )
    started = time.monotonic()
    booster = resume.booster if resume else None
    if remaining > 0 and not (resume and progress.should_stop(offset - 1)):
        booster = xgb.train(
            params,
            train,
            num_boost_round=remaining,
            evals=[(train, "train"), (validation, "validation")],
            callbacks=[progress],
            verbose_eval=False,
            xgb_model=booster,
        )
    seconds = time.monotonic() - started
    assert booster is not None  # num_round >= 1: a fresh run always trains
    rounds = booster.num_boosted_rounds()
    best = progress.best_round if hp.early_stopping_rounds and progress.best_round is not None else rounds - 1
    final = booster[: best + 1] if best + 1 < rounds else booster
    # model.json keeps every tree it holds: no best_iteration for a loader to truncate by.
    final.set_attr(best_iteration=None, best_score=None)
    return FitResult(
        booster=final,
        best_iteration=best,
        best_score=progress.scores.get(best),
        rounds_trained=rounds,
        resumed_from=resume.rounds if resume else None,
        seconds=seconds,
    )
