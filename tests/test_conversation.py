"""Routing conversations: the context rules on known decisions, the labelled set, and `route --conversation`."""
import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import ROOT, run_cli, unit_rows
from workbench.core.conversation import (ContextRule, ConversationPolicy, context_texts, continued, decide_turns, lifted,
                                         more_confident, sticky_decisions, text_words, with_previous)
from workbench.core.router import RouteDecision
from workbench.errors import ConfigError, DataError

TIERS = ("cheap", "medium", "strong")


def d(category, tier, confidence=0.9, similarity=0.8):
    return RouteDecision(category, tier, confidence, 0.5, similarities=[similarity], vote_tier=tier)


def test_with_previous_prepends_the_previous_user_turn():
    assert with_previous(["a", "b", "c"]) == ["a", "a\nb", "b\nc"]


def test_more_confident_keeps_the_surer_reading_and_the_first_turn_alone():
    alone = [d("coding", "strong", 0.99), d("casual", "cheap", 0.55), d("simple_lookup", "cheap", 0.97)]
    ctx = [d("casual", "cheap", 1.0), d("coding", "strong", 0.93), d("coding", "strong", 0.6)]
    assert [x.tier for x in more_confident(alone, ctx)] == ["strong", "strong", "cheap"]


def test_lift_takes_the_context_only_when_it_is_surer_and_raises_the_tier():
    alone = [d("casual", "cheap", 0.5), d("casual", "cheap", 0.55), d("coding", "strong", 0.6),
             d("simple_lookup", "cheap", 0.7)]
    ctx = [d("coding", "strong", 1.0), d("coding", "strong", 0.93), d("creative", "medium", 0.99),
           d("analysis", "medium", 0.6)]
    assert [x.tier for x in lifted(alone, ctx, tiers=TIERS)] == ["cheap", "strong", "strong", "cheap"]


def test_context_texts_read_up_to_k_earlier_turns():
    assert context_texts(["a", "b", "c"], 2) == [["a", "a\nb", "b\nc"], ["a", "a\nb", "a\nb\nc"]]


def test_lift_reads_the_turn_before_the_previous_one():
    """A follow-up that only the turn two back explains is lifted by the two-turn reading."""
    alone = [d("creative", "medium", 0.9), d("casual", "cheap", 0.9), d("casual", "cheap", 0.5)]
    one = [alone[0], d("casual", "cheap", 0.95), d("casual", "cheap", 0.6)]
    two = [alone[0], one[1], d("creative", "medium", 0.8)]
    assert [x.tier for x in lifted(alone, one, two, tiers=TIERS)] == ["medium", "cheap", "medium"]


def test_text_words_counts_words_across_scripts():
    assert text_words("round up") == 2 and text_words("四舍五入") == 2 and text_words("and in °F?") == 3
    assert text_words("用 python 写") == 2


def test_inherit_continues_the_task_for_short_turns_only():
    rule = ContextRule("inherit", turns=1, short_words=3)
    decided = {"write a python function that dedupes a list": d("coding", "strong"),
               "shorter": d("casual", "cheap", 0.6), "thanks a lot": d("casual", "cheap", 0.97),
               "what is the capital of Peru, by the way?": d("simple_lookup", "cheap", 0.95)}
    route = lambda texts: [decided.get(t, d("casual", "cheap", 0.1)) for t in texts]  # noqa: E731
    texts = list(decided)
    assert [x.tier for x in decide_turns(rule, texts, route, TIERS)] == ["strong", "strong", "cheap", "cheap"]


def test_decide_turns_routes_every_distinct_text_once():
    calls = []

    def route(texts):
        calls.append(list(texts))
        return [d("casual", "cheap") for _ in texts]

    decide_turns(ContextRule("detector", turns=2), ["a", "b", "a"], route, TIERS)
    assert len(calls) == 1 and len(calls[0]) == len(set(calls[0])) == 5  # a, b, a\nb, b\na, a\nb\na
    calls.clear()
    decide_turns(ContextRule("alone"), ["a", "b"], route, TIERS)
    assert calls == [["a", "b"]]


