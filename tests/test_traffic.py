"""The traffic section's queries (DuckDB over a decision-log folder) on a small hand-made log, numbers exact."""
import json

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.analysis.traffic import drift, open_log, uncovered_by_day
from workbench.errors import DataError, WorkbenchError

pytest.importorskip("duckdb")

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def rec(rid, time, conv, turn, tier, category, conf, tokens, **kw):
    base = dict(time=time, request_id=rid, client="bot-a", conversation_id=conv, turn=turn, text=f"message {rid}",
                text_sha256="0" * 64, routed=True, category=category, tier=tier, decided_tier=tier, confidence=conf,
                margin=0.1, abstain=False, neighbors=["p1", "p2", "p3"], pool_sha256="ab" * 32, upstream_tier=tier,
                upstream_model="m", fallback_reason=None, routing_ms=3.0, upstream_ms=40.0,
                prompt_tokens=tokens[0], completion_tokens=tokens[1], cost=0.001, stream=False, status=200)
    base.update(kw)
    return base


DAY_A = [rec("r1", "2026-12-01T09:00:00.000Z", "c1", 1, "cheap", "casual", 0.95, (100, 100), text=XSS),
         rec("r2", "2026-12-01T09:01:00.000Z", "c1", 2, "strong", "coding", 0.55, (300, 700)),
         rec("r3", "2026-12-01T10:00:00.000Z", "c2", 1, "medium", "analysis", 0.4, (200, 300), abstain=True,
             decided_tier="cheap", fallback_reason="timeout", upstream_tier="strong"),
         rec("r4", "2026-12-01T11:00:00.000Z", None, None, None, None, None, (50, 50), routed=False)]
DAY_B = [rec("r5", "2026-12-02T08:00:00.000Z", "c1", 3, "strong", "coding", 0.85, (500, 500)),
         rec("r6", "2026-12-02T23:59:59.999Z", "c3", 1, "cheap", "simple_lookup", None, (None, None),
             upstream_tier=None, fallback_reason="connect_error", status=503, cost=None, extra_field={"a": 1})]
FEEDBACK = [{"time": "2026-12-01T09:05:00Z", "request_id": "r1", "rating": "up", "tier_wanted": None},
            {"time": "2026-12-01T09:06:00Z", "request_id": "r2", "rating": "down", "tier_wanted": "medium"},
            {"time": "2026-12-01T09:07:00Z", "request_id": "r2", "rating": "up", "tier_wanted": None},
            {"time": "2026-12-01T10:05:00Z", "request_id": "r3", "rating": "down", "tier_wanted": "strong"},
            {"time": "2026-12-01T10:06:00Z", "request_id": "zz-unknown", "rating": "down", "tier_wanted": None}]


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def folder(tmp_path):
    write(tmp_path / "decisions-2026-12-01.jsonl", DAY_A)
    write(tmp_path / "decisions-2026-12-02.jsonl", DAY_B)
    write(tmp_path / "feedback-2026-12-01.jsonl", FEEDBACK)
    return tmp_path


def test_mix_by_tier_and_category_per_day_leaves_passthrough_out(folder):
    log = open_log(folder)
    assert log.days() == ["2026-12-01", "2026-12-02"]
    mix = log.mix("tier")
    assert mix.to_dict("list") == {"day": ["2026-12-01"] * 3 + ["2026-12-02"] * 2,
                                   "tier": ["cheap", "medium", "strong", "cheap", "strong"],
                                   "n": [1, 1, 1, 1, 1], "share": [1 / 3, 1 / 3, 1 / 3, 0.5, 0.5]}
    wide = log.mix("category", wide=True)
    assert wide["n"].tolist() == [3, 2] and wide["coding"].tolist() == [1 / 3, 0.5]
    assert wide["simple_lookup"].tolist() == [0.0, 0.5]


