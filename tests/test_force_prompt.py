"""The force confirmation prompt, answered on a real terminal (a pseudo-TTY)."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

from tests.conftest import COURSE, BatchProject


def run_on_terminal(project: BatchProject, args: list[str],
                    answer: str | signal.Signals) -> tuple[int, str]:
    """Run pytest with a pseudo-terminal as stdin/stdout; at the prompt, type `answer`
    or send it as a signal (Ctrl-C is SIGINT)."""
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", *project.args(*args)],
        stdin=terminal, stdout=terminal, stderr=terminal, cwd=project.pytester.path, env=env,
    )
    os.close(terminal)
    output = b""
    answered = False
    deadline = time.monotonic() + 120  # a safety net only; the test never waits on it
    while time.monotonic() < deadline:
        if answered and isinstance(answer, signal.Signals) and process.poll() is None \
                and not select.select([controller], [], [], 1.0)[0]:
            # CPython's readline loop misses a SIGINT that lands just before it waits
            # for a key (the handler runs, select() is not interrupted): press again,
            # as a user would. The second one wakes it; one KeyboardInterrupt results.
            process.send_signal(answer)
            continue
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        if not answered and b"[y/N]:" in output:
            if isinstance(answer, signal.Signals):
                process.send_signal(answer)
            else:
                os.write(controller, answer.encode() + b"\n")
            answered = True
    os.close(controller)
    return process.wait(timeout=60), output.decode("utf-8", "replace")


def test_force_prompt_lists_overwrites_and_proceeds_on_yes(project: BatchProject) -> None:
    project.load("sow_current.json")
    ids = project.add_lessons(COURSE, [1, 2])
    code, output = run_on_terminal(project, [f"--batch-course={COURSE}", "--batch-force"], "y")
    assert "WARNING: Force mode will OVERWRITE existing lessons" in output
    assert "Existing lessons found: 2 (orders: 1, 2)" in output
    assert "Will overwrite: 3 lessons (including 2 existing)" in output
    assert "Estimated Cost: ~$0.51 USD" in output
    assert code == 0, output
    # After the answer, the run reports as any run does: its header, and a line a lesson.
    after = output.split("[y/N]:", 1)[1]
    assert "test session starts" in after
    assert f"{COURSE}::lesson_001 OVERWRITTEN" in after
    assert f"{COURSE}::lesson_004 GENERATED" in after
    rows = project.rows()
    assert [r["$id"] for r in rows[:2]] == ids
    assert {r["authored_sow_id"] for r in rows} == {f"sow_{COURSE}"}


def test_force_prompt_names_only_the_lessons_selected(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [1, 2])
    code, output = run_on_terminal(
        project, [f"--batch-course={COURSE}", "--batch-force", f"{COURSE}::lesson_002"], "y")
    assert "Existing lessons found: 1 (orders: 2)" in output
    assert "Will overwrite: 1 lesson (including 1 existing)" in output
    assert code == 0, output
    assert "1 passed, 2 deselected" in output


def test_force_prompt_counts_only_what_k_selects(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [1, 2])
    code, output = run_on_terminal(
        project, [f"--batch-course={COURSE}", "--batch-force", "-k", "Time"], "n")
    assert code == 0, output
    assert "Existing lessons found: 1 (orders: 2)" in output
    assert "Will overwrite: 1 lesson (including 1 existing)" in output


def test_declined_prompt_cancels_and_writes_nothing(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [1])
    before = project.rows()
    code, output = run_on_terminal(project, [f"--batch-course={COURSE}", "--batch-force"], "n")
    assert code == 0, output
    assert "Cancelled: nothing was written" in output
    assert "Traceback" not in output
    assert project.rows() == before
    assert not project.log_dir.exists()


def test_ctrl_c_at_the_prompt_writes_nothing_and_shows_no_traceback(
    project: BatchProject,
) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [1])
    before = project.rows()
    code, output = run_on_terminal(
        project, [f"--batch-course={COURSE}", "--batch-force"], signal.SIGINT)
    assert code == 2, output
    assert "batchgen: interrupted before the batch started; nothing was written" in output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output
    assert project.rows() == before
    assert not project.log_dir.exists()


def test_yes_flag_skips_the_prompt_even_on_a_terminal(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [1])
    code, output = run_on_terminal(
        project, [f"--batch-course={COURSE}", "--batch-force", "--batch-yes"], "n")
    assert code == 0, output
    assert "[y/N]" not in output
    assert "3 passed" in output
