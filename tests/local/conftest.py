"""The local plane's components, each against moto served in this process."""

from tests.support.moto import fresh_moto, moto_account  # noqa: F401  (fixtures)
from tests.support.synth import synthesized  # noqa: F401  (fixture)
