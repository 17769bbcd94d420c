"""The Claude author's two tools: the lesson contract as an answer, and the critic's verdict.

`submit_lesson` checks a lesson against the whole contract and what its entry
asks (the same check as the item's gate) and answers with every violation at
once; `submit_review` records a verdict, refusing one whose `pass` contradicts
the platform critic's rule. Each session is offered only its own tool: an
author cannot review, a critic cannot submit. The state behind both tools is
one lesson's `Submissions`: what was accepted, what was reviewed, and the
round budget (--batch-max-retries).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_batchgen.contract import Lesson
from pytest_batchgen.requirements import EntryRequirements

log = logging.getLogger("pytest_batchgen.authors.claude")

SERVER_KEY = "batchgen"
SUBMIT_LESSON = f"mcp__{SERVER_KEY}__submit_lesson"
SUBMIT_REVIEW = f"mcp__{SERVER_KEY}__submit_review"
# The accepted lesson, kept in the workspace for whoever debugs the lesson later.
SUBMISSION_FILE = "lesson_submission.json"

# The platform critic's pass rule: two hard gates (the contract, which the tool
# enforces, and factual correctness), then weighted scores over thresholds.
FIDELITY_WEIGHT, QUALITY_WEIGHT = 0.75, 0.25
FIDELITY_MIN, QUALITY_MIN, OVERALL_MIN = 0.90, 0.80, 0.85
SCORE_NAMES = ("sow_fidelity", "basic_quality")


def judge_verdict(arguments: dict[str, Any]) -> tuple[dict[str, float], str | None]:
    """The verdict's scores (with `overall`), and why it is refused, if it is.

    A verdict whose `pass` contradicts its own scores and factual errors is
    refused: the pass rule is the platform critic's, not the model's mood.
    """
    verdict, scores, errors = (arguments.get("pass"), arguments.get("scores"),
                               arguments.get("factual_errors", []))
    usage = ('Expected {"pass": true|false, "feedback": "...", "scores": {"sow_fidelity": 0-1,'
             ' "basic_quality": 0-1}, "factual_errors": ["..."]}.')
    if not isinstance(verdict, bool) or not isinstance(scores, dict) or not (
            isinstance(errors, list) and all(isinstance(e, str) for e in errors)):
        return {}, usage
    values = {name: scores.get(name) for name in SCORE_NAMES}
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1
               for v in values.values()):
        return {}, f"Both scores must be numbers from 0 to 1. {usage}"
    fidelity, quality = float(values["sow_fidelity"] or 0), float(values["basic_quality"] or 0)
    overall = round(FIDELITY_WEIGHT * fidelity + QUALITY_WEIGHT * quality, 4)
    judged = {"sow_fidelity": fidelity, "basic_quality": quality, "overall": overall}
    passes = (not errors and fidelity >= FIDELITY_MIN and quality >= QUALITY_MIN
              and overall >= OVERALL_MIN)
    if verdict and not passes:
        return judged, (
            "Verdict refused: a pass needs no factual error, sow_fidelity >= 0.90,"
            f" basic_quality >= 0.80 and overall (0.75*fidelity + 0.25*quality) >= 0.85; these"
            f" scores give overall {overall:.3f} with {len(errors)} factual error(s).")
    if not verdict and passes:
        return judged, (
            "Verdict refused: these scores pass every threshold and no factual error is"
            " listed; to fail the lesson, list the factual errors or score what falls short.")
    return judged, None


@dataclass
class Submissions:
    """One lesson's submissions and reviews, and its retry budget.

    A round is a rejected submission, a refused verdict, a failed review or a
    session that ended without its tool's answer; more than `max_rounds` of them
    ends the lesson without a result.
    """

    max_rounds: int
    #: The contract plus what this entry asks: the same check as the item's gate.
    requirements: EntryRequirements
    #: Where the latest accepted lesson is saved (for debugging the lesson later).
    workspace: Path | None = None
    latest: Lesson | None = None
    latest_review: dict[str, float] | None = None
    latest_passed: bool = False
    rounds: int = 0
    accepted: int = 0
    reviews: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exhausted(self) -> bool:
        return self.rounds > self.max_rounds

    @property
    def result(self) -> Lesson | None:
        return self.latest if self.latest_passed else None

    @property
    def feedback(self) -> str:
        """The latest review's feedback, for the author's revision (verbatim)."""
        return str(self.reviews[-1].get("feedback") or "") if self.reviews else ""

    def spend_round(self, reason: str) -> str:
        self.rounds += 1
        if self.exhausted:
            return (f"{reason}\nThe retry budget of {self.max_rounds} rounds is exhausted:"
                    " stop now and do not call any tool again.")
        return f"{reason}\n(round {self.rounds} of {self.max_rounds})"

    def submit_lesson(self, arguments: dict[str, Any]) -> tuple[bool, str]:
        lesson = arguments.get("lesson")
        if not isinstance(lesson, dict):
            return False, self.spend_round('Expected {"lesson": {...}} with the lesson object.')
        # The entry's facts are written by code: a slip copying them costs no round.
        lesson, corrected = self.requirements.apply(lesson)
        for line in corrected:
            log.info("submit_lesson: %s", line)
        violations = self.requirements.check(lesson)
        if violations:
            log.warning("submit_lesson rejected: %d violations", len(violations))
            return False, self.spend_round(
                f"The lesson was NOT accepted: {len(violations)} violation(s) of the lesson"
                " contract. Fix all of them and submit the whole lesson again:\n- "
                + "\n- ".join(map(str, violations)))
        self.latest, self.latest_passed, self.latest_review = lesson, False, None
        self.accepted += 1
        log.info("submit_lesson accepted (#%d): %s, %d cards", self.accepted, lesson["title"],
                 len(lesson["cards"]))
        self._keep(lesson)
        return True, "accepted: the lesson is valid and goes to review."

    def _keep(self, lesson: Lesson) -> None:
        """Save the accepted lesson for whoever debugs it later. Only a convenience: a
        file that cannot be written (a full disk) must not turn an accepted lesson into
        an error the model would pay to resubmit."""
        if self.workspace is None:
            return
        try:
            (self.workspace / SUBMISSION_FILE).write_text(
                json.dumps(lesson, indent=2, ensure_ascii=False), encoding="utf-8")
        except (OSError, ValueError) as exc:
            log.warning("The accepted lesson could not be saved as %s (%s); it goes to"
                        " review all the same", SUBMISSION_FILE, exc)

    def submit_review(self, arguments: dict[str, Any]) -> tuple[bool, str]:
        if self.latest is None:
            return False, "There is no accepted lesson to review yet."
        scores, refused = judge_verdict(arguments)
        if refused:
            log.warning("submit_review refused: %s", refused)
            return False, self.spend_round(refused)
        verdict = bool(arguments["pass"])
        self.reviews.append(arguments)
        self.latest_passed, self.latest_review = verdict, scores
        log.info("submit_review: %s; scores %s; factual errors %s; feedback: %s",
                 "PASS" if verdict else "FAIL", json.dumps(scores),
                 json.dumps(arguments.get("factual_errors", [])), arguments.get("feedback", ""))
        if verdict:
            return True, "review recorded: the lesson passed and will be written."
        return True, self.spend_round("review recorded: the lesson failed; the author must"
                                       " revise it using the feedback.")


def tool_server(submissions: Submissions, role: str) -> Any:
    """The in-process MCP server `batchgen` for one session: the author's server offers
    only `submit_lesson`, the critic's only `submit_review`."""
    from claude_agent_sdk import create_sdk_mcp_server, tool

    def answer(ok: bool, text: str) -> dict[str, Any]:
        return {"content": [{"type": "text", "text": text}], "is_error": not ok}

    # Loose input schemas on purpose: the SDK would reject a malformed lesson with
    # its first JSON-schema error; our handler answers with every problem at once.
    @tool("submit_lesson", "Submit the complete lesson for validation. Answers 'accepted' or"
          " every problem to fix.", {"type": "object",
                                     "properties": {"lesson": {"type": "object"}},
                                     "required": ["lesson"]})
    async def submit_lesson(arguments: dict[str, Any]) -> dict[str, Any]:
        return answer(*submissions.submit_lesson(arguments))

    @tool("submit_review", "Record your verdict on the lesson: pass, feedback, scores"
          " {sow_fidelity, basic_quality} from 0 to 1, and the factual errors found (none:"
          " an empty list).",
          {"type": "object", "properties": {"pass": {"type": "boolean"},
                                            "feedback": {"type": "string"},
                                            "scores": {"type": "object"},
                                            "factual_errors": {"type": "array",
                                                               "items": {"type": "string"}}},
           "required": ["pass", "feedback", "scores"]})
    async def submit_review(arguments: dict[str, Any]) -> dict[str, Any]:
        return answer(*submissions.submit_review(arguments))

    tools = {"author": [submit_lesson], "critic": [submit_review]}[role]
    return create_sdk_mcp_server(SERVER_KEY, tools=tools)
