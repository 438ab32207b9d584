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
no per-key object) and folded with the row into one 64-bit hash (a multilinear sum under odd constants, its
high half xor-folded into the low), in a few whole-array operations. The winning labels go into an
open-addressing hash table (int32 slots, at most a quarter full, so most keys land in one round) built with
whole-array numpy operations, a round per probe step, and every capture looks its hash up the same way.
Every match and every superseded label is then checked against the real key bytes and row, vectorised, so a
hash collision never joins the wrong rows: on one the join redoes itself on exact codes (np.unique over the
keys), slower and as correct.

Speed (bench/quality.py, bench/RESULTS.md): the costs are random memory reads (table slots, hashes, the
matched label keys), so the passes over many rows run CHUNK rows at a time (temporaries stay in cache), the
table is filled by plain scatters (np.maximum.at only for equal hashes) and gathers use np.take.

Memory: O(captures + labels): per label the table's 4 to 8 int32 slots (16 to 32 bytes) and its hash (8);
per capture its hash and lookup (16 bytes) and the matched pair (16); temporaries are CHUNK rows (the
matched keys are compared a chunk at a time, never copied whole). The caller bounds the captures by the
batch it joins at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Hashes = npt.NDArray[np.uint64]
KeyArray = npt.NDArray[np.bytes_]

CHUNK: Final = 1 << 16  # rows per step of the vectorised passes (see `_chunks`)
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
    if all(issubclass(kind, str) for kind in set(map(type, items))):
        try:  # ASCII: numpy encodes in C, twice as fast as encoding each str
            return np.array(items, dtype=np.str_).astype(np.bytes_)
        except UnicodeEncodeError:
            pass
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
    width = keys.itemsize
    return [np.ndarray((len(keys),), np.uint64, keys, start, (width,)) for start in _word_starts(width)]


def _word_starts(width: int) -> list[int]:
    return list(range(0, width - 7, 8)) + ([width - 8] if width % 8 else [])


def _hashes(keys: KeyArray, rows: IntArray) -> Hashes:
    """A 64-bit hash of each (key, row): a multilinear sum of the key's words and the row under odd
    constants, then mixed. Equal (key, row) hash equal; `join_labels` checks every match for a collision."""
    # Odd multipliers, one per word; a fixed seed, so hashes repeat across runs.
    count = len(_word_starts(keys.itemsize))
    weights = np.random.default_rng(16).integers(0, 2**63, count, dtype=np.uint64) * np.uint64(2)
    weights += np.uint64(1)
    out = np.empty(len(keys), np.uint64)
    with np.errstate(over="ignore"):
        for start, stop in _chunks(len(keys)):
            h = rows[start:stop].astype(np.uint64) * _GOLDEN
            for word, weight in zip(_words(keys[start:stop]), weights, strict=True):
                h += word * weight
            # The table indexes by the top bits, which every input bit already reaches through the
            # products; fold them down too, so low bits are as good.
            out[start:stop] = h ^ (h >> np.uint64(32))
    return out


def _chunks(size: int) -> Iterator[tuple[int, int]]:
    """[start, stop) steps of CHUNK rows over `size`: whole-array work a chunk at a time keeps temporaries in
    cache (and out of freshly mapped pages), about a third faster than one pass over a million rows."""
    return ((start, min(start + CHUNK, size)) for start in range(0, size, CHUNK))


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
    hashes: Hashes  # every label's hash (at least one value: what slot -1 reads, never a hit)
    shift: np.uint64

    @classmethod
    def build(cls, hashes: Hashes) -> tuple[_Table, BoolArray]:
        """Each distinct hash's LAST label, by linear probing, and which labels won their hash."""
        if len(hashes) >= 2**31:
            raise JoinInputError(f"labels: {len(hashes):,} in one join, more than 2**31 - 1")
        bits = max(4, (4 * len(hashes)).bit_length())  # at most a quarter full: 16 to 32 bytes per label
        slots = np.full(1 << bits, -1, dtype=np.int32)
        # Slot -1 reads the last hash; `_holds` rules it out. No labels: one stand-in, never read as a hit.
        table = cls(slots, hashes if len(hashes) else np.zeros(1, np.uint64), np.uint64(64 - bits))
        pending: npt.NDArray[np.int32] = np.arange(len(hashes), dtype=np.int32)
        probe = table.home(hashes)
        # Round 1, every slot free. A plain scatter puts ONE of the labels contending for a slot there
        # (which one numpy picks is unspecified and does not matter) at a fraction of np.maximum.at's cost;
        # the labels placed are done. Written in reverse, so that today's numpy (last write wins) leaves the
        # EARLIEST of equal hashes there: the later-wins fix below then runs on every build, tested, not
        # only on a numpy that orders writes differently.
        slots[probe[::-1]] = pending[::-1]
        winner = slots[probe] == pending
        while pending.size:
            lost = np.flatnonzero(~winner[pending])
            pending, probe = pending[lost], probe[lost]
            holder = slots[probe]
            # Equal hashes share a probe sequence, so they always contend for one slot in one round, and the
            # LAST of them must win: rare (a label superseded by a later one), so only those go through
            # np.maximum.at. A label that lost to its own hash is superseded; one that lost to another hash
            # probes on.
            same = table.hashes[holder] == hashes[pending]
            later = same & (pending > holder)
            if later.any():
                np.maximum.at(slots, probe[later], pending[later])
                winner[holder[later]] = False
                winner[slots[probe[later]]] = True
            moving = ~same
            pending, probe = pending[moving], table.next(probe[moving])
            free = slots[probe] < 0
            slots[probe[free][::-1]] = pending[free][::-1]
            winner[pending] = slots[probe] == pending
        return table, winner

    def home(self, hashes: Hashes) -> IntArray:
        return (hashes >> self.shift).astype(np.int64)

    def next(self, probe: IntArray) -> IntArray:
        return (probe + 1) & (len(self.slots) - 1)

    def _holds(self, holder: npt.NDArray[np.int32], wanted: Hashes) -> BoolArray:
        held: BoolArray = (self.hashes.take(holder) == wanted) & (holder >= 0)
        return held

    def find(self, hashes: Hashes) -> IntArray:
        """The label holding each hash, or -1."""
        found = np.empty(len(hashes), np.int64)
        missed: list[npt.NDArray[Any]] = [np.zeros(0, np.int64)]
        for start, stop in _chunks(len(hashes)):  # the home slots: most hits and misses
            holder = self.slots.take(self.home(hashes[start:stop]))  # take: faster than [] for a gather
            hit = self._holds(holder, hashes[start:stop])
            found[start:stop] = np.where(hit, holder, -1)
            missed.append(np.flatnonzero((holder >= 0) & ~hit) + start)
        pending = np.concatenate(missed)  # home slot taken by another hash: probe on
        probe = self.next(self.home(hashes[pending]))
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
    # np.take: a third faster than keys[index] on 'S' arrays (numpy 2.2).
    return all(
        np.array_equal(keys_a.take(a[start:stop]).view(word), keys_b.take(b[start:stop]).view(word))
        for start, stop in _chunks(len(a))
    )