def test_detector_continues_the_task_when_it_calls_a_follow_up_and_routes_others_alone():
    texts = ["fix my regex", "and for emails?", "thanks!"]
    own = {texts[0]: d("coding", "strong"), texts[1]: d("simple_lookup", "cheap", 0.7), texts[2]: d("casual", "cheap")}
    route = lambda ts: [own.get(t, d("coding", "strong", 0.99)) for t in ts]  # noqa: E731 (context reads as coding)
    always = ContextRule("detector", turns=1, weights=(50.0,) + (0.0,) * 7, release_confidence=0.8)
    never = ContextRule("detector", turns=1, weights=(-50.0,) + (0.0,) * 7)
    assert [x.tier for x in decide_turns(always, texts, route, TIERS)] == ["strong", "strong", "cheap"]  # released
    assert [x.tier for x in decide_turns(never, texts, route, TIERS)] == ["strong", "cheap", "cheap"]


_CAT_TIER = {"casual": "cheap", "simple_lookup": "cheap", "analysis": "medium", "creative": "medium",
             "coding": "strong", "reasoning": "strong"}
_readings = st.lists(st.tuples(st.sampled_from(sorted(_CAT_TIER)), st.floats(0, 1)), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(_readings, _readings)
def test_lift_never_routes_a_turn_below_its_message_alone(alone, ctx):
    """The class behind "no more fresh-turn downgrades": whatever the readings, lift only ever raises a tier."""
    a = [d(c, _CAT_TIER[c], conf) for c, conf in alone]
    p = [d(c, _CAT_TIER[c], conf) for c, conf in (ctx * len(alone))[:len(alone)]]
    out = lifted(a, p, tiers=TIERS)
    assert out[0] == a[0] and len(out) == len(a)
    for o, x, y in zip(out, a, p):
        assert o in (x, y) and TIERS.index(o.tier) >= TIERS.index(x.tier)
        assert o == x or y.confidence > x.confidence


def test_sticky_continues_the_task_unless_a_turn_is_clearly_casual():
    policy = ContextRule("sticky", turns=2, release_category="casual", release_confidence=0.9)
    turns = [d("coding", "strong"), d("simple_lookup", "cheap", 0.6), d("casual", "cheap", 0.95),
             d("creative", "medium", 0.5), d("casual", "cheap", 0.99), d("casual", "cheap", 0.97),
             d("research_lookup", "medium", 0.5), d("simple_lookup", "cheap", 0.5)]
    out = sticky_decisions(turns, TIERS, policy)
    assert [(x.category, x.tier) for x in out] == [
        ("coding", "strong"), ("coding", "strong"),          # a follow-up continues the coding task
        ("casual", "cheap"),                                  # "thanks!" is released
        ("coding", "strong"),                                 # within two turns of the task: still coding
        ("casual", "cheap"), ("casual", "cheap"),             # two clear casual turns end the task's window
        ("research_lookup", "medium"), ("research_lookup", "medium")]
    assert all(o.tier != "cheap" or t.tier == "cheap" for o, t in zip(out, turns))  # tiers only go up


def test_policy_parameters_are_checked():
    with pytest.raises(ConfigError, match="context rule must be one of"):
        ContextRule("telepathy")
    with pytest.raises(ConfigError, match="turns must be"):
        ContextRule("sticky", turns=0)
    with pytest.raises(ConfigError, match="weights must be 8 finite numbers"):
        ContextRule("detector", weights=(1.0, 2.0))
    with pytest.raises(ConfigError, match="threshold must be in"):
        ContextRule("detector", threshold=1.5)
    assert ConversationPolicy is ContextRule  # the old name works for one release


def test_the_labelled_set_holds_what_its_readme_says(taxonomy):
    from workbench.analysis.conversations import read_conversations

    turns = read_conversations(None, taxonomy)
    assert turns["conversation_id"].nunique() >= 120 and len(turns) >= 450
    assert turns["lang"].nunique() >= 8 and set(turns["category"]) == set(taxonomy.categories)
    assert (turns.loc[turns["turn"] == 1, "kind"] == "fresh").all()
    assert 0.35 < (turns["kind"] == "follow_up").mean() < 0.55


def test_bad_labelled_conversations_name_the_file_and_line(taxonomy, tmp_path):
    from workbench.analysis.conversations import read_conversations

    bad = tmp_path / "c.jsonl"
    bad.write_text(json.dumps({"conversation_id": "c1", "turns": [
        {"id": "t1", "text": "hi", "category": "casual", "kind": "follow_up"}]}) + "\n")
    with pytest.raises(DataError, match=r"c.jsonl:1: turn 1: kind must be"):
        read_conversations(bad, taxonomy)


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory, taxonomy):
    """A pool.npz of random vectors under the e5-small spec: routing it would load the model, reading input does not."""
    from workbench.core.artifact import write_pool_npz
    from workbench.core.embed import get_embedder
    from workbench.core.knn import KNNConfig

    x = unit_rows(np.random.default_rng(0), 14, 384)
    path = tmp_path_factory.mktemp("conv") / "pool.npz"
    write_pool_npz(path, x, np.arange(14) % 7, [f"m{i}" for i in range(14)], taxonomy=taxonomy,
                   embedder_spec=get_embedder("e5-small").spec, config=KNNConfig(k=3))
    return path


