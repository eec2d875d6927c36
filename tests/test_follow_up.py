"""The pool's follow-up detector: its rule on known decisions, its place in pool.npz, and what it learns."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import ROOT
from workbench.core.conversation import ContextRule, context_texts, decide_turns
from workbench.core.follow_up import FollowUpDetector, TurnMemory, memory_projection, turn_features
from workbench.core.router import RouteDecision
from workbench.errors import ArtifactError, ConfigError

TIERS = ("cheap", "medium", "strong")
RANK = {t: i for i, t in enumerate(TIERS)}
_CAT_TIER = {"casual": "cheap", "simple_lookup": "cheap", "analysis": "medium", "creative": "medium",
             "coding": "strong", "reasoning": "strong"}


def d(category, confidence=0.5):
    return RouteDecision(category, _CAT_TIER[category], confidence, 0.5, similarities=[0.8],
                         vote_tier=_CAT_TIER[category])


class Flags:
    """A detector whose probabilities are given (the rule's logic, apart from what the weights learn)."""

    def __init__(self, probabilities):
        self.probabilities = np.asarray(probabilities, float)

    def predict_proba(self, vectors, texts):
        assert len(vectors) == len(texts) == len(self.probabilities)
        return self.probabilities


_turns = st.lists(st.tuples(st.sampled_from(sorted(_CAT_TIER)), st.sampled_from(sorted(_CAT_TIER)),
                            st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=7)


@settings(max_examples=80, deadline=None)
@given(_turns, st.integers(1, 3), st.sampled_from([0.3, 0.5, 0.7]))
def test_only_flagged_turns_leave_their_own_decision_and_they_take_the_highest_task(turns, window, threshold):
    """The class behind "a fresh turn is not lifted by the task before it": an unflagged turn is routed exactly as
    alone; a flagged one gets the highest tier of the previous ``turns`` decisions or of its widest reading."""
    texts = [f"turn {i}" for i in range(len(turns))]
    widest = context_texts(texts, window)[-1]
    own = {t: d(c, conf) for t, (c, _, conf, _) in zip(texts, turns)}
    read = {w: d(c) for w, (_, c, _, _) in zip(widest[1:], turns[1:])}
    asked = []

    def route(batch):
        asked.extend(batch)
        return [own[t] if t in own else read[t] for t in batch]

    rule = ContextRule("detector", turns=window, threshold=threshold)
    probs = [0.0] + [p for *_, p in turns[1:]]
    out = decide_turns(rule, texts, route, TIERS, encode=lambda b: np.zeros((len(b), 4)), detector=Flags(probs))
    assert len(out) == len(texts) and out[0] is own[texts[0]]
    for i in range(1, len(texts)):
        if probs[i] < threshold:
            assert out[i] is own[texts[i]]
            assert widest[i] not in asked  # a fresh turn costs its own text only
        else:
            task = max(RANK[o.tier] for o in out[max(0, i - window):i])
            assert RANK[out[i].tier] == max(task, RANK[read[widest[i]].tier])


def test_with_the_pools_detector_its_flag_alone_decides():
    """The release rule (a confidently casual turn never continues a task) is the hand detector's: the pool's
    detector learned reactions as fresh turns, and a confidently "casual" reading of "shorter" or "round up" must
    not undo its call."""
    texts = ["write me a sorting function in go", "shorter"]
    own = {texts[0]: d("coding"), texts[1]: d("casual", 0.99)}
    route = lambda b: [own.get(t, d("coding")) for t in b]  # noqa: E731
    for flag, tiers in ((1.0, ["strong", "strong"]), (0.0, ["strong", "cheap"])):
        out = decide_turns(ContextRule("detector", turns=2), texts, route, TIERS,
                           encode=lambda b: np.zeros((len(b), 4)), detector=Flags([0.0, flag]))
        assert [o.tier for o in out] == tiers


def test_the_detector_checks_its_weights_and_reads_each_turn_against_the_previous():
    with pytest.raises(ConfigError, match="2 \\* dim \\+ 2"):
        FollowUpDetector(np.zeros(4), np.zeros(9), 0.0)
    with pytest.raises(ConfigError, match="finite"):
        FollowUpDetector(np.zeros(4), np.full(10, np.nan), 0.0)
    v = np.eye(3, 4)
    x = turn_features(v, ["a b c", "d", "e f"], np.zeros(4))
    assert x.shape == (2, 10) and np.allclose(x[:, :4], v[1:]) and np.allclose(x[:, 4:8], v[:-1])
    assert np.allclose(x[:, 8], np.log1p([1, 2])) and np.allclose(x[:, 9], 0.0)
    detector = FollowUpDetector(np.zeros(4), np.r_[np.zeros(8), 0.0, 0.0], 2.0)
    p = detector.predict_proba(v, ["a", "b", "c"])
    assert p[0] == 0.0 and np.allclose(p[1:], 1 / (1 + np.exp(-2.0)))
    assert FollowUpDetector.from_arrays(None, {}) is None
    with pytest.raises(ArtifactError, match="follow_up_coef"):
        FollowUpDetector.from_arrays({"intercept": 0.0}, {"follow_up_center": np.zeros(4)})


_memories = st.integers(0, 2**16).map(lambda seed: np.random.default_rng(seed))


def _networks(rng, dim, bags=2, hidden=5):
    return (rng.normal(size=(bags, hidden, 2 * dim + 2)), rng.normal(size=(bags, hidden)),
            rng.normal(size=(bags, 2, hidden)), rng.normal(size=(bags, 2)))


@settings(max_examples=40, deadline=None)
@given(_memories, st.integers(1, 6), st.booleans())
def test_a_detector_read_by_networks_gives_their_probability_and_survives_the_round_trip(rng, turns, remember):
    """A bag of networks reads a turn in place of the regression: its probability is the mean of the bag's second
    softmax output over :func:`turn_features`; pool.npz keeps it (``"reader": "mlp"``, the hidden layer float16)
    and gives the same numbers back, with or without a memory and after ``without``."""
    dim = 6
    nets = _networks(rng, dim)
    memory = _memory_detector(rng, 8, dim=dim).memory if remember else None
    detector = FollowUpDetector(rng.normal(size=dim) * 0.1, memory=memory, k=3, networks=nets)
    vectors, texts = rng.normal(size=(turns, dim)), [f"turn {i} " * (i + 1) for i in range(turns)]
    x = turn_features(vectors, texts, detector.center)
    w1 = nets[0].astype(np.float16).astype(np.float64)
    own = np.mean([np.exp(z - z.max(1, keepdims=True))[:, 1] / np.exp(z - z.max(1, keepdims=True)).sum(1)
                   for z in (np.maximum(x @ w1[b].T + nets[1][b], 0) @ nets[2][b].T + nets[3][b] for b in range(2))],
                  axis=0)
    assert np.allclose(detector.read(x), own, atol=1e-4)
    p = detector.predict_proba(vectors, texts)
    assert p.shape == (turns,) and p[0] == 0.0 and ((p >= 0) & (p <= 1)).all()
    if not remember:
        assert np.allclose(p[1:], own, atol=1e-4)
    meta, arrays = detector.to_metadata(), detector.arrays()
    assert meta["reader"] == "mlp" and "intercept" not in meta and "follow_up_coef" not in arrays
    assert arrays["follow_up_hidden_coef"].dtype == np.float16
    back = FollowUpDetector.from_arrays(meta, arrays)
    assert np.allclose(back.predict_proba(vectors, texts), p, atol=1e-6)
    if remember:
        held = detector.without(detector.center + memory.vectors[:1])
        assert len(held.memory) < len(memory) and held.networks is detector.networks


def test_networks_that_do_not_fit_the_detector_are_refused():
    rng = np.random.default_rng(0)
    ok = _networks(rng, 4)
    FollowUpDetector(np.zeros(4), networks=ok)
    for bad, match in (((ok[0][:, :, :9], *ok[1:]), "read 10 inputs into 2"), ((*ok[:2], ok[2][:, :1], ok[3]), "fit together"),
                       ((ok[0][:, :, :3], ok[1], ok[2][:, :1], ok[3][:, :1]), "read 10 inputs into 2"),
                       ((ok[0], ok[1][:1], *ok[2:]), "fit together"), (ok[:3], "four arrays"),
                       ((ok[0] * np.nan, *ok[1:]), "finite")):
        with pytest.raises(ConfigError, match=match):
            FollowUpDetector(np.zeros(4), networks=bad)
    for args, kw in (((np.zeros(10), 0.0), {"networks": ok}), ((), {}), ((np.zeros(10),), {})):
        with pytest.raises(ConfigError, match="either coef and intercept"):
            FollowUpDetector(np.zeros(4), *args, **kw)
    with pytest.raises(ArtifactError, match="follow_up_out_coef"):
        arrays = FollowUpDetector(np.zeros(4), networks=ok).arrays()
        FollowUpDetector.from_arrays({"reader": "mlp"}, {k: v for k, v in arrays.items() if k != "follow_up_out_coef"})
    with pytest.raises(ArtifactError, match="reader"):
        FollowUpDetector.from_arrays({"reader": "forest"}, arrays)


def _memory_detector(rng, m, follows=None, dim=6):
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    previous = np.array([-1 if i == 0 or rng.random() < 0.3 else rng.integers(0, i) for i in range(m)])
    follows = (rng.random(m) < 0.5) & (previous >= 0) if follows is None else np.full(m, follows) & (previous >= 0)
    return FollowUpDetector(rng.normal(size=dim) * 0.1, rng.normal(size=2 * dim + 2), rng.normal(),
                            TurnMemory(unit(rng.normal(size=(m, dim))), previous, follows), k=int(rng.integers(1, m + 1)))


@settings(max_examples=60, deadline=None)
@given(_memories, st.integers(2, 40), st.integers(1, 6))
def test_the_memory_votes_stay_probabilities_and_survive_the_round_trip(rng, m, turns):
    """With a memory the detector averages the regression and two k-NN votes: probabilities in [0, 1], 0 for the
    first turn, exactly the regression's third when no remembered turn is a follow-up, and the same numbers after
    the pool.npz arrays (memory in float16) are read back."""
    detector = _memory_detector(rng, m)
    vectors, texts = rng.normal(size=(turns, 6)), [f"turn {i} " * (i + 1) for i in range(turns)]
    p = detector.predict_proba(vectors, texts)
    assert p.shape == (turns,) and p[0] == 0.0 and ((p >= 0) & (p <= 1)).all()
    back = FollowUpDetector.from_arrays(detector.to_metadata(), detector.arrays())
    assert np.allclose(back.predict_proba(vectors, texts), p, atol=1e-5)
    regression = FollowUpDetector(detector.center, detector.coef, detector.intercept).predict_proba(vectors, texts)
    mem = detector.memory
    none = FollowUpDetector(detector.center, detector.coef, detector.intercept,
                            TurnMemory(*mem.stored[:1], mem.previous, np.zeros(m), scale=mem.stored[1]), k=detector.k)
    assert np.allclose(none.predict_proba(vectors, texts), regression / 3)


@settings(max_examples=40, deadline=None)
@given(_memories, st.integers(2, 40), st.integers(1, 6), st.integers(1, 7))
def test_a_memory_kept_in_its_principal_directions_votes_alike_after_the_round_trip(rng, m, turns, dims):
    """pool.npz keeps the memory in its leading principal directions: orthonormal rows, the same for the same
    memory, none when they would span the whole space; the projected detector gives probabilities, the same numbers
    after the arrays are read back, and forgets its own turns (``without``) as the full one does."""
    full = _memory_detector(rng, m)
    projection = memory_projection(full.memory.vectors, dims)
    r = min(dims, 6, m)
    mem = full.memory
    fitted = TurnMemory.fit(mem.vectors, mem.previous, mem.follows, dims=dims)  # what the export builds
    if r >= 6:
        assert projection is None and fitted.projection is None
        return
    assert np.allclose(fitted.projection, projection, atol=1e-4) and fitted.vectors.shape == (m, r)
    assert projection.shape == (r, 6) and np.allclose(projection @ projection.T, np.eye(r), atol=1e-5)
    assert np.array_equal(projection, memory_projection(full.memory.vectors, dims))
    kept = FollowUpDetector(full.center, full.coef, full.intercept,
                            TurnMemory(mem.vectors @ projection.T, mem.previous, mem.follows, projection=projection),
                            k=full.k)
    vectors, texts = rng.normal(size=(turns, 6)), [f"turn {i} " * (i + 1) for i in range(turns)]
    p = kept.predict_proba(vectors, texts)
    assert p.shape == (turns,) and p[0] == 0.0 and ((p >= 0) & (p <= 1)).all()
    arrays = kept.arrays()
    assert arrays["follow_up_memory"].shape == (m, r) and arrays["follow_up_projection"].shape == (r, 6)
    back = FollowUpDetector.from_arrays(kept.to_metadata(), arrays)
    assert np.allclose(back.predict_proba(vectors, texts), p, atol=1e-5)
    remembered = full.center + full.memory.vectors[:1]  # the first remembered turn, as an embedding
    held = kept.without(remembered)  # its own turn is forgotten (in r = 1 dimension, every turn of its sign too)
    assert not held.has_memory or len(held.memory) <= m - 1


def test_a_projection_that_does_not_fit_the_memory_is_refused():
    ok = (np.eye(3, 2), [-1, 0, 1], [0, 1, 0])
    FollowUpDetector(np.zeros(4), np.zeros(10), 0.0, TurnMemory(*ok, projection=np.eye(2, 4)), k=3)
    for projection in (np.eye(3, 4), np.eye(2, 5), np.full((2, 4), np.nan)):
        with pytest.raises(ConfigError, match="projection must be|memory must be|memory compares"):
            FollowUpDetector(np.zeros(4), np.zeros(10), 0.0, TurnMemory(*ok, projection=projection), k=3)


def test_a_turn_like_a_remembered_follow_up_reads_as_one():
    """The k-NN votes find a follow-up by its like among the labelled turns, whatever the regression says."""
    e = np.eye(4)
    memory = np.array([e[0], e[1], e[2], e[3]])  # (task, follow-up) and (task, fresh turn)
    detector = FollowUpDetector(np.zeros(4), np.zeros(10), -50.0, TurnMemory(memory, [-1, 0, -1, 2], [0, 1, 0, 0]), k=1)
    assert detector.predict_proba(np.array([e[0], e[1]]), ["a", "b"])[1] == pytest.approx(2 / 3)
    assert detector.predict_proba(np.array([e[2], e[3]]), ["a", "b"])[1] == pytest.approx(0.0)


def test_without_forgets_the_turns_it_is_asked_to_route_and_keeps_the_rest():
    """The promotion gate routes the labelled conversations the detector remembers: ``without`` drops those turns
    (and the pairs that lean on them), so it votes as a detector fitted on the other conversations would."""
    e = np.eye(5)
    memory, previous, follows = e[:4], [-1, 0, -1, 2], [0, 1, 0, 1]
    full = FollowUpDetector(np.zeros(5), np.zeros(12), 0.0, TurnMemory(memory, previous, follows), k=2)
    other = FollowUpDetector(np.zeros(5), np.zeros(12), 0.0, TurnMemory(e[2:4], [-1, 0], [0, 1]), k=2)
    held = full.without(e[:2])
    assert len(held.memory) == 2 and list(held.memory.previous) == [-1, 0] and list(held.memory.follows) == [0, 1]
    turns = np.array([e[0], e[1], e[4]])
    assert np.allclose(held.predict_proba(turns, ["a", "b", "c"]), other.predict_proba(turns, ["a", "b", "c"]))
    assert full.without(e[1:2]).memory.previous.tolist() == [-1, -1, 1]  # the pair (0, 1) is gone, (2, 3) renumbered
    assert not full.without(e[:4]).has_memory and full.without(np.zeros((0, 5))) is full


def test_a_bad_memory_is_refused():
    ok = dict(vectors=np.eye(3, 4), previous=[-1, 0, 1], follows=[0, 1, 0])
    FollowUpDetector(np.zeros(4), np.zeros(10), 0.0, TurnMemory(**ok), k=3)
    for change, match in (({"previous": [-1, 2, 1]}, "earlier memory row"), ({"follows": [0, 2, 0]}, "0 or 1"),
                          ({"vectors": np.eye(3, 5)}, "memory compares"), ({"previous": [-1, 0]}, "memory must be")):
        with pytest.raises(ConfigError, match=match):
            FollowUpDetector(np.zeros(4), np.zeros(10), 0.0, TurnMemory(**{**ok, **change}), k=3)
    with pytest.raises(ConfigError, match="k must be"):
        FollowUpDetector(np.zeros(4), np.zeros(10), 0.0, TurnMemory(**ok), k=4)
    with pytest.raises(ConfigError, match="TurnMemory"):
        FollowUpDetector(np.zeros(4), np.zeros(10), 0.0, np.eye(3, 4), k=3)
    arrays = FollowUpDetector(np.zeros(4), np.zeros(10), 0.0, TurnMemory(**ok), k=3).arrays()
    with pytest.raises(ArtifactError, match="k must be an integer"):
        FollowUpDetector.from_arrays({"intercept": 0.0, "k": 2.5}, arrays)
    with pytest.raises(ArtifactError, match="follow_up_follows"):
        FollowUpDetector.from_arrays({"intercept": 0.0, "k": 2}, {k: v for k, v in arrays.items()
                                                                 if k != "follow_up_follows"})


@pytest.fixture(scope="module")
def fitted(small_pool, cache_dir, tmp_path_factory):
    """A detector fitted with the real encoder on two files of the labelled conversations, and a pool carrying it."""
    from workbench.analysis.conversations import fit_follow_up, read_conversations, turn_encoder
    from workbench.core.knn import KNNConfig
    from workbench.decisions.export import export_pool
    from workbench.decisions.targets import HeadParams

    folder = ROOT / "data" / "conversations"
    train = read_conversations([folder / "conversations_a.jsonl", folder / "conversations_d.jsonl"])
    held = read_conversations(folder / "conversations_g.jsonl")
    encode = turn_encoder([*train["text"], *held["text"]], small_pool.embedder, cache_dir=cache_dir)
    detector = fit_follow_up(train, encode, standalone=(small_pool.vectors, small_pool.frame["text"].tolist()))
    path = tmp_path_factory.mktemp("follow_up") / "pool.npz"
    export_pool(small_pool, path, KNNConfig(k=5), head="knn", params=HeadParams(follow_up=detector))
    return detector, held, encode, path


def _detection_accuracy(detector, held, encode):
    flagged, truth = [], []
    for _, g in held.groupby("conversation_id", sort=False):
        texts = g["text"].tolist()
        flagged.extend(detector.predict_proba(encode(texts), texts)[1:] >= 0.5)
        truth.extend(g["kind"].iloc[1:] == "follow_up")
    flagged, truth = np.array(flagged), np.array(truth)
    assert len(truth) >= 60 and truth.any() and (~truth).any()
    return (flagged == truth).mean()


@pytest.mark.model
def test_the_detector_tells_follow_ups_from_fresh_turns_on_conversations_it_never_saw(fitted):
    detector, held, encode, _ = fitted
    assert detector.networks is not None
    assert _detection_accuracy(detector, held, encode) >= 0.75


@pytest.mark.model
def test_either_reader_learns_follow_ups_and_an_unknown_one_is_refused(fitted, small_pool):
    """The regression reader (the detector of older pools) still fits and reads follow-ups; the networks read a
    turn alone (no memory) at least as well as chance does by a wide margin."""
    from workbench.analysis.conversations import fit_follow_up, read_conversations

    _, held, encode, _ = fitted
    train = read_conversations([ROOT / "data" / "conversations" / f"conversations_{x}.jsonl" for x in "ad"])
    standalone = (small_pool.vectors, small_pool.frame["text"].tolist())
    regression = fit_follow_up(train, encode, reader="regression", standalone=standalone)
    assert regression.networks is None and _detection_accuracy(regression, held, encode) >= 0.75
    alone = fit_follow_up(train, encode, standalone=standalone, memory=False)
    assert alone.memory is None and _detection_accuracy(alone, held, encode) >= 0.7
    with pytest.raises(ConfigError, match="reader"):
        fit_follow_up(train, encode, reader="forest")


@pytest.mark.model
def test_the_pool_carries_its_detector_and_the_router_routes_conversations_with_it(fitted, e5):
    from workbench.core.artifact import load_pool_npz
    from workbench.core.router import Router

    detector, held, encode, path = fitted
    router = Router.load(path, embedder=e5)
    assert router.follow_up is not None and router.follow_up.dim == detector.dim
    texts = held.loc[held["conversation_id"] == held["conversation_id"].iloc[0], "text"].tolist()
    assert np.allclose(router.follow_up.predict_proba(encode(texts), texts),
                       detector.predict_proba(encode(texts), texts), atol=1e-4)  # stored as float32
    meta = load_pool_npz(path).metadata
    assert meta["follow_up"] == {"reader": "mlp", "k": detector.k} and router.follow_up.has_memory
    assert router.follow_up.networks is not None and router.follow_up.coef is None  # the default reader
    assert len(router.follow_up.memory) == len(fitted[0].memory)
    assert len(router.route_conversation(texts)) == len(texts)


@pytest.mark.model
def test_the_gate_routes_remembered_conversations_as_a_detector_that_never_saw_them(fitted, e5, cache_dir):
    """The promotion gate routes the labelled conversations the detector was fitted on: with the memory of them
    removed, as :meth:`FollowUpDetector.without` leaves it, not with each turn finding itself."""
    from workbench.analysis.conversations import read_conversations
    from workbench.core.router import Router
    from workbench.core.taxonomy import Taxonomy
    from workbench.decisions.promote import route_conversation_set

    detector, _, encode, path = fitted
    remembered = read_conversations(ROOT / "data" / "conversations" / "conversations_a.jsonl")
    remembered = remembered[remembered["conversation_id"].isin(remembered["conversation_id"].unique()[:12])]
    remembered = remembered.reset_index(drop=True)
    got = route_conversation_set(Router.load(path, embedder=e5), remembered, name="a", cache_dir=cache_dir)
    forgetful = Router.load(path, embedder=e5)
    forgetful.follow_up = forgetful.follow_up.without(encode(remembered["text"].tolist()))
    assert len(forgetful.follow_up.memory) < len(detector.memory)
    want = [d for _, g in remembered.groupby("conversation_id", sort=False)
            for d in forgetful.route_conversation(g["text"].tolist())]
    tiers = list(forgetful.tiers)
    gold = remembered["category"].map(Taxonomy.from_metadata(forgetful.metadata).tier_map).map(tiers.index)
    routed = np.array([tiers.index(d.tier) for d in want])
    assert (got.tier_correct == (routed == gold.to_numpy())).all() and (got.downgrade == (routed < gold)).all()


def test_a_detector_of_another_width_is_refused_at_export_and_load(small_pool, tmp_path):
    from workbench.core.artifact import write_pool_npz
    from workbench.core.knn import KNNConfig
    from workbench.decisions.export import export_pool
    from workbench.decisions.targets import HeadParams

    narrow = FollowUpDetector(np.zeros(8), np.zeros(18), 0.0)
    with pytest.raises(ConfigError, match="dimensions"):
        export_pool(small_pool, tmp_path / "a.npz", KNNConfig(k=5), head="knn", params=HeadParams(follow_up=narrow))
    with pytest.raises(ArtifactError, match="follow-up detector has 8 dimensions"):
        write_pool_npz(tmp_path / "b.npz", small_pool.vectors, small_pool.labels, small_pool.ids,
                       taxonomy=small_pool.taxonomy, embedder_spec=small_pool.embedder.spec, config=KNNConfig(k=5),
                       extra_arrays=narrow.arrays(), extra_metadata={"follow_up": narrow.to_metadata()})
    assert not (tmp_path / "a.npz").exists() and not (tmp_path / "b.npz").exists()
    with pytest.raises(ConfigError, match="FollowUpDetector"):
        HeadParams(follow_up=json)


def test_the_choice_tolerates_one_standard_error_of_fresh_downgrades_and_no_more():
    import pandas as pd

    from workbench.analysis.conversations import choose_context_rule

    row = lambda acc, fresh_down, follow: {"all_tier_accuracy": acc, "all_downgrade_rate": 0.05,  # noqa: E731
                                           "fresh_n": 685, "fresh_tier_accuracy": 0.9, "fresh_downgrade_rate": fresh_down,
                                           "follow_up_tier_accuracy": follow, "follow_up_downgrade_rate": 0.05}
    table = pd.DataFrame({"alone": row(0.70, 0.020, 0.45), "within": row(0.90, 0.022, 0.90),
                          "beyond": row(0.95, 0.030, 0.95)}).T  # one standard error at 2% of 685 is 0.53 points
    assert choose_context_rule(table)["rule"] == "within"
    assert choose_context_rule(table.drop(index="within"))["rule"] == "alone"


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 30), st.integers(0, 80), st.integers(0, 3))
def test_pool_pairs_come_in_the_number_asked_whatever_the_pool_size(messages, turns, seed):
    """As many fresh pairs as labelled turns, whether the pool is larger or smaller than that (a grown
    development set once asked for more pairs than the pool had messages), never a message after itself."""
    from workbench.analysis.conversations import fresh_pairs

    vectors = np.random.default_rng(seed).normal(size=(messages, 32))
    texts = [f"message {i}" for i in range(messages)]
    rows = fresh_pairs((vectors, texts), np.zeros(32), turns, seed)
    assert rows.shape == (turns, 66)
    assert (np.abs(rows[:, :32] - rows[:, 32:64]).max(axis=1) > 0).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 40), st.integers(1, 4), st.integers(1, 90), st.integers(0, 3))
