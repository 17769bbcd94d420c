"""A batch directory: every file in it named in one place, and how they are written.

The names are the ones the platform's batch tools have always used
(`batch_summary.json`, `lesson_order_006.log`, …). Whoever writes or reads a
batch's files (the controller, a worker, the `write-pending` command, the tests)
asks `BatchLayout` for the path. JSON files are replaced atomically, so an
interrupted run never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUMMARY_FILE = "batch_summary.json"
PLAN_FILE = "dry_run_plan.json"
BATCH_LOG_FILE = "batch_execution.log"
REPORT_FILE = "batch_report.html"
# The running spend, for workers deciding whether to start a lesson (internal).
SPEND_FILE = "batch_spend.json"
DIFF_DIR = "diffs"
# A page per lesson written, overwritten or audited: the lesson as the learner meets it.
LESSON_PAGE_DIR = "lessons"
PENDING_DIR = "pending"
# What a lesson interrupted while authoring had spent (one file per lesson).
INTERRUPTED_DIR = "interrupted"
WORKSPACE_DIR = "workspaces"
# The run's limit on model sessions at once (authors/sessions.py); in the run's first
# batch directory only.
SESSIONS_DIR = "sessions"
# A merge's record across courses (python -m pytest_batchgen merge).
CATALOGUE_FILE = "catalogue_summary.json"


@dataclass(frozen=True)
class BatchLayout:
    directory: Path

    @property
    def summary(self) -> Path:
        return self.directory / SUMMARY_FILE

    @property
    def plan(self) -> Path:
        return self.directory / PLAN_FILE

    @property
    def batch_log(self) -> Path:
        return self.directory / BATCH_LOG_FILE

    @property
    def report(self) -> Path:
        return self.directory / REPORT_FILE

    @property
    def spend(self) -> Path:
        return self.directory / SPEND_FILE

    def lesson_log(self, order: int) -> Path:
        return self.directory / f"lesson_order_{order:03d}.log"

    def diff(self, order: int) -> Path:
        return self.directory / DIFF_DIR / f"lesson_{order:03d}.diff"

    def lesson_page(self, order: int) -> Path:
        return self.directory / LESSON_PAGE_DIR / f"lesson_{order:03d}.html"

    @property
    def pending_dir(self) -> Path:
        return self.directory / PENDING_DIR

    def pending(self, order: int) -> Path:
        return self.pending_dir / f"lesson_{order:03d}.json"

    def pending_files(self) -> list[Path]:
        return sorted(self.pending_dir.glob("lesson_*.json"))

    def interrupted(self, order: int) -> Path:
        return self.directory / INTERRUPTED_DIR / f"lesson_{order:03d}.json"

    def interrupted_files(self) -> list[Path]:
        return sorted((self.directory / INTERRUPTED_DIR).glob("lesson_*.json"))

    @property
    def workspaces(self) -> Path:
        return self.directory / WORKSPACE_DIR

    @property
    def sessions(self) -> Path:
        return self.directory / SESSIONS_DIR

    def workspace(self, order: int) -> Path:
        """A lesson's kept workspace (the default: kept for debugging)."""
        return self.workspaces / f"lesson_{order:03d}"

    def temporary_workspace(self, order: int) -> Path:
        """A lesson's workspace that goes when the lesson ends (--batch-no-persist-workspace).

        Inside the batch directory, not the system's temp: a process killed before
        it could remove it leaves nothing anywhere else."""
        return Path(tempfile.mkdtemp(prefix=f".workspace_{order:03d}_", dir=self.directory))

    def name(self, path: Path) -> str:
        """A file of the batch as results record it: relative to the batch directory."""
        return path.relative_to(self.directory).as_posix()

    # --- the spend the controller shares with the workers -------------------------------

    def write_spend(self, cost_usd: float) -> None:
        write_json_atomic(self.spend, {"total_cost_usd": round(cost_usd, 6)})

    def read_spend(self) -> float:
        """The batch's spent cost, as the controller's record says.

        Reading a file rather than process memory lets every xdist worker see the
        same running total before it starts a lesson; the file is a few bytes, so
        checking it costs the same in lesson 5000 as in lesson 1.
        """
        try:
            document = json.loads(self.spend.read_text(encoding="utf-8"))
            return float(document.get("total_cost_usd", 0.0))
        except (OSError, ValueError, AttributeError):
            return 0.0


def batch_directories(log_dir: Path) -> list[Path]:
    """The batch directories under a log directory (earlier runs' included)."""
    return sorted(path for path in log_dir.glob("batch_*") if path.is_dir())


def claim_batch_directory(log_dir: Path, batch_id: str) -> Path:
    """Create the batch's directory: `batch_id`, or `_2`, `_3`… when a run in the
    same second (this one's other course, or a concurrent run) has it already.

    mkdir without exist_ok is the claim, so two runs can never share a directory.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    candidate, suffix = log_dir / batch_id, 2
    while True:
        try:
            candidate.mkdir()
        except FileExistsError:
            candidate, suffix = log_dir / f"{batch_id}_{suffix}", suffix + 1
            continue
        return candidate.absolute()


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