@pytest.mark.parametrize("line, problem", [
    ("{not json", "<stdin>:1: invalid JSON"),
    ('{"turns": [{"id": "a", "text": "hi"}]}', "<stdin>:1: missing 'conversation_id'"),
    ('{"conversation_id": "c", "turns": []}', "<stdin>:1: 'turns' must be a non-empty list"),
    ('{"conversation_id": "c", "turns": "hi"}', "<stdin>:1: 'turns' must be a non-empty list"),
    ('{"conversation_id": "c", "turns": [{"text": "hi"}]}', "<stdin>:1: turn 1: missing 'id'"),
    ('{"conversation_id": "c", "turns": [{"id": "a", "text": "hi"}, {"id": "b", "text": " "}]}',
     "<stdin>:1: turn 2: missing or empty 'text'"),
])
def test_route_conversation_refuses_bad_input_with_one_line(tiny_npz, line, problem, monkeypatch, capsys):
    from workbench.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO(line + "\n"))
    assert main(["route", "--conversation", "--pool", str(tiny_npz)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and problem in err


def test_route_conversation_writes_one_decision_per_turn_in_order(small_npz, e5):
    from workbench.core.router import Router

    conv = [{"conversation_id": "c1", "turns": [
                {"id": "c1-1", "text": "write a python function that removes duplicates from a list"},
                {"id": "c1-2", "text": "also keep the original order"},
                {"id": "c1-3", "text": "thanks, that works great!"}]},
            {"conversation_id": 7, "turns": [{"id": 1, "text": "¿cuál es la capital de Chile?"}]}]
    res = run_cli("route", "--conversation", "--pool", small_npz,
                  stdin="".join(json.dumps(c, ensure_ascii=False) + "\n" for c in conv))
    assert res.returncode == 0, res.stderr
    out = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(o["conversation_id"], o["id"]) for o in out] == [("c1", "c1-1"), ("c1", "c1-2"), ("c1", "c1-3"), (7, 1)]
    assert out[0]["tier"] == "strong" and out[2]["tier"] == "cheap"
    router = Router.load(small_npz, embedder=e5)
    assert [o["tier"] for o in out[:3]] == [x.tier for x in router.route_conversation(conv[0]["turns"])]
    assert all({"category", "tier", "confidence", "margin", "abstain"} <= set(o) for o in out)


def test_every_context_rule_is_compared_on_held_out_folds(small_npz, taxonomy, cache_dir):
    from workbench.analysis.conversations import (CANDIDATE_RULES, choose_context_rule, compare_context_rules,
                                                  compare_conversation_policies, read_conversations)
    from workbench.core.router import Router

    turns = read_conversations(ROOT / "data" / "conversations" / "conversations_a.jsonl", taxonomy)
    turns = turns[turns["conversation_id"].isin(turns["conversation_id"].unique()[:8])].reset_index(drop=True)
    result = compare_context_rules(Router.load(small_npz), turns, folds=3, cache_dir=cache_dir)
    table = result.table
    assert list(table.index) == list(CANDIDATE_RULES)
    assert (table["all_n"] == len(turns)).all() and all(None not in v for v in result.decisions.values())
    for rule in ("lift-1", "lift-2", "sticky-2", "inherit-2"):  # they only raise tiers: never more downgrades
        assert table.loc[rule, "fresh_downgrade_rate"] <= table.loc["alone", "fresh_downgrade_rate"]
        assert table.loc[rule, "follow_up_downgrade_rate"] <= table.loc["alone", "follow_up_downgrade_rate"]
    assert set(result.per_fold["fold"]) == {0, 1, 2}
    assert choose_context_rule(table)["rule"] in table.index
    assert compare_conversation_policies(Router.load(small_npz), turns, cache_dir=cache_dir).equals(
        compare_context_rules(Router.load(small_npz), turns, cache_dir=cache_dir).table)


def test_the_threshold_curve_replays_the_detector_rule_turn_for_turn(small_npz, taxonomy, cache_dir, monkeypatch):
    from workbench.analysis.conversations import (choose_threshold, compare_context_rules, read_conversations,
                                                  rule_label, threshold_curve)
    from workbench.core.conversation import ContextRule
    from workbench.core.follow_up import FollowUpDetector
    from workbench.core.router import Router

    asked = []
    ask = FollowUpDetector.predict_proba
    monkeypatch.setattr(FollowUpDetector, "predict_proba", lambda self, v, t: asked.append(tuple(t)) or ask(self, v, t))

    turns = read_conversations(ROOT / "data" / "conversations" / "conversations_b.jsonl", taxonomy)
    turns = turns[turns["conversation_id"].isin(turns["conversation_id"].unique()[:10])].reset_index(drop=True)
    rules = {rule_label(r): r for r in (ContextRule("detector", turns=3, threshold=t) for t in (0.2, 0.5, 0.8))}
    router = Router.load(small_npz)
    result = compare_context_rules(router, turns, rules, folds=3, cache_dir=cache_dir)
    p = result.follow_up_probability
    assert sorted(asked) == sorted(tuple(g["text"]) for _, g in turns.groupby("conversation_id"))  # once, not per rule
    assert p.shape == (len(turns),) and np.isfinite(p).all() and (p[turns["turn"].to_numpy() == 1] == 0).all()
    curve = threshold_curve(router, turns, p, (0.2, 0.35, 0.5, 0.65, 0.8), cache_dir=cache_dir)
    for label, rule in rules.items():  # one fit per fold replays every threshold the comparison ran
        assert curve.loc[rule.threshold, result.table.columns.intersection(curve.columns)].equals(
            result.table.loc[label, result.table.columns.intersection(curve.columns)].astype(float).rename(rule.threshold))
    share = curve["follow_up_share"].to_numpy()
    assert (np.diff(share) <= 0).all() and 0 <= share.min() and share.max() <= 1
    assert (curve["expected_cost"] >= 0).all()
    assert choose_threshold(curve) in curve.index
    best = curve["all_tier_accuracy"].max()
    assert curve.loc[choose_threshold(curve, tie=0.0), "all_tier_accuracy"] == best
    with pytest.raises(ConfigError, match="one finite follow-up probability per turn"):
        threshold_curve(router, turns, p[:-1], cache_dir=cache_dir)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["casual", "simple_lookup", "analysis", "creative", "coding", "reasoning"]),
                          st.floats(0, 1)), min_size=1, max_size=8), st.integers(1, 4), st.floats(0, 1))
