"""Joins captured inferences with their ground-truth labels, vectorised: no Python loop per row.

A row is identified by (key, row): the key is the capture's `eventMetadata.inferenceId`, else its `eventId`,
which is what a ground-truth record's `eventMetadata.eventId` carries (SageMaker Model Monitor's rule:
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-merge.html), and `row` is the
0-based row of a multi-row inference (0 for one row).

Duplicates are resolved HERE, by position: the LATER occurrence wins. Callers pass labels in arrival order
(accepted files in key order, rows in file order), so the later accepted file wins, as the design says; among
captures, the later capture of a reused InferenceId wins (`duplicate_inferences` counts the others).

Keys: fastest as fixed-width UTF-8 bytes (numpy 'S', what `key_array` makes and the readers should hand
over): an InferenceId is at most 64 characters
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html). str keys (numpy
'U' or object arrays, lists) are encoded to that form first, which costs a pass over them. A key never holds
NUL (the id's pattern is printable characters), so numpy's NUL padding of 'S' values cannot merge two keys.

How: both sides are padded to one width; each key's bytes are read as 64-bit words IN PLACE (strided views,
no per-key object) and folded into one 64-bit hash with the row (a multilinear sum under odd constants, then
splitmix64's finalizer), in a few whole-array operations. The winning labels go into an open-addressing hash
table (int32 slots, at most a quarter full, so most keys land in one round) built with whole-array numpy
operations, a round per probe step, and every capture looks its hash up the same way. Every match and every
superseded label is then checked against the real key bytes and row, vectorised, so a hash collision never
joins the wrong rows: on one the join redoes itself on exact codes (np.unique over the keys), slower and as
correct.

Memory: O(captures + labels): per label the table's 4 slots (16 bytes) and its hash (8); per capture its
hash and lookup (about 24 bytes); plus one gathered copy of the matched keys for the check. The caller bounds
the captures by the batch it joins at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Hashes = npt.NDArray[np.uint64]
KeyArray = npt.NDArray[np.bytes_]

_GOLDEN: Final = np.uint64(0x9E3779B97F4A7C15)
_MIX1: Final = np.uint64(0xBF58476D1CE4E5B9)
_MIX2: Final = np.uint64(0x94D049BB133111EB)


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


def key_array(keys: Iterable[str | bytes] | npt.ArrayLike) -> KeyArray:
    """Join keys in the form the join takes without a conversion: UTF-8 bytes, fixed width (numpy 'S')."""
    return _keys("keys", keys)


def _keys(name: str, keys: Any) -> KeyArray:
    array = keys if isinstance(keys, np.ndarray) else np.asarray(list(keys), dtype=object)
    if array.ndim != 1:
        raise JoinInputError(f"{name}: expected one dimension, got shape {array.shape}")
    if array.dtype.kind == "S":
        return np.ascontiguousarray(array)
    if array.size == 0:
        return np.zeros(0, dtype="S1")
    if array.dtype.kind == "U":
        try:  # ASCII (every generated id): numpy encodes in C
            return array.astype(np.bytes_)
        except UnicodeEncodeError:
            array = array.astype(object)
    if array.dtype.kind != "O":
        raise JoinInputError(f"{name}: expected text keys, got dtype {array.dtype}")
    items = array.tolist()
    bad = next((i for i, k in enumerate(items) if not isinstance(k, str | bytes)), None)
    if bad is not None:
        raise JoinInputError(f"{name}: key {bad} is a {type(items[bad]).__name__} ({items[bad]!r}), not text")
    return np.array([k.encode() if isinstance(k, str) else k for k in items], dtype=np.bytes_)


def _row_numbers(name: str, rows: Any, size: int) -> IntArray:
    array = np.asarray(rows)
    if array.shape != (size,):
        raise JoinInputError(f"{name}: expected {size} row numbers, got shape {array.shape}")
    if array.size and (not np.issubdtype(array.dtype, np.integer) or array.min() < 0):
        raise JoinInputError(f"{name}: row numbers must be integers >= 0 (dtype {array.dtype})")
    return array.astype(np.int64, copy=False)


def _mix(h: Hashes) -> Hashes:
    # splitmix64's finalizer: a bijection in which every input bit affects every output bit.
    with np.errstate(over="ignore"):
        h = (h ^ (h >> np.uint64(30))) * _MIX1
        h = (h ^ (h >> np.uint64(27))) * _MIX2
    return h ^ (h >> np.uint64(31))


def _words(keys: KeyArray) -> list[npt.NDArray[np.uint64]]:
    """The keys' bytes as columns of 64-bit words, read in place (strided views, no copy): every whole word,
    then the last 8 bytes when the width (at least 8, `_aligned`) is not a multiple of 8. That last word
    overlaps the one before; a hash needs every byte at least once, not exactly once."""
    n, width = len(keys), keys.itemsize
    starts = list(range(0, width - 7, 8)) + ([width - 8] if width % 8 else [])
    return [np.ndarray((n,), np.uint64, keys, start, (width,)) for start in starts]


def _hashes(keys: KeyArray, rows: IntArray) -> Hashes:
    """A 64-bit hash of each (key, row): a multilinear sum of the key's words and the row under odd
    constants, then mixed. Equal (key, row) hash equal; `join_labels` checks every match for a collision."""
    words = _words(keys)
    # Odd multipliers, one per word; a fixed seed, so hashes repeat across runs.
    weights = np.random.default_rng(16).integers(0, 2**63, len(words), dtype=np.uint64) * np.uint64(2)
    with np.errstate(over="ignore"):
        h = rows.astype(np.uint64) * _GOLDEN
        for word, weight in zip(words, weights + np.uint64(1), strict=True):
            h += word * weight
    # The table indexes by the top bits, which every input bit already reaches through the products; fold
    # them down too, so low bits are as good.
    return h ^ (h >> np.uint64(32))


def _aligned(a: KeyArray, b: KeyArray) -> tuple[KeyArray, KeyArray]:
    """Both key arrays at one width of at least 8 bytes (NUL-padded, as 'S' values are), so that equal keys
    have equal bytes; no copy when they already are."""
    width = max(a.itemsize, b.itemsize, 8)
    return a.astype(f"S{width}", copy=False), b.astype(f"S{width}", copy=False)


def _exact_hashes(
    inference: KeyArray, labels: KeyArray, irows: IntArray, lrows: IntArray
) -> tuple[Hashes, Hashes]:
    """Collision-free stand-ins for the hashes: distinct (key, row) codes through a bijection."""
    _, codes = np.unique(np.concatenate([inference, labels]), return_inverse=True)
    span = int(max(irows.max(initial=0), lrows.max(initial=0))) + 1
    combined = _mix((codes.astype(np.int64) * span + np.concatenate([irows, lrows])).astype(np.uint64))
    return combined[: len(inference)], combined[len(inference) :]


@dataclass(frozen=True)
class _Table:
    slots: npt.NDArray[np.int32]  # label index, or -1 for an empty slot
    hashes: Hashes  # every label's hash, then one more (what slot -1 reads: never a hit, see `_holds`)
    shift: np.uint64

    @classmethod
    def build(cls, hashes: Hashes) -> tuple[_Table, BoolArray]:
        """Each distinct hash's LAST label, by linear probing, and which labels won their hash."""
        if len(hashes) >= 2**31:
            raise JoinInputError(f"labels: {len(hashes):,} in one join, more than 2**31 - 1")
        bits = max(4, (4 * len(hashes)).bit_length())  # at most a quarter full: 16 to 32 bytes per label
        slots = np.full(1 << bits, -1, dtype=np.int32)
        table = cls(slots, np.append(hashes, np.uint64(0)), np.uint64(64 - bits))
        pending = np.arange(len(hashes), dtype=np.int32)
        probe = table.home(hashes)
        # Round 1, every slot free: of the labels landing on one slot the last wins (for equal hashes, the
        # later label). Equal hashes share a probe sequence, so they always contend for one slot in one
        # round: a label that lost to its own hash is superseded; one that lost to another hash probes on.
        np.maximum.at(slots, probe, pending)
        holder = slots[probe]
        winner = holder == pending
        moving = ~winner & (table.hashes[holder] != hashes)
        pending, probe = pending[moving], table.next(probe[moving])
        while pending.size:
            free = slots[probe] < 0
            np.maximum.at(slots, probe[free], pending[free])
            holder = slots[probe]
            placed = holder == pending
            winner[pending[placed]] = True
            moving = ~placed & (table.hashes[holder] != hashes[pending])
            pending, probe = pending[moving], table.next(probe[moving])
        return table, winner

    def home(self, hashes: Hashes) -> IntArray:
        return (hashes >> self.shift).astype(np.int64)

    def next(self, probe: IntArray) -> IntArray:
        return (probe + 1) & (len(self.slots) - 1)

    def _holds(self, holder: npt.NDArray[np.int32], wanted: Hashes) -> BoolArray:
        held: BoolArray = (holder >= 0) & (self.hashes[holder] == wanted)
        return held

    def find(self, hashes: Hashes) -> IntArray:
        """The label holding each hash, or -1."""
        probe = self.home(hashes)
        holder = self.slots[probe]
        hit = self._holds(holder, hashes)
        found = np.where(hit, holder, -1).astype(np.int64)
        pending = np.flatnonzero((holder >= 0) & ~hit)
        probe = self.next(probe[pending])
        while pending.size:
            holder = self.slots[probe]
            hit = self._holds(holder, hashes[pending])
            found[pending[hit]] = holder[hit]
            moving = (holder >= 0) & ~hit
            pending, probe = pending[moving], self.next(probe[moving])
        return found


