"""Agents asking their users through the note, in `vault-bmad run`: real vaults, real SQLite,
templates that call `ask_user` and an LLM server on loopback that calls the tool."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import frontmatter
import pytest
from click.testing import CliRunner, Result

from tests.conftest import WriteNote
from tests.llm_servers import recorded
from vault_bmad.cli import main
from vault_bmad.metrics.store import Store
from vault_bmad.runner import EXIT_FAILED, EXIT_NEEDS_INPUT
from vault_bmad.runtimes.loopback_llm import Answer, LoopbackLLM

ASKING_TEMPLATE = """
    ---
    type: template
    ---
    {% set a = ask_user(["Who reads it?", "By when?"]) -%}
    For {{ a[0] }}, by {{ a[1] }}: {{ body }}
    """


def run(vault: Path, *args: str, server: LoopbackLLM | None = None) -> Result:
    env = {"XDG_CONFIG_HOME": str(vault.parent / "xdg")}
    if server is not None:
        env["VAULT_BMAD_LLM_BASE_URL"] = server.base_url
    return CliRunner().invoke(main, ["run", str(vault), *args], env=env)


def props(note: Path) -> dict[str, Any]:
    return dict(frontmatter.load(note).metadata)


def answer(note: Path, *answers: str) -> None:
    """Set the note's `answers:` as a user does: a YAML list among its properties."""
    text = note.read_text()
    head, body = text.split("\n---\n", 1)
    lines = [line for line in head.split("\n") if not line.startswith(("answers:", "  - "))]
    listed = [f"  - {json.dumps(a)}" for a in answers]
    note.write_text("\n".join([*lines, "answers:", *listed]) + "\n---\n" + body)


@pytest.fixture
def asking(vault: Path, write: WriteNote) -> Path:
    """A template agent whose template asks two questions, and a task for it."""
    write("Agents/Writer.md", "---\ntype: agent\n---\nYou write.\n")
    write("Templates/Ask.md", ASKING_TEMPLATE)
    return write(
        "Tasks/Brief.md", "---\ntype: task\nagent: writer\ntemplate: '[[Ask]]'\n---\nA brief.\n"
    )


def test_run_leaves_it_waiting_with_a_distinct_code_and_the_next_run_resumes(
    vault: Path, asking: Path
) -> None:
    first = run(vault)
    assert first.exit_code == EXIT_NEEDS_INPUT, first.output
    assert "needs-input: tasks/brief: (1) Who reads it? (2) By when?" in first.output
    assert "1 needs-input" in first.output
    assert props(asking)["status"] == "needs-input"
    assert props(asking)["questions"] == ["Who reads it?", "By when?"]
    report = (vault / first.output.split("report: ")[1].splitlines()[0]).read_text()
    assert "## Waiting for your answers" in report and "  2. By when?" in report

    # Fewer answers than questions: it keeps waiting, and the note says which is missing.
    answer(asking, "engineers")
    second = run(vault)
    assert second.exit_code == EXIT_NEEDS_INPUT, second.output
    assert props(asking)["status"] == "needs-input"
    assert "> Still unanswered: 2." in asking.read_text()

    answer(asking, "engineers", "Friday")
    third = run(vault, "--format", "json")
    assert third.exit_code == 0, third.output
    assert json.loads(third.output)["tasks"]["tasks/brief"]["status"] == "done"
    result = frontmatter.load(vault / "Outputs" / "Tasks" / "Brief - result.md")
    assert result.content.strip() == "For engineers, by Friday: A brief."
    note = asking.read_text()
    assert "> [!question]- Questions answered" in note and ">    Answer: Friday" in note
    assert note.rstrip().endswith("A brief.")  # the user's body, as it was

    # The period's report counts the round and how long the answer took.
    env = {"XDG_CONFIG_HOME": str(vault.parent / "xdg")}
    report = CliRunner().invoke(main, ["report", str(vault), "--format", "json"], env=env)
    figures = json.loads(report.output)["questions"]
    assert (figures["asked"], figures["answered"], figures["waiting"]) == (1, 1, [])
    assert figures["answer_p50_s"] >= 0
    written = (vault / json.loads(report.output)["report"]).read_text()
    assert "## Questions to you" in written and "| rounds answered | 1 |" in written


def test_answers_edited_after_the_task_ended_change_nothing_until_it_runs_again(
    vault: Path, asking: Path
) -> None:
    run(vault)
    answer(asking, "engineers", "Friday")
    assert run(vault).exit_code == 0
    answer(asking, "designers", "Monday")
    after_edit = run(vault, "--format", "json")
    assert json.loads(after_edit.output)["tasks"] == {}  # nothing ran
    output = vault / "Outputs" / "Tasks" / "Brief - result.md"
    assert "For engineers, by Friday" in output.read_text()

    # Run again: the agent asks again (no cache serves a question), and the note answers it.
    asking.write_text(asking.read_text().replace("status: done", "status: todo"))
    again = run(vault)
    assert again.exit_code == 0, again.output
    assert "For designers, by Monday" in output.read_text()
    assert props(asking)["cache"] == "miss"
    with Store(vault / ".vault-bmad" / "state.db") as store:
        rounds = store.asks()
    assert [json.loads(r.answers or "[]") for r in rounds] == [
        ["engineers", "Friday"],
        ["designers", "Monday"],
    ]
    assert rounds[1].answered_at == rounds[1].asked_at  # answered at once, from the note
    assert [r.current for r in rounds] == [0, 0]  # both conversations are over


