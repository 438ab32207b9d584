"""Handlers and containers against moto in-process."""

from tests.support.moto import fresh_moto, moto_account  # noqa: F401  (fixtures)
