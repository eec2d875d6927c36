import numpy as np
import pandas as pd
import pytest

from workbench.core.knn import Prediction as Predictions
from workbench.analysis.review import class_thresholds, flag_label_issues, review_queue

# 3 classes; row 3 is labelled 0 but its neighbourhood is confidently class 2
SHARES = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.7, 0.0, 0.3], [0.1, 0.0, 0.9],
                   [0.0, 0.9, 0.1], [0.1, 0.7, 0.2], [0.0, 0.1, 0.9], [0.2, 0.0, 0.8]])
LABELS = np.array([0, 0, 0, 0, 1, 1, 2, 2])


def test_class_threshold_is_the_mean_self_confidence():
    np.testing.assert_allclose(class_thresholds(SHARES, LABELS), [(0.9 + 0.8 + 0.7 + 0.1) / 4, 0.8, 0.85])


def test_a_label_against_a_confident_neighbourhood_is_flagged():
    flagged, suggested, _ = flag_label_issues(SHARES, LABELS)
    assert flagged.tolist() == [3] and suggested[3] == 2


def test_gap_requires_the_label_to_be_far_below_its_class():
    assert flag_label_issues(SHARES, LABELS, gap=0.6)[0].tolist() == []


def test_review_queue_lists_neighbours_and_never_relabels(taxonomy):
    cats = ["casual", "simple_lookup", "coding"]
    frame = pd.DataFrame({"id": [f"m{i}" for i in range(8)], "text": [f"text <{i}>" for i in range(8)],
                          "category": [cats[y] for y in LABELS]})
    full = np.zeros((8, len(taxonomy.categories)))
    full[:, taxonomy.category_index(cats)] = SHARES
    neighbors = np.array([[6, 7, 0]] * 8)
    sims = np.full((8, 3), 0.9, np.float32)
    preds = Predictions(full.argmax(1), full.max(1), full.max(1), full, neighbors, sims)
    before = frame.copy()
    q = review_queue(frame, preds, taxonomy, n_neighbors=2)
    assert q["id"].tolist() == ["m3"] and q.loc[0, "suggested"] == "coding" and q.loc[0, "cross_tier"]
    assert [n["id"] for n in q.loc[0, "neighbors"]] == ["m6", "m7"]
    assert q.loc[0, "neighbors"][0]["category"] == "coding"
    pd.testing.assert_frame_equal(frame, before)


def test_review_file_round_trips_and_feeds_the_queue_and_the_label_tool(taxonomy, tmp_path):
    from tests.helpers import XSS
    from workbench.analysis.review import read_review_file, write_review_file
    from workbench.io import read_jsonl

    picked = pd.DataFrame({"id": ["m0", "m5"], "text": [XSS, "línea dos\nwith a newline"], "category": ["casual"] * 2,
                           "lang": ["en", "es"], "predicted": ["coding", None], "x": [1.0, 2.0]})
    path = write_review_file(picked, tmp_path / "review" / "selection.jsonl")
    rows = [obj for _, obj in read_jsonl(path)]
    assert [r["id"] for r in rows] == ["m0", "m5"] and rows[0]["text"] == XSS  # what `workbench label --input` reads
    assert "x" not in rows[0] and "predicted" not in rows[1]  # review fields only; no nulls written
    back = read_review_file(path)
    assert back["id"].tolist() == ["m0", "m5"] and back.loc[1, "text"] == "línea dos\nwith a newline"

    cats = ["casual", "simple_lookup", "coding"]
    frame = pd.DataFrame({"id": [f"m{i}" for i in range(8)], "text": [f"t{i}" for i in range(8)],
                          "category": [cats[y] for y in LABELS]})
    full = np.zeros((8, len(taxonomy.categories)))
    full[:, taxonomy.category_index(cats)] = SHARES
    preds = Predictions(full.argmax(1), full.max(1), full.max(1), full, np.array([[6, 7, 0]] * 8),
                        np.full((8, 3), 0.9, np.float32))
    q = review_queue(frame, preds, taxonomy, selected=back["id"])
    assert q["id"].tolist() == ["m3", "m0", "m5"]  # the flagged one first, then the picked ones
    assert q["reason"].tolist() == ["neighbourhood", "selected", "selected"]


def test_a_review_file_line_without_text_names_the_file_and_line(tmp_path):
    from workbench.analysis.review import read_review_file
    from workbench.errors import DataError

    path = tmp_path / "sel.jsonl"
    path.write_text('{"id": "a", "text": "ok"}\n{"id": "b", "text": "  "}\n')
    with pytest.raises(DataError, match=r"sel.jsonl:2: missing or empty 'text'"):
        read_review_file(path)
