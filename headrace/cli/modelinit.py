"""`headrace model init NAME --from sample.csv`: a model config drafted from a sample of the user's data.

The draft names every column with a type read from the sample (integer, float, boolean, category or
string), a range a little wider than the sample's, the categories seen, and the target; the objective and
the gate's metric follow from the target. The result is a starting point to review, validated like any config.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from headrace.config import MODEL_NAME_PATTERN, ConfigError, load_model_file

from . import project
from .output import console, errors, fail, table

app = typer.Typer(help="Create model configs.", no_args_is_help=True)

# Names a target column often has, tried (case-insensitively) before falling back to the last column.
TARGET_NAMES = ("target", "label", "y", "class", "outcome")
# A text column with at most this many distinct values (and repeats) is a category, else free text.
MAX_CATEGORIES = 20
# The draft's range reaches this share of the sample's span beyond each end: new data is rarely the sample.
RANGE_MARGIN = 0.1
BOOLEAN_WORDS = frozenset({"true", "false", "yes", "no", "t", "f", "y", "n"})


def _outward(low: float, high: float, integer: bool) -> tuple[float, float]:
    """[low, high] widened by RANGE_MARGIN of its span and rounded outward; never below 0 when low >= 0."""
    span = high - low or abs(high) or 1.0
    lo, hi = low - RANGE_MARGIN * span, high + RANGE_MARGIN * span
    if low >= 0:
        lo = max(lo, 0.0)
    if integer:
        return float(math.floor(lo)), float(math.ceil(hi))
    step = 10.0 ** (math.floor(math.log10(span)) - 2)
    return round(math.floor(lo / step) * step, 12), round(math.ceil(hi / step) * step, 12)


def draft_column(name: str, values: Any, is_target: bool) -> dict[str, Any]:
    """One column of the config from a pandas Series of the sample."""
    import pandas as pd

    present = values.dropna()
    column: dict[str, Any] = {"name": name}
    kind = values.dtype.kind
    words = {str(v).strip().lower() for v in present.unique()} if kind == "O" else set()
    if kind == "b" or (words and words <= BOOLEAN_WORDS):
        column["type"] = "boolean"
    elif kind in "iuf" and not present.empty:
        integer = kind in "iu"
        column["type"] = "integer" if integer else "float"
        if is_target and integer and set(present.unique()) <= {0, 1}:
            column["min"], column["max"] = 0, 1  # a class label: exactly 0 or 1
        else:
            low, high = _outward(float(present.min()), float(present.max()), integer)
            column["min"], column["max"] = (int(low), int(high)) if integer else (low, high)
    else:
        text = present.astype(str)
        distinct = sorted(text.unique())
        repeats = len(distinct) < len(text)
        if is_target or (len(distinct) <= MAX_CATEGORIES and repeats):
            column["type"], column["categories"] = "category", distinct
        else:
            column["type"] = "string"
    if bool(pd.isna(values).any()) and not is_target:  # every row needs a label: a target is never nullable
        column["nullable"] = True
    return column


def _objective(target: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The trainer objective, its hyperparameters and the gate a target's column implies."""
    classes = target.get("categories")
    if (
        target["type"] == "boolean"
        or (target.get("min"), target.get("max")) == (0, 1)
        or (classes and len(classes) == 2)
    ):
        return "binary:logistic", {}, {"metric": "auc", "thresholds": {"auc": 0.7}}
    if classes:
        return "multi:softprob", {"num_class": len(classes)}, {"metric": "mlogloss", "thresholds": {}}
    return "reg:squarederror", {}, {"metric": "rmse", "thresholds": {}}


def draft_config(frame: Any, name: str, target: str | None, source: str) -> dict[str, Any]:
    """The config a sample implies: every column, its type, range or categories, and the target."""
    names = [str(c) for c in frame.columns]
    if target is None:
        lowered = {n.lower(): n for n in names}
        target = next((lowered[t] for t in TARGET_NAMES if t in lowered), names[-1])
    if target not in names:
        raise ValueError(f"no column named '{target}' in {source} (columns: {', '.join(names)})")
    columns = [draft_column(n, frame[c], n == target) for n, c in zip(names, frame.columns, strict=True)]
    objective, hyperparameters, gate = _objective(next(c for c in columns if c["name"] == target))
    trainer: dict[str, Any] = {"objective": objective}
    if hyperparameters:
        trainer["hyperparameters"] = hyperparameters
    return {
        "name": name,
        "description": f"Drafted by `headrace model init` from {source} ({len(frame)} rows).",
        "schema": {"target": target, "min_rows": min(100, len(frame)), "columns": columns},
        "trainer": trainer,
        "gate": gate | {"approval": "auto"},
    }


