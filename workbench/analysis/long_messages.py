"""Long messages: does the question of a long pasted message reach the encoder?

A pasted-context message ("here is the log / the contract / the thread ...,
why does X?") usually asks its question *after* the paste. The encoder sees
at most the cap (:data:`workbench.config.MAX_TEXT_CHARS`); cutting at the cap
kept only the beginning, so a question past it never counted. The cap now
keeps the beginning and the end (:func:`workbench.core.text.clip_text`).
:func:`question_past_cap` measures, per long message, whether its closing
request (:func:`closing_request`) is in what the encoder sees, with the cap
as it was and as it is.
"""
from __future__ import annotations

from .. import config as _config
from ..core.question import closing_request
from ..core.text import prepare_text

__all__ = ["closing_request", "question_past_cap", "question_past_cap_of", "past_cap_summary", "head_only",
           "read_dev_messages"]

def head_only(text, max_chars=_config.MAX_TEXT_CHARS) -> str:
    """The text an encoder saw with the cap as it was: the first ``max_chars`` characters."""
    return prepare_text(text, None)[:max_chars]


def question_past_cap(texts, *, max_chars=_config.MAX_TEXT_CHARS, source=None):
    """Per message over ``max_chars``: whether its closing request survives the cap before and after the change.

    Returns
    -------
    pandas.DataFrame: ``source, chars, request_start`` (where the request begins), ``past_cap_before``
    (not in the first ``max_chars`` characters) and ``past_cap_after`` (not in what
    :func:`~workbench.core.text.prepare_text` keeps now); one row per message over the cap.
    """
    import pandas as pd

    rows = []
    texts = [str(t) for t in texts]
    sources = [source] * len(texts) if source is None or isinstance(source, str) else list(source)
    for text, src in zip(texts, sources):
        if len(text) <= max_chars:
            continue
        request = closing_request(text)
        rows.append({"source": src, "chars": len(text), "request_start": text.rfind(request),
                     "past_cap_before": request not in head_only(text, max_chars),
                     "past_cap_after": request not in prepare_text(text, max_chars)})
    return pd.DataFrame(rows, columns=["source", "chars", "request_start", "past_cap_before", "past_cap_after"])


def read_dev_messages(dev_dir=None, taxonomy=None):
    """The labelled development messages (every ``*.jsonl`` of ``dev_dir`` but the conversations), or None.

    Returns
    -------
    pandas.DataFrame as :func:`workbench.analysis.generalisation.read_eval_dir` returns it (a ``set`` per file).
    """
    from pathlib import Path

    import pandas as pd

    from ..core.taxonomy import load_taxonomy
    from .generalisation import read_labelled

    folder = Path(dev_dir) if dev_dir is not None else _config.DEV_DIR
    files = [f for f in sorted(folder.glob("*.jsonl")) if not f.name.startswith("conversations")] \
        if folder.is_dir() else []
    if not files:
        return None
    taxonomy = taxonomy if taxonomy is not None else load_taxonomy()
    return pd.concat([read_labelled(f, taxonomy).assign(set=f.stem) for f in files], ignore_index=True)


def question_past_cap_of(*frames, max_chars=_config.MAX_TEXT_CHARS):
    """:func:`question_past_cap` over labelled frames (``text``, ``set``; None is skipped), the set as the source."""
    texts, sources = [], []
    for frame in frames:
        if frame is not None:
            texts += frame["text"].tolist()
            sources += frame["set"].tolist()
    return question_past_cap(texts, max_chars=max_chars, source=sources)


def past_cap_summary(frame):
    """``{"long_messages", "question_past_cap_before", "question_past_cap_after"}`` of :func:`question_past_cap`
    (shares 0 when no message is over the cap)."""
    n = len(frame)
    return {"long_messages": n,
            "question_past_cap_before": float(frame["past_cap_before"].mean()) if n else 0.0,
            "question_past_cap_after": float(frame["past_cap_after"].mean()) if n else 0.0}
