"""The `bankbot` subcommands; each takes the parsed arguments and the settings and returns an exit code."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from tqdm import tqdm

from bot.settings import Settings
from bot.tables import benchmark_table, ms, pct, render_table

if TYPE_CHECKING:
    from bot.runtime import Runtime

T = TypeVar("T")


def _with_runtime(settings: Settings, work: Callable[[Runtime], Awaitable[T]], **options: Any) -> T:
    """Run `work` on a one-off Runtime (it reads the active model, and never changes it unasked)."""
    from bot.runtime import Runtime

    async def run() -> T:
        runtime = await Runtime.create(settings, serving=False, **options)
        try:
            return await work(runtime)
        finally:
            await runtime.aclose()

    return asyncio.run(run())

def _print_json(data: Any) -> None:
    print(json.dumps(asdict(data) if is_dataclass(data) else data, indent=2, default=str))


def cmd_serve(args, settings: Settings) -> int:
    """Serve at once; a missing custom model trains in the background (progress on /ready) unless --no-train."""
    from bot.server import serve

    asyncio.run(serve(settings, train=not args.no_train))
    return 0


def cmd_ask(args, settings: Settings) -> int:
    from llm.errors import LLMError
    from llm.pipeline import RequestContext

    context = RequestContext(source="cli", user_id=getpass.getuser())
    try:
        result = _with_runtime(settings, lambda rt: rt.pipeline.generate(args.text, context), active_model=args.model)
    except LLMError as exc:
        print(f"bankbot: {exc}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(result.to_dict())
    else:
        print(result.text)
        print(f"\n[{result.model_version} · {result.intent} · {result.confidence:.0%} · {result.latency_ms:.0f} ms"
              + (f" · fell back from {result.fallback_from}" if result.fallback_from else "") + "]")
    return 0


def cmd_eval(args, settings: Settings) -> int:
    from llm import banking77
    from llm.benchmark import stratified_sample
    from llm.evaluation import evaluate
    from llm.factory import ModelFactory
    from llm.routing.confidence_map import Calibrations

    if args.route:
        from bot.routing_commands import cmd_eval_route
        return cmd_eval_route(args, settings)
    if not args.model:
        print("bankbot: eval needs --model (or --route)", file=sys.stderr)
        return 2
    examples = banking77.read_csv(args.data) if args.data else banking77.load_split("test")
    examples = stratified_sample(examples, args.sample, seed=0)

    async def run():
        factory = ModelFactory(settings)
        try:
            adapter = await factory.get(args.model)
            with tqdm(total=len(examples), desc=f"eval {adapter.name}", unit="q", file=sys.stderr) as bar:
                return await evaluate(adapter, examples, concurrency=args.concurrency, progress=bar.update,
                                      calibrate=Calibrations(settings.model_dir).apply)
        finally:
            await factory.aclose()

    try:
        report = asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - unknown or unavailable model: one clear line
        print(f"bankbot: {exc}", file=sys.stderr)
        return 1
    figures = report.summary()
    if args.json:
        _print_json(figures)
    else:
        print(render_table(
            ("Model", "Device", "N", "Accuracy", "Macro-F1", "P50", "P99", "Throughput", "Errors"),
            [(figures["model"], figures["device"], figures["n"], pct(figures["accuracy"]), pct(figures["macro_f1"]),
              ms(figures["latency_p50_ms"]), ms(figures["latency_p99_ms"]),
              f"{figures['throughput_per_s'] or 0:.1f}/s", figures["errors"])]))
        if figures["grounded_answers"]:
            print(f"Grounding rejections: {figures['grounding_rejections']} of {figures['grounded_answers']} "
                  f"answers ({pct(figures['grounding_rejection_rate'])}): the knowledge-base entry was shown instead")
    return 0


def cmd_bench(args, settings: Settings) -> int:
    from llm.errors import BenchmarkBusyError

    async def bench(runtime: Runtime):
        models = [runtime.factory.resolve(m) for m in args.models.split(",")] if args.models else None
        sample_size = args.sample or len(await asyncio.to_thread(runtime.benchmark.examples))
        bars: dict[str, tqdm] = {}

        def progress(model: str, done: int) -> None:
            if model not in bars:
                bars[model] = tqdm(total=sample_size, desc=f"bench {model}", unit="q", file=sys.stderr)
            bars[model].update(done - bars[model].n)

        try:
            return await runtime.benchmark.run(models=models, sample=args.sample, trigger="cli", progress=progress)
        finally:
            for bar in bars.values():
                bar.close()

    try:
        run_ = _with_runtime(settings, bench)
    except BenchmarkBusyError as exc:
        print(f"bankbot: {exc}", file=sys.stderr)
        return 1
    table = "\n".join([
        f"Benchmark run {run_.id}: {run_.sample_size} questions from Banking77's test split",
        benchmark_table([asdict(r) for r in run_.results]),
        f"Recommendation: {run_.recommendation}",
    ])
    if args.json:  # JSON on stdout for machines, the table on stderr for the person watching
        _print_json(run_.to_dict())
        print(table, file=sys.stderr)
    else:
        print(table)
    return 0


def cmd_switch(args, settings: Settings) -> int:
    outcome = _with_runtime(settings, lambda rt: rt.pipeline.switch_model(args.model, by=f"cli:{getpass.getuser()}"))
    if not outcome.ok:
        print(f"bankbot: not switched: {outcome.reason}", file=sys.stderr)
        return 1
    print(f"Switched from {outcome.previous} to {outcome.served}.")
    return 0


def cmd_teams_package(args, settings: Settings) -> int:
    from pathlib import Path

    from bot.teams.config import sdk_environment, setting
    from bot.teams.package import build

    app_id = args.app_id or setting(sdk_environment(), "CLIENTID")
    if not app_id:
        print("bankbot: give --app-id (the Entra app's client id) or set "
              "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID", file=sys.stderr)
        return 2
    try:
        out = build(Path(args.out), app_id, args.domain)
    except ValueError as exc:
        print(f"bankbot: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {out}: upload it in Teams (Apps > Manage your apps > Upload an app).")
    return 0


def cmd_db_upgrade(args, settings: Settings) -> int:
    from storage.database import Database

    async def run():
        db = Database(settings.database_url)
        try:
            await db.upgrade()
        finally:
            await db.aclose()

    asyncio.run(run())
    print("Database is up to date.")
    return 0


def cmd_train_custom(args, settings: Settings) -> int:
    from llm.custom.train import train_custom

    report = train_custom(settings, progress=True)
    print(f"Trained the custom model in {report.train_seconds:.0f} s (best validation accuracy "
          f"{report.val_accuracy:.1%} at epoch {report.best_epoch}); saved to {report.out_dir}")
    return 0


def cmd_train_encoder(args, settings: Settings) -> int:
    from llm.encoder.base_model import BaseModelNotFoundError
    from llm.encoder.train import EncoderTrainParams, train_encoder

    params = EncoderTrainParams(out_dir=args.out or settings.encoder_checkpoint_dir,
                                base_model=args.base or settings.encoder_base_model, seed=args.seed)
    if args.epochs is not None:
        params.epochs = args.epochs
    try:
        report = train_encoder(params, progress=True)
    except BaseModelNotFoundError as exc:
        print(f"bankbot: {exc}", file=sys.stderr)
        return 2
    print(f"Trained the encoder model in {report.train_seconds:.0f} s (validation accuracy "
          f"{report.val_accuracy:.1%}, best epoch {report.best_epoch}); saved to {report.out_dir}")
    return 0


def cmd_train_qlora(args, settings: Settings) -> int:
    from llm.qlora.train import train_qlora

    report = train_qlora(
        args.base, args.out or settings.qlora_adapter_path, max_steps=args.max_steps, limit=args.limit, r=args.r,
        alpha=args.alpha, dropout=args.dropout, target_modules=tuple(args.target_modules.split(",")), lr=args.lr,
        seed=args.seed, batch_size=args.batch_size, max_length=args.max_length, quantize=args.quantize,
        progress=True)
    print(f"Trained a LoRA adapter on {report.device} in {report.seconds:.0f} s ({report.steps} steps, "
          f"loss {report.first_loss:.3f} -> {report.last_loss:.3f}); saved to {report.out}")
    return 0