def _tool_call(questions: object, call_id: str, arguments: str | None = None) -> Answer:
    """An answer shaped as Ollama's recorded tool call, asking `questions`."""
    body = json.loads(json.dumps(recorded("ollama/success_tool_calls").body))
    call = body["choices"][0]["message"]["tool_calls"][0]
    call["id"] = call_id
    call["function"]["arguments"] = arguments or json.dumps({"questions": questions})
    return Answer(200, body)


def test_several_rounds_carry_the_whole_conversation_up_to_the_limit(
    vault: Path, write: WriteNote
) -> None:
    write("Agents/Pm.md", "---\ntype: agent\nruntime: llm\n---\nYou write PRDs.\n")
    task = write("Tasks/Prd.md", "---\ntype: task\nagent: pm\n---\nWrite the PRD.\n")

    def rounds(call: int, body: dict[str, Any]) -> Answer | None:
        told = sum(1 for m in body["messages"] if m["role"] == "tool")
        return (
            [_tool_call(["Which market?"], "call_a"), _tool_call(["Why?"], "call_b")][told]
            if told < 2
            else None
        )

    with LoopbackLLM(script=rounds) as server:
        assert run(vault, server=server).exit_code == EXIT_NEEDS_INPUT
        answer(task, "Europe")
        assert run(vault, server=server).exit_code == EXIT_NEEDS_INPUT
        assert props(task)["questions"] == ["Why?"]
        assert "answers" not in props(task)  # the first round's answer is over
        assert "Europe" in task.read_text()  # ... and kept in the callout
        answer(task, "Growth")
        assert run(vault, server=server).exit_code == 0
        last = server.received[-1].messages
    assert [m["role"] for m in last] == ["system", "user", "assistant", "tool", "assistant", "tool"]
    assert [m["tool_call_id"] for m in last if m["role"] == "tool"] == ["call_a", "call_b"]
    assert json.loads(last[-1]["content"])["answers"] == [{"question": "Why?", "answer": "Growth"}]

    # Past max_question_rounds, another question fails the task, saying why.
    task.write_text(task.read_text().replace("status: done", "status: todo"))
    (vault / "vault-bmad.toml").write_text("max_question_rounds = 1\n")
    with LoopbackLLM(script=rounds) as server:
        run(vault, server=server)
        answer(task, "Europe")
        limited = run(vault, server=server)
    assert limited.exit_code == EXIT_FAILED, limited.output
    assert props(task)["status"] == "failed"
    assert "asked more than 1 rounds of questions (max_question_rounds)" in props(task)["error"]


@pytest.mark.parametrize(
    ("answer_", "says"),
    [
        (_tool_call(None, "c1", arguments='{"questions": ["Who'), "arguments are not JSON"),
        (_tool_call([], "c2"), "questions must be a non-empty list"),
        (_tool_call(["fine", 7], "c3"), "question 2 is not text"),
        (recorded("openai/success_tool_calls"), "'get_current_weather', a tool vault-bmad does"),
    ],
)
def test_a_malformed_tool_call_fails_its_task_at_once(
    vault: Path, write: WriteNote, answer_: Answer, says: str
) -> None:
    write("Agents/Pm.md", "---\ntype: agent\nruntime: llm\n---\n")
    task = write("Tasks/Prd.md", "---\ntype: task\nagent: pm\n---\nWrite the PRD.\n")
    write("Tasks/Else.md", "---\ntype: task\nagent: pm\n---\nSomething else.\n")
    with LoopbackLLM(script=lambda call, body: answer_ if "PRD" in json.dumps(body) else None) as s:
        result = run(vault, server=s)
        prd_calls = sum("PRD" in json.dumps(r.body) for r in s.received)
    assert result.exit_code == EXIT_FAILED
    assert props(task)["status"] == "failed"
    assert "malformed tool call" in props(task)["error"] and says in props(task)["error"]
    assert prd_calls == 1  # never retried: asking the same way gets the same call
    assert props(vault / "Tasks" / "Else.md")["status"] == "done"


STEPS_WORKFLOW = """
    ---
    type: workflow
    steps:
      - id: interview
        agent: writer
        template: "[[Ask]]"
      - id: persona
        agent: writer
        requires: [interview]
      - id: research
        agent: writer
    ---
    """


