"""`bankbot calibrate`, `route show|set`, `compare` and `eval --route`: the routing policy from the command line."""

from __future__ import annotations

import asyncio
import getpass
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from bot.cli_commands import _print_json, _with_runtime
from bot.settings import Settings
from bot.tables import ms, pct, render_table

if TYPE_CHECKING:
    from bot.runtime import Runtime

VALIDATION_SEED, VALIDATION_FRACTION = 1337, 0.1  # the custom model's own held-out slice of train.csv


def _by() -> str:
    return f"cli:{getpass.getuser()}"


def _examples(args) -> list:
    """--data, else the validation slice of train.csv: never test.csv."""
    from llm import banking77
    from llm.benchmark import stratified_sample
    from llm.custom.data import stratified_split

    if args.data:
        examples = banking77.read_csv(args.data)
    else:
        examples = stratified_split(banking77.load_split("train"), VALIDATION_FRACTION, VALIDATION_SEED)[1]
    return stratified_sample(examples, getattr(args, "sample", None), seed=0)


def parse_since(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([mhd])", text.strip())
    if not match:
        raise ValueError(f"--since {text!r}: use e.g. 30m, 24h or 7d")
    try:
        window = timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]: int(match.group(1))})
        datetime.now(UTC) - window  # noqa: B018 - before year 1 overflows
    except OverflowError:
        raise ValueError(f"--since {text!r} is too long ago") from None
    return window


def cmd_route_show(args, settings: Settings) -> int:
    from bot.conversation.switching import policy_lines

    async def show(runtime: Runtime) -> list[str]:
        await runtime.pipeline.budgets.refresh()
        return [f"Active model: {runtime.pipeline.active_model}", *policy_lines(runtime)]

    print("\n".join(_with_runtime(settings, show)))
    return 0


def cmd_route_set(args, settings: Settings) -> int:
    from bot.conversation import switching
    from llm.routing.policy import Escalation, RoutingPolicy

    words = args.words
    policy_text = Path(words[1]).read_text() if words[0] == "file" and len(words) == 2 else None

    async def change(runtime: Runtime):
        switcher = runtime.pipeline.switcher
        if words[0] == "canary" and len(words) == 3:
            return await switching.run(runtime, f"{words[1]} {words[2].rstrip('%')}%", _by(), _by(), str)
        if words[0] in ("canary", "shadow"):
            return await switching.run(runtime, " ".join(words), _by(), _by(), str)
        if words == ["escalation", "off"]:
            return await switcher.set_policy(switcher.policy.with_(escalation=None), by=_by(), what="escalation off")
        if words[0] == "escalation" and len(words) == 3:
            rule = Escalation(words[1].lower(), float(words[2]), args.out_of_scope)
            return await switcher.set_policy(switcher.policy.with_(escalation=rule), by=_by(),
                                             what=f"escalation {rule.model} below {rule.threshold:g}")
        if policy_text is not None:
            policy = RoutingPolicy.from_json(policy_text)
            return await switcher.set_policy(policy, by=_by(), what=f"policy from {words[1]}")
        return None

    try:
        outcome = _with_runtime(settings, change)
    except (ValueError, OSError) as exc:
        print(f"bankbot: {exc}", file=sys.stderr)
        return 2
    if outcome is None:
        print("bankbot: route set canary MODEL PERCENT | canary off | shadow MODEL [PERCENT] | shadow off | "
              "escalation MODEL THRESHOLD [--out-of-scope] | escalation off | file PATH", file=sys.stderr)
        return 2
    if not outcome.ok:
        print(f"bankbot: not changed: {getattr(outcome, 'reason', '') or outcome.text}", file=sys.stderr)
        return 1
    print(getattr(outcome, "text", None) or "Routing policy changed for every replica.")
    return 0


def cmd_compare(args, settings: Settings) -> int:
    from llm.routing.compare import compare

    try:
        since = datetime.now(UTC) - parse_since(args.since)
    except ValueError as exc:
        print(f"bankbot: {exc}", file=sys.stderr)
        return 2
    figures = compare(_with_runtime(settings, lambda rt: rt.db.routing_metrics(since)))
    if args.json:
        _print_json(figures)
        return 0
    print(compare_table(figures["arms"]))
    print("\n".join(figures["summary"]))
    return 0