def test_cost_at_the_logged_tokens_against_all_strong_and_all_medium(folder):
    cost = open_log(folder).cost({"cheap": 0.15, "medium": 1.0, "strong": 10.0}).set_index("day")
    assert cost["tokens"].tolist() == [1700, 1000, 2700] and cost["n"].tolist() == [3, 2, 5]
    # day 1: 200 tokens answered by cheap, 1,000 by strong, 500 by strong after a fallback from medium
    assert cost.loc["2026-12-01", "routed"] == pytest.approx((200 * 0.15 + 1500 * 10) / 1e6)
    assert cost.loc["all", "routed"] == pytest.approx((200 * 0.15 + 2500 * 10) / 1e6)
    assert cost.loc["all", "all_strong"] == pytest.approx(2700 * 10 / 1e6)
    assert cost.loc["all", "all_medium"] == pytest.approx(2700 * 1 / 1e6)
    assert cost.loc["2026-12-02", "saving_vs_strong"] == pytest.approx(0.0)
    assert cost.loc["all", "saving_vs_strong"] == pytest.approx(1 - 25030 / 27000)
    assert cost.loc["all", "logged"] == pytest.approx(0.004)


def test_abstain_fallback_and_error_rates_per_day(folder):
    rates = open_log(folder).rates()
    assert rates[["day", "n", "abstains", "fallbacks", "errors"]].values.tolist() == [
        ["2026-12-01", 3, 1, 1, 0], ["2026-12-02", 2, 0, 1, 1]]
    assert rates["abstain_rate"].tolist() == [1 / 3, 0.0] and rates["fallback_rate"].tolist() == [1 / 3, 0.5]
    reasons = open_log(folder).fallback_reasons()
    assert reasons.values.tolist() == [["connect_error", "(none)", 1], ["timeout", "strong", 1]]


def test_tier_switches_within_conversations(folder):
    log = open_log(folder)
    switches = log.tier_switches()
    assert switches[["day", "follow_ups", "switches"]].values.tolist() == [["2026-12-01", 1, 1], ["2026-12-02", 1, 0]]
    assert switches["switch_rate"].tolist() == [1.0, 0.0]
    assert log.tier_transitions().values.tolist() == [["cheap", "strong", 1]]


def test_live_confidence_against_the_pools_out_of_fold_distribution(folder):
    pool = pd.DataFrame({"bin_low": [i / 10 for i in range(10)], "share": [0.0] * 9 + [1.0]})
    conf = open_log(folder).confidence(pool)
    assert conf["n"].tolist() == [0, 0, 0, 0, 1, 1, 0, 0, 1, 1]  # r6 has no confidence
    assert conf["share"].tolist() == [0, 0, 0, 0, 0.25, 0.25, 0, 0, 0.25, 0.25]
    assert conf["pool_share"].tolist() == [0.0] * 9 + [1.0]


def test_feedback_down_rate_per_tier_latest_rating_wins(folder):
    log = open_log(folder)
    assert log.has_feedback
    fb = log.feedback().set_index("tier")
    assert fb.loc[:, ["decisions", "rated", "down"]].values.tolist() == [[2, 1, 0], [1, 1, 1], [2, 1, 0]]
    assert fb["down_rate"].tolist() == [0.0, 1.0, 0.0]
    assert fb.loc["medium", "wanted_strong"] == 1 and fb["wanted_medium"].sum() == 0


def test_no_feedback_file_means_no_feedback_yet(folder):
    (folder / "feedback-2026-12-01.jsonl").unlink()
    log = open_log(folder)
    fb = log.feedback()
    assert not log.has_feedback and fb["rated"].tolist() == [0, 0, 0] and fb["down_rate"].isna().all()


def test_messages_carry_their_text_as_logged(folder):
    msgs = open_log(folder).messages()
    assert msgs["request_id"].tolist() == ["r1", "r2", "r3", "r5", "r6"] and msgs["text"][0] == XSS
    assert open_log(folder).messages(days=["2026-12-02"])["request_id"].tolist() == ["r5", "r6"]


def test_a_missing_folder_or_an_empty_one_is_one_line(tmp_path):
    with pytest.raises(WorkbenchError, match="no such decision-log folder"):
        open_log(tmp_path / "nope")
    with pytest.raises(WorkbenchError, match=r"no decision log here \(no decisions-\*\.jsonl\)"):
        open_log(tmp_path)


