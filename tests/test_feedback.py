"""``POST /v1/feedback``: the parser and the id lookup on their own, then the gateway in a real uvicorn with the
official ``openai`` client making the chat call and httpx posting the feedback."""
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.serve.decision_log import DecisionLog
from workbench.serve.feedback import FIELDS, RecentIds, logged_request, parse_feedback
from workbench.serve.payloads import RequestError

TIERS = ["cheap", "medium", "strong"]
GOOD = {"request_id": "req-1", "rating": "down", "tier_wanted": "strong"}


def body(obj):
    return json.dumps(obj).encode()


def test_a_good_body_gives_the_feedback_line_in_the_fixed_format():
    fb = parse_feedback(body(GOOD), tiers=TIERS)
    line = fb.line(1_700_000_000.25)
    assert list(line) == list(FIELDS)
    assert line == {"time": "2023-11-14T22:13:20.250Z", "request_id": "req-1", "rating": "down",
                    "tier_wanted": "strong"}
    assert parse_feedback(body({"request_id": "a", "rating": "up"}), tiers=TIERS).tier_wanted is None


@pytest.mark.parametrize("obj, status, words", [
    ([1], 422, "JSON object"),
    ({"request_id": "a"}, 422, "'rating'"),
    ({"request_id": "a", "rating": "meh"}, 422, "'rating'"),
    ({"request_id": "a", "rating": "up", "tier_wanted": "premium"}, 422, "'tier_wanted'"),
    ({"request_id": "a", "rating": "up", "tier_wanted": 3}, 422, "got number"),
    ({"request_id": 'a"b', "rating": "up"}, 422, "'request_id'"),
    ({"request_id": "", "rating": "up"}, 422, "'request_id'"),
    ({"request_id": "a", "rating": "up", "extra": 1}, 422, "unknown field"),
])
def test_a_bad_field_is_refused_in_one_line_naming_it(obj, status, words):
    with pytest.raises(RequestError) as e:
        parse_feedback(body(obj), tiers=TIERS)
    assert e.value.status == status and words in e.value.message and "\n" not in e.value.message


def test_bad_json_is_a_400():
    for raw in (b"", b"{", b'{"rating": NaN}', b"\xff\xfe"):
        with pytest.raises(RequestError) as e:
            parse_feedback(raw, tiers=TIERS)
        assert e.value.status == 400


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner,
                                                                                        max_size=4), max_leaves=8)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({}, optional={"request_id": json_values | st.text(max_size=80), "rating": json_values |
                                        st.sampled_from(["up", "down", "UP", ""]),
                                        "tier_wanted": json_values | st.sampled_from(TIERS + ["x", None])}
                          ).map(lambda v: json.dumps(v).encode()))


@given(bodies)
@settings(max_examples=300, deadline=None)
def test_any_body_is_either_feedback_or_a_one_line_4xx(raw):
    try:
        fb = parse_feedback(raw, tiers=TIERS)
    except RequestError as e:
        assert 400 <= e.status < 500 and "\n" not in e.message
        return
    assert fb.rating in ("up", "down") and fb.tier_wanted in TIERS + [None]
    json.dumps(fb.line(time.time()), allow_nan=False)


def test_the_recent_ids_are_bounded_and_keep_the_newest():
    ids = RecentIds(3)
    for i in range(5):
        ids.add(f"r{i}")
    assert len(ids) == 3 and "r0" not in ids and "r1" not in ids and "r4" in ids


def test_an_id_is_found_in_the_last_days_of_the_decision_log_and_nowhere_else(tmp_path):
    now = time.time()
    yesterday = time.strftime("decisions-%Y-%m-%d.jsonl", time.gmtime(now - 86400))
    old = time.strftime("decisions-%Y-%m-%d.jsonl", time.gmtime(now - 3 * 86400))
    (tmp_path / yesterday).write_text(json.dumps({"request_id": "seen-1", "text_sha256": "x"},
                                                 separators=(",", ":")) + "\n")
    (tmp_path / old).write_text('{"request_id":"old-1"}\n')
    (tmp_path / time.strftime("decisions-%Y-%m-%d.jsonl", time.gmtime(now))).write_text("")  # empty: no mmap
    assert logged_request(tmp_path, "seen-1", now=now)
    assert not logged_request(tmp_path, "seen", now=now)  # a prefix of an id is not the id
    assert not logged_request(tmp_path, "old-1", now=now)
    assert not logged_request(tmp_path / "missing", "seen-1", now=now)


