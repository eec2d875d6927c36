import json

import numpy as np
import pandas as pd
import pytest

from tests.helpers import write_jsonl
from workbench.analysis import evaluate, tables
from workbench.dataset.pool import check_sources

GOOD = {"id": "g1", "text": "hi", "category": "casual", "source": "generated", "lang": "en", "label_source": "author"}
ROWS = [
    GOOD,
    '{"id": "bad", "text": ',
    dict(GOOD, id="g2", category="smalltalk"),
    dict(GOOD, id="g1", text="another"),
    dict(GOOD, id="g3", lang=""),
]


def test_check_sources_lists_every_problem_with_file_and_line(tmp_path, taxonomy):
    path = write_jsonl(tmp_path / "p.jsonl", [r if isinstance(r, str) else json.dumps(r) for r in ROWS])
    problems = check_sources(path, taxonomy)
    assert list(problems["line"]) == [2, 3, 4, 5]
    assert problems["problem"].str.contains("invalid JSON").iloc[0]
    assert "unknown category 'smalltalk'" in problems["problem"].iloc[1]
    assert "duplicate id 'g1'" in problems["problem"].iloc[2]
    assert "'lang'" in problems["problem"].iloc[3]
    assert (problems["file"] == str(path)).all()


def test_check_sources_of_the_bundled_pool_is_empty(taxonomy):
    assert check_sources(None, taxonomy).empty


def test_length_bucket_edges():
    texts = ["x" * n for n in (1, 40, 41, 100, 101, 250, 251)]
    assert list(tables.length_bucket(texts)) == ["<=40", "<=40", "41-100", "41-100", "101-250", "101-250", ">250"]


def test_largest_duplicate_groups_lists_members_and_mixed_labels():
    x = np.array([[1, 0], [0.999, 0.04], [0, 1], [0.02, 0.9998], [0.7071, 0.7071]], np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    frame = pd.DataFrame({"id": list("abcde"), "text": ["t1", "t2", "t3", "t4", "t5"],
                          "category": ["coding", "coding", "casual", "analysis", "casual"]})
    table = tables.largest_duplicate_groups(frame, x, 0.99)
    assert list(table["size"]) == [2, 2] and list(table["mixed_labels"]) == [False, True]
    assert table["texts"].iloc[0] == "t1 | t2"


def test_sample_rows_is_seeded_and_distinct():
    a, b = tables.sample_rows(100, 10, seed=3), tables.sample_rows(100, 10, seed=3)
    assert np.array_equal(a, b) and len(set(a)) == 10
    assert not np.array_equal(a, tables.sample_rows(100, 10, seed=4))


def test_stack_sets_labels_rows_by_set():
    f = pd.DataFrame({"text": ["a", "b"]})
    frame, x, names = tables.stack_sets({"one": (f, np.zeros((2, 3))), "two": (f.iloc[:1], np.ones((1, 3)))})
    assert len(frame) == 3 and x.shape == (3, 3) and list(names) == ["one", "one", "two"]


def test_confusion_examples_show_cross_tier_errors_with_neighbours(small_pool):
    from workbench.analysis.evaluate import loo_predict
    from workbench.core.knn import KNNConfig

    pred = loo_predict(small_pool.vectors, small_pool.labels, small_pool.taxonomy, KNNConfig(k=3))
    table = tables.confusion_examples(small_pool.frame, pred, small_pool.taxonomy, top_pairs=3, per_pair=2)
    assert len(table) > 0 and set(table["direction"]) <= {"upgrade", "downgrade"}
    tm = small_pool.taxonomy.tier_map
    assert all(tm[t] != tm[p] for t, p in zip(table["true"], table["predicted"]))
    assert table["neighbours"].str.count(r"\[").ge(1).all()


def test_accuracy_by_length_orders_buckets_short_to_long(small_pool):
    from workbench.analysis.evaluate import loo_predict
    from workbench.core.knn import KNNConfig

    pred = loo_predict(small_pool.vectors, small_pool.labels, small_pool.taxonomy, KNNConfig(k=3))
    table = tables.accuracy_by_length(small_pool.frame, pred, small_pool.taxonomy)
    order = ["<=40", "41-100", "101-250", ">250"]
    assert list(table.index) == [b for b in order if b in table.index]
    assert table["n"].sum() == len(small_pool.frame)


def test_choose_config_keeps_what_is_fixed(small_pool):
    config, table = evaluate.choose_config(small_pool, k=5)
    assert config.k == 5 and set(table["k"]) == {5}


def test_choose_config_picks_from_a_given_sweep_without_sweeping_again(small_pool, monkeypatch):
    from workbench.analysis.evaluate import sweep

    table = sweep(small_pool.vectors, small_pool.labels, small_pool.taxonomy, ks=(3, 5))
    monkeypatch.setattr(evaluate, "best_config", lambda *a, **kw: pytest.fail("swept again"))
    config, rows = evaluate.choose_config(small_pool, k=5, table=table)
    best = table[table["k"] == 5].iloc[0]
    assert (config.k, config.vote, config.center) == (5, best["vote"], bool(best["center"]))
    assert set(rows["k"]) == {5}
