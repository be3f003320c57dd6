import json
import sqlite3

import pytest

from bot.cli import main


def run_cli(*argv) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    return info.value.code


def test_bench_json_stores_the_run_appends_the_log_and_prints_the_table(isolated, banking77_dir, capsys):
    assert run_cli("bench", "--models", "gemini,qlora", "--sample", "4", "--json") == 0
    out, err = capsys.readouterr()
    run = json.loads(out)
    assert run["sample_size"] == 4 and run["trigger"] == "cli"
    reasons = {r["model"]: r["reason"] for r in run["results"]}
    assert not any(r["available"] for r in run["results"])
    assert "no API key" in reasons["gemini"]
    assert "Model" in err and "Accuracy" in err and "unavailable: no API key" in err
    lines = (isolated / "benchmark_results.jsonl").read_text().splitlines()
    assert [json.loads(line)["sample_size"] for line in lines] == [4]
    with sqlite3.connect(isolated / "bankbot.db") as conn:
        stored = conn.execute("select count(*) from benchmark_results").fetchone()[0]
        runs = conn.execute("select count(*) from benchmark_runs").fetchone()[0]
    assert (runs, stored) == (1, 2)


def test_bad_setting_stops_start_up_naming_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("LLM_MODEL_VERSION", "gpt-5")
    with pytest.raises(SystemExit) as info:
        main(["db", "upgrade"])
    assert "LLM_MODEL_VERSION" in str(info.value.code)
    assert "custom, qlora, gemini" in str(info.value.code)


def test_switch_to_an_unavailable_model_is_refused_and_audited(isolated, capsys):
    assert run_cli("switch", "gemini") == 1
    assert "no API key" in capsys.readouterr().err
    with sqlite3.connect(isolated / "bankbot.db") as conn:
        rows = conn.execute("select from_model, to_model, ok from model_switches").fetchall()
    assert rows == [("custom", "gemini", 0)]


def test_db_upgrade_creates_the_database(isolated, capsys):
    assert run_cli("db", "upgrade") == 0
    assert (isolated / "bankbot.db").exists()


def test_calibrate_takes_out_of_scope_for_the_escalation_it_chooses_and_stores():
    from bot.cli import _parser

    args = _parser().parse_args(["calibrate", "--model", "custom", "--escalate-to", "encoder", "--maximize-accuracy",
                                 "--out-of-scope"])
    assert args.out_of_scope and args.escalate_to == "encoder"
    assert not _parser().parse_args(["calibrate", "--model", "custom"]).out_of_scope