@pytest.mark.parametrize("line, problem", [
    ("not json at all", "not valid JSON"),
    ('{"time": "2026-12-01T09:00:00Z", "request_id": "x"', "not valid JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
    ('{"time": "2026-12-01T09:00:00Z", "request_id": "x", "confidence": "high"}', "'confidence' must be double"),
    ('{"time": "2026-12-01T09:00:00Z", "request_id": "x", "prompt_tokens": "many"}', "'prompt_tokens' must be bigint"),
    ('{"time": "yesterday", "request_id": "x"}', "'time' must be an ISO 8601 time"),
])
def test_a_malformed_line_names_its_file_and_line(folder, line, problem):
    path = folder / "decisions-2026-12-02.jsonl"
    path.write_text(path.read_text() + line + "\n" + json.dumps(DAY_B[0]) + "\n")
    with pytest.raises(DataError) as e:
        open_log(folder)
    assert str(e.value).startswith(f"{path}:3: {problem}") and "\n" not in str(e.value)


def test_a_bad_feedback_rating_names_its_file_and_line(folder):
    path = write(folder / "feedback-2026-12-02.jsonl", [FEEDBACK[0], dict(FEEDBACK[1], rating="meh")])
    with pytest.raises(DataError, match=rf"^{path}:2: 'rating' must be 'up' or 'down'"):
        open_log(folder)


@settings(max_examples=60, deadline=None)
@given(cut=st.floats(0, 1), feedback_cut=st.floats(0, 1))
def test_a_log_being_written_reads_to_its_last_complete_line(tmp_path_factory, cut, feedback_cut):
    """The gateway appends while the report reads: cut today's log and feedback at any byte (mid-record, mid-character),
    and every query sees exactly the records whose whole line arrived; the files are left as they are."""
    folder = tmp_path_factory.mktemp("live")
    write(folder / "decisions-2026-12-01.jsonl", DAY_A)
    today = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in DAY_B
                    + [rec("r7", "2026-12-02T09:00:00Z", "c9", 1, "medium", "analysis", 0.7, (1, 1), text="日本語 ü")])
    data = today.encode()
    head = data[:int(cut * len(data))]
    (folder / "decisions-2026-12-02.jsonl").write_bytes(head)
    fb = "".join(json.dumps(r) + "\n" for r in FEEDBACK).encode()
    fb_head = fb[:int(feedback_cut * len(fb))]
    (folder / "feedback-2026-12-01.jsonl").write_bytes(fb_head)
    whole = [json.loads(line)["request_id"] for line in head.decode(errors="ignore").splitlines(keepends=True)
             if line.endswith("\n")]
    log = open_log(folder)
    assert sorted(log.messages()["request_id"]) == sorted(["r1", "r2", "r3"] + whole)
    assert log.query("SELECT count(*) AS n FROM feedback")["n"][0] == fb_head.count(b"\n")
    assert (folder / "decisions-2026-12-02.jsonl").read_bytes() == head  # read, never rewritten


def test_a_bad_complete_line_before_a_torn_one_is_still_an_error(folder):
    path = folder / "decisions-2026-12-02.jsonl"
    path.write_text(path.read_text() + '{"time": "yesterday", "request_id": "x"}\n{"time": "2026-12-0')
    with pytest.raises(DataError, match=rf"^{path}:3: 'time' must be an ISO 8601 time"):
        open_log(folder)


def test_a_line_torn_during_the_read_is_read_again(folder):
    """A file that gains a torn line after it was looked at: the read fails on it, finds no bad complete line, and
    is tried again, now reading to the last complete line."""
    import duckdb

    from workbench.analysis import traffic

    path = folder / "decisions-2026-12-02.jsonl"
    calls = []

    def run(paths):
        calls.append(paths)
        if len(calls) == 1:  # the gateway starts a line between the look and the read, which sees the file itself
            with path.open("a") as fh:
                fh.write('{"time": "2026-12-02T10:00:00Z", "request_')
            paths = [str(path)]
        return duckdb.execute(f"SELECT count(*) FROM {traffic._reader('?', traffic.DECISION_COLUMNS)}",
                              [paths]).fetchone()[0]

    assert traffic._read_complete(run, [str(path)], traffic.DECISION_COLUMNS) == 2 and len(calls) == 2


