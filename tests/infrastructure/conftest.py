"""Synthesized templates: the CDK app once per session and stage variant."""

from tests.support.synth import (  # noqa: F401  (fixtures)
    synthesized,
    synthesized_dev_extended,
    synthesized_prod,
    synthesized_prod_in_a_vpc,
)
