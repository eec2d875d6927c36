"""k-NN maths on tiny literal inputs (a deterministic toy is fine here: no model involved)."""
import numpy as np
import pytest

from tests.helpers import unit_rows
from workbench.errors import ConfigError
from workbench.core.knn import center as center_vectors, check_params, decide, top_k, vote

RANK = np.array([0, 0, 1, 2])  # four classes: two cheap, one medium, one strong


def test_majority_vote_counts_neighbours():
    shares = vote(np.array([[0, 0, 1]]), np.array([[0.9, 0.8, 0.7]]), 4, rule="majority")
    np.testing.assert_allclose(shares, [[2 / 3, 1 / 3, 0, 0]])


def test_tie_goes_to_the_stronger_tier():
    shares = vote(np.array([[0, 3]]), np.array([[0.9, 0.9]]), 4, rule="majority")
    pred, conf, margin = decide(shares, RANK)
    assert pred[0] == 3 and conf[0] == pytest.approx(0.5) and margin[0] == pytest.approx(0.0)


def test_tie_within_one_tier_is_deterministic():
    pred, _, _ = decide(np.array([[0.5, 0.5, 0.0, 0.0]]), RANK)
    assert pred[0] == 0


def test_distance_vote_weights_by_inverse_cosine_distance():
    shares = vote(np.array([[0, 1]]), np.array([[0.9, 0.8]]), 4, rule="distance")
    np.testing.assert_allclose(shares[0, :2], [10 / 15, 5 / 15])


def test_softmax_vote_sharpens_with_lower_temperature():
    lab, sim = np.array([[0, 1]]), np.array([[0.9, 0.8]])
    warm = vote(lab, sim, 4, rule="softmax", temperature=1.0)[0, 0]
    cold = vote(lab, sim, 4, rule="softmax", temperature=0.01)[0, 0]
    assert 0.5 < warm < cold <= 1.0


def test_masked_neighbours_do_not_vote():
    shares = vote(np.array([[0, 1]]), np.array([[0.9, -np.inf]]), 4, rule="softmax")
    np.testing.assert_allclose(shares, [[1, 0, 0, 0]])


def test_top_k_matches_brute_force_and_honours_exclusion():
    rng = np.random.default_rng(0)
    x = unit_rows(rng, 50, 8)
    idx, sim = top_k(x, x, 3, exclude=lambda r: r[:, None] == np.arange(50)[None, :], block_rows=7)
    S = x @ x.T
    np.fill_diagonal(S, -np.inf)
    np.testing.assert_array_equal(idx, np.argsort(-S, axis=1)[:, :3])
    np.testing.assert_allclose(sim, np.sort(S, axis=1)[:, ::-1][:, :3], rtol=1e-6)


def test_centering_removes_the_common_direction():
    rng = np.random.default_rng(1)
    x = unit_rows(rng, 30, 6) + 5.0
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    c = center_vectors(x, x.mean(axis=0))
    assert (x @ x.T).min() > 0.9 and (c @ c.T).min() < 0
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1, rtol=1e-5)


@pytest.mark.parametrize("k, rule, t, msg", [(0, "majority", 1, "k must be an integer >= 1; got 0"),
                                             (3, "mode", 1, "vote must be one of"),
                                             (3, "softmax", 0, "temperature must be > 0; got 0")])
def test_parameters_are_checked_with_clear_messages(k, rule, t, msg):
    with pytest.raises(ConfigError, match=msg):
        check_params(k, rule, t)
