"""BMAD v4 workflows read for what each construct means, on small workflows of our own.

Each construct is one that real v4 files use (see tests/fixtures/bmad_v4/): alternatives,
`various`, agentless guidance and routing steps, conditions, optional steps and
activities, pseudo-artifacts, qualifiers, updates, validates, uses and repeats.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import frontmatter
import pytest
from click.testing import CliRunner

from tests.conftest import WriteNote
from vault_bmad.cli import main
from vault_bmad.engine.balancer import Balancer
from vault_bmad.model.definitions import TaskDef
from vault_bmad.model.validate import Definitions, build_definitions
from vault_bmad.vault.index import VaultIndex

AGENT = """
    # {title}

    ```yaml
    agent:
      name: {name}
      id: {id}
      title: {title}
    persona:
      role: {title}
      focus: {focus}
    dependencies:
      checklists: [{id}-checklist.md]
    ```
    """

AGENTS = {
    "analyst": ("Mary", "Business Analyst", "market research, briefs"),
    "pm": ("John", "Product Manager", "requirements, roadmaps"),
    "po": ("Sarah", "Product Owner", "validation, backlog"),
    "sm": ("Bob", "Scrum Master", "stories"),
    "dev": ("James", "Developer", "code"),
}

WORKFLOW = """
    # <!-- Powered by BMAD™ Core -->
    workflow:
      id: small
      name: Small
      sequence:
        - agent: analyst
          creates: brief.md
          optional_steps:
            - brainstorming_session
            - market_research_prompt
          notes: "Write the brief."

        - agent: pm
          creates: prd.md
          requires: brief.md

        - agent: pm
          creates: v0_prompt (optional)
          requires: prd.md
          condition: user_wants_ai_generation

        - agent: pm
          updates: prd.md (if needed)
          requires: v0_prompt
          condition: prd_needs_changes

        - agent: po
          validates: all_artifacts
          uses: po-checklist

        - agent: various
          updates: any_flagged_documents
          condition: po_checklist_issues

        - step: setup_guidance
          action: guide_project_structure
          notes: "Put the UI in apps/web."

        - agent: po
          creates: sharded_docs
          requires: all_artifacts_in_project

        - agent: sm
          action: create_story
          creates: story.md
          requires: sharded_docs_or_brownfield_docs
          repeats: for_each_epic

        - agent: analyst/pm
          action: review_draft_story
          updates: story.md
          requires: story.md
          optional: true
          condition: user_wants_story_review

        - agent: dev
          creates: implementation_files
          requires: story.md

        - step: workflow_end
          action: project_complete
          notes: |
            All done.

            Reference: {root}/data/bmad-kb.md#IDE Development Workflow
    """


def vault_with(vault: Path, write: WriteNote, task: str, workflow: str = WORKFLOW) -> Definitions:
    for agent_id, (name, title, focus) in AGENTS.items():
        write(
            f"BMAD/agents/{agent_id}.md",
            AGENT.format(id=agent_id, name=name, title=title, focus=focus),
        )
    write("BMAD/checklists/po-checklist.md", "- [ ] Everything is consistent\n")
    write("BMAD/workflows/small.yaml", workflow)
    write(
        "Tasks/Go.md",
        "---\ntype: task\nstatus: todo\nworkflow: small\n" + task + "---\nBuild it.\n",
    )
    return build_definitions(VaultIndex.load(vault))


def steps(definitions: Definitions) -> dict[str, TaskDef]:
    return {t.step: t for t in definitions.tasks.values() if t.step}


def short(task_ids: tuple[str, ...] | None) -> list[str]:
    return [task_id.removeprefix("tasks/go/") for task_id in task_ids or ()]


def test_sequence_order_and_what_each_step_reads(vault: Path, write: WriteNote) -> None:
    defs = vault_with(vault, write, "")
    assert [p for p in defs.problems if p.is_error] == []
    tasks = steps(defs)
    order = list(tasks)
    assert order == [
        "brief",
        "prd",
        "v0_prompt",
        "update-prd",
        "validate-all_artifacts",
        "update-any_flagged_documents",
        "setup_guidance",
        "sharded_docs",
        "story",
        "review_draft_story",
        "implementation_files",
        "workflow_end",
    ]
    # each step starts after the one before it, whatever it requires; a skipped step ends
    # in its turn, so the step after it waits for the one before it
    ran = [step for step in order if tasks[step].status != "skipped"]
    for step in order[1:]:
        before = [earlier for earlier in ran if order.index(earlier) < order.index(step)][-1]
        assert short(tasks[step].depends_on) == [before], step
    # requires names what a step reads: the latest version that runs
    assert short(tasks["prd"].reads) == ["brief"]
    assert short(tasks["update-prd"].reads) == ["prd"]  # v0_prompt is skipped: no output
    assert short(tasks["validate-all_artifacts"].reads) == ["brief", "prd"]
    assert short(tasks["story"].reads) == ["sharded_docs"]  # sharded_docs_or_brownfield_docs
    # the review is skipped, so the developer reads the story as the SM wrote it
    assert short(tasks["implementation_files"].reads) == ["story"]
    run = defs.tasks["tasks/go"]
    assert short(run.steps) == order
    assert not run.needs_agent


def test_conditions_and_optional_steps_skip_with_a_reason(vault: Path, write: WriteNote) -> None:
    tasks = steps(vault_with(vault, write, ""))
    skipped = {step: t.skipped_because for step, t in tasks.items() if t.status == "skipped"}
    assert set(skipped) == {
        "v0_prompt",
        "update-prd",
        "update-any_flagged_documents",
        "review_draft_story",
    }
    assert skipped["v0_prompt"] == (
        "its condition user_wants_ai_generation is not in the run's `conditions:`"
    )
    assert "optional step" in skipped["review_draft_story"]
    assert all(t.status == "todo" for step, t in tasks.items() if step not in skipped)

    chosen = steps(
        vault_with(
            vault, write, "conditions: [user_wants_ai_generation, user_wants_story_review]\n"
        )
    )
    assert chosen["v0_prompt"].status == "todo"
    assert chosen["review_draft_story"].status == "todo"  # optional, but its condition is named
    assert chosen["update-prd"].status == "skipped"


def test_include_optional_runs_optional_steps_and_activities(vault: Path, write: WriteNote) -> None:
    quiet = steps(vault_with(vault, write, ""))["brief"].body
    assert "left out (`include_optional: true` asks for them): brainstorming_session" in quiet
    tasks = steps(vault_with(vault, write, "include_optional: true\n"))
    assert tasks["review_draft_story"].status == "todo"
    assert tasks["v0_prompt"].status == "skipped"  # not optional: its condition decides
    assert (
        "Also do these optional activities: brainstorming_session, market_research_prompt."
        in tasks["brief"].body
    )
    one = steps(vault_with(vault, write, "conditions: [market_research_prompt]\n"))["brief"].body
    assert "Also do these optional activities: market_research_prompt." in one
    assert "left out (`include_optional: true` asks for them): brainstorming_session." in one


def test_agents_alternatives_and_various(vault: Path, write: WriteNote) -> None:
    defs = vault_with(vault, write, "conditions: [po_checklist_issues, user_wants_story_review]\n")
    tasks = steps(defs)
    review, fixes = tasks["review_draft_story"], tasks["update-any_flagged_documents"]
    assert (review.agent, review.alternatives) == (None, ("analyst", "pm"))
    assert (fixes.agent, fixes.alternatives) == (None, ())  # various: chosen like any task
    balancer = Balancer(defs.agents.values())
    assert balancer.qualifying(review) == {"analyst", "pm"}
    assert balancer.qualifying(fixes) <= set(defs.agents)


def test_guidance_steps_need_no_agent_and_carry_their_notes(vault: Path, write: WriteNote) -> None:
    tasks = steps(vault_with(vault, write, ""))
    guide, end = tasks["setup_guidance"], tasks["workflow_end"]
    assert guide.guidance and guide.agent is None and not guide.needs_agent
    assert "Put the UI in apps/web." in guide.body
    assert "{root}/data/bmad-kb.md#IDE Development Workflow" in end.body
    assert end.output == "Outputs/Tasks/Go/workflow_end.md"


def test_every_step_has_its_own_output_note(vault: Path, write: WriteNote) -> None:
    defs = vault_with(vault, write, "")
    tasks = steps(defs)
    outputs = [t.output for t in tasks.values()]
    assert len(set(outputs)) == len(outputs)
    assert tasks["brief"].output == "Docs/brief.md"
    # an artifact that is not a note, qualified or not, is the step's own note
    assert tasks["v0_prompt"].output == "Outputs/Tasks/Go/v0_prompt.md"
    assert "Creates: v0_prompt (optional)" in tasks["v0_prompt"].body
    assert tasks["sharded_docs"].output == "Outputs/Tasks/Go/sharded_docs.md"
    assert tasks["validate-all_artifacts"].output == "Outputs/Tasks/Go/validate-all_artifacts.md"
    assert defs.tasks["tasks/go"].output == "Outputs/Tasks/Go - result.md"  # the run's summary


def test_updates_write_a_new_version_and_name_the_earlier(vault: Path, write: WriteNote) -> None:
    tasks = steps(vault_with(vault, write, "conditions: [prd_needs_changes]\n"))
    update = tasks["update-prd"]
    assert update.output == "Outputs/Tasks/Go/update-prd.md"  # Docs/prd.md stays as the PM wrote it
    assert update.updates == "tasks/go/prd"
    assert "Updates: prd.md (if needed)" in update.body
    assert short(tasks["validate-all_artifacts"].reads) == ["brief", "prd", "update-prd"]


def test_uses_hands_the_agents_own_file_over(vault: Path, write: WriteNote) -> None:
    po = steps(vault_with(vault, write, ""))["validate-all_artifacts"]
    assert po.context == ("BMAD/checklists/po-checklist.md",)
    assert "Uses: po-checklist" in po.body


@pytest.mark.parametrize(
    ("epics", "expected"),
    [
        ("", ["story"]),
        ("epics: [Payments, Search]\n", ["story-1", "story-2"]),
        ("epics: 3\n", ["story-1", "story-2", "story-3"]),
    ],
)
def test_repeats_once_per_epic_else_once(
    vault: Path, write: WriteNote, epics: str, expected: list[str]
) -> None:
    tasks = steps(vault_with(vault, write, epics))
    stories = [step for step in tasks if step.startswith("story")]
    assert stories == expected
    assert short(tasks[stories[0]].depends_on) == ["sharded_docs"]
    for before, story in itertools.pairwise(stories):
        assert short(tasks[story].depends_on) == [before]  # one epic after another
    assert short(tasks["review_draft_story"].depends_on) == [stories[-1]]
    assert short(tasks["implementation_files"].reads) == stories
    if len(stories) > 1:
        assert tasks["story-2"].output == "Docs/story-2.md"
        assert "Epic 2 of" in tasks["story-2"].body


def test_pseudo_artifacts_are_at_most_a_warning_with_its_line(
    vault: Path, write: WriteNote
) -> None:
    workflow = WORKFLOW.replace("requires: brief.md", "requires: existing_documentation")
    defs = vault_with(vault, write, "", workflow)
    [problem] = [p for p in defs.problems if p.path == "BMAD/workflows/small.yaml"]
    assert problem.severity == "warning"
    assert problem.line == 15  # the line of that `requires:`
    assert "requires existing_documentation, which no earlier step creates" in problem.message
    assert short(steps(defs)["prd"].reads) == ["brief"]  # everything written before it
    assert "small" in defs.workflows


ROUTED = """
    workflow:
      id: small
      sequence:
        - step: classification
          agent: analyst
          notes: Size the enhancement.
        - step: routing_decision
          condition: based_on_classification
          routes:
            single_story:
              agent: pm
              uses: create-story
              notes: "Create one story. Exit workflow after story creation."
            major_enhancement:
              continue: to_next_step
              notes: "Continue with the full plan."
        - agent: pm
          creates: prd.md
          requires: existing_classification
        - project_setup_guidance:
          action: guide_project_structure
          notes: Older v4 files write guidance this way.
    """


def test_routing_without_a_route_named_is_guidance(vault: Path, write: WriteNote) -> None:
    defs = vault_with(vault, write, "", ROUTED)
    assert [p for p in defs.problems if p.path.endswith("small.yaml")] == []
    tasks = steps(defs)
    routing = tasks["routing_decision"]
    assert routing.guidance and routing.status == "todo"
    assert "- single_story (pm, uses create-story): Create one story." in routing.body
    assert short(tasks["prd"].reads) == ["classification"]  # existing_ names the step
    older = tasks["project_setup_guidance"]
    assert older.guidance and "Older v4 files write guidance this way." in older.body
    assert all(t.status == "todo" for t in tasks.values())


def test_a_route_named_in_conditions_is_taken(vault: Path, write: WriteNote) -> None:
    tasks = steps(vault_with(vault, write, "conditions: [single_story]\n", ROUTED))
    routing = tasks["routing_decision"]
    assert (routing.agent, routing.guidance) == ("pm", False)
    assert "Route taken: single_story using create-story." in routing.body
    reason = "route single_story of step routing_decision ends the workflow"
    assert tasks["prd"].skipped_because == reason
    assert tasks["project_setup_guidance"].skipped_because == reason
    going_on = steps(vault_with(vault, write, "conditions: [major_enhancement]\n", ROUTED))
    assert going_on["routing_decision"].guidance
    assert going_on["prd"].status == "todo"


def test_unknown_conditions_warn_and_bad_options_are_errors(vault: Path, write: WriteNote) -> None:
    defs = vault_with(vault, write, "conditions: [user_wants_ai_generatoin]\n")
    [typo] = [p for p in defs.problems if p.path == "Tasks/Go.md"]
    assert (typo.severity, typo.line) == ("warning", 5)
    assert "user_wants_ai_generatoin" in typo.message and "user_wants_ai_generation" in typo.message
    assert "tasks/go" in defs.tasks  # a warning keeps the task
    defs = vault_with(vault, write, "include_optional: sometimes\nepics: {a: 1}\n")
    messages = sorted(p.message for p in defs.problems if p.path == "Tasks/Go.md")
    assert messages[0].startswith("epics must be a list")
    assert messages[1].startswith("include_optional must be true or false")
    assert "tasks/go" not in defs.tasks


def test_unknown_agents_in_alternatives(vault: Path, write: WriteNote) -> None:
    partly = WORKFLOW.replace("agent: analyst/pm", "agent: analyst/nobody")
    defs = vault_with(vault, write, "", partly)
    [problem] = [p for p in defs.problems if p.path.endswith("small.yaml")]
    assert problem.severity == "warning" and problem.line == 49
    assert "unknown agent nobody in analyst/nobody; only analyst may do it" in problem.message
    assert steps(defs)["review_draft_story"].agent == "analyst"
    wholly = WORKFLOW.replace("agent: analyst/pm", "agent: nobody/noone")
    defs = vault_with(vault, write, "", wholly)
    [problem] = [p for p in defs.problems if p.path.endswith("small.yaml")]
    assert problem.is_error and "unknown agent nobody/noone" in problem.message
    assert defs.workflows == {}


def test_a_run_of_every_construct_ends_well(vault: Path, write: WriteNote) -> None:
    options = (
        "conditions: [prd_needs_changes, user_wants_ai_generation, po_checklist_issues]\n"
        "include_optional: true\nepics: [Payments, Search]\n"
    )
    vault_with(vault, write, options)
    result = CliRunner().invoke(main, ["run", str(vault), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    tasks = {tid.removeprefix("tasks/go/"): t for tid, t in report["tasks"].items()}
    assert {t["status"] for t in tasks.values()} == {"done"}
    assert tasks["review_draft_story"]["agent"] in {"analyst", "pm"}
    assert tasks["update-any_flagged_documents"]["agent"] in set(AGENTS)  # various
    # the new version names the one it revises, which stays as the PM wrote it
    prd = frontmatter.load(vault / "Docs/prd.md")
    update = frontmatter.load(vault / tasks["update-prd"]["output"])
    assert update["updates"] == "[[Docs/prd]]"
    assert prd["task_id"] == "tasks/go/prd" and prd.content != update.content
    assert "## Output of Docs/prd.md" in update.content  # it read the earlier one
    assert tasks["story-1"]["output"] == "Docs/story-1.md"
    assert "Epic 2 of 2: Search" in (vault / "Docs/story-2.md").read_text()
    po = (vault / tasks["validate-all_artifacts"]["output"]).read_text()
    assert "Everything is consistent" in po  # the checklist it uses was handed over


NATIVE = """
    ---
    type: workflow
    id: native
    steps:
      - id: brief
        agent: analyst
      - id: prd
        agent: pm
        requires: [brief]
        creates: Docs/PRD.md
      - id: review
        agent: analyst/pm
        requires: [prd]
        optional: true
      - id: polish
        agent: various
        requires: [prd]
        condition: wants_polish
    ---
    """


def test_native_steps_without_creates_write_their_own_notes(vault: Path, write: WriteNote) -> None:
    vault_with(vault, write, "")
    write("Workflows/Native.md", NATIVE)
    for name in ("One", "Two"):
        write(
            f"Tasks/{name}.md",
            "---\ntype: task\nworkflow: native\nconditions: [wants_polish]\n---\n",
        )
    (vault / "Tasks/Go.md").unlink()
    result = CliRunner().invoke(main, ["run", str(vault), "--format", "json"])
    assert result.exit_code == 0, result.output
    tasks = json.loads(result.stdout)["tasks"]
    assert tasks["tasks/one/review"]["status"] == "skipped"  # optional
    assert tasks["tasks/one/polish"]["status"] == "done"
    outputs = [t["output"] for t in tasks.values() if t["output"]]
    assert len(outputs) == len(set(outputs)) == 8  # 3 steps and a summary, twice
    assert tasks["tasks/one/brief"]["output"] == "Outputs/Tasks/One/brief.md"
    assert tasks["tasks/one"]["output"] == "Outputs/Tasks/One - result.md"
    # both runs create Docs/PRD.md: the second goes beside the first, which stays
    assert {tasks["tasks/one/prd"]["output"], tasks["tasks/two/prd"]["output"]} == {
        "Docs/PRD.md",
        "Docs/PRD (2).md",
    }
    for note in ("Docs/PRD.md", "Docs/PRD (2).md"):
        assert frontmatter.load(vault / note)["task_id"] in {"tasks/one/prd", "tasks/two/prd"}


def test_two_steps_creating_one_note_is_an_error(vault: Path, write: WriteNote) -> None:
    write(
        "Workflows/Native.md",
        NATIVE.replace("agent: analyst\n", "agent: analyst\n        creates: Docs/PRD.md\n"),
    )
    defs = vault_with(vault, write, "")
    [problem] = [p for p in defs.problems if p.path == "Workflows/Native.md"]
    assert problem.message.startswith("steps 'brief' and 'prd' both create Docs/PRD.md")
    assert "native" not in defs.workflows


def test_a_task_the_user_skipped_counts_as_ended(vault: Path, write: WriteNote) -> None:
    write("Agents/Solo.md", "---\ntype: agent\n---\n")
    write("Tasks/First.md", "---\ntype: task\nstatus: skipped\nagent: solo\n---\n")
    write("Tasks/Then.md", "---\ntype: task\nagent: solo\ndepends_on: ['[[First]]']\n---\n")
    result = CliRunner().invoke(main, ["run", str(vault), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["tasks"]) == {"tasks/then"}
    assert report["tasks"]["tasks/then"]["status"] == "done"
    assert frontmatter.load(vault / "Tasks/First.md")["status"] == "skipped"
