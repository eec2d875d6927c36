"""Long messages and coverage: the measurements behind "the question past the cap" and "confidence vs coverage"."""
import pandas as pd

from workbench.analysis.coverage import coverage_bins, coverage_summary, uncovered_probes
from workbench.analysis.long_messages import closing_request, head_only, past_cap_summary, question_past_cap

PASTE = "| 2024-05-0{} | order {} | shipped | 3 items | EUR 42.10 |\n"
TABLE = "".join(PASTE.format(i % 9 + 1, i) for i in range(80))
ASK = "which orders from the first week are still missing an invoice?"


def test_the_closing_request_is_the_last_line_or_its_end():
    assert closing_request(TABLE + "\n" + ASK + "\n\n") == ASK
    assert closing_request("x" * 1000) == "x" * 300 and closing_request("") == ""


def test_a_question_after_the_cap_was_lost_and_is_now_kept():
    frame = question_past_cap([TABLE + ASK, ASK + "\n" + TABLE, "short " + ASK], source="dev")
    assert len(frame) == 2  # the short message is not over the cap
    assert frame["past_cap_before"].tolist() == [True, True] and frame["past_cap_after"].tolist() == [False, False]
    assert past_cap_summary(frame) == {"long_messages": 2, "question_past_cap_before": 1.0,
                                       "question_past_cap_after": 0.0}
    assert past_cap_summary(frame.iloc[:0])["question_past_cap_after"] == 0.0
    assert head_only(TABLE + ASK) == (TABLE + ASK)[:2048]


def test_coverage_bins_run_from_least_to_most_covered():
    frame = pd.DataFrame({"nearest_similarity": [0.1, 0.2, 0.3, 0.8, 0.9, 0.95], "confidence": [.4, .5, .5, .9, .95, .9],
                          "correct": [False, True, False, True, True, True], "source": ["a"] * 5 + ["unlike the pool"]})
    bins = coverage_bins(frame, bins=3)
    assert bins["similarity_low"].is_monotonic_increasing and bins["mean_confidence"].iloc[0] < bins[
        "mean_confidence"].iloc[-1]
    assert bins["spearman"].iloc[0] > 0.5 and bins["n"].sum() == 6
    summary = coverage_summary(frame)
    assert summary["probe_mean_confidence"] == 0.9 and abs(summary["covered_mean_confidence"] - 0.65) < 1e-9


def test_uncovered_probes_are_seeded_and_varied():
    assert uncovered_probes(8, seed=1) == uncovered_probes(8, seed=1) != uncovered_probes(8, seed=2)
    assert len(set(uncovered_probes(8))) == 8
