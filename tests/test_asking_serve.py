"""An agent asks its user through the note, under a real `vault-bmad serve` process, with an
LLM server on loopback that calls `ask_user` the first time (llama.cpp's recorded answer)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import frontmatter

from tests.conftest import WriteNote
from tests.llm_servers import recorded
from tests.test_serve import Served, status_of
from tests.waiting import wait_until
from vault_bmad.runtimes.loopback_llm import Answer, LoopbackLLM, digest_reply

ASKED = recorded("llama_cpp/success_tool_calls")  # asks two questions
CALL_ID = "hO1kC8bkd2rxJq7mQYJjZsV1pZ2yFY1D"
QUESTIONS = ["Who is the target audience of the brief?", "Is there a deadline?"]


def asks_first(call: int, body: dict[str, Any]) -> Answer | None:
    """Ask when a brief is requested and no answers came with it; else answer as usual."""
    messages = body["messages"]
    if "Write the brief" in messages[-1].get("content", "") and messages[-1]["role"] == "user":
        return ASKED
    return None


def brief_requests(server: LoopbackLLM) -> list[dict[str, Any]]:
    return [r.body for r in server.received if "Write the brief" in json.dumps(r.body)]


def answer(note: Path, *answers: str) -> None:
    """Add `answers:` to the note's properties and save, as a user does in Obsidian."""
    listed = "".join(f"  - {json.dumps(a)}\n" for a in answers)
    note.write_text(note.read_text().replace("\nquestions:", f"\nanswers:\n{listed}questions:", 1))


def test_a_question_waits_in_the_note_while_other_work_runs_then_answers_resume_it(
    vault: Path, write: WriteNote, tmp_path: Path
) -> None:
    write(
        "Agents/Analyst.md",
        "---\ntype: agent\nruntime: llm\ncapacity: 1\n---\nYou write briefs.\n",
    )
    write("Tasks/Brief.md", "---\ntype: task\nagent: analyst\n---\nWrite the brief.\n")
    with LoopbackLLM(script=asks_first) as server:
        env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
            "VAULT_BMAD_LLM_BASE_URL": server.base_url,
            "VAULT_BMAD_DEBOUNCE_MS": "50",
        }
        served = Served(vault, env)
        try:
            _converse(served, server, vault, write)
            code, output = served.stop()
        finally:
            if served.process.poll() is None:
                served.process.kill()
    assert code == 0, output
    _check_the_exchange(server, vault)


def _converse(served: Served, server: LoopbackLLM, vault: Path, write: WriteNote) -> None:
    """Ask, run other work meanwhile, answer, and see it resume."""
    brief = vault / "Tasks" / "Brief.md"
    wait_until(lambda: status_of(brief) == "needs-input", "the task did not ask")
    text = brief.read_text()
    assert frontmatter.loads(text)["questions"] == QUESTIONS
    assert "> [!question] Waiting for your answers" in text
    assert "> 2. Is there a deadline?" in text

    # The one slot of the agent is free: an unrelated task runs to done meanwhile.
    other = write("Tasks/Other.md", "---\ntype: task\nagent: analyst\n---\nSum it up.\n")
    wait_until(lambda: status_of(other) == "done", "the other task did not run")
    assert status_of(brief) == "needs-input"
    waiting = served.get("/api/tasks?status=needs-input").json()["tasks"]
    assert [(t["id"], t["questions"]) for t in waiting] == [("tasks/brief", QUESTIONS)]
    assert len(brief_requests(server)) == 1

    answer(brief, "Small teams", "June 2026")
    wait_until(lambda: status_of(brief) != "needs-input", "the answers did not resume it")
    wait_until(lambda: status_of(brief) == "done", "the resumed task did not finish")


def _check_the_exchange(server: LoopbackLLM, vault: Path) -> None:
    """The second request carried the conversation, and the answer reached the notes."""
    brief = vault / "Tasks" / "Brief.md"
    first, second = brief_requests(server)
    assert [t["function"]["name"] for t in first["tools"]] == ["ask_user"]
    *before, assistant, tool = second["messages"]
    assert before == first["messages"]
    call = ASKED.body["choices"][0]["message"]["tool_calls"][0]  # type: ignore[index]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"] == [
        {"id": CALL_ID, "type": "function", "function": call["function"]}
    ]
    assert tool["role"] == "tool" and tool["tool_call_id"] == CALL_ID
    assert json.loads(tool["content"]) == {
        "answers": [
            {"question": QUESTIONS[0], "answer": "Small teams"},
            {"question": QUESTIONS[1], "answer": "June 2026"},
        ]
    }
    result = (vault / "Outputs" / "Tasks" / "Brief - result.md").read_text()
    assert digest_reply(second["messages"]) in result  # the model's final answer
    note = brief.read_text()
    assert "Questions answered" in note and "Answer: June 2026" in note