def test_a_batch_added_to_the_pool_changes_only_the_fresh_pairs_beside_it(messages, added, turns, seed):
    """Fresh pairs follow the messages' texts, not their positions: the pool's order changes none of them, and a
    pool grown by a batch keeps all but a few (per round, the pair each new message falls into and the pairs
    pushed past the last one taken), so comparing two pools does not compare two detectors fitted on reshuffled
    samples."""
    from collections import Counter

    from workbench.analysis.conversations import fresh_pairs

    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(messages + added, 8))
    texts = [f"message {i}" for i in range(messages + added)]
    rows = lambda v, t: Counter(r.tobytes() for r in fresh_pairs((v, t), np.zeros(8), turns, seed))  # noqa: E731
    before = rows(vectors[:messages], texts[:messages])
    order = rng.permutation(messages)
    assert rows(vectors[order], [texts[i] for i in order]) == before
    rounds = -(-turns // (messages - 1))
    assert sum((before - rows(vectors, texts)).values()) <= 2 * added * rounds


def test_the_folds_fit_the_detector_on_the_pool_messages_an_export_fits_it_on(small_npz, small_pool, cache_dir):
    """The held-out folds' detectors read the pool's messages as the exported detector does, with the backend's
    vectors; the artifact's own vectors are centred on the pool's mean and move with every message added."""
    from workbench.analysis.conversations import pool_messages
    from workbench.core.router import Router

    router = Router.load(small_npz)
    vectors, texts = pool_messages(router, cache_dir=cache_dir)
    assert sorted(texts) == sorted(small_pool.frame["text"])
    by_text = dict(zip(small_pool.frame["text"], small_pool.vectors))
    np.testing.assert_allclose(vectors, np.stack([by_text[t] for t in texts]), atol=1e-6)
    assert np.abs(vectors - router.artifact.embeddings[:len(texts)]).max() > 0.01  # what the folds used to read


@pytest.mark.model
def test_the_gateway_decides_turns_as_route_conversation_does_with_the_pools_detector(fitted, e5):
    """A single user turn goes through the micro-batcher, a conversation through the router's detector: the same
    decisions as ``route_conversation``."""
    import asyncio
    import hashlib
    import time
    from types import SimpleNamespace

    from workbench.core.router import Router
    from workbench.serve.batching import RouterWorker
    from workbench.serve.gateway import route_turns
    from workbench.serve.pools import ServedPool

    _, held, _, path = fitted
    pool = ServedPool(Router.load(path, embedder=e5), str(path), hashlib.sha256(path.read_bytes()).hexdigest(),
                      time.time())
    state = SimpleNamespace(pool=pool, worker=RouterWorker(pool, max_batch=32, window_s=0.0).start())
    rule = ContextRule()
    try:
        for _, g in list(held.groupby("conversation_id", sort=False))[:6]:
            texts = g["text"].tolist()
            for n in range(1, len(texts) + 1):
                got, sha = asyncio.run(route_turns(state, texts[:n], rule))
                want = pool.router.route_conversation(texts[:n], context=rule)[-1]
                assert (got.category, got.tier) == (want.category, want.tier) and sha == pool.sha256
    finally:
        state.worker.stop()