def test_sticky_only_raises_tiers_and_inherits_a_recent_decision(turns, window, release):
    tier_of = {"casual": "cheap", "simple_lookup": "cheap", "analysis": "medium", "creative": "medium",
               "coding": "strong", "reasoning": "strong"}
    own = [d(c, tier_of[c], conf) for c, conf in turns]
    out = sticky_decisions(own, TIERS, ContextRule("sticky", turns=window, release_confidence=release))
    assert out[0] == own[0] and len(out) == len(own)
    for i, (o, a) in enumerate(zip(out, own)):
        assert TIERS.index(o.tier) >= TIERS.index(a.tier)
        assert o == a or any((o.category, o.tier) == (p.category, p.tier) for p in out[max(0, i - window):i])


_RULES = st.sampled_from(["lift", "inherit", "sticky"])


@settings(max_examples=80, deadline=None)
@given(_readings, st.integers(1, 3), _RULES, st.floats(-3, 3), st.floats(0, 12))
def test_the_raising_rules_never_route_a_turn_below_its_message_alone(turns, window, name, bias, short):
    """The class behind "no added downgrades": lift, inherit and sticky only ever raise a turn's tier."""
    texts = [f"turn {i} " + "word " * i for i in range(len(turns))]
    own = {t: d(c, _CAT_TIER[c], conf) for t, (c, conf) in zip(texts, turns)}
    others = [d(c, _CAT_TIER[c], conf) for c, conf in turns]

    def route(batch):  # a turn alone reads as drawn; a joined text as one of the draws, picked by its length
        return [own.get(t, others[len(t) % len(others)]) for t in batch]

    rule = ContextRule(name, turns=window, short_words=short, weights=(bias,) + (0.5,) * 7)
    out = decide_turns(rule, texts, route, TIERS)
    for o, t in zip(out, texts):
        assert TIERS.index(o.tier) >= TIERS.index(own[t].tier)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=2, max_size=30), st.integers(2, 5), st.integers(0, 99))
