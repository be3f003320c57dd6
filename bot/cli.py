"""The `bankbot` command line: serve, ask, eval, bench, calibrate, route, compare, switch, db upgrade, train,
teams-package, export-labels."""

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
from bot.labels import add_parser as add_export_labels
from bot.routing_commands import cmd_calibrate, cmd_compare, cmd_route_set, cmd_route_show
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

    ev = sub.add_parser("eval", help="accuracy, macro-F1, latency and calibration of one model (or a whole routing "
                                     "policy, --route) on a labelled CSV")
    ev.add_argument("--model", help="the model (required without --route; with it: the serving model)")
    ev.add_argument("--route", action="store_true", help="evaluate the routing policy: escalation included")
    ev.add_argument("--policy", default="current", help="with --route: a policy JSON file, or 'current' "
                                                        "(the database's)")
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

    calibrate = sub.add_parser("calibrate", help="fit a model's confidence calibration on held-out data; with "
                                                 "--escalate-to, choose the escalation threshold")
    calibrate.add_argument("--model", required=True)
    calibrate.add_argument("--escalate-to", help="the escalation model")
    target = calibrate.add_mutually_exclusive_group()
    target.add_argument("--target-escalation", type=float, help="share of questions to escalate, e.g. 0.2")
    target.add_argument("--target-accuracy", type=float, help="route accuracy to reach, e.g. 0.97")
    target.add_argument("--maximize-accuracy", action="store_true",
                        help="the route's best accuracy on the data, at the smallest escalation share")
    calibrate.add_argument("--data", help="labelled CSV (default: the validation slice of train.csv, never test)")
    calibrate.add_argument("--sample", type=int, help="a stratified sample of N rows")
    calibrate.add_argument("--out-of-scope", action="store_true", help="with --escalate-to: escalate the model's "
                           "out-of-scope answers too (they are its least confident) when choosing and storing")
    calibrate.add_argument("--save", action="store_true", help="store the threshold as the escalation policy")
    calibrate.set_defaults(handler=cmd_calibrate)

    route = sub.add_parser("route", help="show or change the routing policy (canary, shadow, escalation)")
    route_sub = route.add_subparsers(dest="route_command", required=True)
    route_sub.add_parser("show", help="the whole policy and today's spend").set_defaults(handler=cmd_route_show)
    route_set = route_sub.add_parser("set", help="change one part: canary MODEL PERCENT | canary off | "
                                                 "shadow MODEL [PERCENT] | shadow off | escalation MODEL THRESHOLD "
                                                 "[--out-of-scope] | escalation off | file PATH")
    route_set.add_argument("words", nargs="+")
    route_set.add_argument("--out-of-scope", action="store_true", help="escalation: out-of-scope answers too")
    route_set.set_defaults(handler=cmd_route_set)

    compare = sub.add_parser("compare", help="each routing arm's figures with 95% intervals")
    compare.add_argument("--since", default="24h", help="window: 30m, 24h, 7d (default 24h)")
    compare.add_argument("--json", action="store_true")
    compare.set_defaults(handler=cmd_compare)

    switch = sub.add_parser("switch", help="switch the active model for every replica")
    switch.add_argument("model")
    switch.set_defaults(handler=cmd_switch)

    teams = sub.add_parser("teams-package", help="write the Teams app package (a zip to upload in Teams)")
    teams.add_argument("--app-id", help="the Entra app's client id (default: "
                                        "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID)")
    teams.add_argument("--domain", default="bankbot.example.com", help="the bot's public host name")
    teams.add_argument("--out", default="bankbot-teams.zip", help="the zip to write")
    teams.set_defaults(handler=cmd_teams_package)

    add_export_labels(sub)

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