def compare_table(arms: list[dict[str, Any]]) -> str:
    def ci(value, interval):
        return "-" if value is None else f"{pct(value)} [{pct(interval[0])}-{pct(interval[1])}]"

    return render_table(
        ("Arm", "Model", "Requests", "P50", "P99", "Errors", "Escalated", "$/1000", "Agreement", "Thumbs-up"),
        [(a["arm"], a["model"], a["requests"], ms(a["latency_p50_ms"]), ms(a["latency_p99_ms"]), pct(a["error_rate"]),
          pct(a["escalation_share"]), "-" if a["cost_per_1000_usd"] is None else f"{a['cost_per_1000_usd']:.3f}",
          ci(a["agreement"], a["agreement_ci"]), ci(a["thumbs_up"], a["thumbs_up_ci"])) for a in arms])


def cmd_calibrate(args, settings: Settings) -> int:
    from llm.adapters.base import OUT_OF_SCOPE
    from llm.evaluation import evaluate
    from llm.factory import ModelFactory
    from llm.routing.confidence_map import Calibrations, ConfidenceMap
    from llm.routing.reliability import ece
    from llm.routing.thresholds import choose_threshold

    if args.save and not args.escalate_to:
        print("bankbot: --save stores an escalation threshold: give --escalate-to", file=sys.stderr)
        return 2
    if args.escalate_to and args.target_escalation is None and args.target_accuracy is None \
            and not args.maximize_accuracy:
        print("bankbot: give --target-escalation, --target-accuracy or --maximize-accuracy", file=sys.stderr)
        return 2
    examples = _examples(args)

    async def run() -> dict[str, Any]:
        factory = ModelFactory(settings)
        out: dict[str, Any] = {"model": factory.resolve(args.model), "n": len(examples)}
        try:
            name = out["model"]
            if name == "custom":
                from llm.custom.calibration import fit_checkpoint
                fitted = await asyncio.to_thread(fit_checkpoint, settings.custom_checkpoint_dir)
                out["calibration"] = {"method": "temperature", "temperature": fitted.temperature,
                                      "ece_before": fitted.ece_before, "ece_after": fitted.ece_after,
                                      "fitted_on": f"validation slice of train.csv ({fitted.n_validation})"}
            elif name == "encoder":
                out["calibration"] = {"method": "temperature", "note": "fitted on validation when it was trained"}
            else:
                report = await _eval(factory, name, examples, evaluate, None)
                mapping = ConfidenceMap.fit(report.confidences, report.answered_correct)
                path = mapping.save(settings.model_dir, name)
                calibrated = [mapping(c) for c in report.confidences]
                out["calibration"] = {"method": "isotonic", "path": str(path),
                                      "ece_before": ece(report.confidences, report.answered_correct),
                                      "ece_after": ece(calibrated, report.answered_correct)}
            if args.escalate_to:
                calibrations = Calibrations(settings.model_dir)
                first, first_cost = await _answers(factory, name, examples, calibrations.apply)
                second, second_cost = await _answers(factory, args.escalate_to, examples, calibrations.apply)
                gold = [e.intent for e in examples]
                choice = choose_threshold(
                    [r.confidence for r in first], [r.intent == g for r, g in zip(first, gold, strict=True)],
                    [r.intent == g for r, g in zip(second, gold, strict=True)],
                    target_escalation=args.target_escalation, target_accuracy=args.target_accuracy,
                    maximize_accuracy=args.maximize_accuracy,
                    escalatable=None if args.out_of_scope else [r.intent != OUT_OF_SCOPE for r in first],
                    first_cost_usd=first_cost, escalation_cost_usd=second_cost)
                out["escalation"] = {"to": factory.resolve(args.escalate_to), "out_of_scope": args.out_of_scope} \
                    | choice.to_dict()
        finally:
            await factory.aclose()
        return out

    try:
        out = asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - unknown or unavailable model: one clear line
        print(f"bankbot: {exc}", file=sys.stderr)
        return 1
    _print_json(out)
    if args.save:
        from llm.routing.policy import Escalation
        e = out["escalation"]
        rule = Escalation(e["to"], round(e["threshold"], 6), out_of_scope=e["out_of_scope"])
        outcome = _with_runtime(settings, lambda rt: rt.pipeline.switcher.set_policy(
            rt.pipeline.policy.with_(escalation=rule), by=_by(), what=f"escalation {rule.model} below "
                                                                        f"{rule.threshold:g} (calibrate)"))
        print("Stored as the escalation policy." if outcome.ok else f"bankbot: not stored: {outcome.reason}")
    return 0


