"""Agent choice: text similarity, expertise, the weighted score and each strategy."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from engine_clock import FakeClock

from vault_bmad.engine.balancer import Balancer, Candidate
from vault_bmad.engine.health import HealthMonitor
from vault_bmad.engine.similarity import TfIdfIndex, Tokenizer
from vault_bmad.model.definitions import AgentDef, TaskDef

# The sample vault's team, as the vault reader builds it.
TEAM = [
    AgentDef(
        id="analyst",
        name="Mary",
        path="Agents/Analyst.md",
        title="Business Analyst",
        expertise=("market research", "competitive analysis", "brainstorming", "project brief"),
    ),
    AgentDef(
        id="architect",
        name="Winston",
        path="Agents/Architect.md",
        title="Architect",
        expertise=("architecture", "api design", "scalability", "infrastructure", "security"),
    ),
    AgentDef(
        id="dev",
        name="James",
        path="Agents/Developer.md",
        title="Full Stack Developer",
        expertise=("implementation", "coding", "refactoring", "sprint planning", "debugging"),
    ),
    AgentDef(
        id="pm",
        name="John",
        path="Agents/Product Manager.md",
        title="Product Manager",
        expertise=("product requirements", "prd", "prioritization", "roadmap", "user stories"),
    ),
    AgentDef(
        id="qa",
        name="Quinn",
        path="Agents/QA.md",
        title="Test Architect",
        expertise=("testing", "test strategy", "quality gates", "risk assessment"),
    ),
]


def task(task_id: str, title: str = "", body: str = "", **fields: object) -> TaskDef:
    return TaskDef(id=task_id, path=f"Tasks/{task_id}.md", title=title, body=body, **fields)  # type: ignore[arg-type]


def free(*agent_ids: str, **fields: object) -> list[Candidate]:
    return [Candidate(agent_id=a, capacity=100, **fields) for a in agent_ids]  # type: ignore[arg-type]


def test_tokens_split_hyphens_underscores_and_camel_case_and_stem() -> None:
    tokenize = Tokenizer()
    assert tokenize("API-design") == tokenize("api_design") == tokenize("apiDesign")
    assert sorted(tokenize("designing the APIs")) == sorted(tokenize("API design"))
    assert "the" not in tokenize("the architecture")


def test_cosine_similarity_ranks_the_closest_document_first() -> None:
    index = TfIdfIndex(
        {
            "cooking": [("recipes for baking bread and cakes", 1.0)],
            "gardening": [("growing tomatoes and roses in the garden", 1.0)],
        }
    )
    scores = index.similarities([("how to bake a cake", 1.0)])
    assert scores["cooking"] > 0.3 and scores["gardening"] == 0.0
    same = index.similarities([("recipes for baking bread and cakes", 1.0)])
    assert same["cooking"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("title", "body", "expected"),
    [
        ("Design the architecture", "Choose the API design and plan for scalability.", "architect"),
        ("Write the PRD", "Turn the brief into product requirements and user stories.", "pm"),
        ("Research the market", "Competitive analysis of similar tools.", "analyst"),
        ("Write the test strategy", "Which risks deserve tests, and the quality gates.", "qa"),
        ("Implement the login page", "Coding and debugging of the form.", "dev"),
    ],
)
def test_expertise_picks_the_right_agent(title: str, body: str, expected: str) -> None:
    balancer = Balancer(TEAM, rng=random.Random(1))
    work = task("t", title, body)
    assert balancer.qualifying(work) == {expected}
    everyone = free(*(a.id for a in TEAM))
    assert balancer.choose(work, everyone) == expected


def test_tags_count_toward_the_match() -> None:
    balancer = Balancer(TEAM)
    relative = balancer.matcher.relative(task("t", "Look at this", tags=("security",)))
    assert relative["architect"] == 1.0 and relative["pm"] == 0.0


def test_a_task_no_agent_matches_may_go_to_anyone() -> None:
    balancer = Balancer(TEAM)
    assert balancer.qualifying(task("t", "Zzyzx")) == {a.id for a in TEAM}


def test_a_named_agent_is_used_or_waited_for() -> None:
    balancer = Balancer(TEAM)
    work = task("t", "Write the PRD", agent="pm")
    assert balancer.choose(work, free("dev", "pm")) == "pm"
    full = [Candidate("pm", capacity=2, in_flight=2), *free("dev")]
    assert balancer.choose(work, full) is None


def test_when_the_named_agent_is_out_the_best_qualifying_other_takes_it() -> None:
    twin = AgentDef(id="pm2", name="Jane", path="Agents/PM2.md", expertise=("prd", "roadmap"))
    balancer = Balancer([*TEAM, twin])
    work = task("t", "Write the PRD", "product requirements and the roadmap", agent="pm")
    assert balancer.choose(work, free("dev", "pm2", "qa")) == "pm2"
    assert balancer.choose(task("u", "Write the PRD", agent="pm"), free("dev", "qa")) is None


def test_weighted_score_parts() -> None:
    balancer = Balancer(TEAM)
    work = task("t", "Design the architecture")
    fast = Candidate("architect", capacity=2, in_flight=1, health=0.9, peak_latency=1.0)
    slow = Candidate("qa", capacity=1, error_rate=0.5, peak_latency=4.0, backlog=1)
    scores = {s.agent_id: s for s in balancer.scores(work, [fast, slow])}
    assert scores["architect"].expertise == 1.0
    assert scores["architect"].availability == pytest.approx(0.9 * 0.5)
    assert scores["architect"].performance == 1.0 and scores["qa"].performance == 0.5 * 0.25
    assert scores["qa"].load == pytest.approx(1 / (1 + 1 / 1))
    assert scores["architect"].total == pytest.approx(
        0.4 * 1.0 + 0.3 * 0.45 + 0.2 * 1.0 + 0.1 * (1 / 1.5)
    )


GENERIC = [AgentDef(id=n, name=n, path=f"{n}.md") for n in ("a", "b", "c")]


def test_round_robin_takes_turns() -> None:
    balancer = Balancer(GENERIC, strategy="round_robin")
    picks = [balancer.choose(task(f"t{i}"), free("a", "b", "c")) for i in range(7)]
    assert picks == ["a", "b", "c", "a", "b", "c", "a"]
    assert balancer.choose(task("x"), free("a", "c")) == "c"  # b is busy: skipped


def test_smooth_weighted_round_robin_matches_weights_exactly_and_interleaves() -> None:
    balancer = Balancer(GENERIC, strategy="weighted_round_robin")
    pool = [Candidate("a", weight=5, capacity=99), *free("b", "c")]
    picks = [balancer.choose(task(f"t{i}"), pool) for i in range(7)]
    assert picks == ["a", "a", "b", "a", "c", "a", "a"]  # nginx's documented sequence
    more = Counter(balancer.choose(task(f"u{i}"), pool) for i in range(7 * 20))
    assert more == {"a": 100, "b": 20, "c": 20}


def test_least_connections_evens_out_in_flight_work() -> None:
    balancer = Balancer(GENERIC, strategy="least_connections")
    in_flight = {"a": 3, "b": 0, "c": 1}
    for i in range(8):
        pool = [Candidate(agent, capacity=10, in_flight=n) for agent, n in in_flight.items()]
        chosen = balancer.choose(task(f"t{i}"), pool)
        assert chosen is not None
        assert in_flight[chosen] == min(in_flight.values())
        in_flight[chosen] += 1
    assert in_flight == {"a": 4, "b": 4, "c": 4}


def test_least_connections_weighs_by_weight() -> None:
    balancer = Balancer(GENERIC, strategy="least_connections")
    pool = [
        Candidate("a", weight=4, capacity=10, in_flight=3),
        Candidate("b", capacity=10, in_flight=1),
    ]
    assert balancer.choose(task("t"), pool) == "a"  # 3/4 < 1/1


def run_traffic(strategy: str, tasks: int = 800) -> Counter[str]:
    """Traffic over two good agents, a slow one and a flaky one, learning as it goes."""
    clock = FakeClock()
    health = HealthMonitor(clock=clock, threshold=0.0)  # keep everyone in: balancing alone
    seconds = {"good1": 0.2, "good2": 0.25, "slow": 3.0, "flaky": 0.2}
    team = [AgentDef(id=agent, name=agent, path=f"{agent}.md") for agent in seconds]
    balancer = Balancer(team, strategy=strategy, rng=random.Random(7))
    outcome = random.Random(11)
    chosen: Counter[str] = Counter()
    for i in range(tasks):
        pool = [
            Candidate(
                agent,
                capacity=4,
                health=health.score(agent),
                peak_latency=health.peak_latency(agent),
                error_rate=health.error_rate(agent),
            )
            for agent in seconds
        ]
        agent = balancer.choose(task(f"t{i}"), pool)
        assert agent is not None
        if i >= tasks // 2:  # count once history has built up
            chosen[agent] += 1
        ok = agent != "flaky" or outcome.random() < 0.5
        clock.advance(seconds[agent] / 4)  # four at a time on average
        health.record(agent, ok=ok, seconds=seconds[agent], timeout=30.0)
    return chosen


def test_adaptive_shifts_load_away_from_a_slow_and_an_erroring_agent() -> None:
    adaptive = run_traffic("adaptive")
    total = sum(adaptive.values())
    # Fair shares would be 1/4 each. Of two random choices the worse loses, so the flaky agent
    # (worst) is hardly used, and the slow one about as often as it is drawn with the flaky
    # one (1/6), plus the retries its decaying peak-EWMA latency invites.
    assert (adaptive["good1"] + adaptive["good2"]) / total > 0.7
    assert adaptive["slow"] / total < 0.22 and adaptive["flaky"] / total < 0.05
    fair = run_traffic("round_robin")
    assert max(fair.values()) - min(fair.values()) <= 1  # the peer that ignores both


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="strategy"):
        Balancer(GENERIC, strategy="random")


def test_adaptive_gives_work_to_the_earliest_expected_finish() -> None:
    balancer = Balancer(GENERIC, rng=random.Random(1))
    fast = Candidate("a", capacity=2, expected_seconds=2.0)
    slow = Candidate("b", capacity=2, expected_seconds=6.0)
    flaky = Candidate("c", capacity=2, expected_seconds=1.0, error_rate=0.8)  # 5 s, retries in
    assert {balancer.choose(task(f"t{i}"), [fast, slow, flaky]) for i in range(20)} == {"a"}
    untried = Candidate("c", capacity=2)  # counts as the slowest known: tried when others fill
    assert balancer.choose(task("u"), [slow, untried, fast]) == "a"
    assert balancer.choose(task("v"), [slow, untried]) in ("b", "c")


def test_adaptive_tells_near_ties_apart_by_score() -> None:
    balancer = Balancer(GENERIC, rng=random.Random(1))
    idle = Candidate("a", capacity=4, expected_seconds=2.05)
    busy = Candidate("b", capacity=4, in_flight=3, expected_seconds=2.0)
    assert {balancer.choose(task(f"t{i}"), [busy, idle]) for i in range(10)} == {"a"}
