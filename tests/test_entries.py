"""Every entry shape the platform writes, and skills-based courses: one reading of an
entry, skills resolved by name, the entry's facts written by code, stored lessons held
to their entry (and reported stale), and lesson rows imported for an audit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from pytest_batchgen.__main__ import main
from pytest_batchgen.contract import check_row, outcome_ids_of
from pytest_batchgen.entries import EntryShape, read_entry
from pytest_batchgen.requirements import requirements_for, resolve_refs
from pytest_batchgen.sow import parse_entries
from tests.conftest import COURSE, FIXTURES, BatchProject
from tests.support.lessons import OUTCOMES
from tests.support.model_server import ModelServer, inline, scripted

SKILLS_COURSE = "course_c84775"
SKILLS_OUTCOMES: list[dict[str, Any]] = json.loads(
    (FIXTURES / "outcomes_skills_n5.json").read_text())
SURDS = "SKILL_WORKING_WITH_SURDS"
INDICES = "SKILL_SIMPLIFYING_EXPRESSIONS_USING_THE_LAWS_OF_INDICES"
ROUNDING = "SKILL_ROUNDING_TO_A_GIVEN_NUMBER_OF_SIGNIFICANT_FIGURES"
# The outcome ids each entry of fixtures/sow_skills_unified.json names (lesson 4 names
# a skill the course does not have).
SKILLS_REFS = {1: [SURDS], 2: [INDICES, ROUNDING], 3: ["TOPIC_NUMERICAL_SKILLS", SURDS]}
UNKNOWN_SKILL = ("skill 'Solving quadratic equations' matches no outcome of the course (its"
                 " nearest skills and topics: ")


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return document


def views(name: str) -> dict[int, Any]:
    return {entry.order: entry.view for entry in parse_entries(fixture(name)["entries"])}


# --- one reading of every shape ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["sow_legacy_row.json", "sow_current.json",
                                  "sow_current_unified.json", "sow_skills_unified.json"])
def test_the_view_reads_back_from_the_document_it_shows_the_authors(name: str) -> None:
    for view in views(name).values():
        assert read_entry(view.document()) == view


def test_each_shape_is_read_into_the_same_terms() -> None:
    legacy = views("sow_legacy_row.json")[1]
    assert legacy.shape is EntryShape.LEGACY
    assert [s.name for s in legacy.standards] == ["1", "1.1"]
    assert legacy.instruction == "Use examples from Scottish shops."
    assert legacy.pedagogical_blocks == ("starter", "modelling", "guided_practice")
    current, unified = views("sow_current.json")[1], views("sow_current_unified.json")[1]
    assert (current.shape, unified.shape) == (EntryShape.CURRENT, EntryShape.UNIFIED)
    assert [card.title for card in current.cards] == [card.title for card in unified.cards]
    skills = views("sow_skills_unified.json")
    surds = skills[1]
    assert [s.skill_name for s in surds.standards] == ["Working with surds"]
    assert (surds.calculator_section, surds.plain_language_level) == ("non_calc", "B1")
    card = surds.cards[1]
    assert card.title == "Simplifying sqrt(72) step by step"
    assert card.worked_example.startswith("Simplify sqrt(72): 72 = 36 x 2")
    assert card.misconceptions[0].remediation.startswith("Test with numbers")
    assert card.rubric is not None and card.rubric.total_points == 2
    assert card.key_concepts == ("exact values", "simplest form")
    # Deprecated fields beside the unified list are not read: it is what the entry says.
    assert [s.skill_name for s in skills[2].standards] == [
        "simplifying expressions using the LAWS of indices",
        "Rounding to a given number of significant figures"]


def test_current_and_unified_shapes_of_one_course_ask_the_same() -> None:
    current, unified = views("sow_current.json"), views("sow_current_unified.json")
    assert current.keys() == unified.keys()
    for order in current:
        asked = [requirements_for(view, OUTCOMES) for view in (current[order], unified[order])]
        assert asked[0].facts() == asked[1].facts()
        assert asked[0].planned_cards == asked[1].planned_cards


# --- skills-based courses ------------------------------------------------------------------


@pytest.mark.parametrize(("name", "ref"), [
    ("Working with surds", SURDS),
    ("  WORKING WITH SURDS ", SURDS),  # case and surrounding spaces aside
    ("Numerical skills", "TOPIC_NUMERICAL_SKILLS"),  # a topic's title: its TOPIC_ id
    (SURDS, SURDS),  # an entry that names the id itself
])
def test_a_skill_resolves_by_name(name: str, ref: str) -> None:
    entry = {"order": 1, "label": "x", "standards_or_skills_addressed": [
        {"skill_name": name, "description": "d"}]}
    resolution = resolve_refs(read_entry(entry), SKILLS_OUTCOMES)
    assert resolution.refs == (ref,) and not resolution.unresolved
    assert resolution.log_lines() == ([] if name == ref else
                                      [f"Skill {name.strip()!r} resolved to {ref!r}"])


def test_an_unknown_or_ambiguous_skill_is_not_guessed() -> None:
    entry = {"order": 1, "label": "x", "standards_or_skills_addressed": [
        {"skill_name": "Working with surd", "description": "a slip"},
        {"skill_name": "Working with 2D vectors", "description": "twice in the course"}]}
    twice = [*SKILLS_OUTCOMES, {"outcomeId": "SKILL_VECTORS_2D",
                                "outcomeTitle": "working with 2d vectors"}]
    resolution = resolve_refs(read_entry(entry), twice)
    assert resolution.refs == ()
    assert [str(problem) for problem in resolution.unresolved] == [
        "skill 'Working with surd' matches no outcome of the course (its nearest skills and"
        " topics: 'Working with surds', 'Working with 2D vectors', 'working with 2d vectors')",
        "skill 'Working with 2D vectors' matches several outcomes of the course"
        " ('SKILL_VECTORS_2D', 'SKILL_WORKING_WITH_2D_VECTORS')"]
    requirements = requirements_for(read_entry(entry), twice)
    assert requirements.problem.startswith("its outcome refs cannot be resolved: skill")


def test_unit_items_give_outcome_ids_then_codes_and_topic_codes_are_never_refs() -> None:
    entry = {"order": 1, "label": "x", "standards_or_skills_addressed": [
        {"code": "1.2", "outcome": "1", "description": "legacy spellings"},
        {"code": "AS2.1", "outcome": "O2", "description": "Extracting data"},
        {"code": "AS1", "skill_name": "Working with surds", "description": "no dot"}]}
    outcomes = [*OUTCOMES, *SKILLS_OUTCOMES]
    resolution = resolve_refs(read_entry(entry), outcomes)
    assert resolution.refs == ("O1", "O2", SURDS, "AS1.2", "AS2.1")
    assert resolution.dropped == ("AS1",)


def test_a_course_of_more_than_a_page_of_outcomes_resolves_its_last_skill() -> None:
    outcomes = [{"outcomeId": f"SKILL_S{n:03d}", "outcomeTitle": f"Skill number {n}"}
                for n in range(1, 151)]
    entry = {"order": 1, "label": "x",
             "standards_or_skills_addressed": [{"skill_name": "skill number 150"}]}
    assert resolve_refs(read_entry(entry), outcomes).refs == ("SKILL_S150",)


# --- whole batches ---------------------------------------------------------------------------


@pytest.fixture
def skills(project: BatchProject) -> BatchProject:
    project.load("sow_skills_unified.json", course=None, outcomes=SKILLS_OUTCOMES)
    return project


def refs_by_order(project: BatchProject, course: str) -> dict[int, list[str]]:
    return {row["sow_order"]: json.loads(row["outcomeRefs"]) for row in project.rows(course)}


def test_the_outline_author_writes_a_skills_course_with_its_skills(skills: BatchProject) -> None:
    run = skills.run(f"--batch-course={SKILLS_COURSE}", author="outline")
    assert run.ret == 1  # lesson 4 names a skill the course does not have
    run.result.assert_outcomes(passed=3, failed=1)
    assert refs_by_order(skills, SKILLS_COURSE) == SKILLS_REFS  # nothing written for 4
    ids = outcome_ids_of(SKILLS_OUTCOMES)
    assert all(check_row(row, ids) == [] for row in skills.rows(SKILLS_COURSE))
    [failed] = [r for r in run.summary()["results"] if r["status"] == "failed"]
    assert failed["order"] == 4 and UNKNOWN_SKILL in failed["error"]
    assert failed["error"].endswith("; nothing was authored or written")
    assert UNKNOWN_SKILL in run.output()
    log = run.layout.lesson_log(2).read_text()
    assert "Entry shape: unified; addresses" in log
    assert (f"Skill 'simplifying expressions using the LAWS of indices' resolved to"
            f" '{INDICES}'") in log
    # The entry's facts: the calculator policy with its notes, the tags, the type.
    row = {r["sow_order"]: r for r in skills.rows(SKILLS_COURSE)}[3]
    assert json.loads(row["policy"]) == {"calculator_allowed": True,
                                         "assessment_notes": "Calculator paper, 50 minutes."}
    assert json.loads(row["engagement_tags"]) == ["exam practice"]
    assert (row["lesson_type"], row["authored_sow_version"]) == ("mock_exam", "2")


def test_the_outline_draft_follows_the_unified_card_plan(skills: BatchProject) -> None:
    skills.run(f"--batch-course={SKILLS_COURSE}", "-k", "lesson_001", author="outline")
    store = skills.store()
    [stored] = store.list_lessons(SKILLS_COURSE)
    row = store.read_lesson(stored.doc_id)
    store.close()
    assert row is not None
    cards = row.decoded()["cards"]
    assert [card["title"] for card in cards] == [
        "Starter: Which roots are surds?", "Modelling: Simplifying sqrt(72) step by step",
        "Exit ticket: simplify three surds"]
    assert "Worked example: Simplify sqrt(72): 72 = 36 x 2" in cards[1]["explainer"]
    assert cards[1]["misconceptions"][0]["clarification"].startswith("Test with numbers")
    assert cards[1]["cfu"]["stem"] == "Simplify sqrt(50)"  # the plan's first practice problem
    assert cards[1]["cfu"]["rubric"] == {"total_points": 2, "criteria": [
        {"description": "Finds the largest square factor", "points": 1},
        {"description": "Writes the surd in simplest form", "points": 1}]}
    # Card 3's guidance adds up to 1, not its stated 5: not a rubric the platform accepts.
    assert cards[2]["cfu"]["rubric"]["criteria"][0]["description"].startswith("Chooses")


def test_current_and_unified_shapes_write_identical_rows(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.load("sow_current_unified.json", course="course_unified1")
    for course in (COURSE, "course_unified1"):
        project.run(f"--batch-course={course}", author="outline").result.assert_outcomes(
            passed=3)
    columns = ("sow_order", "outcomeRefs", "lesson_type", "policy", "engagement_tags",
               "estMinutes", "title")
    written = [[{name: row[name] for name in columns} for row in project.rows(course)]
               for course in (COURSE, "course_unified1")]
    assert written[0] == written[1]
    assert [json.loads(row["outcomeRefs"]) for row in project.rows(COURSE)] == [
        ["O1", "AS1.2"], ["O1", "AS1.1"], ["O1"]]


def test_the_dry_run_names_what_cannot_be_written(skills: BatchProject) -> None:
    run = skills.run(f"--batch-course={SKILLS_COURSE}", "--batch-dry-run", author="outline")
    assert run.ret == 0
    plan = run.plan()
    assert plan["cannot_write"] == [4]
    [item] = [i for i in plan["plan"]["generate"] if i["order"] == 4]
    assert UNKNOWN_SKILL in item["cannot_write"]
    assert f"⚠ lesson 4 cannot be written: its outcome refs cannot be resolved: {UNKNOWN_SKILL}" \
        in run.output()


def test_the_claude_author_writes_the_entry_facts_whatever_the_model_typed(
    skills: BatchProject, model_server: ModelServer
) -> None:
    model_server.script = scripted(slips=True)
    run = skills.run(f"--batch-course={SKILLS_COURSE}", "-k", "not lesson_004",
                     author="claude", subprocess=True)
    assert run.ret == 0, run.output()
    assert refs_by_order(skills, SKILLS_COURSE) == SKILLS_REFS
    policies = {r["sow_order"]: json.loads(r["policy"]) for r in skills.rows(SKILLS_COURSE)}
    assert policies[1] == {"calculator_allowed": False, "assessment_notes": "Show all working."}
    # The slips cost no round: one lesson and one verdict each.
    assert [r.role for r in model_server.model_requests()] == ["author", "critic"] * 3
    author = next(r for r in model_server.model_requests("author")
                  if f"Write lesson 2 of course {SKILLS_COURSE}" in r.text())
    # The skills come with their outcome's title and teacher guidance, and the entry's level.
    linked = inline(author, "standards_and_skills")
    assert [item["outcomeId"] for item in linked] == [INDICES, ROUNDING]
    assert linked[1]["outcomeTitle"] == "Rounding to a given number of significant figures"
    assert "**Parent Topics**: Numerical skills" in linked[1]["teacherGuidance"]
    assert inline(author, "lesson_requirements")["plain_language_level"] == "CEFR A2"
    log = run.layout.lesson_log(1).read_text()
    assert f'submit_lesson: outcomeRefs: the author wrote ["SKILL_MADE_UP", "O9"]; written' \
           f' from the entry: ["{SURDS}"]' in log


# --- the audit: stored lessons held to their entry ----------------------------------------------


def test_the_audit_fails_a_lesson_whose_entry_changed_and_reports_every_stale_one(
    skills: BatchProject,
) -> None:
    skills.run(f"--batch-course={SKILLS_COURSE}", author="outline")  # from SOW version 2
    document = fixture("sow_skills_unified.json")
    document["entries"][0]["policy"] = {"calculator_section": "calc"}  # changed under lesson 1
    skills.load({**document, "version": "3"}, course=None, outcomes=SKILLS_OUTCOMES)
    xml = skills.pytester.path / "audit.xml"
    run = skills.run(f"--batch-course={SKILLS_COURSE}", "--batch-audit", f"--junitxml={xml}",
                     author=None)
    assert run.ret == 1
    run.result.assert_outcomes(passed=2, failed=1, skipped=1)
    summary = run.summary()
    results = {r["order"]: r for r in summary["results"]}
    assert results[1]["violations"] == [
        "policy.calculator_allowed: must be true: calculator_allowed is true only for a calc"
        " lesson"]
    assert [results[o]["status"] for o in (2, 3)] == ["passed", "passed"]
    assert all(results[o]["stale"] for o in (1, 2, 3)) and summary["stale"] == 3
    assert results[1]["note"] == ("stale: written from SOW version 2; the course's SOW"
                                  " sow_c84775_skills is version 3")
    assert "passed 2, failed 1, skipped 1 (no lesson), stale 3 (older SOW version)" \
        in run.output()
    stale = [p.get("value") for p in ElementTree.parse(xml).getroot().iter("property")
             if p.get("name") == "stale"]
    assert stale == ["True"] * 3
    assert "stale 3 (written from an older SOW version)" in run.layout.report.read_text()
    plan = skills.run(f"--batch-course={SKILLS_COURSE}", "--batch-audit", "--batch-dry-run",
                      author=None).plan()
    assert plan["stale"] == [1, 2, 3]


def test_load_lesson_imports_an_export_for_the_audit(
    project: BatchProject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    course = "course_testmock"  # the example's own id is no course id the platform takes
    project.load({"entries": [{"order": 1, "label": "Calculating fractions of amounts",
                               "lesson_type": "teach", "outcomeRefs": ["O1"],
                               "assessmentStandardRefs": ["AS1.2"],
                               "policy": {"calculator_section": "non_calc"}}]},
                 course=course)
    url = f"sqlite:///{project.store_path}"
    example = str(FIXTURES / "lesson_template_example.json")
    for _ in range(2):  # loading again replaces the row
        assert main(["--store", url, "load-lesson", example, "--course", course]) == 0
    out = capsys.readouterr().out
    assert f"Loaded 1 lesson row: {course} order 1 (row lt_" in out
    assert len(project.rows(course)) == 1
    run = project.run(f"--batch-course={course}", "--batch-audit", author=None)
    run.result.assert_outcomes(failed=1)
    [result] = run.summary()["results"]
    assert result["violations"] == [
        "cards[1] (card_002).cfu.hints: key not allowed by the contract (allowed: type, id,"
        " stem, rubric)",
        "cards[3] (card_004).explainer: must be 100-2000 characters, has 61",
        "cards[3] (card_004).explainer_plain: must be 60-1600 characters, has 55"]


@pytest.mark.parametrize(("content", "message"), [
    ('[]', "holds no lesson rows"),
    ('[1]', "[0] is not a lesson row"),
    ('{"courseId": "course_x1", "sow_order": "1"}', "sow_order must be a whole number"),
    ('{"courseId": "course_test_mock", "sow_order": 1}',
     "'course_test_mock' is not a course id (course_ + ASCII letters and digits); pass"
     " --course ID to load it under another course"),
    ('[{"courseId": "course_x1", "sow_order": 1}, {"courseId": "course_x1", "sow_order": 1}]',
     "[1]: a second row for course_x1 order 1 without its own $id"),
])
def test_load_lesson_refuses_rows_it_cannot_place_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    source = tmp_path / "lessons.json"
    source.write_text(content)
    assert main(["--store", f"sqlite:///{tmp_path / 's.sqlite3'}", "load-lesson",
                 str(source)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