def render(config: dict[str, Any]) -> str:
    """YAML in the shipped example's shape (models/churn.yaml): one column a line, comments saying what to
    review."""

    def flow(value: Any) -> str:
        text = str(yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False)).strip()
        return text.removesuffix("...").strip()  # a scalar's document-end marker

    schema = config["schema"]
    lines = [
        f"# {config['name']}: drafted by `headrace model init`; review it, then `headrace config check`.",
        "# Every key is documented in headrace/config.py; README.md has the walk-through.",
        f"name: {config['name']}",
        f"description: {flow(config['description'])}",
        "",
        "schema:",
        f"  target: {flow(schema['target'])}",
        f"  min_rows: {schema['min_rows']}",
        "  # Ranges reach 10% beyond the sample's; a value outside one quarantines the file. Widen them, or",
        "  # drop min/max, where new data may go further.",
        "  columns:",
        *(f"    - {flow(c)}" for c in schema["columns"]),
        "",
        "trainer:",
        *(f"  {k}: {flow(v)}" for k, v in config["trainer"].items()),
        "  # validation_fraction: 0.2  # and test_fraction (default: as large): 60/20/20 of the rows.",
        "  # Small data (a few hundred rows): test_fraction 0.25-0.3 steadies the gate's metric.",
        "",
        "gate:",
        *(f"  {k}: {flow(v)}" for k, v in config["gate"].items() if k != "approval"),
        "  # auto: a version that passes the gate is rolled out; manual: `headrace approve` decides.",
        f"  approval: {config['gate']['approval']}",
        "",
    ]
    return "\n".join(lines)


def read_sample(path: Path) -> Any:
    import pandas as pd

    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, encoding="utf-8-sig", skipinitialspace=False)


@app.command("init")
def init(
    name: Annotated[str, typer.Argument(help="The model's name: lower case, digits, dashes (like churn).")],
    sample: Annotated[
        Path,
        typer.Option("--from", exists=True, dir_okay=False, help="A sample of the data (.csv or .parquet)."),
    ],
    target: Annotated[
        str | None, typer.Option(help="The column to predict (default: target/label/y/class, else the last).")
    ] = None,
    models_dir: Annotated[
        Path | None,
        typer.Option(help="Where to write <name>.yaml (default: the nearest models/ upward, else ./models)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite a config of that name.")] = False,
) -> None:
    """Draft a model config from a sample file: columns, types, ranges, categories, target.

    Example: headrace model init cancer --from cancer.csv --target diagnosis
    """
    if not re.fullmatch(MODEL_NAME_PATTERN, name):
        fail(f"'{name}' is not a model name", "use 3-32 lower-case letters, digits and dashes, like churn-v2")
    where = project.new_models_dir(models_dir)
    path = where.path / f"{name}.yaml"
    if path.exists() and not force:
        fail(f"{path} exists", "pass --force to overwrite it, or pick another name")
    try:
        config = draft_config(read_sample(sample), name, target, sample.name)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    where.path.mkdir(parents=True, exist_ok=True)
    path.write_text(render(config), encoding="utf-8")
    errors.print(f"[dim]models {where.path} ({where.how})[/]", highlight=False, soft_wrap=True)
    try:
        load_model_file(path)
    except ConfigError as exc:
        fail(f"wrote a draft that needs a fix before use: {exc}", "edit the field named above")
    rows = [
        (c["name"], c["type"], _rule(c), "target" if c["name"] == config["schema"]["target"] else "")
        for c in config["schema"]["columns"]
    ]
    console.print(table(f"wrote {path}", ["column", "type", "range / categories", ""], rows))
    console.print(
        f"objective {config['trainer']['objective']}, gate {config['gate']['metric']}. Next: review the "
        f"ranges, `headrace config check`, `headrace local up --detach`, then drop a file into "
        f"s3://<data bucket>/{name}/incoming/ (`headrace info` names the bucket).",
        highlight=False,
    )


def _rule(column: dict[str, Any]) -> str:
    if "categories" in column:
        return ", ".join(column["categories"])
    if "min" in column:
        return f"{column['min']} … {column['max']}"
    return ""
