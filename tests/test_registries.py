"""One set of checks over every entry of every registry: ``BACKENDS``, ``HEADS`` and ``POLICIES``.

A new backend, head or decision policy is tested the moment it is registered:
deterministic, the right shapes and ranges, a round trip through pool.npz,
and bad parameters refused with the project's error type. Encoding with a
real model is ``slow`` (the default model through the ``e5`` fixture, the
others marked ``model``).
"""
import numpy as np
import pytest

from workbench.core.artifact import load_pool_npz, write_pool_npz
from workbench.core.embed import BACKENDS, get_embedder
from workbench.core.heads import HEADS, load_head
from workbench.core.knn import KNNConfig
from workbench.core.policy import POLICIES, DecisionPolicy, TierPolicy
from workbench.decisions.operating_point import fit_operating_point, rule_options
from workbench.decisions.targets import Targets
from workbench.errors import ConfigError, WorkbenchError

TEXTS = ["how do I reverse a string in python", "¿cuál es la capital de Perú?", "晚安，明天见"]
N_CLASSES, DIM, N = 7, 16, 140
RANK = np.array([0, 0, 1, 1, 1, 2, 2])  # tier rank of each of the 7 categories (the bundled taxonomy's shape)
COST = np.array([[0.0, 1.0, 2.0], [4.0, 0.0, 1.0], [8.0, 4.0, 0.0]])


def unit_rows(rng, n, dim=DIM):
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def vote_shares(rng, n):
    return rng.dirichlet(np.full(N_CLASSES, 0.5), n)


def write_pool(path, taxonomy, rng, *, extra_arrays=None, extra_metadata=None):
    """A small pool.npz of random unit vectors (a fake backend spec: nothing is embedded)."""
    x = unit_rows(rng, N)
    labels = np.arange(N) % N_CLASSES
    spec = {"backend": "e5-small", "model_id": "test", "dim": DIM, "prefix": ""}
    write_pool_npz(path, x, labels, [f"m{i}" for i in range(N)], taxonomy=taxonomy, embedder_spec=spec,
                   config=KNNConfig(k=5), dtype="float32", extra_arrays=extra_arrays, extra_metadata=extra_metadata)
    return load_pool_npz(path)


# ---------------------------------------------------------------------------------------------------- BACKENDS

@pytest.mark.parametrize("name", list(BACKENDS))
def test_a_backend_is_registered_under_its_name_and_describes_itself_without_loading(name):
    embedder = get_embedder(name, threads=1)
    assert type(embedder) is BACKENDS[name] and embedder.name == name
    spec = embedder.spec
    assert spec["backend"] == name and spec["dim"] > 0 and isinstance(spec["model_id"], str) and spec["model_id"]


@pytest.mark.parametrize("name", list(BACKENDS))
def test_a_backend_declares_no_languages_or_only_languages_whose_scripts_are_known(name):
    from workbench.core.scripts import scripts_of_languages

    languages = get_embedder(name, threads=1).languages
    assert languages is None or (isinstance(languages, frozenset) and scripts_of_languages(languages))


@pytest.mark.parametrize("name", list(BACKENDS))
@pytest.mark.parametrize("threads", [0, -2, 1.5, "4", True])
def test_a_backend_refuses_bad_threads(name, threads):
    with pytest.raises(ConfigError, match="threads"):
        BACKENDS[name](threads=threads)


def _encode_checks(embedder):
    vectors = embedder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), embedder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embedder.encode(TEXTS), vectors, atol=1e-6)  # deterministic
    np.testing.assert_allclose(embedder.encode(TEXTS[::-1]), vectors[::-1], atol=1e-5)  # input order kept
    assert embedder.encode([]).shape == (0, embedder.dim)


def test_the_default_model_encodes_deterministically_in_order(e5):
    _encode_checks(e5)


@pytest.mark.model
@pytest.mark.parametrize("name", [n for n in BACKENDS if n != "e5-small"])
def test_every_other_backend_encodes_deterministically_in_order(name):
    _encode_checks(get_embedder(name, threads=1))


# ---------------------------------------------------------------------------------------------------- HEADS

def fitted_head(name, seed=0):
    """Any registered head, trained the way an export trains it (on random separable data)."""
    from workbench.analysis.heads import fit_head

    rng = np.random.default_rng(seed)
    labels = np.arange(N) % N_CLASSES
    x = unit_rows(rng, N) + 0.5 * np.eye(DIM, dtype=np.float32)[labels]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return fit_head(name, x, labels, N_CLASSES, C=1.0, seed=seed, blend_weight=0.5)


@pytest.mark.parametrize("name", list(HEADS))
def test_a_head_gives_probabilities_deterministically(name):
    rng = np.random.default_rng(1)
    head = fitted_head(name)
    assert head.name == name and isinstance(head, HEADS[name])
    queries, knn = unit_rows(rng, 9), vote_shares(rng, 9)
    shares = head.shares(queries, knn)
    assert shares.shape == (9, N_CLASSES) and (shares >= 0).all() and (shares <= 1 + 1e-9).all()
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(head.shares(queries, knn), shares)
    np.testing.assert_array_equal(fitted_head(name).shares(queries, knn), shares)  # same data, same seed


