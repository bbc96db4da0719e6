"""BMAD-METHOD's own files, dropped into a vault as they are (tests/fixtures/bmad_v4/):
they load, and its workflows run to an end with the template runtime, offline."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import frontmatter
from click.testing import CliRunner

from tests.conftest import run_json
from vault_bmad.cli import main
from vault_bmad.model.validate import build_definitions
from vault_bmad.vault.index import VaultIndex

FIXTURES = Path(__file__).parent / "fixtures" / "bmad_v4"
WORKFLOWS = sorted(path.stem for path in (FIXTURES / "workflows").glob("*.yaml"))


def bmad_vault(vault: Path, task: str = "", skills: bool = True) -> Path:
    shutil.copytree(FIXTURES / "agents", vault / "BMAD" / "agents")
    shutil.copytree(FIXTURES / "workflows", vault / "BMAD" / "workflows")
    if skills:
        shutil.copytree(FIXTURES / "skills", vault / "BMAD" / "skills")
    if task:
        (vault / "Tasks").mkdir()
        (vault / "Tasks" / "Kick off.md").write_text(task, encoding="utf-8")
    return vault


def start(workflow: str, extra: str = "") -> str:
    return f"---\ntype: task\nstatus: todo\nworkflow: {workflow}\n{extra}---\nBuild a todo app.\n"


def test_six_workflows_and_twelve_agents_load_with_no_error(vault: Path) -> None:
    result = CliRunner().invoke(main, ["check", str(bmad_vault(vault)), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["agents"], report["workflows"]) == (12, 6)
    assert [p for p in report["problems"] if p["severity"] == "error"] == []
    by_path = {p["path"]: p for p in report["problems"]}
    # the one requires no step writes, named with its line in the .yaml file
    pseudo = by_path["BMAD/workflows/brownfield-fullstack.yaml"]
    assert pseudo["line"] == 63 and "existing_documentation_or_analysis" in pseudo["message"]
    # two Winstons: a warning naming both, not a silent pick
    winston = by_path["BMAD/skills/bmad-agent-architect/SKILL.md"]
    assert winston["severity"] == "warning"
    assert "architect (BMAD/agents/architect.md)" in winston["message"]
    assert "bmad-agent-architect" in winston["message"] and "'Winston'" in winston["message"]


def test_every_sequence_entry_is_a_step(vault: Path) -> None:
    defs = build_definitions(VaultIndex.load(bmad_vault(vault)))
    entries = {  # sequence entries per file (docs: issue 11's findings)
        "greenfield-fullstack": 19,
        "greenfield-service": 15,
        "greenfield-ui": 18,
        "brownfield-fullstack": 18,
        "brownfield-service": 14,
        "brownfield-ui": 15,
    }
    assert {w: len(defs.workflows[w].steps) for w in WORKFLOWS} == entries
    steps = {s.id: s for s in defs.workflows["brownfield-fullstack"].steps}
    assert steps["architecture_decision"].alternatives == ("pm", "architect")
    assert steps["update-any_flagged_documents"].agent is None
    assert not steps["update-any_flagged_documents"].alternatives  # various
    assert [r.name for r in steps["routing_decision"].routes] == [
        "single_story",
        "small_feature",
        "major_enhancement",
    ]
    # "brownfield-architecture.md (or multiple documents)" is a note, qualifier aside
    assert steps["project_analysis"].creates == "Docs/brownfield-architecture.md"
    assert steps["story"].requires == ("sharded_docs",)  # sharded_docs_or_brownfield_docs
    service = {s.id: s for s in defs.workflows["brownfield-service"].steps}
    assert service["prd"].requires == ("service_analysis",)  # existing_service_analysis
    assert service["service_analysis"].creates is None  # free text: the step's own note


def test_agents_and_skills_as_bmad_writes_them(vault: Path) -> None:
    agents = build_definitions(VaultIndex.load(bmad_vault(vault))).agents
    assert "CRITICAL: Story has ALL info you will need" in agents["dev"].persona  # top level
    assert agents["bmad-agent-architect"].commands == (
        "CA: bmad-architecture",
        "IR: bmad-sprint-planning",
    )
    assert len(agents["bmad-agent-dev"].commands) == 5
    # a sentence is not split at its commas; a list of phrases is, "and" aside
    role = (
        "Implement approved stories with test-first discipline and ship working, verified "
        "code during the BMad Method implementation phase."
    )
    assert agents["bmad-agent-dev"].expertise == ("Senior Software Engineer", role)
    assert agents["qa"].expertise[-2:] == ("risk assessment", "advisory gates")
    assert agents["architect"].commands[:2] == ("help", "create-backend-architecture")


GREENFIELD_RUNS = [  # the unconditional agent steps, and the v0 prompt
    "project-brief",
    "prd",
    "front-end-spec",
    "v0_prompt",
    "fullstack-architecture",
    "validate-all_artifacts",
    "sharded_docs",
    "story",
    "implementation_files",
]
GREENFIELD_GUIDANCE = ["development_order_guidance", "repeat_development_cycle", "workflow_end"]
GREENFIELD_SKIPPED = [
    "update-prd",
    "update-any_flagged_documents",
    "project_setup_guidance",  # guidance, but its condition user_has_generated_ui is not named
    "review_draft_story",
    "review_implementation",
    "address_qa_feedback",
    "epic-retrospective",
]


def test_greenfield_fullstack_runs_as_bmad_means_it(vault: Path) -> None:
    task = start("greenfield-fullstack", "conditions: [user_wants_ai_generation]\n")
    code, report = run_json(bmad_vault(vault, task))
    assert code == 0
    tasks = {tid.removeprefix("tasks/kick-off/"): t for tid, t in report["tasks"].items()}
    run = tasks.pop("tasks/kick-off")
    by_status = {
        status: sorted(step for step, t in tasks.items() if t["status"] == status)
        for status in ("done", "skipped")
    }
    assert by_status["done"] == sorted(GREENFIELD_RUNS + GREENFIELD_GUIDANCE)
    assert by_status["skipped"] == sorted(GREENFIELD_SKIPPED)
    assert len(tasks) == 19
    assert {tasks[step]["agent"] for step in GREENFIELD_GUIDANCE} == {None}
    assert all(tasks[step]["agent"] for step in GREENFIELD_RUNS)
    for step in GREENFIELD_SKIPPED:
        skipped = tasks[step]
        assert (
            skipped["error"] and skipped["started_at"] is None and skipped["completed_at"] is None
        )
    # in sequence order, each after the one before it ended: no overlap
    ran = sorted(
        (t for t in tasks.values() if t["status"] == "done"), key=lambda t: t["started_at"]
    )
    assert [t["task_id"].rsplit("/", 1)[1] for t in ran] == [
        *GREENFIELD_RUNS[:6],
        "development_order_guidance",
        *GREENFIELD_RUNS[6:],
        "repeat_development_cycle",
        "workflow_end",
    ]
    for before, after in itertools.pairwise(ran):
        assert after["started_at"] >= before["completed_at"], after["task_id"]
    assert run["started_at"] == ran[0]["started_at"]
    assert run["completed_at"] >= ran[-1]["completed_at"]
    # every step that ran has its own, non-empty output note; the summary has its own
    outputs = [t["output"] for t in ran]
    assert len(set([*outputs, run["output"]])) == len(outputs) + 1
    for step in ran:
        note = frontmatter.load(vault / step["output"])
        assert note.content.strip() and note["task_id"] == step["task_id"]
    assert tasks["v0_prompt"]["output"] == "Outputs/Tasks/Kick off/v0_prompt.md"
    guide = (vault / tasks["development_order_guidance"]["output"]).read_text()
    assert "If stories are frontend-heavy, start with frontend" in guide
    summary = (vault / run["output"]).read_text()
    assert "- update-prd: skipped, its condition architecture_suggests_prd_changes" in summary
    assert "- v0_prompt: [[Outputs/Tasks/Kick off/v0_prompt]]" in summary
    note = frontmatter.load(vault / "Tasks" / "Kick off.md")
    assert note["status"] == "done" and "attempts" not in note and "agent_used" not in note
    span_ms = (run["completed_at"] - run["started_at"]) * 1000
    assert abs(note["duration_ms"] - span_ms) <= 1


def test_a_brownfield_workflow_runs_through_routing_and_guidance(vault: Path) -> None:
    code, report = run_json(bmad_vault(vault, start("brownfield-fullstack")))
    assert code == 0
    assert report["failed"] == report["blocked"] == 0
    tasks = {tid.rsplit("/", 1)[1]: t for tid, t in report["tasks"].items() if "/kick-off/" in tid}
    for step in ("routing_decision", "repeat_development_cycle", "workflow_end"):
        assert (tasks[step]["status"], tasks[step]["agent"]) == ("done", None)
    routing = (vault / tasks["routing_decision"]["output"]).read_text()
    assert "- small_feature (pm, uses brownfield-create-epic): Create focused epic" in routing
    assert all(tasks[s]["status"] == "done" for s in ("prd", "story", "implementation_files"))
    assert tasks["architecture_decision"]["status"] == "skipped"  # after_prd_creation
    assert report["tasks"]["tasks/kick-off"]["status"] == "done"


def test_a_route_named_by_the_run_is_taken_and_ends_it(vault: Path) -> None:
    code, report = run_json(
        bmad_vault(vault, start("brownfield-fullstack", "conditions: [small_feature]\n"))
    )
    assert code == 0
    tasks = {tid.rsplit("/", 1)[1]: t for tid, t in report["tasks"].items() if "/kick-off/" in tid}
    assert (tasks["routing_decision"]["status"], tasks["routing_decision"]["agent"]) == (
        "done",
        "pm",
    )
    later = [
        t
        for step, t in tasks.items()
        if step not in ("enhancement_classification", "routing_decision")
    ]
    assert {t["status"] for t in later} == {"skipped"}
    assert {t["error"] for t in later} == {
        "route small_feature of step routing_decision ends the workflow"
    }
