"""The capture/label join against a pandas merge: matches, later-wins duplicates, unknown labels, and a
forced hash collision that must not join the wrong rows."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from headrace.quality import join
from headrace.quality.join import JoinInputError, join_labels, unknown_labels

RNG = np.random.default_rng(61)


def _keys(n: int) -> np.ndarray:
    return np.array([str(uuid.UUID(int=int(RNG.integers(0, 2**62)))) for _ in range(n)], dtype=object)


def _pairs(result: join.LabelJoin, ikeys: np.ndarray, lkeys: np.ndarray) -> set[tuple[int, int]]:
    assert (ikeys[result.inference] == lkeys[result.label]).all()
    return set(zip(result.inference.tolist(), result.label.tolist(), strict=True))


def _reference(
    ikeys: np.ndarray, irows: np.ndarray, lkeys: np.ndarray, lrows: np.ndarray
) -> set[tuple[int, int]]:
    captures = pd.DataFrame({"k": ikeys, "r": irows, "i": np.arange(len(ikeys))})
    labels = pd.DataFrame({"k": lkeys, "r": lrows, "j": np.arange(len(lkeys))})
    labels = labels.drop_duplicates(["k", "r"], keep="last")
    captures = captures.drop_duplicates(["k", "r"], keep="last")
    merged = captures.merge(labels, on=["k", "r"])
    return set(zip(merged["i"].tolist(), merged["j"].tolist(), strict=True))


def test_join_matches_a_pandas_merge_with_multi_row_inferences_and_late_duplicates() -> None:
    keys = _keys(2_000)
    ikeys, irows = np.repeat(keys, 3), np.tile(np.arange(3), 2_000)
    chosen = RNG.permutation(len(ikeys))[:4_000]
    lkeys = np.concatenate([ikeys[chosen], _keys(50), ikeys[chosen[:100]]])
    lrows = np.concatenate([irows[chosen], np.zeros(50, np.int64), irows[chosen[:100]]])
    result = join_labels(ikeys, irows, lkeys, lrows)
    assert _pairs(result, ikeys, lkeys) == _reference(ikeys, irows, lkeys, lrows)
    assert np.array_equal(np.flatnonzero(result.superseded), np.arange(100))  # the later file wins
    assert int(unknown_labels([result.matched], result.superseded).sum()) == 50
    assert np.all(np.diff(result.inference) > 0)  # capture order


def test_a_reused_inference_id_joins_its_later_capture() -> None:
    result = join_labels(["a", "b", "a"], [0, 0, 0], ["a"], [0])
    assert result.inference.tolist() == [2]
    assert result.duplicate_inferences == 1


def test_unknown_labels_are_those_no_partial_matched() -> None:
    lkeys = np.array(["a", "b", "c", "d"], dtype=object)
    first = join_labels(["a"], [0], lkeys, np.zeros(4, np.int64))
    second = join_labels(["c"], [0], lkeys, np.zeros(4, np.int64))
    unknown = unknown_labels([first.matched, second.matched], first.superseded)
    assert unknown.tolist() == [False, True, False, True]


def test_a_hash_collision_never_joins_the_wrong_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    ikeys, lkeys = _keys(300), _keys(300)
    lkeys[:200] = ikeys[100:300]
    irows, lrows = np.zeros(300, np.int64), np.zeros(300, np.int64)

    def colliding(keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return (np.fromiter(map(len, keys), np.int64, len(keys)) % 3).astype(np.uint64)

    monkeypatch.setattr(join, "_hashes", colliding)
    result = join_labels(ikeys, irows, lkeys, lrows)
    assert _pairs(result, ikeys, lkeys) == _reference(ikeys, irows, lkeys, lrows)
    assert not result.superseded.any()


def test_non_ascii_keys_and_empty_inputs_join() -> None:
    assert join_labels(["clé", "键"], [0, 0], ["键"], [0]).inference.tolist() == [1]
    empty = join_labels([], np.zeros(0, np.int64), ["a"], [0])
    assert empty.inference.size == 0 and empty.matched.tolist() == [False]


@pytest.mark.parametrize(
    ("rows", "message"),
    [([0, -1], "integers >= 0"), ([0.5, 1.0], "integers >= 0"), ([0], "expected 2 row numbers")],
)
def test_bad_row_numbers_are_refused(rows: list[float], message: str) -> None:
    with pytest.raises(JoinInputError, match=message):
        join_labels(["a", "b"], rows, ["a"], [0])


def test_byte_keys_of_any_widths_join_as_their_text_does() -> None:
    keys = _keys(3_000)
    ikeys, lkeys = keys[:2_000], np.concatenate([keys[1_000:], keys[1_500:1_600]])
    irows, lrows = np.zeros(2_000, np.int64), np.zeros(len(lkeys), np.int64)
    expected = join_labels(ikeys, irows, lkeys, lrows)
    # Readers' fixed-width bytes, at two widths (one side padded to the id's maximum of 64 characters).
    wide = join.key_array(lkeys).astype("S64")
    result = join_labels(join.key_array(ikeys), irows, wide, lrows)
    assert (
        _pairs(result, ikeys, lkeys)
        == _pairs(expected, ikeys, lkeys)
        == _reference(ikeys, irows, lkeys, lrows)
    )
    assert np.array_equal(result.superseded, expected.superseded) and result.superseded.sum() == 100


def test_key_array_encodes_utf8_and_refuses_what_is_not_text() -> None:
    assert join.key_array(["clé", "a"]).tolist() == ["clé".encode(), b"a"]
    assert join_labels(join.key_array(["clé", "键"]), [0, 0], np.array(["键"]), [0]).inference.tolist() == [1]
    with pytest.raises(JoinInputError, match=r"label keys: key 1 is a int \(7\), not text"):
        join_labels(["a"], [0], np.array(["a", 7], dtype=object), [0, 0])


def test_keys_that_differ_only_past_the_first_word_or_by_row_do_not_join() -> None:
    ikeys = ["x" * 20 + "a", "x" * 20 + "b", "short"]
    result = join_labels(ikeys, [0, 0, 1], ["x" * 20 + "b", "short"], [0, 0])
    assert result.inference.tolist() == [1] and result.label.tolist() == [0]


def test_the_table_keeps_each_hashs_last_label_through_crowded_probe_runs() -> None:
    # Few distinct hashes, many repeats, and distinct hashes that share a home slot (same top bits): every
    # round of the scatter build, its later-wins fix and the probe runs, against a dict.
    distinct = (RNG.integers(0, 8, 40, dtype=np.uint64) << np.uint64(60)) | RNG.integers(
        0, 2**20, 40, dtype=np.uint64
    )
    hashes = RNG.choice(distinct, 5_000)
    table, winner = join._Table.build(hashes)
    last = {int(h): i for i, h in enumerate(hashes.tolist())}
    assert np.flatnonzero(winner).tolist() == sorted(last.values())
    probes = np.concatenate([distinct, distinct + np.uint64(1)])
    expected = [last.get(int(h), -1) for h in probes.tolist()]
    assert table.find(probes).tolist() == expected


def test_the_join_is_the_same_in_many_small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = _keys(1_000)
    ikeys, lkeys = keys[:700], np.concatenate([keys[300:], keys[400:450], _keys(20)])
    irows, lrows = np.zeros(700, np.int64), np.zeros(len(lkeys), np.int64)
    whole = join_labels(ikeys, irows, lkeys, lrows)
    monkeypatch.setattr(join, "CHUNK", 7)
    chunked = join_labels(ikeys, irows, lkeys, lrows)
    expected = _reference(ikeys, irows, lkeys, lrows)
    assert _pairs(chunked, ikeys, lkeys) == _pairs(whole, ikeys, lkeys) == expected
    assert np.array_equal(chunked.superseded, whole.superseded) and chunked.superseded.sum() == 50
