"""Both real SOW shapes load and plan; the `python -m pytest_batchgen` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_batchgen.__main__ import main
from pytest_batchgen.contract import check_row, outcome_ids_of
from pytest_batchgen.store import CourseNotFound
from pytest_batchgen.store.sqlite import SqliteStore
from tests.conftest import COURSE, FIXTURES, BatchProject, legacy_sow


def test_legacy_105_entry_row_export_loads_and_dry_runs(project: BatchProject) -> None:
    document = legacy_sow(105)
    project.load(document, course=None, status=None)  # the file's own status: draft
    project.add_lessons("course_c84774", list(range(1, 41)))
    run = project.run("--batch-course=course_c84774", "--batch-sow-status=draft",
                      "--batch-dry-run")
    assert run.ret == 0
    plan = run.plan()
    assert plan["total_sow_entries"] == 105
    assert plan["summary"] == {"will_generate": 65, "will_skip": 40, "will_replace": 0,
                               "will_overwrite": 0}
    assert plan["sow"] == {"doc_id": "sow-legacy-v3", "version": "3", "status": "draft"}
    assert plan["estimates"]["duration_minutes"] == 65 * 7


def test_legacy_entries_author_with_platform_lesson_types(project: BatchProject) -> None:
    project.load("sow_legacy_row.json", course=None)
    run = project.run("--batch-course=course_c84774", author="outline")
    run.result.assert_outcomes(passed=3)
    rows = project.rows("course_c84774")
    assert [r["lesson_type"] for r in rows] == ["teach", "independent_practice", "mock_exam"]
    text = run.layout.lesson_log(3).read_text()
    assert "lesson_type 'mock_assessment' is not a type the platform's frontend accepts;" \
           " writing 'mock_exam'" in text
    assert "Outcome ref '1' resolved to 'O1'" in text


def test_current_format_lesson_follows_the_card_plan(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.run(f"--batch-course={COURSE}", author="outline").result.assert_outcomes(passed=3)
    store = project.store()
    [stored] = [row for row in store.list_lessons(COURSE) if row.sow_order == 1]
    row = store.read_lesson(stored.doc_id)
    store.close()
    assert row is not None
    lesson = row.decoded()
    assert [card["id"] for card in lesson["cards"]] == ["card_001", "card_002"]
    assert "30% of £120" in lesson["cards"][1]["explainer"]  # the worked example
    assert lesson["cards"][1]["cfu"]["stem"] == "Find 20% of £80."  # the practice problem
    assert lesson["cards"][1]["misconceptions"][0]["id"] == "MISC_DRAFT_MODELLING_002"
    assert lesson["policy"] == {"calculator_allowed": False}  # as the platform reads it
    assert lesson["outcomeRefs"] == ["O1", "AS1.2"]
    assert lesson["createdBy"] == "lesson_author_agent" and lesson["status"] == "draft"
    assert not row.cards.startswith(("gzip:", "["))  # base64 gzip, no prefix


# --- the command line ---------------------------------------------------------------


def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.sqlite3'}"


def test_load_sow_both_shapes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = store_url(tmp_path)
    assert main(["--store", url, "load-sow", str(FIXTURES / "sow_current.json"),
                 "--course", COURSE]) == 0
    assert main(["--store", url, "load-sow", str(FIXTURES / "sow_legacy_row.json")]) == 0
    out = capsys.readouterr().out
    assert f"Loaded SOW sow_{COURSE} for {COURSE}: 3 entries, status published" in out
    assert "Loaded SOW sow-legacy-v3 for course_c84774: 3 entries, status draft, version 3" in out


def test_a_file_loaded_for_another_course_takes_nothing_from_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = store_url(tmp_path)
    document = {"$id": "sow_a1", "courseId": "course_a1",
                "entries": [{"order": 1, "label": "Percentages"}],
                "outcomes": [{"$id": "out_a1", "outcomeId": "O1", "courseId": "course_a1"}]}
    source = tmp_path / "sow.json"
    source.write_text(json.dumps(document))
    outcomes = tmp_path / "outcomes.json"
    outcomes.write_text(json.dumps(document["outcomes"]))
    assert main(["--store", url, "load-sow", str(source)]) == 0
    # The same files for a second course: copies with their own row ids.
    assert main(["--store", url, "load-sow", str(source), "--course", "course_b2"]) == 0
    assert main(["--store", url, "load-outcomes", str(outcomes), "--course", "course_b2"]) == 0
    out = capsys.readouterr().out
    assert "Loaded SOW sow_course_b2 for course_b2" in out
    store = SqliteStore.from_url(url)
    assert store.fetch_sow("course_a1").doc_id == "sow_a1"  # course_a1 keeps its SOW
    assert [o["outcomeId"] for o in store.fetch_outcomes("course_a1")] == ["O1"]
    assert [o["outcomeId"] for o in store.fetch_outcomes("course_b2")] == ["O1"]
    store.close()
    # A row id that names another course's row is refused, and nothing is loaded.
    taken = tmp_path / "taken.json"
    taken.write_text(json.dumps({"$id": "sow_a1", "entries": [{"order": 1, "label": "x"}]}))
    assert main(["--store", url, "load-sow", str(taken), "--course", "course_c3"]) == 2
    assert capsys.readouterr().err == (
        f"error: Authored_SOW row sow_a1 belongs to course_a1 in {tmp_path / 'store.sqlite3'};"
        " loading it for course_c3 would take it from that course: give the row another"
        " $id\n")


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("{not json", [], "is not valid JSON"),
        ('{"entries": []}', ["--course", COURSE], "the SOW has no entries"),
        ('{"metadata": {}, "entries": [{"order": 1, "label": "x"}]}', [],
         "the file names no courseId: pass --course ID"),
        ('{"courseId": "course_x1", "entries": [{"label": "no order"}]}', [],
         "entry #1 is malformed (order: Field required)"),
        ('[1, 2]', [], "is a list, not a SOW; for course_outcomes rows use load-outcomes"),
        ('"text"', [], "expected an object with 'entries'"),
        ('{"courseId": "course_日本", "entries": [{"order": 1, "label": "x"}]}', [],
         "'course_日本' is not a course id"),
        ('{"courseId": "course_x1", "entries": [{"order": 1, "label": "x"}],'
         ' "outcomes": [{"outcomeTitle": "no id"}]}', [],
         "outcomes[0] is not a course_outcomes row (an object with an outcomeId)"),
    ],
)
def test_load_sow_rejects_bad_files_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, args: list[str],
    message: str,
) -> None:
    source = tmp_path / "sow.json"
    source.write_text(content)
    assert main(["--store", store_url(tmp_path), "load-sow", str(source), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_demo_then_show_lesson(project: BatchProject, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{project.store_path}"
    assert main(["--store", url, "load-demo"]) == 0
    project.run("--batch-course=course_demo1", author="outline").result.assert_outcomes(passed=6)
    capsys.readouterr()
    assert main(["--store", url, "show-lesson", "course_demo1", "3"]) == 0
    lesson = json.loads(capsys.readouterr().out)
    assert lesson["sow_order"] == 3 and lesson["model_version"] == "batchgen_outline"
    assert isinstance(lesson["cards"], list) and lesson["cards"][0]["id"] == "card_001"
    assert main(["--store", url, "show-lesson", "course_demo1", "99"]) == 2
    assert "no lesson for course_demo1 order 99" in capsys.readouterr().err


def test_show_lesson_creates_no_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--store", store_url(tmp_path), "show-lesson", "course_demo1", "1"]) == 2
    assert "does not exist: load a SOW into it first" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_load_outcomes_takes_the_rows_as_the_platform_exports_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = store_url(tmp_path)
    rows = [{"courseId": "course_c84774", "outcomeId": "O1", "unitCode": "H225 74",
             "assessmentStandards": '[{"code": "AS1.1", "desc": "Notation"}]'},
            {"courseId": "course_c84774", "outcomeId": "O2"},
            {"courseId": "course_c84774", "outcomeId": "O1", "unitCode": "H22F 74"}]
    source = tmp_path / "outcomes.json"
    source.write_text(json.dumps(rows))
    assert main(["--store", url, "load-outcomes", str(source)]) == 0
    assert "Loaded 3 outcomes for course_c84774 (outcome ids: O1, O2)" in capsys.readouterr().out
    assert main(["--store", url, "load-outcomes", str(source), "--course", COURSE]) == 0
    store = SqliteStore.from_url(url)
    try:
        assert sorted(o.get("unitCode", "") for o in store.fetch_outcomes("course_c84774")) \
            == ["", "H225 74", "H22F 74"]
        assert {o["courseId"] for o in store.fetch_outcomes(COURSE)} == {COURSE}
    finally:
        store.close()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", "must be a non-empty list of course_outcomes rows"),
        ('{"entries": []}', "must be a non-empty list of course_outcomes rows"),
        ('[{"outcomeId": "O1"}]', "None is not a course id"),
        ('[{"courseId": "course_a1", "outcomeId": "O1"}, 3]', "[1] is not a course_outcomes row"),
    ],
)
def test_load_outcomes_rejects_bad_files_and_loads_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    source = tmp_path / "outcomes.json"
    source.write_text(content)
    assert main(["--store", store_url(tmp_path), "load-outcomes", str(source)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_a_sow_with_bad_outcomes_loads_nothing(tmp_path: Path) -> None:
    source = tmp_path / "sow.json"
    source.write_text(json.dumps({"courseId": "course_x1", "entries": [{"order": 1,
                                  "label": "x"}], "outcomes": [{"outcomeId": ""}]}))
    url = store_url(tmp_path)
    assert main(["--store", url, "load-sow", str(source)]) == 2
    store = SqliteStore.from_url(url)
    try:
        with pytest.raises(CourseNotFound):
            store.fetch_sow("course_x1")
    finally:
        store.close()


def test_a_course_without_outcomes_is_a_batch_error(project: BatchProject) -> None:
    project.load("sow_current.json", outcomes=[])
    run = project.run(f"--batch-course={COURSE}", "--batch-dry-run", subprocess=True)
    assert run.ret == 2 and run.batch_dirs() == []
    assert run.result.stderr.lines == [
        f"batchgen: course {COURSE} has no course_outcomes rows in"
        f" sqlite:///{project.store_path}, so no lesson's outcome refs can be checked (a"
        " learner's session needs them); load them with: python -m pytest_batchgen"
        " load-outcomes FILE (a JSON list of course_outcomes rows)"]


@pytest.mark.parametrize("source", ["demo", "sow_current.json", "sow_legacy_row.json", "legacy"])
def test_every_outline_row_passes_the_whole_contract(project: BatchProject, source: str) -> None:
    """Decoded as the frontend decodes them, checked against every rule and the course's
    outcomes: the drafts a newcomer writes are lessons the platform can run."""
    if source == "demo":
        assert main(["--store", f"sqlite:///{project.store_path}", "load-demo"]) == 0
        course = "course_demo1"
    elif source == "legacy":
        project.load(legacy_sow(105), course=None, status="published")
        course = "course_c84774"
    else:
        course = COURSE if source == "sow_current.json" else "course_c84774"
        project.load(source, course=COURSE if source == "sow_current.json" else None,
                     status="published")
    run = project.run(f"--batch-course={course}", author="outline")
    assert run.ret == 0, run.output()
    store = project.store()
    outcome_ids = outcome_ids_of(store.fetch_outcomes(course))
    rows = [row for order in sorted({r["sow_order"] for r in project.rows(course)})
            for row in store.lesson_rows(course, order)]
    store.close()
    assert len(rows) == run.summary()["total_sow_entries"]
    assert {r["$id"]: [str(v) for v in check_row(r, outcome_ids)] for r in rows} == {
        r["$id"]: [] for r in rows}
