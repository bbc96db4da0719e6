"""The parts of asking, each alone: the ask_user tool against every server's recorded tool
call, the note's questions and answers, the callout, and the graph and scheduler."""

from __future__ import annotations

import json

import pytest

from tests.llm_servers import recorded
from tests.test_runtime_llm import BASE, MakeRuntime, request, runtime  # noqa: F401
from vault_bmad.engine.asking import OpenAsk, answers_of, missing, note_questions, realigned
from vault_bmad.engine.graph import TaskGraph
from vault_bmad.engine.scheduler import Scheduler
from vault_bmad.errors import AttemptFailed, FailureKind, TemplateRenderError
from vault_bmad.model.definitions import AgentDef, TaskDef
from vault_bmad.model.fields import listed_texts
from vault_bmad.runtimes import ask_tool
from vault_bmad.runtimes.base import Ask, Round
from vault_bmad.runtimes.llm_errors import refuses_tools
from vault_bmad.runtimes.loopback_llm import Answer, LoopbackLLM
from vault_bmad.runtimes.template import TemplateRuntime
from vault_bmad.vault.callout import MARKER, set_callout, strip_callout

QUESTIONS = ("Who is the target audience of the brief?", "Is there a deadline?")
TOOL_CALLS = [
    "llama_cpp/success_tool_calls",  # content "", id without call_ prefix
    "ollama/success_tool_calls",  # content "", an index in each call
    "vllm/success_tool_calls",  # content null, json.dumps spacing
    "vllm/success_named_tool_choice",  # finish_reason "stop" with tool calls
]


@pytest.mark.parametrize("fixture", TOOL_CALLS)
def test_every_server_s_tool_call_reads_as_an_ask_and_replays_as_sent(fixture: str) -> None:
    message = recorded(fixture).body["choices"][0]["message"]  # type: ignore[index]
    ask = ask_tool.asked(message)
    assert ask is not None and ask.questions == QUESTIONS
    [sent] = message["tool_calls"]
    assistant, tool = ask_tool.conversation([Round(ask, ("Shops", "June"))])
    assert assistant["content"] == message["content"]
    [replayed] = assistant["tool_calls"]
    assert replayed["id"] == sent["id"] and replayed["function"] == sent["function"]
    assert tool == {
        "role": "tool",
        "tool_call_id": sent["id"],
        "content": json.dumps(
            {
                "answers": [
                    {"question": QUESTIONS[0], "answer": "Shops"},
                    {"question": QUESTIONS[1], "answer": "June"},
                ]
            }
        ),
    }


def test_a_text_answer_is_no_ask_and_another_tool_is_malformed() -> None:
    stop = recorded("llama_cpp/success_stop").body["choices"][0]["message"]  # type: ignore[index]
    assert ask_tool.asked(stop) is None
    weather = recorded("openai/success_tool_calls").body["choices"][0]["message"]  # type: ignore[index]
    with pytest.raises(ask_tool.MalformedCall, match="get_current_weather"):
        ask_tool.asked(weather)


def test_two_calls_in_one_message_each_get_their_own_answers() -> None:
    calls = [
        {
            "id": "a",
            "type": "function",
            "function": {"name": "ask_user", "arguments": '{"questions": ["One?"]}'},
        },
        {
            "id": "b",
            "type": "function",
            "function": {"name": "ask_user", "arguments": {"questions": ["Two?", "Three?"]}},
        },
    ]
    ask = ask_tool.asked({"role": "assistant", "content": None, "tool_calls": calls})
    assert ask is not None and ask.questions == ("One?", "Two?", "Three?")
    _, first, second = ask_tool.conversation([Round(ask, ("1", "2", "3"))])
    assert (first["tool_call_id"], second["tool_call_id"]) == ("a", "b")
    assert [a["answer"] for a in json.loads(second["content"])["answers"]] == ["2", "3"]


REFUSALS = [
    "llama_cpp/tools_without_jinja",
    "vllm/auto_tool_choice_disabled",
    "ollama/model_without_tools",
]


@pytest.mark.parametrize("fixture", REFUSALS)
def test_a_server_that_refuses_tools_is_asked_again_without_them_and_remembered(
    fixture: str,
    runtime: MakeRuntime,  # noqa: F811
) -> None:
    refusal = recorded(fixture)
    assert refuses_tools(refusal.status, json.dumps(refusal.body))

    def refuse(call: int, body: dict[str, object]) -> Answer | None:
        return refusal if "tools" in body else None

    with LoopbackLLM(script=refuse) as server:
        llm = runtime(server.base_url)
        first = llm.run(request(may_ask=True))
        second = llm.run(request(may_ask=True))
        sent = [("tools" in r.body) for r in server.received]
    assert first.text.startswith("loopback reply") and second.ask is None
    assert sent == [True, False, False]


def test_other_errors_are_no_refusal_of_tools() -> None:
    for fixture in (
        "llama_cpp/context_length_exceeded",
        "vllm/invalid_temperature",
        "ollama/model_not_found",
    ):
        answer = recorded(fixture)
        assert not refuses_tools(answer.status, json.dumps(answer.body)), fixture


