"""Where the serving variant's data capture lands: what the drift and quality checks read. Apart from
rollout.py so that the checks' functions do not import the rollout's requests and the stages' settings."""

from __future__ import annotations

from typing import Final

# Every version is served by one production variant of this name, so guard alarms on
# (EndpointName, VariantName) keep watching whichever fleet serves.
VARIANT: Final = "AllTraffic"


def capture_prefix(model: str) -> str:
    """Where data capture writes in the data bucket: `<model>/capture/<endpoint>/<variant>/yyyy/mm/dd/hh/`."""
    return f"{model}/capture"
