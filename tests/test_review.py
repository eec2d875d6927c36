import numpy as np
import pandas as pd

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
