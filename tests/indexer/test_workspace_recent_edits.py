"""indexer.workspace.recent_edits: the regions of other files edited lately, as the third source of context."""

from __future__ import annotations

from indexer.workspace.index import WorkspaceIndex
from indexer.workspace.recent_edits import MAX_REGION_LINES, CommitEdits, Edit, EditLog
from indexer.workspace.repo_context import choose


def test_the_log_merges_typing_in_one_place_and_moves_regions_below_an_insertion():
    log = EditLog()
    for line in (10, 10, 11, 12):  # typing on, one new line after another
        log.record("billing.py", line, line, line)
    log.record("billing.py", 12, 12, 13)  # Enter at the end of line 12
    assert log.recent() == [Edit("billing.py", 10, 13, 13)]
    log.record("shipping.py", 3, 3, 3)
    log.record("billing.py", 0, 0, 2)  # two lines inserted at the top of billing.py
    assert log.recent() == [Edit("billing.py", 0, 2, 2), Edit("shipping.py", 3, 3, 3), Edit("billing.py", 12, 15, 15)]
    log.record("billing.py", 11, 16, 11)  # the region's lines deleted: what is left of them is line 11
    assert log.recent()[0] == Edit("billing.py", 11, 11, 11)
    assert log.stamp("shipping.py") == 0  # nothing settled in the index yet
    log.settled("billing.py")
    log.settled("shipping.py")
    log.settled("billing.py")
    assert log.stamp("billing.py") == 1 and log.stamp("shipping.py") == 2 and log.stamp(None) == 3
    log.forget("billing.py")
    assert log.recent() == [Edit("shipping.py", 3, 3, 3)]


def test_the_log_keeps_the_latest_regions_newest_first():
    log = EditLog(limit=3)
    for i in range(5):
        log.record(f"m{i}.py", 0, 0, 0)
    assert [e.path for e in log.recent()] == ["m4.py", "m3.py", "m2.py"]


def test_a_long_region_is_shown_around_the_line_edited_last():
    assert Edit("a.py", 5, 6).window(100) == (3, 8)  # two lines of margin
    lo, hi = Edit("a.py", 0, 80, last=60).window(100)
    assert hi - lo + 1 == MAX_REGION_LINES and lo <= 60 <= hi
    assert Edit("a.py", 0, 80, last=80).window(81) == (81 - MAX_REGION_LINES, 80)


def test_a_commit_s_edits_of_other_files_nearest_the_pair_s_file_come_first():
    edits = [Edit("docs/conf.py", 0, 1), Edit("src/pay/api.py", 4, 5), Edit("src/pay/cli.py", 0, 0),
             Edit("src/other.py", 1, 1), Edit("src/pay/api.py", 9, 9), Edit("src/pay/v2/new.py", 0, 3)]
    commit = CommitEdits(edits)
    assert [(e.path, e.start) for e in commit.nearest("src/pay/cli.py")] == [
        ("src/pay/api.py", 4), ("src/pay/api.py", 9), ("src/pay/v2/new.py", 0), ("src/other.py", 1),
        ("docs/conf.py", 0)]
    assert [e.path for e in commit.nearest("setup.py", limit=2)] == ["docs/conf.py", "src/pay/api.py"]
    # a commit of thousands of files: each pair's share is found without sorting them all
    big = CommitEdits([Edit(f"vendor/lib{i}/m{j}.py", 0, 0) for i in range(100) for j in range(100)] +
                      [Edit("app/views.py", 3, 4)])
    assert big.nearest("app/models.py", limit=3)[0] == Edit("app/views.py", 3, 4)


CONFIG = '"""Settings."""\n\nTIMEOUT_S = 30\n' + "".join(f"SHADE_{i} = {i}\n" for i in range(40)) + \
    "RETRY_LIMIT = 5  # attempts before a payment gives up\n"
PAY = '"""Payments."""\n\nimport config\n\n\ndef pay(invoice):\n    return invoice.charge(config.TIMEOUT_S)\n'


def test_an_edited_region_of_another_file_fills_the_room_left_and_the_file_s_own_edits_never_do():
    idx = WorkspaceIndex.from_texts([("config.py", CONFIG), ("pay.py", PAY)])
    prefix, suffix = PAY + "\n\ndef pay_twice(invoice):\n    for _ in range(config.", ")\n"
    edits = [Edit("pay.py", 5, 6), Edit("config.py", 43, 43)]
    got = choose(idx, "pay.py", "python", prefix, suffix, tokens=256, definitions=False, similar=False,
                 edits=edits)
    assert [(s.path, s.source) for s in got] == [("config.py", "recent_edit")]
    assert got[0].text == "SHADE_38 = 38\nSHADE_39 = 39\nRETRY_LIMIT = 5  # attempts before a payment gives up"
    assert choose(idx, "pay.py", "python", prefix, suffix, tokens=256, definitions=False, similar=False) == []
    # no room left: nothing
    assert choose(idx, "pay.py", "python", prefix, suffix, tokens=10, definitions=False, similar=False,
                  edits=edits) == []
