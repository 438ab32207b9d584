"""The live display: one line per step (pending, running with its progress, done with its time, failed with
why), and running a step so that a step that does not happen stops the demo naming it."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .record import DemoRecord, StepRecord

# The widest a step's title gets in the live view, before its detail.
TITLE_WIDTH = 42
ICONS = {
    "pending": "[dim]·[/]",
    "running": "[yellow]…[/]",
    "done": "[green]✓[/]",
    "failed": "[red]✗[/]",
}


class Stopwatch:
    """Seconds since the demo started: the one clock of the record."""

    def __init__(self) -> None:
        self._started = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self._started


class DemoFailed(RuntimeError):
    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(f"demo step '{step}' did not happen: {cause}")
        self.step = step


class Progress:
    """Renders `record.steps` (rich renders it anew on every refresh of the Live display)."""

    def __init__(self, record: DemoRecord, clock: Stopwatch, titles: list[str]) -> None:
        self.record, self.clock = record, clock
        record.steps = [StepRecord(title=title) for title in titles]
        self._current: StepRecord | None = None
        # While live: one line a step, so every step fits a terminal's height; at the end, all of it.
        self.compact = True

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        title = f"Headrace demo — the loop on the local plane ({self.clock():.0f}s)"
        if not self.compact:
            yield self._table(title)
            return
        yield Text(title, style="italic")
        width = min(TITLE_WIDTH, max((len(s.title) for s in self.record.steps), default=10))
        for step in self.record.steps:
            line = Text.from_markup(ICONS[step.status])
            line.append(f"  {step.title[:width].ljust(width)} ")
            line.append(f"{self._seconds(step):>6}  {step.detail}", style="dim")
            line.truncate(options.max_width, overflow="ellipsis")
            yield line

    def _table(self, title: str) -> Table:
        view = Table(title=title, title_justify="left", show_header=False, box=None)
        view.add_column(width=2)
        view.add_column()
        view.add_column(justify="right", style="dim", width=6)
        view.add_column(style="dim", overflow="fold")
        for step in self.record.steps:
            view.add_row(ICONS[step.status], step.title, self._seconds(step), escape(step.detail))
        return view

    def _seconds(self, step: StepRecord) -> str:
        if step.status == "running" and step.started_at is not None:
            return f"{self.clock() - step.started_at:.0f}s"
        return f"{step.seconds:.1f}s" if step.status in ("done", "failed") else ""

    def say(self, text: str) -> None:
        """What the running step is waiting for or has seen so far."""
        if self._current is not None:
            self._current.detail = text

    def run(self, index: int, action: Callable[[], str]) -> None:
        step = self.record.steps[index]
        step.status, step.started_at = "running", self.clock()
        self._current = step
        try:
            step.detail = action()
            step.status = "done"
        except Exception as exc:
            step.status, step.detail = "failed", _headline(exc)
            self.record.failed_step = step.title
            raise DemoFailed(step.title, exc) from exc
        finally:
            step.seconds = self.clock() - step.started_at
            self._current = None


def _headline(exc: BaseException) -> str:
    """An error in a line: its first, and its last too when the first only introduces what follows."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    text = f"{lines[0]} … {lines[-1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]
    return text[:300]