def test_a_workflow_step_that_asks_pauses_only_its_own_branch(
    vault: Path, write: WriteNote, asking: Path
) -> None:
    asking.unlink()
    write("Workflows/Discovery.md", STEPS_WORKFLOW)
    run_note = write("Tasks/Discover.md", "---\ntype: task\nworkflow: '[[Discovery]]'\n---\nGo.\n")
    first = run(vault, "--format", "json")
    assert first.exit_code == EXIT_NEEDS_INPUT, first.output
    tasks = json.loads(first.output)["tasks"]
    assert {t: o["status"] for t, o in tasks.items()} == {
        "tasks/discover/interview": "needs-input",
        "tasks/discover/research": "done",  # another branch goes on
    }  # persona waits for the interview; the run waits for its steps
    assert props(run_note)["status"] == "needs-input"
    assert props(run_note)["questions"] == ["Who reads it?", "By when?"]
    answer(run_note, "engineers", "Friday")
    second = run(vault, "--format", "json")
    assert second.exit_code == 0, second.output
    assert set(json.loads(second.output)["tasks"]) == {
        "tasks/discover/interview",
        "tasks/discover/persona",
        "tasks/discover",
    }
    assert props(run_note)["status"] == "done"
    interview = vault / "Outputs" / "Tasks" / "Discover" / "interview.md"
    assert "For engineers, by Friday: Go." in interview.read_text()


def test_two_steps_asking_on_one_note_are_answered_in_turn(
    vault: Path, write: WriteNote, asking: Path
) -> None:
    asking.unlink()
    write("Templates/Other.md", "---\ntype: template\n---\n{{ ask_user('Budget?')[0] }}\n")
    write(
        "Workflows/Pair.md",
        """
        ---
        type: workflow
        steps:
          - {id: first, agent: writer, template: "[[Ask]]"}
          - {id: second, agent: writer, template: "[[Other]]"}
        ---
        """,
    )
    note = write("Tasks/Both.md", "---\ntype: task\nworkflow: '[[Pair]]'\n---\nGo.\n")
    assert run(vault, "--workers", "1").exit_code == EXIT_NEEDS_INPUT
    asked = props(note)["questions"]
    assert sorted(asked) == ["first: By when?", "first: Who reads it?", "second: Budget?"]
    budget = asked.index("second: Budget?")
    answers = [""] * 3
    answers[budget] = "small"
    answer(note, *answers)
    assert run(vault).exit_code == EXIT_NEEDS_INPUT  # only the second step goes on
    assert props(note)["questions"] == ["Who reads it?", "By when?"]
    assert props(note).get("answers") is None  # "small" was the second step's, now used
    answer(note, "engineers", "Friday")
    assert run(vault).exit_code == 0
    assert (
        (vault / "Outputs" / "Tasks" / "Both" / "second.md").read_text().strip().endswith("small")
    )


V4_WORKFLOW = """
    workflow:
      id: tiny
      name: Tiny
      sequence:
        - agent: analyst
          creates: brief.md
          notes: "Elicit, then write the brief."
        - agent: pm
          creates: prd.md
          requires: brief.md
"""


def test_in_a_v4_sequence_the_steps_after_an_asking_step_wait_for_it(
    vault: Path, write: WriteNote
) -> None:
    for agent in ("analyst", "pm"):
        write(f"Agents/{agent}.md", f"---\ntype: agent\nid: {agent}\nruntime: llm\n---\n")
    write("Workflows/tiny.yaml", textwrap.dedent(V4_WORKFLOW).lstrip())
    note = write("Tasks/Start.md", "---\ntype: task\nworkflow: tiny\n---\nA notes app.\n")
    write("Tasks/Unrelated.md", "---\ntype: task\nagent: pm\n---\nName three risks.\n")

    def elicits(call: int, body: dict[str, Any]) -> Answer | None:
        messages = body["messages"]
        eliciting = "Elicit" in json.dumps(messages) and messages[-1]["role"] == "user"
        return _tool_call(["Who is it for?"], "call_e") if eliciting else None

    with LoopbackLLM(script=elicits) as server:
        first = run(vault, "--format", "json", server=server)
        statuses = {t: o["status"] for t, o in json.loads(first.output)["tasks"].items()}
        assert statuses == {"tasks/start/brief": "needs-input", "tasks/unrelated": "done"}
        assert props(note)["status"] == "needs-input"
        answer(note, "Students")
        second = run(vault, "--format", "json", server=server)
        prd = next(r.messages for r in server.received if "Output of Docs/brief.md" in str(r.body))
    assert second.exit_code == 0, second.output
    assert props(note)["status"] == "done"
    assert "Students" not in json.dumps(prd)  # pm reads the brief, not the conversation
    assert (vault / "Docs" / "brief.md").is_file() and (vault / "Docs" / "prd.md").is_file()


def test_with_no_rounds_allowed_no_tool_is_offered(vault: Path, write: WriteNote) -> None:
    write("Agents/Pm.md", "---\ntype: agent\nruntime: llm\n---\n")
    write("Tasks/Prd.md", "---\ntype: task\nagent: pm\n---\nWrite the PRD.\n")
    (vault / "vault-bmad.toml").write_text("max_question_rounds = 0\n")
    with LoopbackLLM() as server:
        assert run(vault, server=server).exit_code == 0
        assert "tools" not in server.received[0].body
