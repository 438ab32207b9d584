"""Joins captured inferences with their ground-truth labels, vectorised: no Python loop per row.

A row is identified by (key, row): the key is the capture's `eventMetadata.inferenceId`, else its `eventId`,
which is what a ground-truth record's `eventMetadata.eventId` carries (SageMaker Model Monitor's rule:
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-merge.html), and `row` is the
0-based row of a multi-row inference (0 for one row).

Duplicates are resolved HERE, by position: the LATER occurrence wins. Callers pass labels in arrival order
(accepted files in key order, rows in file order), so the later accepted file wins, as the design says; among
captures, the later capture of a reused InferenceId wins (`duplicate_inferences` counts the others).

How: each (key, row) becomes a 64-bit hash (Python's own str hash, SipHash, cached on the str object and
salted per process: hashes are only compared within one call, mixed with the row); the winning labels go into
an open-addressing hash table built with whole-array numpy operations (a round per probe step), and every
capture looks its hash up the same way. Every match and every superseded label is then checked against the
real key and row, so a hash collision never joins the wrong rows: on one (about n^2 / 2^65 likely: ~3e-8 for
a million keys) the join redoes itself on exact codes from np.unique over the keys, slower and as correct.
Keys are compared as values: a key that is not a str never equals one that is.

Memory: O(captures + labels): per label the table's 2 slots (16 bytes) and its hash (8); per capture its hash
and lookup (about 32 bytes); the caller bounds the captures by the batch it joins at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Hashes = npt.NDArray[np.uint64]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


class JoinInputError(ValueError):
    """Keys or rows the join cannot take; says which and where."""


@dataclass(frozen=True)
class LabelJoin:
    """Matched pairs, in capture order, and what became of each label."""

    inference: IntArray  # index into the captures, one per matched pair
    label: IntArray  # index into the labels, same length
    matched: BoolArray  # (labels,): this label was joined with one of these captures
    superseded: BoolArray  # (labels,): a later label for the same (key, row) replaced this one
    duplicate_inferences: int  # matched captures a later capture of the same (key, row) replaced


def unknown_labels(matched: Sequence[BoolArray], superseded: BoolArray) -> BoolArray:
    """Labels no capture matched in any of the partial joins (each over the same labels): the labels whose
    inference is unknown, to be counted and reported. Superseded labels are not unknown, just replaced."""
    joined = np.logical_or.reduce(list(matched)) if matched else np.zeros_like(superseded)
    return ~joined & ~superseded


def _keys(name: str, keys: Any) -> npt.NDArray[np.object_]:
    array = np.asarray(keys, dtype=object)
    if array.ndim != 1:
        raise JoinInputError(f"{name}: expected one dimension, got shape {array.shape}")
    return array


def _row_numbers(name: str, rows: Any, size: int) -> IntArray:
    array = np.asarray(rows)
    if array.shape != (size,):
        raise JoinInputError(f"{name}: expected {size} row numbers, got shape {array.shape}")
    if array.size and (not np.issubdtype(array.dtype, np.integer) or array.min() < 0):
        raise JoinInputError(f"{name}: row numbers must be integers >= 0 (dtype {array.dtype})")
    return array.astype(np.int64)


def _mix(h: Hashes) -> Hashes:
    # splitmix64's finalizer: a bijection in which every input bit affects every output bit.
    with np.errstate(over="ignore"):
        h = (h ^ (h >> np.uint64(30))) * _MIX1
        h = (h ^ (h >> np.uint64(27))) * _MIX2
    return h ^ (h >> np.uint64(31))


def _hashes(keys: npt.NDArray[np.object_], rows: IntArray) -> Hashes:
    salted = np.fromiter(map(hash, keys), dtype=np.int64, count=len(keys)).view(np.uint64)
    with np.errstate(over="ignore"):
        return _mix(salted ^ _mix(rows.astype(np.uint64) + _GOLDEN))


def _exact_hashes(
    inference: npt.NDArray[np.object_], labels: npt.NDArray[np.object_], irows: IntArray, lrows: IntArray
) -> tuple[Hashes, Hashes]:
    """Collision-free stand-ins for the hashes: distinct (key, row) codes through a bijection."""
    _, codes = np.unique(np.concatenate([inference, labels]).astype(np.str_), return_inverse=True)
    span = int(max(irows.max(initial=0), lrows.max(initial=0))) + 1
    combined = _mix((codes.astype(np.int64) * span + np.concatenate([irows, lrows])).astype(np.uint64))
    return combined[: len(inference)], combined[len(inference) :]


@dataclass(frozen=True)
class _Table:
    slots: IntArray  # label index, or -1 for an empty slot
    hashes: Hashes  # every label's hash
    shift: np.uint64

    @classmethod
    def build(cls, hashes: Hashes) -> _Table:
        """Each distinct hash's LAST label, by linear probing; a slot per label at most half full."""
        bits = max(4, len(hashes).bit_length() + 1)
        table = cls(np.full(1 << bits, -1, dtype=np.int64), hashes, np.uint64(64 - bits))
        pending: IntArray = np.arange(len(hashes), dtype=np.int64)
        where = table.home(hashes)
        while pending.size:
            empty = table.slots[where] < 0
            np.maximum.at(table.slots, where[empty], pending[empty])
            holder = table.slots[where]
            placed = holder == pending
            same = ~placed & (hashes[holder] == hashes[pending])
            np.maximum.at(table.slots, where[same], pending[same])  # a later duplicate replaces the earlier
            moving = ~placed & ~same
            pending = pending[moving]
            where = (where[moving] + 1) & (len(table.slots) - 1)
        return table

    def home(self, hashes: Hashes) -> IntArray:
        return (hashes >> self.shift).astype(np.int64)

    def find(self, hashes: Hashes) -> IntArray:
        """The label holding each hash, or -1."""
        found = np.full(len(hashes), -1, dtype=np.int64)
        pending: IntArray = np.arange(len(hashes), dtype=np.int64)
        where = self.home(hashes)
        while pending.size:
            holder = self.slots[where]
            hit = holder >= 0
            hit[hit] = self.hashes[holder[hit]] == hashes[pending[hit]]
            found[pending[hit]] = holder[hit]
            moving = (holder >= 0) & ~hit
            pending = pending[moving]
            where = (where[moving] + 1) & (len(self.slots) - 1)
        return found


