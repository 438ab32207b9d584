"""How the CLI talks: rich tables for people, --json for scripts, errors that say what to do."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

# Not a terminal (a pipe, a file, CI) and no $COLUMNS: rich would cut tables at 80 columns; nothing reads
# them there but people and grep, so let rows be as wide as their cells.
_UNBOUNDED = 10_000


def _console(stderr: bool = False) -> Console:
    made = Console(stderr=stderr)
    if not made.is_terminal and not os.environ.get("COLUMNS"):
        made.width = _UNBOUNDED
    return made


console = _console()
errors = _console(stderr=True)

# Exit codes that mean something: 0 ok, 1 the thing checked is not ok, 2 bad input/config, 3 not reachable.
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3


def fail(message: str, hint: str = "", code: int = EXIT_BAD_INPUT) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}")
    if hint:
        errors.print(f"[dim]hint:[/] {hint}")
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    typer.echo(json.dumps(value, indent=2, default=str))


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    result = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        result.add_column(column)
    for row in rows:
        result.add_row(*("" if v is None else str(v) for v in row))
    return result
