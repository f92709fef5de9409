"""Acceptance figures from the feedback log: a hand-made log, the CLI, and a scripted editor session through
the real language server (tiny model) whose figures must equal a hand count."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path

from click.testing import CliRunner

from copilot.evaluate.acceptance import load_events, percentile, since_promotion, summarize

DAY1 = datetime(2026, 11, 28, 10, tzinfo=timezone.utc).timestamp()
DAY2 = datetime(2026, 11, 29, 10, tzinfo=timezone.utc).timestamp()


def _shown(i, adapter, version, lang, latency, t, from_cache=False):
    return {"event": "shown", "id": f"c{i}", "adapter": adapter, "adapter_version": version, "language": lang,
            "chars": 10, "latency_ms": latency, "from_cache": from_cache, "time": t}


def _accepted(i, text, adapter, version, lang, t):
    return {"event": "accepted", "id": f"c{i}", "completion": text, "adapter": adapter, "adapter_version": version,
            "language": lang, "latency_ms": 1.0, "path": None, "time": t}


def write_log(path: Path) -> Path:
    ev = [
        _shown(1, "acme", 1, "python", 100, DAY1), _shown(2, "acme", 1, "python", 300, DAY1),
        _shown(3, "acme", 1, "go", 200, DAY1), _shown(4, "acme", 2, "python", 50, DAY2),
        _shown(5, "acme", 2, "python", 70, DAY2), _shown(6, None, None, "python", 900, DAY2),
        _shown(7, "acme", 2, "python", 1, DAY2, from_cache=True),  # typed-ahead continuation of c5: not shown again
        _accepted(1, "return x", "acme", 1, "python", DAY1), _accepted(1, "return x", "acme", 1, "python", DAY1),
        _accepted(4, "a + b", "acme", 2, "python", DAY2), _accepted(7, "+ 1", "acme", 2, "python", DAY2),
        {"event": "rejected", "id": "c3", "completion": "", "time": DAY1},
    ]
    path.write_text("\n".join(json.dumps(e) for e in ev) + "\nnot json\n{\"event\": \"other\"}\n")
    return path


def test_figures_match_a_hand_count(tmp_path):
    events, bad = load_events(write_log(tmp_path / "log.jsonl"))
    assert bad == 2 and len(events) == 12
    rows = {r["version"]: r for r in summarize(events, "version")}
    # acme@1: c1, c2, c3 shown; c1 accepted (twice reported, counted once) -> 1/3, 8 chars
    assert (rows["acme@1"]["shown"], rows["acme@1"]["accepted"], rows["acme@1"]["accepted_chars"]) == (3, 1, 8)
    assert abs(rows["acme@1"]["rate"] - 1 / 3) < 1e-9
    assert rows["acme@1"]["latency_p50_ms"] == 200 and rows["acme@1"]["latency_p95_ms"] == 300
    # acme@2: c4, c5 shown (c7 continues c5); c4 and c7 accepted -> 2/2, 5 + 3 chars
    assert (rows["acme@2"]["shown"], rows["acme@2"]["accepted"], rows["acme@2"]["accepted_chars"]) == (2, 2, 8)
    assert (rows["base model"]["shown"], rows["base model"]["accepted"]) == (1, 0) and rows["base model"]["rate"] == 0
    assert (rows["all"]["shown"], rows["all"]["accepted"]) == (6, 3)
    langs = {r["language"]: r for r in summarize(events, "language")}
    assert (langs["python"]["shown"], langs["python"]["accepted"], langs["go"]["shown"]) == (5, 3, 1)
    days = {r["day"]: r for r in summarize(events, "day")}
    assert (days["2026-11-28"]["shown"], days["2026-11-29"]["shown"]) == (3, 3)
    assert percentile([1, 2, 3, 4], 50) == 2 and percentile([], 50) is None


def test_acceptance_since_a_promotion(tmp_path):
    log = write_log(tmp_path / "log.jsonl")
    row = since_promotion("acme", 2, datetime.fromtimestamp(DAY2 - 60, timezone.utc).isoformat(), path=log)
    assert (row["shown"], row["accepted"]) == (2, 2)
    assert since_promotion("acme", 1, datetime.fromtimestamp(DAY2, timezone.utc).isoformat(), path=log) is None


def test_cli_table_json_and_plot(tmp_path):
    from copilot.cli.stats import stats_cmd

    log = write_log(tmp_path / "log.jsonl")
    r = CliRunner().invoke(stats_cmd, ["--log", str(log), "--json", "--by", "language", "--plot", str(tmp_path / "a.png")])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["skipped_lines"] == 2 and {x["language"] for x in data["rows"]} == {"go", "python", "all"}
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = CliRunner().invoke(stats_cmd, ["--log", str(log)])
    assert r.exit_code == 0 and "acme@1" in r.output and "33.3%" in r.output and "100.0%" in r.output
    r = CliRunner().invoke(stats_cmd, ["--log", str(log), "--since", "2026-11-29", "--json"])
    assert {x["version"] for x in json.loads(r.output)["rows"]} == {"acme@2", "base model", "all"}
    r = CliRunner().invoke(stats_cmd, ["--log", str(tmp_path / "none.jsonl")])
    assert r.exit_code == 0 and "No suggestions shown yet" in r.output
    r = CliRunner().invoke(stats_cmd, ["--log", str(log), "--since", "yesterday"])
    assert r.exit_code != 0 and "--since must be a date" in r.output


def test_a_scripted_editor_session_gives_the_hand_counted_figures(tiny_model_dir, tmp_path, monkeypatch):
    """Real copilot-lsp on a tiny model: two suggestions shown, one continued by typing ahead and accepted
    there, the other rejected -> 1 accepted of 2 shown; `copilot.stats` and `copilot stats` agree."""
    from helpers.lsp_harness import Session

    from copilot.cli.stats import stats_cmd

    home, root = tmp_path / "home", tmp_path / "proj"
    root.mkdir()
    uri = (root / "app.py").as_uri()
    text = "import os\n\n\nclass Greeter:\n    def hello(self, name):\n        return \n"

    async def main():
        async with Session(tiny_model_dir, root=root, home=home) as s:
            await s.wait_ready()
            s.open(uri, text)
            first = (await s.inline(uri, 5, 15)).items[0]
            typed = first.insert_text[0]
            s.change(uri, 2, (5, 15), (5, 15), typed)  # the user types the suggestion's first character
            hits = (await s.status())["counters"]["cache_hits"]
            cont = (await s.inline(uri, 5, 16)).items[0]
            assert (await s.status())["counters"]["cache_hits"] == hits + 1
            assert cont.insert_text == first.insert_text[1:]
            assert await s.command("copilot.accepted", cont.command.arguments[0]) is True
            s.change(uri, 3, (0, 0), (0, 0), "\n")
            other = (await s.inline(uri, 1, 0)).items
            shown_by_model = 1 + (1 if other and other[0].insert_text.strip() else 0)
            if other:
                s.client.protocol.notify("copilot/rejected", {"id": other[0].command.arguments[0]})
            from_server = await s.command("copilot.stats")
            return shown_by_model, len(cont.insert_text), from_server

    shown_by_model, chars, from_server = asyncio.run(main())
    row = next(r for r in from_server["by_version"] if r["version"] == "all")
    assert (row["shown"], row["accepted"], row["accepted_chars"]) == (shown_by_model, 1, chars)
    assert from_server["by_language"][0]["language"] == "python"
    log = home / "feedback" / "lsp-feedback.jsonl"
    assert all("return" not in line for line in log.read_text().splitlines() if '"shown"' in line)  # no code
    monkeypatch.setenv("COPILOT_HOME", str(home))
    r = CliRunner().invoke(stats_cmd, ["--json"])
    assert r.exit_code == 0, r.output
    cli_all = next(x for x in json.loads(r.output)["rows"] if x["version"] == "all")
    assert cli_all == row
