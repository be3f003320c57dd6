"""llm-switch, whatever the front end: the choices with each model's health and the whole routing policy, the
switch itself (health-checked, audited in the database, followed by every replica), canary and shadow changes,
and the audit lines. Front ends check who is an admin and render the texts; `bold` is their markup for emphasis.

Grammar: `MODEL` switches; `MODEL P%` sends P% of users to MODEL (a canary; 100% promotes it); `canary off`;
`shadow MODEL [P%]` also asks MODEL in the background (P% of requests, default all); `shadow off`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llm.routing.policy import Shadow

COMMAND = "llm-switch"
ARGUMENTS = "<model> [P%] | canary off | shadow <model> [P%] | shadow off"
Markup = Callable[[str], str]
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%?$")


@dataclass(frozen=True)
class Command:
    action: str  # show | switch | canary | canary_off | shadow | shadow_off
    model: str | None = None
    percent: float | None = None


def parse(text: str) -> Command | str:
    """The command, or why it is not understood (for a usage line)."""
    words = (text or "").split()
    lowered = [w.lower() for w in words]
    if not words:
        return Command("show")
    if lowered in (["canary", "off"], ["shadow", "off"]):
        return Command(f"{lowered[0]}_off")
    if lowered[0] == "shadow":
        if len(words) not in (2, 3):
            return "shadow takes a model and an optional share, e.g. `shadow gemini 20%`"
        percent = _percent(words[2]) if len(words) == 3 else 100.0
        if percent is None or not 0 < percent <= 100:
            return f"{words[2]!r} is not a share between 0% and 100%"
        return Command("shadow", words[1], percent)
    if len(words) == 1:
        return Command("switch", words[0])
    if len(words) == 2:
        percent = _percent(words[1])
        if percent is None or not 0 < percent <= 100:
            return f"{words[1]!r} is not a share between 0% and 100%"
        return Command("switch", words[0]) if percent == 100 else Command("canary", words[0], percent)
    return "too many words"


def _percent(word: str) -> float | None:
    match = _PERCENT.match(word)
    return float(match.group(1)) if match else None


@dataclass(frozen=True)
class Outcome:
    ok: bool
    text: str  # for the person who asked
    audit: str  # for the admins' audit conversation (who did what)


async def choices_text(runtime: Any, bold: Markup, code: Markup, command: str) -> str:
    pipeline = runtime.pipeline
    health = await pipeline.health()
    lines = [f"Active model: {bold(pipeline.active_model)}", *policy_lines(runtime), "Choices:"]
    for name, status in health.items():
        state = "healthy" if status.healthy else f"unhealthy: {status.reason}"
        lines.append(f"• {code(name)} ({runtime.factory.default_version(name) or name}): {state}")
    lines.append(f"Switch with {code(f'{command} {ARGUMENTS}')}.")
    return "\n".join(lines)


def policy_lines(runtime: Any) -> list[str]:
    """Canary, shadow, escalation with its threshold, and each paid model's budget today."""
    pipeline = runtime.pipeline
    lines = [line[0].upper() + line[1:] for line in pipeline.policy.describe()]
    budgets = pipeline.budgets
    paid = [name for name in runtime.factory.names if budgets.limit_of(name) is not None
            and getattr(runtime.factory.loaded().get(name), "estimated_call_cost_usd", 1.0) is not None]
    for name in dict.fromkeys([*budgets.limits, *paid]):
        figures = budgets.snapshot().get(name) or {"spent_usd": 0.0, "limit_usd": budgets.limit_of(name)}
        state = f" ({budgets.exhausted(name)})" if budgets.exhausted(name) else ""
        lines.append(f"Budget {name}: ${figures['spent_usd']:.2f} of ${figures['limit_usd']:.2f} today{state}")
    return lines


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


async def run(runtime: Any, text: str, by: str, who: str, bold: Markup) -> Outcome | None:
    """Carry out one llm-switch command; None for `show` (the caller shows the choices). A command not
    understood gets a usage text and changes nothing."""
    command = parse(text)
    if isinstance(command, str):
        return Outcome(False, f"Not understood: {command}. Usage: `{COMMAND} {ARGUMENTS}`", "")
    if command.action == "show":
        return None
    if command.action == "switch":  # a canary switched to in full is promoted: the canary ends
        outcome = await switch(runtime, command.model, by, who, bold)
        canary = runtime.pipeline.policy.canary
        if outcome.ok and canary and runtime.factory.resolve(canary.model) == runtime.pipeline.active_model:
            await runtime.pipeline.switcher.set_policy(runtime.pipeline.policy.with_(canary=None), by=by,
                                                       what="canary off (promoted)")
        return outcome
    switcher = runtime.pipeline.switcher
    policy = switcher.policy
    if command.action == "canary":
        outcome = await switcher.canary(command.model, command.percent, by=by)
        done = f"{bold(command.model)} now serves {command.percent:g}% of users (sticky per user)"
    elif command.action == "canary_off":
        outcome = await switcher.set_policy(policy.with_(canary=None), by=by, what="canary off")
        done = "Canary ended: every user is served by " + bold(runtime.pipeline.active_model)
    elif command.action == "shadow":
        shadow = Shadow(command.model.lower(), command.percent)
        outcome = await switcher.set_policy(policy.with_(shadow=shadow), by=by,
                                            what=f"shadow {command.model} {command.percent:g}%")
        done = (f"{bold(command.model)} now shadows {command.percent:g}% of requests in the background "
                "(never shown, never waited for)")
    else:
        outcome = await switcher.set_policy(policy.with_(shadow=None), by=by, what="shadow off")
        done = "Shadow ended"
    if outcome.ok:
        return Outcome(True, f"{done}, on every replica.", f"{who}: `{COMMAND} {text.strip()}`")
    return Outcome(False, f"Not changed: {outcome.reason}", f"{who} tried `{COMMAND} {text.strip()}`: {outcome.reason}")
