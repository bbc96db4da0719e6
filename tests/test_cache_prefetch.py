"""Successor learning and the prefetcher's adaptive threshold."""

from __future__ import annotations

import pytest

from vault_bmad.cache.prefetch import Prefetcher, SuccessorModel


def test_the_model_learns_the_usual_successor() -> None:
    model = SuccessorModel()
    for follower in ("B", "B", "B", "C"):
        model.learn("A", follower)
    prediction = model.predict("A")
    assert prediction is not None
    assert (prediction.key, prediction.support) == ("B", 4)
    assert prediction.confidence == pytest.approx(0.75)
    assert model.predict("B") is None


def test_the_model_forgets_the_least_recent_keys_and_rare_successors() -> None:
    model = SuccessorModel(max_keys=2, max_successors=2)
    model.learn("A", "B")
    model.learn("C", "D")
    model.learn("E", "F")
    assert model.predict("A") is None
    assert len(model) == 2
    for follower in ("X", "X", "Y", "Z"):
        model.learn("E", follower)
    prediction = model.predict("E")
    assert prediction is not None
    assert prediction.key == "X"
    assert prediction.support == 3  # X twice and Z; F and Y were dropped


def test_a_changed_habit_wins_after_counts_decay() -> None:
    model = SuccessorModel(decay_at=8)
    for _ in range(8):
        model.learn("A", "old")
    for _ in range(8):
        model.learn("A", "new")
    prediction = model.predict("A")
    assert prediction is not None
    assert prediction.key == "new"


def test_a_prediction_needs_support_and_confidence() -> None:
    prefetcher = Prefetcher(0.7, min_support=2)
    assert prefetcher.observe("A") == []
    assert prefetcher.observe("B") == []
    assert prefetcher.observe("A") == []  # A -> B seen once: not enough support
    prefetcher.observe("B")
    assert prefetcher.observe("A") == ["B"]  # twice now, confidence 1.0
    prefetcher.observe("C")  # A -> B, B, C: confidence 2/3 < 0.7
    assert prefetcher.observe("A") == []


def test_used_prefetches_lower_the_threshold_and_wasted_ones_raise_it() -> None:
    prefetcher = Prefetcher(0.7, min_threshold=0.5, max_threshold=0.9, step=0.1)
    prefetcher.issued("B")
    assert prefetcher.on_hit("B") is True
    assert prefetcher.on_hit("B") is False  # only the first use counts
    lowered = prefetcher.threshold
    assert lowered < 0.7
    prefetcher.issued("C")
    prefetcher.on_evict("C")
    assert prefetcher.threshold > lowered
    for number in range(50):
        prefetcher.issued(number)
        prefetcher.on_evict(number)
    assert prefetcher.threshold == pytest.approx(0.9)
    stats = prefetcher.stats()
    assert (stats.issued, stats.used, stats.wasted) == (52, 1, 51)
    assert stats.precision == pytest.approx(1 / 52)


def test_pending_prefetches_are_bounded() -> None:
    prefetcher = Prefetcher(max_pending=3)
    for key in "ABCDE":
        prefetcher.issued(key)
    assert prefetcher.stats().wasted == 2
    assert prefetcher.on_hit("A") is False
    assert prefetcher.on_hit("E") is True


def test_a_threshold_outside_the_unit_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        Prefetcher(0.0)