def test_the_feedback_writer_appends_to_its_own_daily_file(tmp_path):
    log = DecisionLog(tmp_path, prefix="feedback").start()
    log.write({"time": "t", "request_id": "a", "rating": "up", "tier_wanted": None})
    log.close()
    [f] = tmp_path.iterdir()
    assert f.name == time.strftime("feedback-%Y-%m-%d.jsonl", time.gmtime())
    assert json.loads(f.read_text()) == {"time": "t", "request_id": "a", "rating": "up", "tier_wanted": None}


# -- the gateway in a real uvicorn ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gw(small_npz, tmp_path_factory):
    from tests.fake_upstream import FakeUpstream
    from tests.test_gateway import MODELS, Gateway, upstreams_yaml

    ups = {t: FakeUpstream(t, MODELS[t]).start() for t in MODELS}
    pool = tmp_path_factory.mktemp("fbpool") / "pool.npz"
    pool.write_bytes(small_npz.read_bytes())
    g = Gateway(pool, tmp_path_factory.mktemp("fb"), upstreams_yaml(ups))
    yield g
    g.stop()
    for s in ups.values():
        s.stop()


def post(gw, obj=None, *, raw=None, token=None, headers=None):
    import httpx

    from tests.test_gateway import TOKEN

    head = {"authorization": f"Bearer {token or TOKEN}", "content-type": "application/json", **(headers or {})}
    return httpx.post(gw.url("/v1/feedback"), content=raw if raw is not None else json.dumps(obj), headers=head,
                      timeout=30)


def feedback_lines(gw, n, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        lines = [json.loads(x) for f in sorted(gw.decisions.glob("feedback-*.jsonl"))
                 for x in f.read_text().splitlines()]
        if len(lines) >= n or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.mark.serve
def test_feedback_on_a_served_answer_is_accepted_counted_and_logged(gw):
    from tests.test_gateway import chat

    raw = chat(gw.client(), "write a python function that merges two sorted lists")
    rid = raw.headers["x-request-id"]
    before = gw.metric("workbench_feedback_total", rating="down")
    r = post(gw, {"request_id": rid, "rating": "down", "tier_wanted": "strong"})
    assert r.status_code == 202 and r.json() == {"status": "accepted", "request_id": rid}
    assert post(gw, {"request_id": rid, "rating": "up"}).status_code == 202
    lines = feedback_lines(gw, 2)
    assert [(x["request_id"], x["rating"], x["tier_wanted"]) for x in lines[-2:]] == [(rid, "down", "strong"),
                                                                                      (rid, "up", None)]
    assert all(list(x) == list(FIELDS) and x["time"].endswith("Z") for x in lines)
    assert gw.metric("workbench_feedback_total", rating="down") == before + 1
    assert gw.record(rid)["request_id"] == rid  # the decision record it rates is in the same folder


@pytest.mark.serve
def test_an_unknown_id_a_bad_field_or_a_missing_token_is_a_4xx_with_a_json_error(gw):
    cases = [(post(gw, {"request_id": "never-served-1", "rating": "down"}), 404, "unknown request_id"),
             (post(gw, {"request_id": "x", "rating": "sideways"}), 422, "'rating'"),
             (post(gw, raw="{nope"), 400, ""),
             (post(gw, raw="{}", headers={"content-type": "text/plain"}), 415, "Content-Type"),
             (post(gw, raw=" " * 5000), 413, "limit"),
             (post(gw, {"request_id": "x", "rating": "up"}, token="wrong-token"), 401, "bearer")]
    for r, status, words in cases:
        assert r.status_code == status, (status, r.text)
        assert r.json()["status"] == status and words in r.json()["error"]
    assert not any(x["request_id"] == "never-served-1" for x in feedback_lines(gw, 0, timeout=0))


@pytest.mark.serve
@given(raw=bodies)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_body_makes_the_feedback_endpoint_answer_5xx(gw, raw):
    r = post(gw, raw=raw)
    assert r.status_code in (202, 400, 404, 413, 422), r.text
    assert r.json()["status" if r.status_code != 202 else "request_id"]
