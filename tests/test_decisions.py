import numpy as np
import pytest

from workbench import config
from workbench.core.artifact import write_pool_npz
from workbench.core.knn import KNNConfig
from workbench.core.router import Router
from workbench.decisions.export import export_pool
from workbench.decisions.out_of_sample import out_of_sample
from workbench.decisions.targets import HeadParams, Targets
from workbench.errors import ArtifactError, ConfigError

CONFIG = KNNConfig(k=5, vote="distance", center=True)
CODE = ["write a python function that removes duplicates from a list", "fix this: TypeError: 'NoneType' object"]
SMALL_TALK = ["haha thanks, you're the best! good night 😴", "¡hola! ¿qué tal tu día?"]


@pytest.fixture(scope="module")
def fitted_npz(small_pool, tmp_path_factory):
    path = tmp_path_factory.mktemp("pol") / "pool.npz"
    result = export_pool(small_pool, path, CONFIG, head="knn",
                         targets=Targets(policy="cost", max_downgrade=0.05, max_abstain=0.3, calibration="none"))
    return path, result.point


def test_fitted_policy_is_stored_and_applied_by_the_router(fitted_npz, e5):
    path, point = fitted_npz
    router = Router.load(path, embedder=e5)
    assert router.policy == point.policy and router.metadata["operating_point"]["met"] == point.met
    for d in router.route_batch(CODE):
        assert d.tier == "strong" and isinstance(d.abstain, bool)
        assert sum(d.tier_probabilities.values()) == pytest.approx(1.0)


def test_router_without_policy_never_abstains(small_npz, e5):
    router = Router.load(small_npz, embedder=e5)
    assert not router.abstains
    assert not any(d.abstain for d in router.route_batch(CODE + SMALL_TALK))


def test_a_threshold_of_one_abstains_on_everything_but_keeps_the_guess(small_pool, e5, tmp_path):
    export_pool(small_pool, tmp_path / "p.npz", CONFIG, head="knn",
                targets=Targets(policy="vote", criterion="confidence", threshold=1.0))
    ds = Router.load(tmp_path / "p.npz", embedder=e5).route_batch(CODE + SMALL_TALK)
    unsure = [d for d in ds if d.category_confidence < 1.0]
    assert len(unsure) >= 2 and all(d.abstain for d in unsure)
    assert [d.tier for d in ds] == ["strong", "strong", "cheap", "cheap"]


def test_logreg_head_is_stored_as_plain_arrays_and_routes(small_pool, e5, tmp_path):
    export_pool(small_pool, tmp_path / "lr.npz", CONFIG, head="logreg", targets=Targets(max_abstain=None))
    with np.load(tmp_path / "lr.npz", allow_pickle=False) as z:
        assert z["head_coef"].shape == (7, 384) and z["head_intercept"].dtype == np.float32
    router = Router.load(tmp_path / "lr.npz", embedder=e5)
    assert router.head.name == "logreg"
    assert all(len(d.neighbors) == CONFIG.k for d in router.route_batch(CODE))  # still explained by neighbours
    assert [d.tier for d in router.route_batch(CODE + SMALL_TALK)] == ["strong", "strong", "cheap", "cheap"]


def test_mlp_head_is_stored_as_plain_arrays_and_routes(small_pool, e5, tmp_path):
    export_pool(small_pool, tmp_path / "mlp.npz", CONFIG, head="mlp", targets=Targets(max_abstain=None))
    with np.load(tmp_path / "mlp.npz", allow_pickle=False) as z:
        assert z["head_hidden_coef"].shape == (config.MLP_BAGS, config.MLP_HIDDEN, 384)
        assert z["head_hidden_coef"].dtype == np.float16 and z["head_out_coef"].shape[:2] == (config.MLP_BAGS, 7)
    router = Router.load(tmp_path / "mlp.npz", embedder=e5)
    assert router.head.name == "mlp"
    assert all(len(d.neighbors) == CONFIG.k for d in router.route_batch(CODE))  # still explained by neighbours
    assert [d.tier for d in router.route_batch(CODE + SMALL_TALK)] == ["strong", "strong", "cheap", "cheap"]


