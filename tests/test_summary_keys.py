"""The keys of the JSON a run leaves, as dashboards and scripts read them: a golden list.

`batch_summary.json`, a merged summary and the catalogue are built as typed documents
(controller/documents.py); this pins what lands on disk, in order, so a change to those
models is seen to keep every key. A new key is a deliberate edit here. Each file also
reads back into its model and writes out as it was: what a reader gets is the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_batchgen.__main__ import main
from pytest_batchgen.controller.documents import (
    CatalogueDocument,
    Document,
    SummaryDocument,
    read_document,
)
from pytest_batchgen.layout import CATALOGUE_FILE, BatchLayout
from tests.conftest import COURSE, BatchProject

SUMMARY = [
    "batch_id", "courseId", "start_time", "end_time", "duration_seconds", "duration_human",
    "force_mode", "dry_run", "mode", "author", "complete", "interrupted", "store", "sow",
    "total_sow_entries", "skipped", "generated", "failed", "stale", "not_started",
    "not_run", "deselected", "stopped_early", "budget", "changed_lessons",
    "diagrams_removed", "pending_files", "service_errors", "results", "sow_labels",
    "total_cost_usd", "total_tokens", "avg_cost_per_lesson_usd",
    "avg_duration_per_lesson_seconds", "log_directory"]
MERGED = [
    *SUMMARY[:22], "not_covered", "stopped_early", "changed_lessons", "diagrams_removed",
    "pending_files", "results", "sow_labels", "total_cost_usd", "total_tokens",
    "avg_cost_per_lesson_usd", "avg_duration_per_lesson_seconds",
    "total_cost_usd_all_runs", "lesson_seconds", "critic_overall_avg", "log_directory",
    "merged_from"]
RESULT = {
    "success": ["order", "label", "status", "action", "doc_id", "duration_seconds",
                "cost_usd", "tokens", "log_file", "model", "turns", "critic_fidelity",
                "critic_quality", "critic_overall", "lesson_page"],
    "skipped": ["order", "label", "status", "action", "existing_doc_id", "log_file",
                "reason"],
    "passed": ["order", "label", "status", "action", "doc_id", "log_file", "lesson_page"],
    "failed": ["order", "label", "status", "action", "doc_id", "error", "log_file",
               "lesson_page", "violations"],
}
CATALOGUE = ["merged_at", "sources", "output", "complete", "courses", "totals", "failures"]
CATALOGUE_COURSE = ["courseId", "mode", "summary", "complete", "generated", "skipped",
                    "failed", "not_started", "not_run", "not_covered", "total_cost_usd",
                    "total_tokens", "lesson_seconds", "critic_overall_avg", "batches"]


def audited(keys: list[str]) -> list[str]:
    """An audit's document counts the lessons that passed, after those generated."""
    at = keys.index("generated") + 1
    return [*keys[:at], "passed", *keys[at:]]


def results_keys(document: dict[str, Any]) -> dict[str, list[str]]:
    return {result["status"]: list(result) for result in document["results"]}


def read_back(path: Path, kind: type[Document] = SummaryDocument) -> dict[str, Any]:
    """The file's JSON, after checking that its model reads it and writes it out whole."""
    written = json.loads(path.read_text())
    assert read_document(path, kind).to_json() == written
    return written


def test_summary_merge_and_catalogue_keep_their_keys(project: BatchProject,
                                                     tmp_path: Path) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [2])  # a stub the audit fails
    generate = read_back(project.run(f"--batch-course={COURSE}").layout.summary)
    assert list(generate) == SUMMARY
    assert results_keys(generate) == {s: RESULT[s] for s in ("success", "skipped")}
    assert list(generate["sow"]) == ["doc_id", "version", "status"]
    assert list(generate["budget"]) == ["max_cost_usd", "reached", "not_started"]

    audit = read_back(project.run(f"--batch-course={COURSE}", "--batch-audit").layout.summary)
    assert list(audit) == audited(SUMMARY)
    assert results_keys(audit) == {s: RESULT[s] for s in ("passed", "failed")}

    out = tmp_path / "merged"
    assert main(["merge", str(project.log_dir), "--out", str(out)]) == 1  # the audit failed
    for suffix, keys in (("", MERGED), ("_audit", audited(MERGED))):
        merged = read_back(BatchLayout(out / f"batch_{COURSE}{suffix}_merged").summary)
        assert list(merged) == keys
        assert [list(source) for source in merged["merged_from"]] == [
            ["batch_id", "summary", "shard", "start_time"]]
    catalogue = read_back(out / CATALOGUE_FILE, CatalogueDocument)
    assert list(catalogue) == CATALOGUE
    assert [list(course) for course in catalogue["courses"]] == [
        [*CATALOGUE_COURSE[:7], "passed", *CATALOGUE_COURSE[7:]], CATALOGUE_COURSE]
    assert list(catalogue["totals"]) == [
        "courses", "lessons", "generated", "skipped", "failed", "passed", "not_started",
        "not_run", "not_covered", "total_cost_usd", "total_cost_usd_all_runs",
        "total_tokens", "lesson_seconds"]
    assert [list(failure) for failure in catalogue["failures"]] == [
        ["courseId", "mode", "order", "label", "error", "log_file", "lesson_page"]]
