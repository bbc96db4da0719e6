"""Execution-time prediction: moving averages, complexity scaling and fallbacks."""

from __future__ import annotations

import math

import pytest

from vault_bmad.engine.ledger import observations
from vault_bmad.engine.predictor import DurationPredictor, Observation
from vault_bmad.metrics.records import Attempt
from vault_bmad.model.definitions import TaskDef


def test_falls_back_from_agent_and_kind_to_agent_kind_global_and_default() -> None:
    predictor = DurationPredictor(default_seconds=7.0)
    assert predictor.predict("step:prd", agent_id="pm").basis == "default"
    assert predictor.predict("step:prd", agent_id="pm").seconds == 7.0
    predictor.observe("architect", "step:arch", 10.0)
    assert predictor.predict("step:prd", agent_id="pm").basis == "global"
    assert predictor.predict("step:prd", agent_id="pm").seconds == pytest.approx(10.0)
    predictor.observe("dev", "step:prd", 4.0)
    assert predictor.predict("step:prd", agent_id="pm").basis == "kind"
    kind = predictor.predict("step:prd", agent_id="pm").seconds
    assert 4.0 < kind < math.sqrt(40.0)  # one call of the kind, pulled toward all history's
    predictor.observe("pm", "step:brief", 2.0)
    assert predictor.predict("step:prd", agent_id="pm").basis == "agent"
    predictor.observe("pm", "step:prd", 3.0)
    prediction = predictor.predict("step:prd", agent_id="pm")
    assert (prediction.basis, prediction.samples) == ("agent+kind", 1)
    assert 2.0 < prediction.seconds < 4.0  # its call of 3 s, pulled toward pm's and all's
    assert predictor.predict("step:prd").basis == "kind"  # no agent: any agent's history


def test_one_short_call_does_not_make_a_slow_agent_look_fastest() -> None:
    predictor = DurationPredictor(alpha=0.3)
    for _ in range(10):
        predictor.observe("fast", "task", 1.0)
        predictor.observe("slow", "task", 2.0)
    predictor.observe("new", "task", 0.9)  # as slow as `slow`, but it drew a short task
    fast = predictor.predict("task", agent_id="fast").seconds
    new = predictor.predict("task", agent_id="new").seconds
    assert fast < new < 2.0  # one call says little: its own mean alone would be 0.9
    for _ in range(10):
        predictor.observe("new", "task", 0.9)
    assert predictor.predict("task", agent_id="new").seconds < fast  # ten calls say more


def test_history_is_a_moving_average_per_unit_of_complexity() -> None:
    predictor = DurationPredictor(alpha=0.5)
    predictor.observe("dev", "task", 4.0, complexity=2.0)  # 2 s per unit
    predictor.observe("dev", "task", 12.0, complexity=3.0)  # 4 s per unit
    unit = math.exp(math.log(2.0) + 0.5 * (math.log(4.0) - math.log(2.0)))  # geometric
    assert math.isclose(predictor.predict("task", 1.0, "dev").seconds, unit)
    assert math.isclose(predictor.predict("task", 5.0, "dev").seconds, 5 * unit)


def test_recent_history_outweighs_old() -> None:
    predictor = DurationPredictor(alpha=0.3)
    for _ in range(20):
        predictor.observe("dev", "task", 10.0)
    for _ in range(10):
        predictor.observe("dev", "task", 1.0)
    assert predictor.predict("task", agent_id="dev").seconds < 1.5


def test_min_samples_holds_back_thin_history() -> None:
    predictor = DurationPredictor(min_samples=3)
    predictor.observe("pm", "step:prd", 9.0)
    predictor.observe("qa", "step:prd", 9.0)
    predictor.observe("qa", "task", 3.0)
    prediction = predictor.predict("step:prd", agent_id="pm")
    assert prediction.basis == "global" and prediction.samples == 3


def test_learn_replays_history_and_predict_task_uses_the_task() -> None:
    predictor = DurationPredictor()
    predictor.learn([Observation("architect", "step:arch", 6.0), Observation("dev", "task", 1.0)])
    task = TaskDef(id="t", path="t.md", title="T", agent="architect", step="arch", complexity=2)
    assert task.kind == "step:arch"
    architect, dev = predictor.predict_task(task), predictor.predict_task(task, agent_id="dev")
    assert predictor.predict("step:arch", agent_id="architect").basis == "agent+kind"
    assert predictor.predict("step:arch", agent_id="dev").basis == "agent"  # dev's own
    assert 2.0 < dev < architect < 12.0  # complexity 2, each pulled toward all history


def test_one_long_task_does_not_make_a_fast_agent_look_slow() -> None:
    predictor = DurationPredictor()
    for seconds in (0.5, 0.6, 4.0):  # twice as fast as slow, but it drew one long task
        predictor.observe("fast", "task", seconds)
    for seconds in (1.0, 1.2, 1.1):
        predictor.observe("slow", "task", seconds)
    fast = predictor.predict("task", agent_id="fast").seconds
    assert fast < predictor.predict("task", agent_id="slow").seconds  # a plain mean: 1.7 > 1.1


def test_history_is_the_calls_as_their_workers_timed_them_else_the_attempts_span() -> None:
    def done(task_id: str, call_s: float | None, cache: str = "miss") -> Attempt:
        return Attempt(task_id, "dev", "llm", 1, "done", 0, 10, 12.5, cache=cache, call_s=call_s)

    found = observations([done("a", 0.4), done("b", None), done("c", None, cache="L1")], {})
    assert [(o.agent_id, o.seconds) for o in found] == [("dev", 0.4), ("dev", 2.5)]


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        DurationPredictor(alpha=0)
    with pytest.raises(ValueError):
        DurationPredictor().observe("a", "k", -1.0)


def test_early_history_is_a_plain_mean_not_the_latest_sample() -> None:
    predictor = DurationPredictor(alpha=0.3)
    for seconds in (9.0, 1.0, 2.0):
        predictor.observe("dev", "task", seconds)
    assert math.isclose(predictor.predict("task", agent_id="dev").seconds, 18 ** (1 / 3))
