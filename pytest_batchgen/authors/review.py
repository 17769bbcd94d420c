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
# enforces, and factual correctness), then weighted scores over thresholds. Each
# dimension is itself the weighted sum of its sub-scores; the tool does the sums and
# refuses a verdict whose stated scores or pass disagree with them.
FIDELITY_WEIGHT, QUALITY_WEIGHT = 0.75, 0.25
FIDELITY_MIN, QUALITY_MIN, OVERALL_MIN = 0.90, 0.80, 0.85
# How far a critic's own sums may be from the tool's.
ARITHMETIC_TOLERANCE = 0.01
FIDELITY_PARTS = {"card_structure": 0.25, "content": 0.35, "standards": 0.20,
                  "scottish_context": 0.10, "cfu_strategy": 0.10}
QUALITY_PARTS = {"accessibility": 0.40, "scottish_authenticity": 0.30, "coherence": 0.30}
DIMENSIONS = ("sow_fidelity", "basic_quality", "overall")
GATES = ("schema", "factual")
USAGE = ('Expected {"pass": true|false, "gates": {"schema": true|false, "factual":'
         ' true|false}, "factual_errors": ["..."], "scores": {' + ", ".join(
             f'"{name}": 0-1' for name in (*FIDELITY_PARTS, *QUALITY_PARTS, *DIMENSIONS))
         + '}, "feedback": {"sow_fidelity": "...", "basic_quality": "...", "revision":'
           ' "..."}}.')


def _score(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def _weighted(scores: dict[str, Any], parts: dict[str, float]) -> float:
    return round(sum(weight * float(scores[name]) for name, weight in parts.items()), 4)


def judge_verdict(arguments: dict[str, Any]) -> tuple[dict[str, float], str | None]:
    """The verdict's scores as the tool computes them, and why it is refused, if it is.

    The sums are the tool's: a verdict whose stated sow_fidelity, basic_quality or
    overall differ from them by more than ARITHMETIC_TOLERANCE is refused, as is one
    whose `pass` or gates contradict its scores and factual errors. The pass rule is
    the platform critic's, not the model's mood.
    """
    verdict, scores, gates = (arguments.get("pass"), arguments.get("scores"),
                              arguments.get("gates"))
    errors = arguments.get("factual_errors", [])
    if not isinstance(verdict, bool) or not isinstance(scores, dict) or not (
            isinstance(gates, dict) and all(isinstance(gates.get(g), bool) for g in GATES)
            and isinstance(errors, list) and all(isinstance(e, str) for e in errors)):
        return {}, USAGE
    wanted = (*FIDELITY_PARTS, *QUALITY_PARTS, *DIMENSIONS)
    if not all(_score(scores.get(name)) for name in wanted):
        missing = [name for name in wanted if not _score(scores.get(name))]
        return {}, f"Every score must be a number from 0 to 1 (not: {', '.join(missing)}). {USAGE}"
    fidelity = _weighted(scores, FIDELITY_PARTS)
    quality = _weighted(scores, QUALITY_PARTS)
    overall = round(FIDELITY_WEIGHT * fidelity + QUALITY_WEIGHT * quality, 4)
    judged = {**{name: float(scores[name]) for name in (*FIDELITY_PARTS, *QUALITY_PARTS)},
              "sow_fidelity": fidelity, "basic_quality": quality, "overall": overall}
    sums = [f"{name} is {judged[name]:.4f}, not {float(scores[name]):g}"
            for name in DIMENSIONS if abs(float(scores[name]) - judged[name])
            > ARITHMETIC_TOLERANCE]
    if sums:
        return judged, (
            f"Verdict refused: the scores do not add up: {'; '.join(sums)}."
            f" sow_fidelity = {_formula(FIDELITY_PARTS)}; basic_quality ="
            f" {_formula(QUALITY_PARTS)}; overall = {FIDELITY_WEIGHT:g}*sow_fidelity +"
            f" {QUALITY_WEIGHT:g}*basic_quality. Record the verdict again.")
    if gates["factual"] == bool(errors):
        return judged, ("Verdict refused: the factual gate passes exactly when no factual"
                        f" error is listed (gate {gates['factual']}, {len(errors)} listed).")
    passes = (gates["schema"] and gates["factual"] and fidelity >= FIDELITY_MIN
              and quality >= QUALITY_MIN and overall >= OVERALL_MIN)
    if verdict and not passes:
        return judged, (
            f"Verdict refused: a pass needs both gates, no factual error, sow_fidelity >="
            f" {FIDELITY_MIN:.2f}, basic_quality >= {QUALITY_MIN:.2f} and overall >="
            f" {OVERALL_MIN:.2f}; these scores give sow_fidelity {fidelity:.3f},"
            f" basic_quality {quality:.3f}, overall {overall:.3f} with {len(errors)}"
            " factual error(s).")
    if not verdict and passes:
        return judged, (
            "Verdict refused: these scores pass both gates and every threshold; to fail the"
            " lesson, list its factual errors or score what falls short.")
    return judged, None


def _formula(parts: dict[str, float]) -> str:
    return " + ".join(f"{weight:g}*{name}" for name, weight in parts.items())


def feedback_text(arguments: dict[str, Any]) -> str:
    """A verdict's feedback as the author gets it, word for word, with its factual
    errors: every dimension's note, then the revision card by card."""
    feedback = arguments.get("feedback")
    lines = ([f"{name}: {text}" for name, text in feedback.items() if isinstance(text, str)]
             if isinstance(feedback, dict) else [str(feedback or "")])
    errors = arguments.get("factual_errors") or []
    return "\n".join([*lines, *(f"factual error: {error}" for error in errors)])


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

    def answered(self, tool: str) -> int:
        """How often `tool` has done its job: lessons accepted, verdicts recorded."""
        return self.accepted if tool == SUBMIT_LESSON else len(self.reviews)

    @property
    def exhausted(self) -> bool:
        return self.rounds > self.max_rounds

    @property
    def result(self) -> Lesson | None:
        return self.latest if self.latest_passed else None

    @property
    def feedback(self) -> str:
        """The latest review's feedback, for the author's revision (verbatim)."""
        return feedback_text(self.reviews[-1]) if self.reviews else ""

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
                 json.dumps(arguments.get("factual_errors", [])),
                 feedback_text(arguments))
        if verdict:
            return True, "review recorded: the lesson passed and will be written."
        return True, self.spend_round("review recorded: the lesson failed; the author must"
                                       " revise it using the feedback.")


def tool_server(submissions: Submissions, offer: str) -> Any:
    """The in-process MCP server `batchgen` for one session, offering only the tool
    `offer` names: the author's server `submit_lesson`, the critic's `submit_review`."""
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

    @tool("submit_review", "Record your verdict on the lesson: pass, the two gates, the"
          " factual errors found (none: an empty list), every sub-score and the three"
          " dimension scores from 0 to 1 (the tool checks your sums), and feedback per"
          " dimension with the revision card by card.",
          {"type": "object", "properties": {"pass": {"type": "boolean"},
                                            "gates": {"type": "object"},
                                            "factual_errors": {"type": "array",
                                                               "items": {"type": "string"}},
                                            "scores": {"type": "object"},
                                            "feedback": {"type": "object"}},
           "required": ["pass", "gates", "scores", "feedback"]})
    async def submit_review(arguments: dict[str, Any]) -> dict[str, Any]:
        return answer(*submissions.submit_review(arguments))

    offered = {SUBMIT_LESSON: submit_lesson, SUBMIT_REVIEW: submit_review}[offer]
    return create_sdk_mcp_server(SERVER_KEY, tools=[offered])
