"""Long pasted messages read by their question as well as their context (core.question)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.core.question import QuestionBlend, closing_request
from workbench.errors import ArtifactError, ConfigError

TABLE = "\n".join(f"row {i} | {i * 7} | {i * 13} | north" for i in range(40))
ASK = "which row has the largest second column?"
PASTE = TABLE + "\n" + ASK


def test_only_long_messages_with_a_short_closing_request_are_read_twice():
    blend = QuestionBlend(0.6, 400)
    rows, requests = blend.requests(["hi there", PASTE, "x" * 500, TABLE + "\n" + "y" * 290])
    assert rows.tolist() == [1, 3] and requests[0] == ASK
    assert blend.requests(["z" * 500])[0].tolist() == []  # one line of 500: its last 300 characters are most of it
    assert QuestionBlend(0.0).requests([PASTE])[0].tolist() == []


@settings(max_examples=60, deadline=None)
@given(w=st.floats(0, 1), a=st.lists(st.floats(0, 1), min_size=7, max_size=7),
       b=st.lists(st.floats(0, 1), min_size=7, max_size=7))
def test_the_blend_is_the_weighted_mean_of_the_two_votes_and_leaves_other_rows_alone(w, a, b):
    shares = np.array([a, a])
    out = QuestionBlend(w).blend(shares, np.array([1]), np.array([b]))
    assert np.allclose(out[0], a) and np.allclose(out[1], (1 - w) * np.array(a) + w * np.array(b))
    assert np.allclose(shares[1], a)  # a new array


def test_metadata_round_trips_and_old_pools_read_whole():
    blend = QuestionBlend(0.6, 400)
    assert QuestionBlend.from_metadata(blend.to_metadata()) == blend
    assert QuestionBlend.from_metadata(None).weight == 0.0
    with pytest.raises(ArtifactError, match="bad question metadata"):
        QuestionBlend.from_metadata({"weight": 3, "min_chars": 400})
    with pytest.raises(ConfigError, match="min_chars"):
        QuestionBlend(0.5, 0)


def test_closing_request_is_the_last_line():
    assert closing_request(PASTE + "\n\n") == ASK


def test_a_pasted_table_with_a_one_fact_question_is_routed_by_the_question(small_npz, e5):
    from workbench.core.router import Router

    router = Router.load(small_npz, embedder=e5)
    assert router.question.weight > 0  # the export stores the blend
    paste = ("Here is the log of our build server:\n" + "\n".join(
        f"2024-05-0{i % 9 + 1} 12:{i:02d}:01 ERROR worker-{i} Traceback: KeyError 'user_id' in handler.py line {i}"
        for i in range(30)) + "\nwhat does HTTP 404 mean?")
    whole = router.route_vectors(router.embedder.encode([paste]))[0]
    read_twice = router.route(paste)
    question = router.route("what does HTTP 404 mean?")
    # the blended tier probabilities move from the context's vote towards the question's
    t = question.tier
    assert read_twice.tier_probabilities[t] > whole.tier_probabilities[t]


def test_every_path_reads_a_long_message_as_the_service_does(small_npz, e5, cache_dir):
    """The gate, the conversation rules and the service route one long message alike (one routing path)."""
    import pandas as pd

    from workbench.core.router import Router
    from workbench.decisions.promote import route_labelled

    router = Router.load(small_npz, embedder=e5)
    paste = ("Order export:\n" + "\n".join(f"{i};SKU-{i:04d};{i * 3} units;EUR {i * 7}.50" for i in range(40))
             + "\nwrite me a short poem about these orders")
    served = router.route(paste)
    labelled = route_labelled(router, pd.DataFrame({"text": [paste], "category": ["creative"]}), name="x",
                              cache_dir=cache_dir)
    assert router.route_conversation([paste])[0].tier_probabilities == served.tier_probabilities
    assert bool(labelled.tier_correct[0]) == (served.tier == "medium")
