import numpy as np
import pytest

from tests.helpers import unit_rows
from workbench.analysis.curves import GREETING, diverse_subsample, perturb, pool_size_curve, robustness
from workbench.errors import ConfigError
from workbench.core.knn import KNNConfig

TEXT = "Hello, World! Can you write a SQL query?"


def test_lowercase_and_no_punctuation():
    assert perturb(TEXT, "lowercase") == "hello, world! can you write a sql query?"
    assert perturb(TEXT, "no_punctuation") == "Hello World Can you write a SQL query"
    assert perturb("你好，世界。", "no_punctuation") == "你好世界"


def test_greeting_is_prepended():
    assert perturb(TEXT, "greeting") == GREETING + TEXT


def test_typos_change_the_text_and_are_seeded():
    a = perturb(TEXT, "typos", rng=np.random.default_rng(7))
    b = perturb(TEXT, "typos", rng=np.random.default_rng(7))
    assert a == b and a != TEXT


def test_unknown_perturbation_is_an_error():
    with pytest.raises(ConfigError, match="perturbation must be one of"):
        perturb(TEXT, "shouting")


def test_diverse_subsample_covers_every_cluster():
    rng = np.random.default_rng(0)
    centers = unit_rows(rng, 4, 16)
    x = np.repeat(centers, 25, axis=0) + 0.02 * rng.normal(size=(100, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    picked = diverse_subsample(x, 4, seed=3)
    assert sorted(picked // 25) == [0, 1, 2, 3]
    assert len(set(diverse_subsample(x, 30, seed=3))) == 30


def test_pool_size_curve_on_the_small_pool(small_pool):
    t = pool_size_curve(small_pool.vectors, small_pool.labels, small_pool.taxonomy, KNNConfig(k=3, center=True),
                        sizes=(2, 8), repeats=2, seed=0)
    assert set(t["strategy"]) == {"random", "diverse"}
    assert t.groupby("strategy")["per_category"].apply(list).to_dict()["random"] == [2, 8, 16]
    assert t["tier_accuracy"].between(0, 1).all()
    full = t[t["per_category"] == 16]["tier_accuracy"]
    assert full.nunique() == 1          # the full pool is the same for both strategies
    again = pool_size_curve(small_pool.vectors, small_pool.labels, small_pool.taxonomy, KNNConfig(k=3, center=True),
                            sizes=(2, 8), repeats=2, seed=0)
    assert t.equals(again)


def test_robustness_routes_perturbed_copies_without_their_original(small_pool, cache_dir):
    p = small_pool
    t = robustness(p.frame["text"], p.vectors, p.labels, p.taxonomy, p.embedder, KNNConfig(k=5, center=True),
                   kinds=("lowercase", "greeting"), n=14, cache_dir=cache_dir)
    assert t["perturbation"].tolist() == ["original", "lowercase", "greeting"]
    assert (t["n"] == 14).all() and t["tier_accuracy"].between(0, 1).all()
    # leave-one-out: a copy identical to its original must not find itself
    same = robustness(p.frame["text"], p.vectors, p.labels, p.taxonomy, p.embedder, KNNConfig(k=1, center=False),
                      kinds=(), n=14)
    assert same.loc[0, "tier_accuracy"] < 1.0 or same.loc[0, "category_accuracy"] < 1.0
