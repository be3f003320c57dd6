"""llm-switch, whatever the front end: the choices with each model's health, the switch itself (health-checked,
audited in the database, followed by every replica), and the audit lines. Front ends check who is an admin
and render the texts; `bold` is their markup for emphasis."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

COMMAND = "llm-switch"
ARGUMENTS = "<custom|qlora|gemini|version>"
Markup = Callable[[str], str]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    text: str  # for the person who asked
    audit: str  # for the admins' audit conversation (who did what)


async def choices_text(runtime: Any, bold: Markup, code: Markup, command: str) -> str:
    pipeline = runtime.pipeline
    health = await pipeline.health()
    lines = [f"Active model: {bold(pipeline.active_model)}", "Choices:"]
    for name, status in health.items():
        state = "healthy" if status.healthy else f"unhealthy: {status.reason}"
        lines.append(f"• {code(name)} ({runtime.factory.default_version(name) or name}): {state}")
    lines.append(f"Switch with {code(f'{command} {ARGUMENTS}')}.")
    return "\n".join(lines)


async def record_refusal(runtime: Any, by: str, target: str) -> None:
    """A non-admin's attempt, kept in the switch audit table."""
    await runtime.db.record_switch(from_model=runtime.pipeline.active_model, to_model=target or "(status)",
                                   by=by, ok=False, reason="not an admin")


def refusal_audit(who: str, command: str, target: str) -> str:
    return f"{who} tried `{command} {target}` but is not an admin."


async def switch(runtime: Any, target: str, by: str, who: str, bold: Markup) -> Outcome:
    """Switch every replica to `target` after a health check; `by` goes to the audit table, `who` to the line."""
    outcome = await runtime.pipeline.switch_model(target, by=by)
    if outcome.ok:
        return Outcome(True, f"Switched from {bold(outcome.previous)} to {bold(outcome.served)} for every replica.",
                       f"{who} switched the model from `{outcome.previous}` to `{outcome.served}`.")
    return Outcome(False, f"Not switched; {bold(outcome.previous)} stays active. {outcome.reason}",
                   f"{who} tried to switch to `{target}`: {outcome.reason}")