def test_a_malformed_call_is_a_deterministic_failure(runtime: MakeRuntime) -> None:  # noqa: F811
    bad = json.loads(json.dumps(recorded("ollama/success_tool_calls").body))
    bad["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = "{not json"
    with (
        LoopbackLLM(script=lambda call, body: Answer(200, bad)) as server,
        pytest.raises(AttemptFailed) as caught,
    ):
        runtime(server.base_url).run(request(may_ask=True))
    assert caught.value.failure.kind is FailureKind.DETERMINISTIC
    assert "malformed tool call: its arguments are not JSON" in caught.value.failure.message


def waiting(
    task_id: str, questions: tuple[str, ...], at: float, step: str | None = None
) -> OpenAsk:
    return OpenAsk(task_id, "Tasks/Run.md", step, "pm", 1, Ask(questions), at - 1, at)


def test_the_note_lists_each_waiting_task_s_questions_and_answers_move_with_them() -> None:
    a = waiting("run/a", ("A1?", "A2?"), 1.0, "a")
    b = waiting("run/b", ("B1?",), 2.0, "b")
    assert note_questions([a]) == ["A1?", "A2?"]
    assert note_questions([a, b]) == ["a: A1?", "a: A2?", "b: B1?"]
    assert answers_of([a, b], "run/b", ["x", ""]) == [""]
    assert missing([a, b], ["x", "", "z"]) == [2]
    # a is answered and goes on: b's answer moves to the first place
    assert realigned([a, b], [b], ["x", "y", "z"]) == ["z"]
    # a asks a second round: its old answers are over, b's stay
    a2 = OpenAsk("run/a", "Tasks/Run.md", "a", "pm", 2, Ask(("A3?",)), 2.5, 3.0)
    assert realigned([b], [b, a2], ["z"]) == ["z"]
    assert realigned([], [a2], ["old", "answers"]) == []


def test_answers_are_read_item_by_item_as_text() -> None:
    assert listed_texts(["Teams", 3, True, None, {"a": 1}, " x "]) == (
        "Teams",
        "3",
        "yes",
        "",
        "",
        "x",
    )
    assert listed_texts("one answer") == ("one answer",)
    assert listed_texts(None) == ()


NOTE = "---\r\ntype: task\r\n---\r\n# My heading\r\n\r\nMy request.\r\n"  # Windows


def test_the_callout_goes_above_the_user_s_text_and_only_it_changes() -> None:
    with_callout = set_callout(NOTE, "> [!question] Waiting\n> 1. Why?")
    assert with_callout.endswith("# My heading\r\n\r\nMy request.\r\n")
    assert f"{MARKER}\r\n> [!question] Waiting\r\n> 1. Why?\r\n\r\n# My heading" in with_callout
    replaced = set_callout(with_callout, "> [!question]- Answered")
    assert replaced.count(MARKER) == 1 and "Why?" not in replaced
    assert set_callout(replaced, None) == NOTE
    body = with_callout.split("---\r\n", 2)[2]
    assert strip_callout(body) == "# My heading\r\n\r\nMy request.\r\n"


def task(task_id: str, *deps: str) -> TaskDef:
    return TaskDef(id=task_id, path=f"{task_id}.md", title=task_id, agent="w", depends_on=deps)


def test_a_task_waiting_for_answers_stalls_only_what_depends_on_it() -> None:
    graph = TaskGraph({"ask": [], "after": ["ask"], "beside": []})
    graph.ask("ask")
    assert graph.pending() == ("beside",)
    assert graph.mark_done("beside") == ()
    assert graph.pending() == ()  # nothing can move but the answers
    graph.answered("ask")
    assert graph.pending() == ("ask", "after")
    assert graph.mark_done("ask") == ("after",)


def test_asking_gives_the_slot_back_and_answers_queue_it_again() -> None:
    scheduler = Scheduler([AgentDef(id="w", name="W", path="W.md", capacity=1)])
    scheduler.submit([task("ask"), task("other")])
    [first] = scheduler.dispatch()
    assert scheduler.dispatch() == []  # one slot
    scheduler.ask(first.task.id, seconds=0.1)
    assert scheduler.phase(first.task.id) == "needs-input"
    [second] = scheduler.dispatch()  # the slot is free
    assert second.task.id != first.task.id
    scheduler.finish(second.task.id, ok=True, seconds=0.1)
    assert not scheduler.pending()  # the run can end while a task waits
    scheduler.answered(first.task)
    [again] = scheduler.dispatch()
    assert (again.task.id, again.attempt) == (first.task.id, 2)


ASKS = '{% set a = ask_user(["Who?", "When?"]) %}\n{{ a[0] }} / {{ a[1] }}'


def test_a_template_asks_in_its_sandboxed_worker_and_renders_with_the_answers() -> None:
    template = TemplateRuntime(workers=1)
    try:
        asked = template.run(request(runtime="template", template=ASKS, may_ask=True))
        assert asked.ask == Ask(("Who?", "When?")) and asked.text == ""
        answered = request(
            runtime="template", template=ASKS, rounds=(Round(asked.ask, ("Me", "Now")),)
        )
        assert template.run(answered).text.strip() == "Me / Now"
        with pytest.raises(TemplateRenderError, match="no more questions may be asked"):
            template.run(request(runtime="template", template=ASKS, may_ask=False))
        with pytest.raises(TemplateRenderError, match=r"line 1.*question 1 is not text"):
            template.run(request(runtime="template", template="{{ ask_user([3]) }}", may_ask=True))
    finally:
        template.close()
