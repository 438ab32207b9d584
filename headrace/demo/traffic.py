"""Traffic during a rollout, watched from outside as a person would: a client calling the endpoint one row
at a time, and the new fleet's share of traffic read from DescribeEndpoint, each in a background thread.
Every call carries an InferenceId, and what was sent under each is kept (`Sent`), so that the rows can be
labelled later and their ground truth joined to the captured predictions."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from headrace.serving.client import CSV, EndpointClient
from headrace.serving.rollout import version_of

# A short pause between calls: steady traffic that leaves the machine's cores to the rollout itself.
CALL_PAUSE_S = 0.02
# DescribeEndpoint is cheap locally; five looks a second follow a canary step of a few seconds.
SAMPLE_S = 0.2


@dataclass
class Sent:
    """Answered requests: each one's InferenceId, the CSV lines it carried (row i is line i, as its ground
    truth numbers rows) and the scores it got, one per line."""

    inference_ids: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    scores: list[list[Any]] = field(default_factory=list)

    def add(self, inference_id: str, lines: list[str], scores: list[Any]) -> None:
        self.inference_ids.append(inference_id)
        self.rows.append(lines)
        self.scores.append(scores)


def send_lines(
    client: EndpointClient,
    lines: Sequence[str],
    batch_rows: int,
    progress: Callable[[int], None] | None = None,
) -> Sent:
    """`lines` (headerless CSV rows) sent `batch_rows` to a call, each call under a new InferenceId;
    `progress` gets the rows answered so far after each call."""
    sent = Sent()
    for start in range(0, len(lines), batch_rows):
        batch = list(lines[start : start + batch_rows])
        answered = client.invoke(("\n".join(batch) + "\n").encode(), CSV)
        sent.add(answered.inference_id, batch, list(answered.predictions))
        if progress is not None:
            progress(start + len(batch))
    return sent


def new_fleet_share(described: Mapping[str, Any], version: int, last: float = 0.0) -> float:
    """The share of traffic `version` gets (0..1): its weight while a blue/green update moves traffic to it
    (PendingDeploymentSummary), all of it once the endpoint serves its config, none otherwise. An update
    with no traffic step pending (the new fleet starting, or the old one retiring after the bake) keeps
    the `last` share seen."""
    pending = described.get("PendingDeploymentSummary") or {}
    if pending and version_of(str(pending.get("EndpointConfigName", ""))) == version:
        return float(sum(v.get("CurrentWeight") or 0.0 for v in pending.get("ProductionVariants", [])))
    if described.get("EndpointStatus") == "Updating":
        return last
    return 1.0 if version_of(str(described.get("EndpointConfigName", ""))) == version else 0.0


class Traffic:
    """Calls `client` with `rows` (CSV lines, one per call, in turn) and samples the share `version` gets,
    until stopped. Times come from `clock` (seconds since the demo started)."""

    def __init__(
        self,
        client: EndpointClient,
        sagemaker: Any,
        rows: Sequence[str],
        version: int,
        clock: Callable[[], float],
    ) -> None:
        self.client, self.sagemaker, self.rows, self.version, self.clock = (
            client,
            sagemaker,
            list(rows),
            version,
            clock,
        )
        # (time, None) for an answer, (time, error) for a failed call.
        self.answers: list[tuple[float, str | None]] = []
        # What each answered call sent, under its InferenceId.
        self.sent = Sent()
        self.shares: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._call, name="demo-caller", daemon=True),
            threading.Thread(target=self._sample, name="demo-sampler", daemon=True),
        ]

    def start(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    @property
    def share(self) -> float:
        return self.shares[-1][1] if self.shares else 0.0

    @property
    def failures(self) -> list[tuple[float, str]]:
        return [(t, error) for t, error in self.answers if error is not None]

    def canary_began(self) -> float | None:
        """When the new fleet first got traffic."""
        return next((t for t, share in self.shares if share > 0), None)

    def returned_to_zero(self, after: float) -> float | None:
        """When the new fleet's share went back to none after `after` (a rollback)."""
        return next((t for t, share in self.shares if t > after and share == 0), None)

    def _call(self) -> None:
        index = 0
        while not self._stop.is_set():
            row = self.rows[index % len(self.rows)]
            index += 1
            try:
                answered = self.client.invoke((row + "\n").encode(), CSV)
                self.sent.add(answered.inference_id, [row], list(answered.predictions))
                self.answers.append((self.clock(), None))
            except Exception as exc:  # every failure is data here: the rollout's effect on a client
                self.answers.append((self.clock(), f"{type(exc).__name__}: {exc}"))
            self._stop.wait(CALL_PAUSE_S)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                described = self.sagemaker.describe_endpoint(EndpointName=self.client.endpoint_name)
                self.shares.append((self.clock(), new_fleet_share(described, self.version, self.share)))
            except Exception:  # a missed sample is a gap in the chart, not a failed step
                pass
            self._stop.wait(SAMPLE_S)
