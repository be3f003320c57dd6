"""The `bankbot` command line: serve, ask, eval, bench, switch, db upgrade, train."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import sys
from dataclasses import asdict, is_dataclass
from typing import Any

from tqdm import tqdm

from bot.settings import Settings, load_settings
from bot.tables import benchmark_table, ms, pct, render_table


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        code = args.handler(args, settings)
    except KeyboardInterrupt:
        code = 130
    sys.exit(code or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bankbot", description="Banking assistant for Slack over swappable LLMs.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve Slack events, the REST API and /health on $PORT")
    serve.add_argument("--no-train", action="store_true", help="do not train the custom model when it is missing")
    serve.set_defaults(handler=cmd_serve)

    ask = sub.add_parser("ask", help="ask one question")
    ask.add_argument("text")
    ask.add_argument("--model", help="custom, qlora, gemini or a version string (default: the active model)")
    ask.add_argument("--json", action="store_true")
    ask.set_defaults(handler=cmd_ask)

    ev = sub.add_parser("eval", help="accuracy, macro-F1 and latency of one model on a labelled CSV")
    ev.add_argument("--model", required=True)
    ev.add_argument("--data", help="CSV with text,category columns (default: Banking77's test split)")
    ev.add_argument("--sample", type=int, help="a stratified sample of N rows")
    ev.add_argument("--concurrency", type=int, default=16)
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(handler=cmd_eval)

    bench = sub.add_parser("bench", help="benchmark models on Banking77's test split and store the run")
    bench.add_argument("--models", help="comma-separated (default: the active model and FALLBACK_ORDER)")
    bench.add_argument("--sample", type=int, default=None, help="stratified sample size (default: all 3,080)")
    bench.add_argument("--json", action="store_true")
    bench.set_defaults(handler=cmd_bench)

    switch = sub.add_parser("switch", help="switch the active model for every replica")
    switch.add_argument("model")
    switch.set_defaults(handler=cmd_switch)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply the Alembic migrations").set_defaults(handler=cmd_db_upgrade)

    train = sub.add_parser("train", help="train a model")
    train_sub = train.add_subparsers(dest="model", required=True)
    train_sub.add_parser("custom", help="train the custom transformer into $MODEL_DIR/custom").set_defaults(
        handler=cmd_train_custom)
    qlora = train_sub.add_parser("qlora", help="LoRA/QLoRA fine-tuning of a causal LM with peft")
    qlora.add_argument("--base", default="meta-llama/Llama-3.1-8B-Instruct", help="hub id or local path")
    qlora.add_argument("--out", help="adapter directory (default: $QLORA_ADAPTER_DIR or $MODEL_DIR/qlora)")
    qlora.add_argument("--max-steps", type=int)
    qlora.add_argument("--limit", type=int, help="use only N training examples")
    qlora.add_argument("--r", type=int, default=16)
    qlora.add_argument("--alpha", type=int, default=32)
    qlora.add_argument("--dropout", type=float, default=0.05)
    qlora.add_argument("--target-modules", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    qlora.add_argument("--lr", type=float, default=2e-4)
    qlora.add_argument("--seed", type=int, default=1337)
    qlora.add_argument("--batch-size", type=int, default=8)
    qlora.add_argument("--max-length", type=int, default=256, help="longer examples are truncated")
    qlora.add_argument("--quantize", action=argparse.BooleanOptionalAction, default=None,
                       help="4-bit NF4 (QLoRA); default: exactly when a CUDA GPU is present")
    qlora.set_defaults(handler=cmd_train_qlora)
    return parser


def _print_json(data: Any) -> None:
    print(json.dumps(asdict(data) if is_dataclass(data) else data, indent=2, default=str))


def ensure_custom_checkpoint(settings: Settings) -> None:
    """First run: train the custom model (with a progress bar) when it is needed and missing."""
    from llm.custom.train import checkpoint_exists
    from llm.model_names import resolve_model_name

    needed = "custom" in {resolve_model_name(settings.llm_model_version), *settings.fallback_names}
    if needed and not checkpoint_exists(settings.custom_checkpoint_dir):
        print(f"No custom model in {settings.custom_checkpoint_dir}: training it now (a few minutes on 2 cores).",
              file=sys.stderr)
        cmd_train_custom(None, settings)


def cmd_serve(args, settings: Settings) -> int:
    from bot.server import serve

    if not args.no_train:
        ensure_custom_checkpoint(settings)
    asyncio.run(serve(settings))
    return 0


def cmd_ask(args, settings: Settings) -> int:
    from bot.runtime import Runtime
    from llm.errors import LLMError
    from llm.pipeline import RequestContext

    async def run():
        runtime = await Runtime.create(settings, active_model=args.model, serving=False)
        try:
            return await runtime.pipeline.generate(args.text, RequestContext(source="cli", user_id=getpass.getuser()))
        finally:
            await runtime.aclose()

    try:
        result = asyncio.run(run())
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

    examples = banking77.read_csv(args.data) if args.data else banking77.load_split("test")
    examples = stratified_sample(examples, args.sample, seed=0)

    async def run():
        factory = ModelFactory(settings)
        try:
            adapter = await factory.get(args.model)
            with tqdm(total=len(examples), desc=f"eval {adapter.name}", unit="q", file=sys.stderr) as bar:
                return await evaluate(adapter, examples, concurrency=args.concurrency, progress=bar.update)
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
    return 0


def cmd_bench(args, settings: Settings) -> int:
    from bot.runtime import Runtime
    from llm.errors import BenchmarkBusyError

    async def run():
        runtime = await Runtime.create(settings, serving=False)
        models = [runtime.factory.resolve(m) for m in args.models.split(",")] if args.models else None
        bars: dict[str, tqdm] = {}

        def progress(model: str, done: int) -> None:
            if model not in bars:
                bars[model] = tqdm(total=sample_size, desc=f"bench {model}", unit="q", file=sys.stderr)
            bars[model].update(done - bars[model].n)

        sample_size = args.sample or len(await asyncio.to_thread(runtime.benchmark.examples))
        try:
            return await runtime.benchmark.run(models=models, sample=args.sample, trigger="cli", progress=progress)
        finally:
            for bar in bars.values():
                bar.close()
            await runtime.aclose()

    try:
        run_ = asyncio.run(run())
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
    from bot.runtime import Runtime

    async def run():
        runtime = await Runtime.create(settings, serving=False)
        try:
            return await runtime.pipeline.switch_model(args.model, by=f"cli:{getpass.getuser()}")
        finally:
            await runtime.aclose()

    outcome = asyncio.run(run())
    if not outcome.ok:
        print(f"bankbot: not switched: {outcome.reason}", file=sys.stderr)
        return 1
    print(f"Switched from {outcome.previous} to {outcome.target}.")
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