async def _answers(factory, name: str, examples: list, calibrate) -> tuple[list, float | None]:
    """Each example's calibrated answer, in the examples' order, and the cost per question (None: no price)."""
    from llm.routing.offline import answer_each

    adapter = await factory.get(name)
    with tqdm(total=len(examples), desc=f"calibrate {adapter.name}", unit="q", file=sys.stderr) as bar:
        answers = await answer_each(adapter, examples, calibrate=calibrate, progress=bar.update)
    failed = [a for a in answers if isinstance(a, Exception)]
    if failed:
        raise RuntimeError(f"{adapter.name} failed on {len(failed)} question(s): {type(failed[0]).__name__}: "
                           f"{failed[0]}")
    cost = sum(a.cost_usd or 0.0 for a in answers) / len(answers) if adapter.device == "cloud" else None
    return answers, cost


async def _eval(factory, name: str, examples: list, evaluate, calibrate):
    adapter = await factory.get(name)
    with tqdm(total=len(examples), desc=f"calibrate {adapter.name}", unit="q", file=sys.stderr) as bar:
        report = await evaluate(adapter, examples, concurrency=16, progress=bar.update, calibrate=calibrate)
    if len(report.confidences) != len(examples):
        raise RuntimeError(f"{adapter.name} failed on {report.errors} question(s): {report.first_error}")
    return report


def cmd_eval_route(args, settings: Settings) -> int:
    """`bankbot eval --route [--policy FILE|current] [--model M] --data CSV [--json]`."""
    from llm import banking77
    from llm.benchmark import stratified_sample
    from llm.factory import ModelFactory
    from llm.routing.confidence_map import Calibrations
    from llm.routing.offline import evaluate_route
    from llm.routing.policy import RoutingPolicy

    examples = banking77.read_csv(args.data) if args.data else banking77.load_split("test")
    examples = stratified_sample(examples, args.sample, seed=0)
    if args.policy == "current":
        policy, active = _with_runtime(settings, lambda rt: _current(rt))
    else:
        policy = RoutingPolicy.from_json(Path(args.policy).read_text())
        active = policy.extra.get("model") or settings.llm_model_version
    serving = args.model or active

    async def run():
        factory = ModelFactory(settings)
        try:
            first = await factory.get(serving)
            second = await factory.get(policy.escalation.model) if policy.escalation else None
            with tqdm(total=len(examples), desc="eval route", unit="q", file=sys.stderr) as bar:
                return await evaluate_route(first, examples, policy.escalation, second,
                                            concurrency=args.concurrency, progress=bar.update,
                                            calibrate=Calibrations(settings.model_dir).apply)
        finally:
            await factory.aclose()

    try:
        report = asyncio.run(run())
    except Exception as exc:  # noqa: BLE001
        print(f"bankbot: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(render_table(("Route", "N", "Accuracy", "Escalated", "$/1000", "P50", "P99"),
                       [(f"{report['serving']} -> {report['escalation'] or '-'}", report["n"], pct(report["accuracy"]),
                         pct(report["escalation_share"]), report["cost_per_1000_usd"] or "-",
                         ms(report["latency_p50_ms"]), ms(report["latency_p99_ms"]))]))
    for name, m in report["models"].items():
        print(f"{name}: accuracy {pct(m['accuracy'])} on {m['n']} questions, ece {m['ece']}, p50 "
              f"{ms(m['latency_p50_ms'])}")
    return 0


async def _current(runtime: Runtime):
    return runtime.pipeline.policy, runtime.pipeline.active_model
