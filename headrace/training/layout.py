"""Where one training run's files live in the data bucket (containers/train/CONTRACT.md, "Where a run's
files live"): everything under `<model>/runs/<job>/`, so a run is one prefix to list, keep or delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlparse

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")
SPLIT_FILE = "data.csv"
# The champion channel (containers/train/CONTRACT.md): a copy of the champion's model.tar.gz, or NO_CHAMPION.
CHAMPION = "champion"
CHAMPION_ARTIFACT = "model.tar.gz"
NO_CHAMPION = "none.json"
# The S3 key patterns (IAM and bucket grants) of what each party reads and writes, for every model.
SPLIT_KEYS = "*/runs/*/splits/*"
OUTPUT_KEYS = "*/runs/*/output/*"
EVALUATION_KEYS = "*/runs/*/evaluation.json"
LINEAGE_KEYS = "*/runs/*/lineage.json"


@dataclass(frozen=True)
class RunLayout:
    bucket: str
    model: str
    job: str

    @property
    def prefix(self) -> str:
        return f"{self.model}/runs/{self.job}/"

    def split_key(self, split: Split) -> str:
        return f"{self.prefix}splits/{split}/{SPLIT_FILE}"

    def split_uri(self, split: Split) -> str:
        """A SageMaker S3Prefix channel: the split's folder, with its trailing '/' so that a prefix never
        also matches a sibling such as `train-extra/`."""
        return self.uri(f"{self.prefix}splits/{split}/")

    def champion_key(self, file: str) -> str:
        return f"{self.prefix}splits/{CHAMPION}/{file}"

    @property
    def champion_uri(self) -> str:
        """The champion channel's S3Prefix: beside the splits, so the job reads it with the same grant."""
        return self.uri(f"{self.prefix}splits/{CHAMPION}/")

    @property
    def output_uri(self) -> str:
        """OutputDataConfig.S3OutputPath; SageMaker writes `<job>/output/model.tar.gz` below it."""
        return self.uri(f"{self.prefix}output/")

    @property
    def checkpoint_uri(self) -> str:
        return self.uri(f"{self.prefix}checkpoints/")

    @property
    def evaluation_key(self) -> str:
        return f"{self.prefix}evaluation.json"

    @property
    def lineage_key(self) -> str:
        return f"{self.prefix}lineage.json"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/key` -> ("bucket", "some/key"); anything else is a ValueError naming the value."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.lstrip("/"):
        raise ValueError(f"'{uri}' is not an s3://bucket/key URI")
    return parsed.netloc, parsed.path.lstrip("/")
