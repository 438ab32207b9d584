"""What every ledger item has in common: its model (the partition), its kind and id (the sort key), and how
it becomes stored attributes and back. Each kind is one pydantic model, used both to write and to read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

from headrace.ledger.keys import PARTITION_KEY, PREFIXES, SORT_KEY, Kind, model_of, model_pk, sort_key


class LedgerItem(BaseModel):
    # Reading ignores attributes a kind does not declare (the TTL attribute, the key itself).
    model_config = ConfigDict(frozen=True, extra="ignore")

    KIND: ClassVar[Kind]
    # Fields held by the key only, never stored as attributes of their own.
    KEY_ONLY: ClassVar[frozenset[str]] = frozenset()
    # Attributes an update never overwrites: they name the item, and an update may be the one that creates it.
    IDENTITY: ClassVar[frozenset[str]] = frozenset({"kind", "model"})
    # Checks and decisions leave out what they lack; the other kinds store an explicit null.
    OMIT_NULLS: ClassVar[bool] = False

    model: str

    @property
    def sort_id(self) -> str:
        """The sort key after the kind's prefix."""
        raise NotImplementedError

    @property
    def table_key(self) -> dict[str, str]:
        return {PARTITION_KEY: model_pk(self.model), SORT_KEY: sort_key(self.KIND, self.sort_id)}

    def attributes(self) -> dict[str, Any]:
        """What is stored besides the key: `kind` and the fields given (so a partial item updates only
        those), in JSON types."""
        fields = self.model_dump(
            mode="json", exclude=set(self.KEY_ONLY), exclude_unset=True, exclude_none=self.OMIT_NULLS
        )
        return {"kind": self.KIND.value, **fields}

    @classmethod
    def key_fields(cls, sort_id: str) -> dict[str, Any]:
        """Fields read back from the sort key (those in KEY_ONLY)."""
        return {}

    @classmethod
    def from_stored(cls, item: Mapping[str, Any]) -> Self:
        """An item as stored: key and attributes, numbers already plain (keys.plain)."""
        sort_id = str(item[SORT_KEY]).removeprefix(PREFIXES[cls.KIND])
        return cls.model_validate(
            {**cls.key_fields(sort_id), "model": model_of(str(item[PARTITION_KEY])), **item}
        )
