"""The `bankbot` command line: serve, ask, eval, bench, switch, db upgrade, train, teams-package."""

from __future__ import annotations

import argparse
import logging
import sys

from bot.cli_commands import (
    cmd_ask,
    cmd_bench,
    cmd_db_upgrade,
    cmd_eval,
    cmd_serve,
    cmd_switch,
    cmd_teams_package,
    cmd_train_custom,
    cmd_train_encoder,
    cmd_train_qlora,
)
from bot.settings import load_settings


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
    ask.add_argument("--model", help="custom, qlora, gemini, encoder or a version string (default: the active model)")
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

    teams = sub.add_parser("teams-package", help="write the Teams app package (a zip to upload in Teams)")
    teams.add_argument("--app-id", help="the Entra app's client id (default: "
                                        "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID)")
    teams.add_argument("--domain", default="bankbot.example.com", help="the bot's public host name")
    teams.add_argument("--out", default="bankbot-teams.zip", help="the zip to write")
    teams.set_defaults(handler=cmd_teams_package)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply the Alembic migrations").set_defaults(handler=cmd_db_upgrade)

    train = sub.add_parser("train", help="train a model")
    train_sub = train.add_subparsers(dest="model", required=True)
    train_sub.add_parser("custom", help="train the custom transformer into $MODEL_DIR/custom").set_defaults(
        handler=cmd_train_custom)
    encoder = train_sub.add_parser("encoder", help="fine-tune a pretrained sentence encoder into $MODEL_DIR/encoder")
    encoder.add_argument("--base", help="hub id or local directory (default: $ENCODER_BASE_MODEL)")
    encoder.add_argument("--out", help="checkpoint directory (default: $ENCODER_DIR or $MODEL_DIR/encoder)")
    encoder.add_argument("--epochs", type=int, help="fine-tuning epochs (default: 5)")
    encoder.add_argument("--seed", type=int, default=1337)
    encoder.set_defaults(handler=cmd_train_encoder)
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