def mix_frame(shares_by_day):
    rows = [(day, tier, n) for day, counts in shares_by_day.items() for tier, n in counts.items()]
    return pd.DataFrame(rows, columns=["day", "tier", "n"])


def week(counts, last, days=8):
    out = {f"2026-12-{d:02d}": dict(counts) for d in range(1, days)}
    out[f"2026-12-{days:02d}"] = last
    return out


def test_drift_flags_a_tier_mix_moving_more_than_five_points():
    steady = {"cheap": 80, "medium": 10, "strong": 10}
    moved = drift(mix_frame(week(steady, {"cheap": 74, "medium": 10, "strong": 16})))
    assert moved.flag and moved.day == "2026-12-08" and len(moved.reasons) == 2
    assert moved.tier_change["strong"] == pytest.approx(0.06) and "strong share 16.0%" in moved.reasons[1]
    still = drift(mix_frame(week(steady, {"cheap": 76, "medium": 10, "strong": 14})))
    assert not still.flag and still.reasons == [] and still.tier_change["strong"] == pytest.approx(0.04)


def test_drift_flags_the_uncovered_share_doubling():
    steady = {"cheap": 8, "medium": 1, "strong": 1}
    mix = mix_frame(week(steady, steady))
    days = sorted(set(mix["day"]))
    base = {d: (1, 20) for d in days[:-1]}
    doubled = drift(mix, dict(base, **{days[-1]: (2, 20)}))
    assert doubled.flag and doubled.uncovered == (0.1, 0.05) and "at least doubled" in doubled.reasons[0]
    assert not drift(mix, dict(base, **{days[-1]: (1, 20)})).flag


def test_drift_needs_a_previous_day_and_uses_only_the_window():
    assert drift(mix_frame({"2026-12-01": {"cheap": 1}})) == (False, [], "2026-12-01", {}, ())
    assert drift(mix_frame({})).day is None
    # a very different day 1 is outside a 7-day window ending at day 9
    mix = mix_frame(dict(week({"cheap": 9, "strong": 1}, {"cheap": 9, "strong": 1}, days=9),
                         **{"2026-12-01": {"strong": 100}}))
    assert not drift(mix).flag and drift(mix, window=8).flag


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 9), st.sampled_from(["cheap", "medium", "strong"]), st.integers(1, 50)),
                min_size=1, max_size=30), st.floats(0.0, 0.5))
def test_drift_flag_is_exactly_a_share_moving_more_than_the_points(rows, points):
    mix = pd.DataFrame([(f"2026-12-{d:02d}", t, n) for d, t, n in rows], columns=["day", "tier", "n"])
    got = drift(mix, points=points)
    days = sorted(set(mix["day"]))
    if len(days) < 2:
        assert not got.flag
        return
    share = lambda sub: sub.groupby("tier")["n"].sum() / sub["n"].sum()  # noqa: E731
    now, then = share(mix[mix["day"] == days[-1]]), share(mix[mix["day"].isin(days[-8:-1])])
    moves = now.sub(then, fill_value=0).abs()
    assert got.flag == bool((moves > points).any())


def test_uncovered_by_day_counts():
    assert uncovered_by_day(["a", "a", "b"], [True, False, False]) == {"a": (1, 2), "b": (0, 1)}


def test_nightly_refuses_a_decision_log_folder_without_decisions_in_one_line(tmp_path, capsys):
    from workbench.cli import main

    (tmp_path / "empty").mkdir()
    for folder, problem in ((tmp_path / "nope", "no such decision-log folder"),
                            (tmp_path / "empty", "no decision log here")):
        assert main(["nightly", "--output-dir", str(tmp_path / "reports"), "--decision-log", str(folder)]) == 2
        err = capsys.readouterr().err
        assert problem in err and err.count("\n") == 1 and not (tmp_path / "reports").exists()