def test_folds_never_split_a_conversation(lengths, folds, seed):
    import pandas as pd

    from workbench.analysis.conversations import conversation_folds

    frame = pd.DataFrame({"conversation_id": [f"c{i}" for i, n in enumerate(lengths) for _ in range(n)]})
    if folds > len(lengths):
        with pytest.raises(ConfigError, match="folds must be in"):
            conversation_folds(frame, folds, seed=seed)
        return
    fold = conversation_folds(frame, folds, seed=seed)
    assert frame.assign(f=fold).groupby("conversation_id")["f"].nunique().max() == 1
    assert set(fold) == set(range(folds))


def test_recent_vectors_embed_only_unseen_texts_and_forget_the_oldest():
    from tests.helpers import HashEmbedder
    from workbench.core.conversation import RecentVectors

    class Counting(HashEmbedder):
        seen = []

        def encode(self, texts):
            self.seen.extend(texts)
            return super().encode(texts)

    emb = Counting(8)
    memo = RecentVectors(emb, size=3)
    first = memo.encode(["a", "b", "a"])
    assert emb.seen == ["a", "b"] and np.allclose(first, HashEmbedder(8).encode(["a", "b", "a"]))
    memo.encode(["b", "c", "d"])  # "a" is now the oldest of four: forgotten
    assert emb.seen == ["a", "b", "c", "d"]
    memo.encode(["a", "d"])
    assert emb.seen == ["a", "b", "c", "d", "a"] and memo.encode([]).shape == (0, 8)


def test_route_conversation_reads_the_remembered_vectors_as_fresh_ones(tmp_path, taxonomy):
    from tests.helpers import HashEmbedder, synthetic_pool
    from workbench.core.artifact import write_pool_npz
    from workbench.core.conversation import context_texts
    from workbench.core.knn import KNNConfig
    from workbench.core.router import Router

    x, labels, ids = synthetic_pool(np.random.default_rng(0), taxonomy, per_class=3, dim=16)
    write_pool_npz(tmp_path / "p.npz", x, labels, ids, taxonomy=taxonomy, embedder_spec=HashEmbedder(16).spec,
                   config=KNNConfig(k=3))
    router = Router.load(tmp_path / "p.npz", embedder=HashEmbedder(16))
    turns = ["write a sort in go", "and in rust?", "thanks"]
    rule = ContextRule("confident", turns=2)
    for n in (1, 2, 3):  # routed again at every turn, as a client does
        got = router.route_conversation(turns[:n], context=rule)
    fresh = Router.load(tmp_path / "p.npz", embedder=HashEmbedder(16))
    assert [(g.category, g.tier) for g in got] == [(f.category, f.tier) for f in
                                                   decide_turns(rule, turns, fresh.route_batch, fresh.tiers)]
    assert router.route_conversation(turns, policy=rule) == got  # the old keyword, for one release
    assert len(context_texts(turns, 2)) == 2
    with pytest.raises(ConfigError, match="text 1 has no visible characters"):
        router.route_conversation(["hi", "\u200b"])
