"""Synthesized templates: the CDK app once per session and stage variant."""

from tests.support.synth import synthesized, synthesized_prod, synthesized_prod_in_a_vpc  # noqa: F401  (fixtures)
