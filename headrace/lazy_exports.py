"""A package's names imported on first use (PEP 562's module `__getattr__`): a Lambda function pays at cold
start for the modules its own path names, not for every module its package re-exports."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, modules: Mapping[str, str]) -> Callable[[str], Any]:
    """The `__getattr__` of `package`: each name in `modules` is read from `package.<its module>` when first
    asked for; any other name is an AttributeError, as for a module without it."""

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{module}"), name)

    return __getattr__