def _matches(table: _Table, capture_hashes: Hashes, labels: int) -> tuple[IntArray, IntArray, BoolArray, int]:
    """(capture, label) pairs in capture order, the later of two captures of one (key, row) winning, and
    which labels matched."""
    found = table.find(capture_hashes)
    inference = np.flatnonzero(found >= 0)
    label = found[inference]
    matched = np.zeros(labels, dtype=bool)
    matched[label] = True
    if np.count_nonzero(matched) == len(label):  # no label matched twice: no reused id to resolve
        return inference, label, matched, 0
    last = np.full(labels, -1, dtype=np.int64)
    np.maximum.at(last, label, inference)
    keep = last[label] == inference
    return inference[keep], label[keep], matched, int(len(keep) - np.count_nonzero(keep))


def join_labels(inference_keys: Any, inference_rows: Any, label_keys: Any, label_rows: Any) -> LabelJoin:
    """Matches each captured (key, row) with its label; see the module's docstring for duplicates."""
    ikeys, lkeys = _aligned(_keys("inference keys", inference_keys), _keys("label keys", label_keys))
    irows = _row_numbers("inference rows", inference_rows, len(ikeys))
    lrows = _row_numbers("label rows", label_rows, len(lkeys))
    ihash, lhash = _hashes(ikeys, irows), _hashes(lkeys, lrows)
    table, winner = _Table.build(lhash)
    inference, label, matched, duplicates = _matches(table, ihash, len(lkeys))
    losers = np.flatnonzero(~winner)
    owners = table.find(lhash[losers])
    if not (
        _same(ikeys, irows, inference, lkeys, lrows, label)
        and _same(lkeys, lrows, losers, lkeys, lrows, owners)
    ):
        # A 64-bit hash collision: the same join on collision-free codes.
        ihash, lhash = _exact_hashes(ikeys, lkeys, irows, lrows)
        table, winner = _Table.build(lhash)
        inference, label, matched, duplicates = _matches(table, ihash, len(lkeys))
    return LabelJoin(inference, label, matched, superseded=~winner, duplicate_inferences=duplicates)


def _same(
    keys_a: KeyArray, rows_a: IntArray, a: IntArray, keys_b: KeyArray, rows_b: IntArray, b: IntArray
) -> bool:
    """Whether each pair (a[i], b[i]) has the same row and the same key (one width: `_aligned`)."""
    if (rows_a.any() or rows_b.any()) and not np.array_equal(rows_a[a], rows_b[b]):
        return False
    # The gathered keys are contiguous: compare their bytes in the widest words the width divides into.
    word = next(np.dtype(f"u{size}") for size in (8, 4, 2, 1) if keys_a.itemsize % size == 0)
    return bool(np.array_equal(keys_a[a].view(word), keys_b[b].view(word)))
