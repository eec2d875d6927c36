"""Router heads: the blend head as plain arrays, and choosing a head by evidence on the same folds."""
import numpy as np
import pytest

from tests.helpers import unit_rows
from workbench.core.heads import HEADS, BlendHead, MLPHead, load_head
from workbench.core.knn import KNNConfig
from workbench.decisions.head_choice import choose_head, paired_standard_error
from workbench.decisions.targets import HeadParams, Targets
from workbench.errors import ArtifactError

CONFIG = KNNConfig(k=7, vote="distance", center=False)


def linear_pool(taxonomy, rng, n=240, d=64):
    """Two categories split by the sign of one coordinate, hidden in 63 noise coordinates: a linear head's pool."""
    x = rng.normal(size=(n, d)).astype(np.float32)
    cls = rng.integers(0, 2, n)
    x[:, 0] = np.where(cls == 1, 0.8, -0.8)
    labels = np.array([taxonomy.categories.index(c) for c in ("casual", "coding")])[cls]
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


def xor_pool(taxonomy, rng, per_cluster=40, d=8):
    """Four tight clusters, opposite corners sharing a category (XOR): no line separates them, neighbours do."""
    corners = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]], np.float32)
    cls = np.repeat([0, 0, 1, 1], per_cluster)
    x = np.zeros((len(cls), d), np.float32)
    x[:, :2] = np.repeat(corners, per_cluster, axis=0)
    x += 0.08 * rng.normal(size=x.shape).astype(np.float32)
    x[:, 2] += 0.5  # keep the rows off the origin so that they normalise cleanly
    labels = np.array([taxonomy.categories.index(c) for c in ("casual", "coding")])[cls]
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


def test_a_linear_boundary_in_noise_is_won_by_the_logistic_head(taxonomy):
    x, y = linear_pool(taxonomy, np.random.default_rng(0))
    choice = choose_head(x, y, taxonomy, CONFIG, candidates=("knn", "logreg"), targets=Targets(max_abstain=None),
                         params=HeadParams(n_splits=5, C=0.1))
    t = choice.table.set_index("head")
    assert choice.best == "logreg"
    assert t.loc["logreg", "tier_accuracy"] > t.loc["knn", "tier_accuracy"] + 0.2
    assert choice.table["head"].tolist()[0] == "logreg" and "logreg" in choice.summary()