@pytest.mark.parametrize("name", list(HEADS))
def test_a_head_round_trips_through_pool_npz(name, taxonomy, tmp_path):
    rng = np.random.default_rng(2)
    head = fitted_head(name)
    artifact = write_pool(tmp_path / "pool.npz", taxonomy, rng, extra_arrays=head.arrays(),
                          extra_metadata={"head": name})
    loaded = load_head(artifact.metadata["head"], artifact.arrays, N_CLASSES, DIM)
    queries, knn = unit_rows(rng, 5), vote_shares(rng, 5)
    assert type(loaded) is type(head)
    np.testing.assert_allclose(loaded.shares(queries, knn), head.shares(queries, knn), atol=1e-6)


@pytest.mark.parametrize("name", list(HEADS))
def test_a_head_refuses_arrays_of_the_wrong_shape(name):
    arrays = fitted_head(name).arrays()
    for key, value in arrays.items():
        bad = dict(arrays, **{key: np.zeros(np.asarray(value).size + 1, np.float32)})
        with pytest.raises(WorkbenchError):
            HEADS[name].from_arrays(bad, N_CLASSES, DIM)
    with pytest.raises(WorkbenchError, match="unknown router head"):
        load_head(name + "-unknown", arrays, N_CLASSES, DIM)


# ---------------------------------------------------------------------------------------------------- POLICIES

def policy(name, threshold=None, criterion="tier_confidence"):
    return DecisionPolicy(name, COST.tolist() if POLICIES[name].needs_cost else None, criterion, threshold)


@pytest.mark.parametrize("name", list(POLICIES))
def test_a_policy_routes_to_a_tier_deterministically(name):
    rng = np.random.default_rng(3)
    shares = vote_shares(rng, 200)
    pol = policy(name, threshold=0.6)
    assert isinstance(pol.rule, TierPolicy) and pol.rule.name == name
    routed, abstain, tier_probs = pol.apply(shares, RANK)
    assert routed.shape == abstain.shape == (200,) and abstain.dtype == bool
    assert routed.dtype.kind == "i" and ((routed >= 0) & (routed < 3)).all()
    np.testing.assert_allclose(tier_probs.sum(axis=1), 1.0, atol=1e-9)
    again = pol.apply(shares, RANK)
    np.testing.assert_array_equal(again[0], routed)
    np.testing.assert_array_equal(again[1], abstain)
    assert not policy(name).apply(shares, RANK)[1].any()  # no threshold: never abstains


@pytest.mark.parametrize("name", list(POLICIES))
def test_a_policy_round_trips_through_pool_npz(name, taxonomy, tmp_path):
    rng = np.random.default_rng(4)
    pol = policy(name, threshold=0.55, criterion="margin")
    artifact = write_pool(tmp_path / "pool.npz", taxonomy, rng, extra_metadata={"policy": pol.to_metadata()})
    loaded = DecisionPolicy.from_metadata(artifact.metadata["policy"])
    assert loaded == pol and type(loaded.rule) is POLICIES[name]
    shares = vote_shares(rng, 50)
    for mine, theirs in zip(pol.apply(shares, RANK), loaded.apply(shares, RANK)):
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("name", list(POLICIES))
@pytest.mark.parametrize("cost", [[[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]], [[0.0, float("nan")], [1.0, 0.0]], "cheap"])
def test_a_policy_refuses_a_bad_cost_matrix(name, cost):
    with pytest.raises(ConfigError, match="cost"):
        POLICIES[name](cost)
    with pytest.raises(ConfigError):
        DecisionPolicy(name, cost)


@pytest.mark.parametrize("name", list(POLICIES))
@pytest.mark.parametrize("bad", [dict(threshold=1.5), dict(threshold=-0.1), dict(criterion="vibes")])
def test_a_policy_refuses_a_bad_threshold_or_criterion(name, bad):
    with pytest.raises(ConfigError):
        DecisionPolicy(name, COST.tolist() if POLICIES[name].needs_cost else None, **bad)


@pytest.mark.parametrize("name", list(POLICIES))
def test_a_policy_is_fitted_by_the_operating_point_fit_and_offered_to_any(name):
    rng = np.random.default_rng(5)
    labels = rng.integers(0, N_CLASSES, 300)
    shares = np.array([rng.dirichlet(np.where(np.arange(N_CLASSES) == y, 3.0, 0.4)) for y in labels])
    variants = POLICIES[name].variants(COST, (0.5, 1.0))
    assert variants and all(isinstance(rule, POLICIES[name]) and weight > 0 for weight, rule in variants)
    point = fit_operating_point(shares, labels, RANK, COST, targets=Targets(policy=name, max_abstain=0.1))
    assert point.policy.name == name and point.abstain_rate <= 0.1 + 1e-12 and point.met
    offered = {rule.name for _, rule in rule_options(Targets(policy="any", max_abstain=0.1), COST)}
    assert name in offered  # policy="any" tries every registered policy