def _matches(table: _Table, capture_hashes: Hashes, labels: int) -> tuple[IntArray, IntArray, int]:
    """(capture, label) pairs in capture order, the later of two captures of one (key, row) winning."""
    found = table.find(capture_hashes)
    inference = np.flatnonzero(found >= 0)
    label = found[inference]
    last = np.full(labels, -1, dtype=np.int64)
    np.maximum.at(last, label, inference)
    keep = last[label] == inference
    return inference[keep], label[keep], int((~keep).sum())


def join_labels(inference_keys: Any, inference_rows: Any, label_keys: Any, label_rows: Any) -> LabelJoin:
    """Matches each captured (key, row) with its label; see the module's docstring for duplicates."""
    ikeys, lkeys = _keys("inference keys", inference_keys), _keys("label keys", label_keys)
    irows = _row_numbers("inference rows", inference_rows, len(ikeys))
    lrows = _row_numbers("label rows", label_rows, len(lkeys))
    ihash, lhash = _hashes(ikeys, irows), _hashes(lkeys, lrows)
    table = _Table.build(lhash)
    winner = np.zeros(len(lkeys), dtype=bool)
    winner[table.slots[table.slots >= 0]] = True
    inference, label, duplicates = _matches(table, ihash, len(lkeys))
    losers = np.flatnonzero(~winner)
    owners = table.find(lhash[losers])
    if not (
        _same(ikeys, irows, inference, lkeys, lrows, label)
        and _same(lkeys, lrows, losers, lkeys, lrows, owners)
    ):
        # A 64-bit hash collision: the same join on collision-free codes.
        ihash, lhash = _exact_hashes(ikeys, lkeys, irows, lrows)
        table = _Table.build(lhash)
        winner[:] = False
        winner[table.slots[table.slots >= 0]] = True
        inference, label, duplicates = _matches(table, ihash, len(lkeys))
    matched = np.zeros(len(lkeys), dtype=bool)
    matched[label] = True
    return LabelJoin(inference, label, matched, superseded=~winner, duplicate_inferences=duplicates)


def _same(
    keys_a: npt.NDArray[np.object_],
    rows_a: IntArray,
    a: IntArray,
    keys_b: npt.NDArray[np.object_],
    rows_b: IntArray,
    b: IntArray,
) -> bool:
    return bool(np.array_equal(rows_a[a], rows_b[b]) and (keys_a[a] == keys_b[b]).all())