def test_logreg_head_without_its_arrays_is_refused_before_it_is_written(small_pool, e5, tmp_path):
    with pytest.raises(ArtifactError, match="head_coef"):
        write_pool_npz(tmp_path / "bad.npz", small_pool.vectors, small_pool.labels, small_pool.ids,
                       taxonomy=small_pool.taxonomy, embedder_spec=e5.spec, config=CONFIG,
                       extra_metadata={"head": "logreg"})
    assert list(tmp_path.iterdir()) == []


def test_out_of_fold_logreg_probabilities_are_out_of_sample(small_pool):
    oos = out_of_sample(small_pool.vectors, small_pool.labels, small_pool.taxonomy, CONFIG, head="logreg",
                        params=HeadParams(n_splits=5))
    assert oos.shares.shape == (140, 7)
    np.testing.assert_allclose(oos.shares.sum(axis=1), 1.0, atol=1e-6)
    # in-sample a logistic regression fits the 140 messages almost perfectly; out of fold it cannot
    assert (oos.pred == small_pool.labels).mean() < 0.99


def test_threshold_and_target_together_are_refused():
    with pytest.raises(ConfigError, match="not both"):
        Targets(threshold=0.5, max_downgrade=0.02)
    assert Targets(threshold=0.5).max_abstain is None  # a threshold replaces the default abstain target


def test_policy_curve_and_default_point_agree(small_pool):
    from workbench.decisions.out_of_sample import apply_policy, fit_default_point, policy_curve

    oos = out_of_sample(small_pool.vectors, small_pool.labels, small_pool.taxonomy, CONFIG)
    point = fit_default_point(oos, small_pool.labels, small_pool.taxonomy,
                              Targets(policy="cost", max_downgrade=0.05, max_abstain=0.3))
    curve = policy_curve(oos, small_pool.labels, small_pool.taxonomy, point.policy)
    i = int(np.flatnonzero(curve["threshold"] == (point.policy.threshold or 0.0))[0])
    assert curve["downgrade_rate"][i] == pytest.approx(point.downgrade_rate)
    routed, abstain = apply_policy(oos, small_pool.taxonomy, point.policy)
    assert abstain.mean() == pytest.approx(point.abstain_rate)


def test_the_default_export_is_what_ships_head_policy_and_calibration(small_pool, e5, tmp_path):
    from workbench import config

    result = export_pool(small_pool, tmp_path / "default.npz", CONFIG)
    meta = Router.load(result.path, embedder=e5).metadata
    assert result.head_choice is not None and meta["head"] == result.head_choice.best
    assert set(result.head_choice.table["head"]) == set(config.HEAD_CANDIDATES)
    assert meta["policy"]["threshold"] is not None and result.point.abstain_rate <= config.MAX_ABSTAIN + 1e-9
    assert meta["calibration"] in ("none", "temperature", "isotonic")
    assert meta["calibration_ece"]["after"] <= meta["calibration_ece"]["before"] + 1e-12
    assert result.metrics()["head"] == meta["head"] and "ece" in result.metrics()


def test_a_calibrated_pool_reports_the_probability_its_tier_is_right(small_pool, e5, tmp_path):
    result = export_pool(small_pool, tmp_path / "iso.npz", CONFIG, head="knn",
                         targets=Targets(calibration="isotonic", max_abstain=0.2))
    router = Router.load(result.path, embedder=e5)
    assert router.calibration.method in ("none", "isotonic")
    for dec in router.route_batch(CODE + SMALL_TALK):
        raw = dec.tier_probabilities[dec.tier]
        assert dec.confidence == pytest.approx(float(router.calibration(raw)))
        assert dec.abstain == (dec.confidence < router.policy.threshold)
