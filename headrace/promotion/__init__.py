"""Promotion: one Approved version of a stage (dev) registered in another stage's registry (prod), with its
artifacts copied into that stage's bucket under its own key and the lineage pointing back.

`package.py` builds what is written (pure); `promote.py` reads the source, checks, copies and registers.
"""

from headrace.promotion.package import PromotionError, ServingImageMismatch
from headrace.promotion.promote import (
    NotApproved,
    Promoted,
    PromotionRequest,
    SourceStage,
    TargetStage,
    parse_version,
    promote,
)

__all__ = [
    "NotApproved",
    "Promoted",
    "PromotionError",
    "PromotionRequest",
    "ServingImageMismatch",
    "SourceStage",
    "TargetStage",
    "parse_version",
    "promote",
]
