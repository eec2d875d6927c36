"""The text cap keeps a long message's beginning *and* end: the question after a long paste reaches the encoder."""
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.core.text import CLIP_MARK, clip_text, prepare_text

PASTE = "2024-05-01 12:00:01 ERROR worker-3 connection reset by peer (pool=db-main)\n" * 60
QUESTION = "why does this keep happening every night at midnight, and how do I stop it?"


def test_the_question_after_a_long_paste_is_kept():
    text = "Here is my log:\n" + PASTE + QUESTION
    clipped = prepare_text(text, 2048)
    assert len(clipped) <= 2048 and clipped.startswith("Here is my log:\n2024-05-01")
    assert clipped.endswith(QUESTION) and CLIP_MARK in clipped


def test_the_tail_starts_on_a_line_when_it_can():
    clipped = clip_text(PASTE + QUESTION, 2048)
    assert clipped.split(CLIP_MARK)[1].startswith("2024-05-01") or clipped.split(CLIP_MARK)[1] == QUESTION


def test_a_text_within_the_cap_is_unchanged():
    assert prepare_text(QUESTION, 2048) == QUESTION and clip_text(PASTE, len(PASTE)) == PASTE


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=3000), st.integers(1, 2500), st.integers(0, 800))
def test_clipping_keeps_within_the_cap_the_beginning_and_the_end(text, cap, tail):
    out = clip_text(text, cap, tail_chars=tail)
    assert len(out) <= cap
    if len(text) <= cap:
        assert out == text
        return
    head, mark, end = out.partition(CLIP_MARK)
    assert text.startswith(head)
    if mark:
        assert end and text.endswith(end) and len(end) <= min(tail, cap // 4)
    else:
        assert out == text[:cap]


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=0, max_size=3000), st.integers(1, 2500))
def test_preparing_twice_changes_nothing(text, cap):
    """The cache keys the prepared text and encode prepares again: the two must agree."""
    once = prepare_text(text, cap)
    assert prepare_text(once, cap) == once