def test_clusters_no_line_separates_are_won_by_the_neighbours(taxonomy):
    x, y = xor_pool(taxonomy, np.random.default_rng(1))
    choice = choose_head(x, y, taxonomy, CONFIG, candidates=("logreg", "knn"), targets=Targets(max_abstain=None),
                         params=HeadParams(n_splits=5))
    t = choice.table.set_index("head")
    assert choice.best == "knn" and t.loc["knn", "tier_accuracy"] > 0.95 > t.loc["logreg", "tier_accuracy"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_hidden_layer_separates_what_no_line_does_and_matches_sklearn_with_the_scaling_folded_in(taxonomy):
    """XOR: logistic regression is at chance, the networks alone route it; the stored arrays give sklearn's output."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    from workbench.analysis.heads import fit_mlp_head, out_of_fold_shares

    x, y = xor_pool(taxonomy, np.random.default_rng(1))
    shares = out_of_fold_shares(x, y, taxonomy, CONFIG, heads=("logreg", "mlp"), n_splits=5, blend_weight=1.0)
    rank = taxonomy.category_tier_rank
    acc = {h: float(np.mean(rank[s.argmax(axis=1)] == rank[y])) for h, s in shares.items()}
    assert acc["mlp"] > 0.95 > 0.7 > acc["logreg"]
    arrays = fit_mlp_head(x, y, 7, hidden=16, bags=2, seed=3)
    scaler = StandardScaler().fit(x)
    for b in range(2):
        net = MLPClassifier(hidden_layer_sizes=(16,), alpha=1.0, max_iter=300, random_state=3 + b).fit(
            scaler.transform(x), y)
        bag = MLPHead(*(a[b:b + 1] for a in arrays), 1.0).shares(x, np.zeros((len(x), 7)))
        np.testing.assert_allclose(bag[:, net.classes_], net.predict_proba(scaler.transform(x)), atol=2e-3)
        assert np.all(np.delete(bag, net.classes_, axis=1) < 1e-6)  # categories never seen get nothing


def test_mlp_head_round_trips_as_plain_arrays_and_refuses_arrays_that_do_not_fit():
    rng = np.random.default_rng(4)
    parts = (rng.normal(size=(3, 5, 16)), rng.normal(size=(3, 5)), rng.normal(size=(3, 7, 5)), rng.normal(size=(3, 7)))
    head = MLPHead(*parts, 0.4)
    arrays = {k: np.asarray(v) for k, v in head.arrays().items()}
    assert arrays["head_hidden_coef"].dtype == np.float16 and arrays["head_blend_weight"].tolist() == [np.float32(0.4)]
    again = load_head("mlp", arrays, 7, 16)
    q, vote = unit_rows(rng, 4, 16), np.eye(7)[[0, 1, 2, 3]]
    nets = MLPHead(*parts, 1.0).shares(q, vote)
    np.testing.assert_allclose(nets.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(again.shares(q, vote), 0.4 * nets + 0.6 * vote, rtol=1e-5)
    with pytest.raises(ArtifactError, match="head_out_coef"):
        load_head("mlp", {k: v for k, v in arrays.items() if k != "head_out_coef"}, 7, 16)
    with pytest.raises(ArtifactError, match="do not match"):
        load_head("mlp", arrays, 7, 32)
    with pytest.raises(ArtifactError, match="do not fit together"):
        MLPHead(parts[0], parts[1], parts[2][:, :, :4], parts[3], 0.5)
    with pytest.raises(ArtifactError, match="finite"):
        load_head("mlp", {**arrays, "head_out_intercept": arrays["head_out_intercept"] * np.inf}, 7, 16)


def test_heads_are_judged_at_the_operating_point_of_the_targets(taxonomy):
    x, y = linear_pool(taxonomy, np.random.default_rng(2))
    choice = choose_head(x, y, taxonomy, CONFIG, candidates=("knn", "logreg", "blend"), targets=Targets(max_abstain=0.1),
                         params=HeadParams(n_splits=5, C=0.1))
    t = choice.table.set_index("head")
    assert set(t.index) == {"knn", "logreg", "blend"}
    assert (t["point_abstain_rate"] <= 0.1 + 1e-9).all() and (t["point_tier_accuracy"] >= t["tier_accuracy"]).all()
    assert set(choice.oos) == set(t.index) and all(p is not None for p in choice.points.values())


def test_a_one_message_lead_is_a_tie_and_ties_go_to_fewer_downgrades():
    a = np.ones(1000, bool)
    b = a.copy()
    b[:1] = False
    assert paired_standard_error(a, b) == pytest.approx(1 / 1000)  # one discordant message: lead == 1 SE, a tie
    b[:40] = False
    assert paired_standard_error(a, b) == pytest.approx(np.sqrt(40) / 1000)  # 40 messages: lead 4% >> 0.6%


def test_blend_head_round_trips_as_plain_arrays_and_mixes_both_parts():
    rng = np.random.default_rng(3)
    coef, icpt = rng.normal(size=(7, 16)).astype(np.float32), rng.normal(size=7).astype(np.float32)
    head = BlendHead(coef, icpt, 0.25)
    arrays = {k: np.asarray(v) for k, v in head.arrays().items()}
    assert set(arrays) == {"head_coef", "head_intercept", "head_blend_weight"}
    again = load_head("blend", arrays, 7, 16)
    q, vote = unit_rows(rng, 4, 16), np.eye(7)[[0, 1, 2, 3]]
    linear = HEADS["logreg"](coef, icpt).shares(q, vote)
    np.testing.assert_allclose(again.shares(q, vote), 0.25 * linear + 0.75 * vote, rtol=1e-5)
    with pytest.raises(ArtifactError, match="head_blend_weight"):
        load_head("blend", {k: v for k, v in arrays.items() if k != "head_blend_weight"}, 7, 16)
    with pytest.raises(ArtifactError, match="blend weight"):
        BlendHead(coef, icpt, 1.5)


def test_leave_one_out_folds_match_the_vote_and_refit_the_head_without_its_message(taxonomy):
    """``n_splits="loo"``: the k-NN head equals leave-one-out voting; the linear head never sees its own message."""
    from workbench.analysis.evaluate import loo_predict
    from workbench.analysis.heads import cv_folds, fit_logreg_head, out_of_fold_shares
    from workbench.core.heads import LinearHead

    rng = np.random.default_rng(0)
    x, labels = linear_pool(taxonomy, rng, n=60, d=16)
    folds = cv_folds(labels, n_splits="loo")
    assert len(folds) == 60 and all(list(test) == [i] and i not in train for i, (train, test) in enumerate(folds))
    shares = out_of_fold_shares(x, labels, taxonomy, CONFIG, heads=("knn", "logreg"), n_splits="loo")
    np.testing.assert_allclose(shares["knn"], loo_predict(x, labels, taxonomy, CONFIG).shares)
    keep = np.arange(60) != 7
    alone = LinearHead(*fit_logreg_head(x[keep], labels[keep], len(taxonomy.categories))).shares(x[7:8], None)
    np.testing.assert_allclose(shares["logreg"][7], alone[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(Exception, match="'loo'"):
        cv_folds(labels, n_splits="leave-one-out")
