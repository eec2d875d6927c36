"""Cluster keywords on a map: class-based TF-IDF over clusters of the 2-D map, with a tokenizer for CJK."""
import numpy as np
from hypothesis import given, settings, strategies as st

from workbench.analysis.keywords import class_tfidf, cluster_keywords, tokenize


def test_chinese_and_japanese_become_character_bigrams_and_words_stay_words():
    assert tokenize("怎么把分支") == ["怎么", "么把", "把分", "分支"]
    assert tokenize("東京の天気") == ["東京", "京の", "の天", "天気"]
    assert tokenize("Sort the LIST, please") == ["sort", "list"]  # lower-cased, stop words out
    assert tokenize("git 提交 commit") == ["git", "提交", "commit"]


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80))
def test_tokens_are_never_blank_and_never_cross_a_space(text):
    for token in tokenize(text):
        assert token.strip() == token and token and " " not in token


def test_class_tfidf_prefers_the_words_of_one_class_over_shared_ones():
    docs = [["sort a python list", "python list comprehension", "python code list"],
            ["weather in tokyo today", "tokyo weather forecast", "weather tomorrow tokyo"]]
    top = [[t for t, _ in words] for words in class_tfidf(docs, top_n=2)]
    assert set(top[0]) == {"python", "list"} and set(top[1]) == {"tokyo", "weather"}


def test_cluster_keywords_names_each_island_of_the_map():
    rng = np.random.default_rng(0)
    coords = np.vstack([rng.normal(0, 0.2, (30, 2)), rng.normal(8, 0.2, (30, 2))])
    texts = [f"python list sort {i}" for i in range(30)] + [f"明天东京天气 {i}" for i in range(30)]
    table = cluster_keywords(coords, texts, min_cluster_size=5)
    assert len(table) == 2 and sorted(table["n"]) == [30, 30]
    by_x = table.sort_values("x")
    assert {"python", "list", "sort"} >= set(by_x.iloc[0]["keywords"])
    assert set(by_x.iloc[1]["keywords"]) <= {"明天", "天东", "东京", "京天", "天气"}


def test_the_map_shows_the_keywords_at_each_cluster():
    import pandas as pd

    from workbench import plots

    frame = pd.DataFrame({"text": ["a <b>", "b"], "category": ["coding", "casual"]})
    fig = plots.plot_map(np.array([[0, 0], [1, 1]]), frame)
    keywords = pd.DataFrame({"cluster": [0], "n": [2], "x": [0.5], "y": [0.5], "keywords": [["<b>x"]], "label": ["<b>x"]})
    plots.label_clusters(fig, keywords)
    assert [a.text for a in fig.layout.annotations] == ["&lt;b&gt;x"]  # escaped like every message text
