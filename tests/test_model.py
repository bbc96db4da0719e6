"""Definitions from notes: every problem kind, BMAD imports, workflow runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.conftest import WriteNote
from vault_bmad.errors import Problem
from vault_bmad.model.definitions import Priority, generation_params
from vault_bmad.model.validate import Definitions, build_definitions
from vault_bmad.vault.index import VaultIndex

AGENTS = {
    "Agents/Architect.md": """
        ---
        type: agent
        name: Winston
        expertise: [architecture, api-design]
        capacity: 2
        ---
        You design systems.
        """,
    "Agents/PM.md": """
        ---
        type: agent
        id: pm
        name: John
        expertise: prd, roadmap
        ---
        You write requirements.
        """,
}


def define(vault: Path, write: WriteNote, notes: dict[str, str]) -> Definitions:
    for rel_path, text in {**AGENTS, **notes}.items():
        write(rel_path, text)
    return build_definitions(VaultIndex.load(vault))


def problems_for(definitions: Definitions, path: str) -> list[Problem]:
    return [p for p in definitions.problems if p.path == path]


def test_agent_fields_and_defaults(vault: Path, write: WriteNote) -> None:
    defs = define(vault, write, {})
    architect = defs.agents["architect"]
    assert architect.name == "Winston"
    assert architect.expertise == ("architecture", "api-design")
    assert architect.capacity == 2
    assert architect.runtime == "template"
    assert architect.persona == "You design systems."
    assert defs.agents["pm"].expertise == ("prd", "roadmap")
    assert defs.problems == ()


def test_task_resolves_agent_by_link_id_and_name(vault: Path, write: WriteNote) -> None:
    defs = define(
        vault,
        write,
        {
            "Tasks/A.md": "---\ntype: task\nagent: '[[Architect]]'\n---\nDo A.\n",
            "Tasks/B.md": "---\ntype: task\nagent: pm\n---\nDo B.\n",
            "Tasks/C.md": "---\ntype: task\nagent: winston\n---\nDo C.\n",
            "Tasks/D.md": "---\ntype: task\n---\nDo D.\n",
        },
    )
    agents = {task.title: task.agent for task in defs.tasks.values()}
    assert agents == {"A": "architect", "B": "pm", "C": "architect", "D": None}


def test_task_fields(vault: Path, write: WriteNote) -> None:
    defs = define(
        vault,
        write,
        {
            "Docs/Brief.md": "The brief.\n",
            "Templates/T.md": "---\ntype: template\n---\n{{ body }}\n",
            "Tasks/First.md": "---\ntype: task\n---\nFirst.\n",
            "Tasks/Second.md": """
                ---
                type: task
                priority: Critical
                criticality: 7
                depends_on: ["[[First]]"]
                context: ["[[Brief]]"]
                template: "[[T]]"
                output: Docs/Out.md
                complexity: 2.5
                timeout: 12
                retries: 1
                tags: [urgent]
                ---
                Second #design
                """,
        },
    )
    task = defs.tasks["tasks/second"]
    assert task.priority is Priority.CRITICAL
    assert (task.criticality, task.complexity, task.timeout, task.retries) == (7, 2.5, 12, 1)
    assert task.depends_on == ("tasks/first",)
    assert task.context == ("Docs/Brief.md",)
    assert task.template == "Templates/T.md"
    assert task.output == "Docs/Out.md"
    assert task.tags == ("urgent", "design")
    assert task.body == "Second #design"
    first = defs.tasks["tasks/first"]
    assert (first.priority, first.timeout, first.retries) == (Priority.NORMAL, None, None)


@pytest.mark.parametrize(
    ("frontmatter", "line", "needle"),
    [
        ("priority: urgent", 3, "priority: must be one of critical, high, normal, low, minimal"),
        ("timeout: -5", 3, "timeout: Input should be greater than 0"),
        ("timeout: soon", 3, "timeout: Input should be a valid number"),
        ("retries: 2.5", 3, "retries: Input should be a valid integer"),
        ("criticality: 11", 3, "criticality: Input should be less than or equal to 10"),
        ("status: later", 3, "status: Input should be"),
        ("agent: '[[Nobody]]'", 3, "unknown agent [[Nobody]] (known: architect, pm)"),
        ("depends_on: ['[[Ghost]]']", 3, "depends on [[Ghost]], which is not in the vault"),
        ("output: ../../etc/passwd", 3, "leaves the vault"),
        ("output: /etc/passwd", 3, "is absolute"),
        ("context: ['[[Missing]]']", 3, "context [[Missing]] is not a note in the vault"),
        ("workflow: '[[Nope]]'", 3, "workflow [[Nope]] is not a valid workflow"),
        ("temperature: '0.2'", 3, "temperature: Input should be a valid number"),
        ("temperature: 3", 3, "temperature: Input should be less than or equal to 2"),
        ("max_tokens: 0", 3, "max_tokens: Input should be greater than or equal to 1"),
        ("seed: true", 3, "seed: Input should be a valid integer"),
        ("stop: [1, 2]", 3, "stop"),
    ],
)
def test_bad_task_fields_are_named_with_their_line(
    vault: Path, write: WriteNote, frontmatter: str, line: int, needle: str
) -> None:
    defs = define(
        vault,
        write,
        {
            "Tasks/Bad.md": f"---\ntype: task\n{frontmatter}\n---\nBody.\n",
            "Tasks/Good.md": "---\ntype: task\n---\nFine.\n",
        },
    )
    [problem] = problems_for(defs, "Tasks/Bad.md")
    assert needle in problem.message
    assert problem.line == line
    assert "tasks/bad" not in defs.tasks
    assert "tasks/good" in defs.tasks  # a bad note never hides the good ones


def test_generation_parameters_of_agent_and_task_the_task_wins(
    vault: Path, write: WriteNote
) -> None:
    defs = define(
        vault,
        write,
        {
            "Agents/Writer.md": "---\ntype: agent\nruntime: llm\nmax_tokens: 500\n"
            "temperature: 0.7\nstop: '##'\n---\n",
            "Tasks/Short.md": "---\ntype: task\nagent: writer\nmax_tokens: 64\nseed: 7\n"
            "top_p: 0.9\n---\nBrief.\n",
        },
    )
    assert defs.problems == ()
    params = generation_params(defs.agents["writer"], defs.tasks["tasks/short"])
    assert params == (
        ("max_tokens", 64),
        ("seed", 7),
        ("stop", "##"),
        ("temperature", 0.7),
        ("top_p", 0.9),
    )


def test_an_unknown_runtime_is_a_problem_check_finds(vault: Path, write: WriteNote) -> None:
    defs = define(vault, write, {"Agents/Py.md": "---\ntype: agent\nruntime: python\n---\n"})
    [problem] = problems_for(defs, "Agents/Py.md")
    assert problem.line == 3
    assert "runtime: Input should be 'template', 'llm' or 'command'" in problem.message


def test_bad_agent_capacity(vault: Path, write: WriteNote) -> None:
    defs = define(vault, write, {"Agents/Busy.md": "---\ntype: agent\ncapacity: 0\n---\n"})
    [problem] = problems_for(defs, "Agents/Busy.md")
    assert problem.line == 3
    assert problem.message.startswith("capacity: Input should be greater than or equal to 1")
    assert set(defs.agents) == {"architect", "pm"}


def test_broken_yaml_names_file_and_line(vault: Path, write: WriteNote) -> None:
    defs = define(
        vault,
        write,
        {
            "Tasks/Broken.md": "---\ntype: task\npriority: [high\nagent: pm\n---\nBody\n",
            "Tasks/Fine.md": "---\ntype: task\n---\nBody\n",
        },
    )
    [problem] = problems_for(defs, "Tasks/Broken.md")
    assert problem.message.startswith("broken YAML in frontmatter")
    assert problem.line in (3, 4)
    assert list(defs.tasks) == ["tasks/fine"]


def test_dependency_on_a_non_task_note(vault: Path, write: WriteNote) -> None:
    defs = define(
        vault,
        write,
        {
            "Docs/Plain.md": "Just a note.\n",
            "Tasks/T.md": "---\ntype: task\ndepends_on: '[[Plain]]'\n---\n",
        },
    )
    [problem] = problems_for(defs, "Tasks/T.md")
    assert problem.message == "depends on [[Plain]], which is not a task note"


def test_cycle_names_every_note_on_it(vault: Path, write: WriteNote) -> None:
    defs = define(
        vault,
        write,
        {
            "Tasks/A.md": "---\ntype: task\ndepends_on: ['[[C]]']\n---\n",
            "Tasks/B.md": "---\ntype: task\ndepends_on: ['[[A]]']\n---\n",
            "Tasks/C.md": "---\ntype: task\ndepends_on: ['[[B]]']\n---\n",
            "Tasks/D.md": "---\ntype: task\ndepends_on: ['[[A]]']\n---\n",
            "Tasks/E.md": "---\ntype: task\n---\n",
        },
    )
    cycle_problems = [p for p in defs.problems if "dependency cycle" in p.message]
    assert {p.path for p in cycle_problems} == {"Tasks/A.md", "Tasks/B.md", "Tasks/C.md"}
    for problem in cycle_problems:
        for path in ("Tasks/A.md", "Tasks/B.md", "Tasks/C.md"):
            assert path in problem.message
    # D depends on a task on the cycle; it stays defined and the engine will block it.
    assert set(defs.tasks) == {"tasks/d", "tasks/e"}


def test_duplicate_ids(vault: Path, write: WriteNote) -> None:
    defs = define(
        vault,
        write,
        {
            "Agents/Other PM.md": "---\ntype: agent\nid: pm\n---\n",
            "Tasks/One.md": "---\ntype: task\nid: same\n---\n",
            "Tasks/Two.md": "---\ntype: task\nid: same\n---\n",
        },
    )
    [agent_problem] = problems_for(defs, "Agents/PM.md")
    assert agent_problem.message == ("duplicate agent id 'pm': Agents/Other PM.md already uses it")
    [task_problem] = problems_for(defs, "Tasks/Two.md")
    assert task_problem.message == "duplicate task id 'same': Tasks/One.md already uses it"
    assert task_problem.line == 3
    assert defs.tasks["same"].path == "Tasks/One.md"


WORKFLOW = """
    ---
    type: workflow
    id: greenfield
    steps:
      - id: brief
        agent: "[[PM]]"
        creates: Docs/Brief.md
      - id: design
        agent: architect
        requires: [brief]
        creates: Docs/Design.md
      - id: review
        agent: pm
        requires: [brief, design]
    ---
    """


def test_workflow_run_expands_into_step_tasks(vault: Path, write: WriteNote) -> None:
    defs = define(
        vault,
        write,
        {
            "Workflows/Greenfield.md": WORKFLOW,
            "Tasks/Prep.md": "---\ntype: task\n---\n",
            "Tasks/Go.md": (
                "---\ntype: task\nworkflow: '[[Greenfield]]'\npriority: high\n"
                "depends_on: ['[[Prep]]']\n---\nBuild it.\n"
            ),
        },
    )
    assert defs.problems == ()
    steps = {tid: t for tid, t in defs.tasks.items() if t.step}
    assert set(steps) == {"tasks/go/brief", "tasks/go/design", "tasks/go/review"}
    assert steps["tasks/go/brief"].depends_on == ("tasks/prep",)
    assert steps["tasks/go/design"].depends_on == ("tasks/prep", "tasks/go/brief")
    assert steps["tasks/go/design"].agent == "architect"
    assert steps["tasks/go/design"].output == "Docs/Design.md"
    assert steps["tasks/go/review"].priority is Priority.HIGH
    run = defs.tasks["tasks/go"]
    assert run.steps == ("tasks/go/brief", "tasks/go/design", "tasks/go/review")
    assert set(run.depends_on) == {"tasks/prep", *run.steps}


def test_workflow_step_problems(vault: Path, write: WriteNote) -> None:
    defs = define(
        vault,
        write,
        {
            "Workflows/Bad.md": """
                ---
                type: workflow
                steps:
                  - id: a
                    agent: pm
                    requires: [zzz]
                  - id: b
                    agent: "[[Nobody]]"
                  - id: c
                    agent: pm
                    requires: [d]
                  - id: d
                    agent: pm
                    requires: [c]
                ---
                """,
        },
    )
    messages = [p.message for p in problems_for(defs, "Workflows/Bad.md")]
    assert "step 'a' requires unknown step 'zzz'" in messages
    assert any(m.startswith("step 'b': unknown agent [[Nobody]]") for m in messages)
    assert any(m.startswith("steps require each other in a cycle") for m in messages)
    assert all(p.line == 3 for p in problems_for(defs, "Workflows/Bad.md"))
    assert defs.workflows == {}


V4_AGENT = """
    # Analyst

    ```yaml
    agent:
      name: Mary
      id: analyst
      title: Business Analyst
      icon: 📊
      whenToUse: Use for market research and briefs
    persona:
      role: Insightful Analyst
      style: Curious, analytical
      identity: Strategic analyst
      focus: market research, competitive analysis
      core_principles:
        - Evidence first
    commands:
      - help: Show commands
      - create-brief: Write a brief
    dependencies:
      tasks: [create-doc.md]
      templates: [brief-tmpl.yaml]
    ```
    """

V4_WORKFLOW = """
    workflow:
      id: v4-greenfield
      name: Greenfield (v4)
      type: greenfield
      sequence:
        - agent: analyst
          creates: project-brief.md
          optional_steps: [brainstorming]
          notes: Start here.
        - agent: pm
          creates: prd.md
          requires: project-brief.md
        - agent: architect
          creates: architecture.md
          requires: [prd.md]
          condition: needs_architecture
        - workflow_end:
            action: done
    """


def test_bmad_v4_agent_and_workflow_file(vault: Path, write: WriteNote) -> None:
    write("bmad/analyst.md", V4_AGENT)
    write("bmad/greenfield.yaml", V4_WORKFLOW)
    defs = define(vault, write, {})
    assert defs.problems == ()
    analyst = defs.agents["analyst"]
    assert (analyst.name, analyst.title, analyst.icon, analyst.source) == (
        "Mary",
        "Business Analyst",
        "📊",
        "bmad-v4",
    )
    assert "market research" in analyst.expertise
    assert "**Role:** Insightful Analyst" in analyst.persona
    assert "- Evidence first" in analyst.persona
    assert analyst.commands == ("help", "create-brief")
    assert analyst.dependencies["templates"] == ("brief-tmpl.yaml",)
    workflow = defs.workflows["v4-greenfield"]
    ids = [s.id for s in workflow.steps]
    assert ids == ["project-brief", "prd", "architecture", "workflow_end"]
    assert workflow.steps[1].requires == ("project-brief",)
    assert workflow.steps[2].requires == ("prd",)
    assert [s.after for s in workflow.steps] == [(), *((i,) for i in ids[:-1])]
    assert workflow.steps[2].condition == "needs_architecture"
    assert workflow.steps[0].creates == "Docs/project-brief.md"
    assert workflow.steps[0].optional_steps == ("brainstorming",)
    assert workflow.steps[3].guidance and workflow.steps[3].agent is None


def test_bmad_v4_workflow_in_a_fenced_block_with_bad_requires(
    vault: Path, write: WriteNote
) -> None:
    block = V4_WORKFLOW.replace("requires: project-brief.md", "requires: nothing.md")
    fenced = "# Flow\n\n```yaml\n" + textwrap.dedent(block) + "```\n"
    defs = define(vault, write, {"Flows/Flow.md": fenced})
    problems = problems_for(defs, "Flows/Flow.md")
    [requires] = [p for p in problems if "requires" in p.message]
    assert requires.message.startswith("step 'prd' requires nothing.md, which no earlier step")
    assert (requires.severity, requires.line) == ("warning", 16)  # the line of `requires:`
    [unknown] = [p for p in problems if p.is_error]
    assert "step 'project-brief': unknown agent analyst" in unknown.message
    assert unknown.line == 10  # the line of its `agent:`
    assert defs.workflows == {}


def test_bmad_skill_folder(vault: Path, write: WriteNote) -> None:
    write(
        "skills/bmad-architect/SKILL.md",
        "---\nname: bmad-architect\ndescription: Designs systems\n---\nUse when designing.\n",
    )
    write(
        "skills/bmad-architect/customize.toml",
        """
        [agent]
        name = "Winston"
        title = "System Architect"
        icon = "🏗️"
        role = "Architect of scalable systems"
        identity = "Pragmatic"
        communication_style = "Calm and precise"
        principles = ["Boring technology", "Design for failure"]
        """,
    )
    defs = define(vault, write, {})
    skill = defs.agents["bmad-architect"]
    assert (skill.name, skill.title, skill.source) == ("Winston", "System Architect", "skill")
    assert "**Style:** Calm and precise" in skill.persona
    assert "- Design for failure" in skill.persona
    assert skill.persona.endswith("Use when designing.")
    assert skill.when_to_use == "Designs systems"


def test_odd_notes_do_not_stop_the_others(vault: Path, write: WriteNote) -> None:
    (vault / "Tasks").mkdir()
    (vault / "Tasks/Binary.md").write_bytes(b"\x00\x01\x02binary")
    (vault / "Tasks/Empty.md").write_bytes(b"")
    (vault / "Tasks/Bom.md").write_bytes("\ufeff---\r\ntype: task\r\n---\r\nHi\r\n".encode())
    defs = define(vault, write, {"Tasks/Open.md": "---\ntype: task\nno end\n"})
    assert "tasks/bom" in defs.tasks
    assert problems_for(defs, "Tasks/Binary.md")[0].message == "note holds binary data, not text"
    assert problems_for(defs, "Tasks/Open.md")[0].line == 1


def test_sample_vault_is_clean(sample_vault: Path) -> None:
    defs = build_definitions(VaultIndex.load(sample_vault))
    assert defs.problems == ()
    assert len(defs.agents) >= 5
    assert len([t for t in defs.tasks.values() if not t.step and not t.steps]) >= 6
    assert {t.priority for t in defs.tasks.values()} >= {Priority.CRITICAL, Priority.LOW}
    assert any(t.depends_on for t in defs.tasks.values())
    assert defs.workflows


def test_sync_conflict_copies_are_reported_not_run(vault: Path, write: WriteNote) -> None:
    task = "---\ntype: task\nagent: pm\n---\nDo it.\n"
    defs = define(
        vault,
        write,
        {
            "Tasks/Plan.md": task,
            "Tasks/Plan (conflict 2026-11-25 10.00.00).md": task,
            "Tasks/Plan.sync-conflict-20261125-100000-ABCDEF7.md": task,
            "Tasks/Plan (2).md": task,  # an ordinary name, not a conflict
        },
    )
    assert set(defs.tasks) == {"tasks/plan", "tasks/plan-2"}
    conflicts = [p for p in defs.problems if "conflict copy" in p.message]
    assert {p.path for p in conflicts} == {
        "Tasks/Plan (conflict 2026-11-25 10.00.00).md",
        "Tasks/Plan.sync-conflict-20261125-100000-ABCDEF7.md",
    }
