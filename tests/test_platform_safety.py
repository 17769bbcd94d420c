"""What an overwrite does to the platform: published lessons, stale diagrams, drafts."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest

from tests.conftest import COURSE, BatchProject
from tests.support.appwrite_server import AppwriteTestServer
from tests.support.lessons import OUTCOMES
from tests.support.rows import lesson_row
from tests.test_force_prompt import run_on_terminal

pytestmark = pytest.mark.usefixtures("project")


def overwrite_setup(project: BatchProject) -> list[str]:
    project.load("sow_current.json")
    ids = project.add_lessons(COURSE, [1, 2])
    project.publish(ids[0])
    project.add_diagrams(ids[0], "card_001", "card_002")
    project.add_diagrams(ids[1], "card_001")
    return ids


def test_the_plan_counts_published_lessons_and_diagrams_an_overwrite_affects(
    project: BatchProject
) -> None:
    overwrite_setup(project)
    run = project.run(f"--batch-course={COURSE}", "--batch-force", "--batch-dry-run")
    assert run.ret == 0
    assert run.plan()["replacing"] == {"lessons": 2, "published": 1, "diagrams": 3}
    assert run.plan()["plan"]["overwrite"][0]["status"] == "published"
    run.result.stdout.fnmatch_lines([
        "*1 of the lessons to overwrite are published: an overwrite makes them draft*",
        "*3 diagrams of them will be removed after the write*--batch-keep-diagrams keeps them)",
    ])


def test_the_force_prompt_says_what_the_overwrite_does(project: BatchProject) -> None:
    overwrite_setup(project)
    code, output = run_on_terminal(project, [f"--batch-course={COURSE}", "--batch-force"], "n")
    assert code == 0
    assert "1 of the lessons to overwrite are published: an overwrite makes them draft" in output
    assert "3 diagrams of them will be removed after the write" in output


def test_an_overwrite_removes_the_old_lessons_diagrams(project: BatchProject) -> None:
    ids = overwrite_setup(project)
    run = project.run(f"--batch-course={COURSE}", "--batch-force", "--batch-yes")
    run.result.assert_outcomes(passed=3)
    assert project.diagrams() == []
    summary = run.summary()
    assert summary["diagrams_removed"] == 3
    removed = {r["order"]: r.get("removed_diagrams", []) for r in summary["results"]}
    assert removed == {1: [f"dgm_{ids[0][:8]}_card_001", f"dgm_{ids[0][:8]}_card_002"],
                       2: [f"dgm_{ids[1][:8]}_card_001"], 4: []}
    log = run.layout.lesson_log(1).read_text()
    assert f"Removed diagram dgm_{ids[0][:8]}_card_001 of card_001 (image img_card_001)" in log
    assert [r["status"] for r in project.rows()] == ["draft"] * 3  # hidden until re-published


def test_keep_diagrams_keeps_them(project: BatchProject) -> None:
    overwrite_setup(project)
    run = project.run(f"--batch-course={COURSE}", "--batch-force", "--batch-yes",
                      "--batch-keep-diagrams")
    run.result.assert_outcomes(passed=3)
    assert len(project.diagrams()) == 3
    assert run.summary()["diagrams_removed"] == 0


@pytest.fixture
def appwrite_course(appwrite_server: AppwriteTestServer,
                    appwrite_env: dict[str, str]) -> AppwriteTestServer:
    """The Appwrite server holding a one-lesson course and its outcomes."""
    appwrite_server.add_sow(COURSE, [{"order": 1, "label": "Percentages in Scottish shops",
                                      "outcomeRefs": ["O1"]}])
    appwrite_server.add_outcomes(COURSE, OUTCOMES)
    return appwrite_server


def on_appwrite(project: BatchProject) -> list[str]:
    return [f"--batch-course={COURSE}", "--batch-store=appwrite",
            f"--batch-mcp-config={project.pytester.path / 'none.json'}"]


def test_drafts_reach_the_platform_only_when_asked(
    project: BatchProject, appwrite_course: AppwriteTestServer
) -> None:
    appwrite_server, args = appwrite_course, on_appwrite(project)
    refused = project.run(*args, author="outline", subprocess=True)
    assert refused.ret == 2 and refused.batch_dirs() == []
    assert refused.result.stderr.lines == [
        f"batchgen: the outline author writes drafts, and the platform reads"
        f" appwrite {appwrite_server.url} project test-project database default as finished"
        " lessons (its own tools would never author the real ones); pass"
        " --batch-allow-drafts to write drafts there"]
    assert project.run(*args, "--batch-dry-run", author="outline").ret == 0  # writes nothing
    assert appwrite_server.rows("lesson_templates") == []
    run = project.run(*args, "--batch-allow-drafts", author="outline")
    run.result.assert_outcomes(passed=1)
    assert len(appwrite_server.rows("lesson_templates")) == 1


def test_an_appwrite_overwrite_removes_diagram_rows_and_images(
    project: BatchProject, appwrite_course: AppwriteTestServer
) -> None:
    appwrite_server = appwrite_course
    row = appwrite_server.add_lesson(lesson_row(1))
    other = appwrite_server.add_lesson(lesson_row(2))
    appwrite_server.add_diagram(row, "card_001")
    appwrite_server.add_diagram(row, "card_002")
    kept = appwrite_server.add_diagram(other, "card_001")
    xml = project.pytester.path / "batch.xml"
    run = project.run(*on_appwrite(project), "--batch-force", "--batch-yes", f"--junitxml={xml}")
    run.result.assert_outcomes(passed=1)
    assert [r["$id"] for r in appwrite_server.rows("lesson_diagrams")] == [kept]
    assert len(appwrite_server.files("6907775a001b754c19a6")) == 1
    properties = {p.get("name"): p.get("value")
                  for p in ElementTree.parse(xml).getroot().iter("property")}
    assert len(json.loads(properties["removed_diagrams"])) == 2  # JSON, not a Python repr
    # The (scripted) critic's scores of the written lesson, like every other figure.
    assert (properties["critic_fidelity"], properties["critic_quality"],
            properties["critic_overall"]) == ("0.95", "0.9", "0.9375")
    result = run.summary()["results"][0]
    assert (result["critic_fidelity"], result["critic_overall"]) == (0.95, 0.9375)
    assert "0.938" in run.layout.report.read_text()


@pytest.fixture
def appwrite_lesson(appwrite_course: AppwriteTestServer) -> str:
    """One stored lesson with a diagram on its first card; returns its row id."""
    row = appwrite_course.add_lesson(lesson_row(1))
    appwrite_course.add_diagram(row, "card_001")
    return row


def force_on_appwrite(project: BatchProject):  # type: ignore[no-untyped-def]
    return project.run(*on_appwrite(project), "--batch-force", "--batch-yes")


def test_a_diagram_that_cannot_be_removed_leaves_the_written_lesson_standing(
    project: BatchProject, appwrite_server: AppwriteTestServer, appwrite_lesson: str
) -> None:
    appwrite_server.inject(r"/storage/buckets/.*/files/", 403, method="DELETE")
    run = force_on_appwrite(project)
    run.result.assert_outcomes(passed=1)  # the new lesson is written and good
    result = run.summary()["results"][0]
    assert result["note"].startswith("old diagrams could not be removed: Appwrite delete"
                                     " diagram image dgm_image_")
    assert "removed_diagrams" not in result
    assert len(appwrite_server.rows("lesson_diagrams")) == 1  # a later run can find it
    assert appwrite_server.rows("lesson_templates")[0]["model_version"] == "claud_Agent_sdk"


def test_a_database_without_the_diagram_table_has_no_diagrams(
    project: BatchProject, appwrite_server: AppwriteTestServer, appwrite_lesson: str
) -> None:
    appwrite_server.inject(r"/tables/lesson_diagrams/rows$", 404, times=2, method="GET")
    run = force_on_appwrite(project)
    run.result.assert_outcomes(passed=1)
    assert run.summary()["diagrams_removed"] == 0
