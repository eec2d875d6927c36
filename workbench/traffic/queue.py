"""What to label next: the logged turns most worth a label, near-duplicates removed, text scrubbed.

The gateway's decision log (``decisions-*.jsonl``) and its feedback
(``feedback-*.jsonl``, :mod:`workbench.serve.feedback`) are read from one
folder. Candidates are ranked by why they were picked, in this order:

1. ``feedback_down``: a turn whose last rating is ``down`` (newest first);
2. ``abstained``: the pool abstained (least confident first);
3. ``low_margin``: the winning category's share beat the runner-up's by less
   than ``low_margin`` (smallest margin first);
4. ``uncovered_cluster``: a member of a cluster of uncovered traffic
   (:mod:`workbench.analysis.uncovered`: farther from the pool than the pool's
   own 5th percentile, grouped by HDBSCAN), taken one per cluster in turn,
   largest cluster first, so the queue spans the clusters.

Texts are scrubbed (:func:`.scrub.scrub_text`) before anything else, so what
is compared is what is written. Walking down the ranking, a candidate is
dropped when its cosine to a pool message, or to a candidate already queued,
is at or above the pool's near-duplicate threshold (``DUP_THRESHOLD``,
defined in the space of ``DUP_BACKEND``: the pool given must be embedded
with that backend, and the candidates are embedded with the pool's own
embedder). Coverage is measured in that same space: its threshold is the
pool's own quantile there, so it is self-consistent.

Each queued line is a candidate ``workbench label --input`` reads (``id``,
``text``) with the fields ``workbench merge`` carries (``conversation``,
``turn``, ``origin`` as ``file:line``) and why it was picked (``reason``,
``reasons``, ``why``).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import config as _config
from ..errors import ConfigError, DataError
from ..io import normalize_text, read_jsonl
from .decision_log import decision_records
from .scrub import scrub_id, scrub_text

log = logging.getLogger(__name__)

__all__ = ["QueueSettings", "REASONS", "read_feedback", "read_turns", "rank_candidates", "build_queue",
           "queue_lines"]

#: Why a turn is picked, most urgent first.
REASONS = ("feedback_down", "abstained", "low_margin", "uncovered_cluster")


@dataclass(frozen=True)
class QueueSettings:
    """How the queue is picked.

    Parameters
    ----------
    n : int
        Lines in the queue (at most).
    low_margin : float
        A decision whose margin is below this is ``low_margin`` (the default: a fifth of the vote).
    dup_threshold : float
        Cosine at or above which two messages are near-duplicates (the pool's threshold).
    scan : int
        Distinct logged texts embedded for the coverage signal (a seeded sample past it: bounded work on months
        of logs).
    min_cluster_size : int
        HDBSCAN's smallest cluster of uncovered traffic.
    seed : int
    """

    n: int = 200
    low_margin: float = _config.QUEUE_LOW_MARGIN
    dup_threshold: float = _config.DUP_THRESHOLD
    scan: int = _config.QUEUE_SCAN
    min_cluster_size: int = 5
    seed: int = _config.SEED

    def __post_init__(self):
        for name in ("n", "scan"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be an integer >= 1; got {getattr(self, name)!r}")
        if not 0 <= self.low_margin <= 1:
            raise ConfigError(f"low_margin must be in [0, 1]; got {self.low_margin!r}")
        if not 0 < self.dup_threshold <= 1:
            raise ConfigError(f"dup_threshold must be in (0, 1]; got {self.dup_threshold!r}")
        if not isinstance(self.min_cluster_size, int) or self.min_cluster_size < 2:
            raise ConfigError(f"min_cluster_size must be an integer >= 2; got {self.min_cluster_size!r}")


@dataclass
class Turn:
    """One logged turn that may be queued (its text already scrubbed)."""

    text: str
    record: dict
    origin: str
    reasons: list = field(default_factory=list)
    key: tuple = ()
    seen: list = field(default_factory=list)  # (record, origin) of every logged copy of this text


def _files(folder, pattern):
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"--decision-log {folder} is not a folder")
    return sorted(folder.glob(pattern))


def read_feedback(folder):
    """``request_id -> last feedback line`` of the folder's ``feedback-*.jsonl`` (in file and line order)."""
    last = {}
    for path in _files(folder, _config.FEEDBACK_GLOB):
        for n, obj in read_jsonl(path, live=True):  # the gateway may be appending a line
            if not isinstance(obj, dict) or not isinstance(obj.get("request_id"), str) \
                    or obj.get("rating") not in ("up", "down"):
                raise DataError(path, n, "not a feedback line (expected 'request_id' and 'rating' up or down)")
            last[obj["request_id"]] = obj
    return last


def read_turns(folder):
    """The logged turns with visible text, one per distinct scrubbed text (every record of it kept), and counts."""
    from ..core.text import has_visible_text

    files = _files(folder, _config.DECISIONS_GLOB)
    if not files:
        raise ConfigError(f"--decision-log {folder} holds no decisions-*.jsonl file")
    turns, counts = {}, {"records": 0, "no_text": 0, "repeated": 0}
    for path in files:
        for n, obj in decision_records(path):
            counts["records"] += 1
            text = obj.get("text")
            if not isinstance(text, str) or not has_visible_text(text):
                counts["no_text"] += 1
                continue
            text = scrub_text(text)[0]
            key = normalize_text(text)
            counts["repeated"] += key in turns
            turn = turns.setdefault(key, Turn(text, obj, f"{path.name}:{n}"))
            turn.seen.append((obj, f"{path.name}:{n}"))
    return list(turns.values()), counts


def _signals(rec, feedback, low_margin):
    """``(sort key, reason)`` of each ranking signal one record and its feedback give (not the coverage one)."""
    out, fb, routed = [], feedback.get(rec.get("request_id")), rec.get("routed") is not False
    if fb is not None and fb["rating"] == "down":
        out.append(((0, -_order(fb.get("time"))), "feedback_down"))
    if routed and rec.get("abstain") is True:
        out.append(((1, _number(rec.get("confidence"))), "abstained"))
    margin = _number(rec.get("margin"))
    if routed and rec.get("abstain") is not True and margin < low_margin:
        out.append(((2, margin), "low_margin"))
    return out


def _reason(turn, feedback, low_margin):
    """Rank a turn by the most urgent signal of any of its records (a text logged twice keeps both's signals)."""
    found = [(key, reason, rec, origin) for rec, origin in turn.seen for key, reason in
             _signals(rec, feedback, low_margin)]
    if found:
        turn.key, _, turn.record, turn.origin = min(found, key=lambda f: f[0])
        turn.reasons = sorted({f[1] for f in found}, key=REASONS.index)


def _number(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("inf")


def _order(time_text):
    """Unix seconds of an ISO 8601 time (``...Z``, with or without milliseconds); an unreadable time is 0 (last)."""
    import datetime

    try:
        return datetime.datetime.fromisoformat(str(time_text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def rank_candidates(turns, feedback, settings):
    """The turns with a record signal, ranked; the others (for the coverage signal)."""
    ranked, rest = [], []
    for turn in turns:
        _reason(turn, feedback, settings.low_margin)
        (ranked if turn.reasons else rest).append(turn)
    ranked.sort(key=lambda t: t.key)
    return ranked, rest


def _uncovered(rest, pool_vectors, embed, settings):
    """Members of clusters of uncovered traffic among ``rest`` (a seeded sample of ``scan``), interleaved."""
    import pandas as pd

    from ..analysis.uncovered import coverage_of, uncovered_clusters

    if not rest:
        return []
    rows = np.arange(len(rest))
    if len(rest) > settings.scan:
        rows = np.sort(np.random.default_rng(settings.seed).choice(len(rest), settings.scan, replace=False))
    sample = [rest[i] for i in rows]
    vectors = embed([t.text for t in sample])
    cover = coverage_of(pool_vectors, vectors)
    far = np.flatnonzero(cover.uncovered)
    frame = pd.DataFrame({"text": [sample[i].text for i in far], "tier": [sample[i].record.get("tier") for i in far],
                          "lang": "und"})
    labels, clusters = uncovered_clusters(vectors[far], frame, min_cluster_size=settings.min_cluster_size,
                                          seed=settings.seed)
    size = dict(zip(clusters["cluster"], clusters["size"]))
    out = []
    for c in size:
        members = far[labels == c]
        members = members[np.argsort(cover.similarity[members], kind="stable")]  # least covered first
        for place, i in enumerate(members):
            sample[i].reasons.append("uncovered_cluster")
            sample[i].key = (3, place, -size[c], int(c))
            sample[i].record = dict(sample[i].record, _cluster=int(c), _cluster_size=int(size[c]),
                                    _similarity=float(cover.similarity[i]))
            out.append(sample[i])
    return sorted(out, key=lambda t: t.key)


def _deduplicated(candidates, pool_vectors, embed, settings):
    """Walk down the ranking: keep a candidate unless it is a near-duplicate of the pool or of one kept."""
    from ..dataset.duplicates import max_similarity

    kept, vectors, dropped = [], np.zeros((settings.n, pool_vectors.shape[1]), np.float32), {"pool": 0, "queue": 0}
    block = max(4 * settings.n, 256)
    for start in range(0, len(candidates), block):
        chunk = candidates[start:start + block]
        v = embed([t.text for t in chunk])
        to_pool = max_similarity(v, pool_vectors)
        for turn, vec, sim in zip(chunk, v, to_pool):
            if sim >= settings.dup_threshold:
                dropped["pool"] += 1
            elif kept and float((vectors[:len(kept)] @ vec).max()) >= settings.dup_threshold:
                dropped["queue"] += 1
            else:
                vectors[len(kept)] = vec
                kept.append(turn)
                if len(kept) == settings.n:
                    return kept, dropped
    return kept, dropped


def build_queue(folder, pool_vectors, embed, settings=None):
    """The review queue of a decision-log folder.

    Parameters
    ----------
    folder : path
        The gateway's ``--decision-log`` folder.
    pool_vectors : array (n_pool, dim)
        The pool embedded with ``DUP_BACKEND`` (the space of the near-duplicate threshold).
    embed : callable
        ``list of texts -> L2-normalised rows`` in the same space (the pool's embedder, cached).
    settings : QueueSettings, optional

    Returns
    -------
    (list of queue lines (dicts), summary dict)
    """
    settings = settings or QueueSettings()
    pool_vectors = np.asarray(pool_vectors, np.float32)
    turns, counts = read_turns(folder)
    feedback = read_feedback(folder)
    ranked, rest = rank_candidates(turns, feedback, settings)
    clustered = _uncovered(rest, pool_vectors, embed, settings)
    kept, dropped = _deduplicated(ranked + clustered, pool_vectors, embed, settings)
    lines = queue_lines(kept)
    by_reason = {r: sum(line["reason"] == r for line in lines) for r in REASONS}
    summary = dict(counts, turns=len(turns), feedback=len(feedback), candidates=len(ranked) + len(clustered),
                   near_duplicates_of_pool=dropped["pool"], near_duplicates_in_queue=dropped["queue"],
                   queued=len(lines), by_reason=by_reason)
    log.info("queue: %d of %d candidate turns (%s)", len(lines), summary["candidates"], by_reason)
    return lines, summary


def _why(turn):
    rec, reason = turn.record, turn.reasons[0]
    routed = f"routed {rec.get('tier')} ({rec.get('category')}, confidence {rec.get('confidence')}, " \
             f"margin {rec.get('margin')})"
    if reason == "feedback_down":
        return f"rated down; {routed}"
    if reason == "abstained":
        return f"the pool abstained; {routed}"
    if reason == "low_margin":
        return f"low margin; {routed}"
    return (f"uncovered (similarity {rec['_similarity']:.3f} to the nearest pool message), in a cluster of "
            f"{rec['_cluster_size']} uncovered turns; routed {rec.get('tier')}")


def queue_lines(turns):
    """The JSONL objects of queued turns: what label reads, what merge carries, and why each was picked."""
    lines, ids = [], set()
    for turn in turns:
        rec = turn.record
        base = "queue-" + scrub_id(str(rec.get("request_id")), "req")
        qid, k = base, 1
        while qid in ids:
            k += 1
            qid = f"{base}-{k}"
        ids.add(qid)
        line = {"id": qid, "text": turn.text, "reason": turn.reasons[0], "reasons": list(turn.reasons),
                "why": _why(turn), "origin": turn.origin, "tier": rec.get("tier")}
        conv, n = rec.get("conversation_id"), rec.get("turn")
        if isinstance(conv, str) and conv:
            line["conversation"] = scrub_id(conv, "conv")
        if isinstance(n, int) and not isinstance(n, bool):
            line["turn"] = n
        json.dumps(line, allow_nan=False)
        lines.append(line)
    return lines
