"""What the gateway's decision log says: traffic mix, cost, abstains and fallbacks, tier switches, confidence, feedback.

:func:`open_log` reads a decision-log folder (``decisions-*.jsonl`` written by
:mod:`workbench.serve.decision_log`, and ``feedback-*.jsonl`` of
``POST /v1/feedback``: one object a line, ``time``, ``request_id``,
``rating`` "up"/"down", ``tier_wanted``) with DuckDB, in place: the JSON is
parsed once, with an explicit type per column (fields a line lacks are
null, fields it adds are ignored), into an in-memory table without the
message texts; :meth:`TrafficLog.messages` reads the texts on demand. A line
DuckDB cannot read is reported as ``file:line: problem`` (a
:class:`~workbench.errors.DataError`). The gateway may be appending to
today's file while it is read: a last line without its newline is a record
still being written, and is left for the next read (as
:func:`workbench.traffic.decision_log.decision_records` does).

Every query returns a pandas DataFrame with ``day`` as ``YYYY-MM-DD`` (UTC).
Passthrough requests (``routed`` false: the client named a concrete model)
are left out of every figure: the router did not decide them.
:func:`drift` compares the latest day with the days before it.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import re
import tempfile
from pathlib import Path
from typing import NamedTuple

from .. import config as _config
from ..errors import ConfigError, DataError, WorkbenchError, require
from ..io import complete_lines

__all__ = ["DECISION_COLUMNS", "FEEDBACK_COLUMNS", "TrafficLog", "open_log", "check_log_folder", "Drift", "drift",
           "uncovered_by_day", "headline"]

#: The decision-record fields the queries read, with their DuckDB types (see workbench.serve.records).
DECISION_COLUMNS = {"time": "TIMESTAMP", "request_id": "VARCHAR", "client": "VARCHAR", "conversation_id": "VARCHAR",
                    "turn": "BIGINT", "routed": "BOOLEAN", "category": "VARCHAR", "tier": "VARCHAR",
                    "decided_tier": "VARCHAR", "confidence": "DOUBLE", "margin": "DOUBLE", "abstain": "BOOLEAN",
                    "upstream_tier": "VARCHAR", "fallback_reason": "VARCHAR", "routing_ms": "DOUBLE",
                    "upstream_ms": "DOUBLE", "prompt_tokens": "BIGINT", "completion_tokens": "BIGINT", "cost": "DOUBLE",
                    "status": "VARCHAR"}
#: The feedback fields (agreed with ``POST /v1/feedback``).
FEEDBACK_COLUMNS = {"time": "TIMESTAMP", "request_id": "VARCHAR", "rating": "VARCHAR", "tier_wanted": "VARCHAR"}
RATINGS = ("up", "down")
_DUCKDB_LINE = re.compile(r'in file "(?P<file>[^"]+)".*?line (?P<line>\d+): (?P<problem>[^\n]+)')
_PY_TYPES = {"VARCHAR": (str, int, float), "BIGINT": (int,), "DOUBLE": (int, float), "BOOLEAN": (bool,),
             "TIMESTAMP": (str,)}


def _reader(pattern_param, columns):
    # newline-delimited, explicit columns: an extra field is ignored, a missing one is null
    spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
    return f"read_json({pattern_param}, format='newline_delimited', columns={spec}, maximum_object_size=16777216)"


def _is_time(text):
    try:
        datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _bad_line(path, columns, check=None):
    """The first complete line of ``path`` that is not a JSON object with the column types (and passes ``check``),
    or None."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(complete_lines(fh), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                return n, f"not valid JSON ({e.msg})"
            if not isinstance(obj, dict):
                return n, f"expected a JSON object, got {type(obj).__name__}"
            for key, kind in columns.items():
                v = obj.get(key)
                wrong = not isinstance(v, _PY_TYPES[kind]) or (kind != "BOOLEAN" and isinstance(v, bool))
                if v is not None and wrong:
                    return n, f"{key!r} must be {kind.lower()}, got {json.dumps(v)[:40]}"
                if kind == "TIMESTAMP" and v is not None and not _is_time(v):
                    return n, f"{key!r} must be an ISO 8601 time, got {json.dumps(v)[:40]}"
            problem = check(obj) if check else None
            if problem:
                return n, problem
    return None


def _torn(path):
    """Whether the last line of ``path`` has no newline yet (a record the gateway is still appending)."""
    with open(path, "rb") as fh:
        if fh.seek(0, 2) == 0:
            return False
        fh.seek(-1, 2)
        return fh.read(1) != b"\n"


@contextlib.contextmanager
def _complete_files(files):
    """``files`` as DuckDB should read them: one whose last line is torn is read from a temporary copy of its
    complete lines (same file name, so errors still name it)."""
    with tempfile.TemporaryDirectory(prefix="wb-traffic-") as tmp:
        out = []
        for i, f in enumerate(files):
            if _torn(f):
                data = Path(f).read_bytes()
                copy = Path(tmp, str(i), Path(f).name)
                copy.parent.mkdir()
                copy.write_bytes(data[:data.rfind(b"\n") + 1])
                f = str(copy)
            out.append(f)
        yield out


#: A read that met a line torn after :func:`_complete_files` looked is tried again, this often in all.
_READ_TRIES = 3


def _read_complete(run, files, columns, check=None):
    """``run(paths)`` over ``files`` read to their last complete line; a DuckDB error becomes a one-line DataError.

    When DuckDB fails but no complete line is bad, the read met a line the gateway was still writing (the file
    grew after it was looked at): the read is tried again.
    """
    duckdb = require("duckdb", purpose="the traffic section")
    for _ in range(_READ_TRIES):
        with _complete_files(files) as paths:
            try:
                return run(paths)
            except duckdb.Error as e:
                error = e
        bad = _bad_in(error, files, columns, check)
        if bad:
            raise bad from None
    raise _duckdb_words(error, files) from None


def _bad_in(error, files, columns, check=None):
    """The first bad complete line as a DataError (the files DuckDB's error names first), or None."""
    m = _DUCKDB_LINE.search(str(error))
    named = [f for f in files if m and Path(f).name == Path(m["file"]).name]
    for f in named + [f for f in files if f not in named]:
        found = _bad_line(f, columns, check)
        if found:
            return DataError(f, found[0], found[1])
    return None


def _duckdb_words(error, files):
    """DuckDB's own words as a DataError, naming the original file (its line numbers can be one off)."""
    m = _DUCKDB_LINE.search(str(error))
    if m:
        named = [f for f in files if Path(f).name == Path(m["file"]).name]
        return DataError(named[0] if named else m["file"], int(m["line"]), m["problem"].strip())
    return DataError(files[0] if files else "?", None, str(error).splitlines()[0])


def _feedback_check(obj):
    if obj.get("rating") not in RATINGS:
        return f"'rating' must be 'up' or 'down', got {json.dumps(obj.get('rating'))[:40]}"
    if obj.get("tier_wanted") not in (None, "cheap", "medium", "strong"):
        return f"'tier_wanted' must be cheap, medium, strong or null, got {json.dumps(obj.get('tier_wanted'))[:40]}"
    if not obj.get("request_id"):
        return "'request_id' is missing"
    return None


class TrafficLog:
    """A decision-log folder loaded for queries (see :func:`open_log`).

    Attributes
    ----------
    folder : pathlib.Path
    decision_files, feedback_files : list of str
    connection : duckdb connection with the tables ``decisions`` (routed requests, no text) and ``feedback``
    """

    def __init__(self, folder, decision_files, feedback_files, connection):
        self.folder, self.decision_files, self.feedback_files = folder, decision_files, feedback_files
        self.connection = connection

    def query(self, sql, params=None):
        """Run ``sql`` over the tables; a pandas DataFrame."""
        return self.connection.execute(sql, params or []).df()

    @property
    def has_feedback(self):
        return bool(self.feedback_files)

    def days(self):
        """The days with routed decisions, oldest first."""
        return self.query("SELECT DISTINCT day FROM decisions ORDER BY day")["day"].tolist()

    def mix(self, by="tier", *, wide=False):
        """Decisions per day and ``by`` (``"tier"`` or ``"category"``): ``day, <by>, n, share``.

        With ``wide``: one row a day, ``n`` and one share column per value.
        """
        if by not in ("tier", "category"):
            raise ConfigError(f"by must be 'tier' or 'category'; got {by!r}")
        long = self.query(f"SELECT day, coalesce({by}, '(none)') AS {by}, count(*) AS n, "
                          f"count(*) / sum(count(*)) OVER (PARTITION BY day) AS share "
                          f"FROM decisions GROUP BY 1, 2 ORDER BY day, {by}")
        if not wide:
            return long
        out = long.pivot(index="day", columns=by, values="share").fillna(0.0)
        out.insert(0, "n", long.groupby("day")["n"].sum())
        return out.reset_index().rename_axis(columns=None)

    def cost(self, prices=None):
        """Cost per day at the logged token counts: routed (the tier that answered) against all-strong and all-medium.

        Parameters
        ----------
        prices : dict tier -> dollars per million tokens, optional
            Default :data:`workbench.config.PRICES` (the prices of the savings tables).

        Returns
        -------
        pandas.DataFrame: ``day, n, tokens, routed, all_strong, all_medium, saving_vs_strong, saving_vs_medium,
        logged`` (``logged``: the gateway's own ``cost`` at the upstreams' prices), and a last row ``all``.
        """
        import pandas as pd

        prices = dict(_config.PRICES if prices is None else prices)
        for tier in ("strong", "medium"):
            if not isinstance(prices.get(tier), (int, float)) or prices[tier] < 0:
                raise ConfigError(f"prices must give {tier!r} a price >= 0; got {prices!r}")
        self.connection.execute("CREATE OR REPLACE TEMP TABLE prices (tier VARCHAR, price DOUBLE)")
        self.connection.executemany("INSERT INTO prices VALUES (?, ?)", [[k, float(v)] for k, v in prices.items()])
        sql = """WITH t AS (SELECT day, coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0) AS tokens,
                                   coalesce(upstream_tier, tier) AS paid, cost FROM decisions)
                 SELECT {key} AS day, count(*) AS n, sum(tokens) AS tokens,
                        sum(tokens * coalesce(p.price, 0)) / 1e6 AS routed,
                        sum(tokens) * ? / 1e6 AS all_strong, sum(tokens) * ? / 1e6 AS all_medium,
                        coalesce(sum(cost), 0) AS logged
                 FROM t LEFT JOIN prices p ON p.tier = t.paid GROUP BY {key} ORDER BY 1"""
        params = [float(prices["strong"]), float(prices["medium"])]
        per_day = self.query(sql.format(key="day"), params)
        out = pd.concat([per_day, self.query(sql.format(key="'all'"), params)], ignore_index=True)
        out["tokens"] = out["tokens"].astype("int64")
        for base in ("strong", "medium"):
            out[f"saving_vs_{base}"] = 1 - out["routed"] / out[f"all_{base}"].where(out[f"all_{base}"] > 0)
        return out[["day", "n", "tokens", "routed", "all_strong", "all_medium", "saving_vs_strong", "saving_vs_medium",
                    "logged"]]

    def rates(self):
        """Per day: ``n, abstains, abstain_rate, fallbacks, fallback_rate, errors`` (status not 200)."""
        return self.query("""SELECT day, count(*) AS n, count(*) FILTER (WHERE abstain) AS abstains,
                               count(*) FILTER (WHERE abstain) / count(*) AS abstain_rate,
                               count(*) FILTER (WHERE coalesce(fallback_reason, '') <> '') AS fallbacks,
                               count(*) FILTER (WHERE coalesce(fallback_reason, '') <> '') / count(*) AS fallback_rate,
                               count(*) FILTER (WHERE coalesce(status, '200') <> '200') AS errors
                             FROM decisions GROUP BY day ORDER BY day""")

    def fallback_reasons(self):
        """Fallbacks by reason and by the tier that answered: ``fallback_reason, upstream_tier, n``."""
        return self.query("""SELECT fallback_reason, coalesce(upstream_tier, '(none)') AS upstream_tier, count(*) AS n
                             FROM decisions WHERE coalesce(fallback_reason, '') <> '' GROUP BY ALL
                             ORDER BY n DESC, fallback_reason, upstream_tier""")

    _TURNS = """WITH t AS (SELECT day, tier, lag(tier) OVER (PARTITION BY conversation_id ORDER BY time, turn,
                                                                request_id) AS previous
                         FROM decisions WHERE conversation_id IS NOT NULL AND tier IS NOT NULL)"""

    def tier_switches(self):
        """Per day: turns that follow an earlier turn of their conversation, how many changed tier, and the rate."""
        return self.query(self._TURNS + """SELECT day, count(previous) AS follow_ups,
                               count(*) FILTER (WHERE previous <> tier) AS switches,
                               count(*) FILTER (WHERE previous <> tier) / nullif(count(previous), 0) AS switch_rate
                             FROM t GROUP BY day ORDER BY day""")

    def tier_transitions(self):
        """Tier switches within conversations by direction: ``from_tier, to_tier, n``."""
        return self.query(self._TURNS + """SELECT previous AS from_tier, tier AS to_tier, count(*) AS n FROM t
                             WHERE previous <> tier GROUP BY ALL ORDER BY n DESC, from_tier, to_tier""")

    def confidence(self, pool_table=None, *, bins=_config.CALIBRATION_BINS):
        """Live confidence per equal-width bin: ``bin_low, bin_high, n, share`` (and ``pool_share``).

        Parameters
        ----------
        pool_table : pandas.DataFrame, optional
            The pool's out-of-fold confidences as a reliability table with ``bin_low`` and ``share`` (the exported
            calibration's cross-fitted table, ``06_reliability``), same bins.
        """
        import pandas as pd

        got = self.query("""SELECT least(floor(confidence * ?), ? - 1)::INT AS bin, count(*) AS n FROM decisions
                            WHERE confidence IS NOT NULL GROUP BY bin""", [bins, bins])
        n = pd.Series(0, index=range(bins)).add(got.set_index("bin")["n"], fill_value=0).astype("int64")
        out = pd.DataFrame({"bin_low": [i / bins for i in range(bins)],
                            "bin_high": [(i + 1) / bins for i in range(bins)],
                            "n": n.to_numpy(), "share": (n / max(int(n.sum()), 1)).to_numpy()})
        if pool_table is not None:
            pool = dict(zip((pool_table["bin_low"] * bins).round().astype(int), pool_table["share"]))
            out["pool_share"] = [float(pool.get(i, float("nan"))) for i in range(bins)]
        return out

    def feedback(self):
        """Per routed tier: ``decisions, rated, down, down_rate`` and the tiers wanted (latest rating per request).

        With no feedback file every ``rated`` is 0 and ``down_rate`` NaN: no feedback yet.
        """
        return self.query("""WITH f AS (SELECT request_id, rating, tier_wanted AS wanted FROM feedback
                                        QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY time DESC) = 1)
                             SELECT d.tier, count(*) AS decisions, count(f.rating) AS rated,
                               count(*) FILTER (WHERE f.rating = 'down') AS down,
                               count(*) FILTER (WHERE f.rating = 'down') / nullif(count(f.rating), 0) AS down_rate,
                               count(*) FILTER (WHERE f.wanted = 'cheap') AS wanted_cheap,
                               count(*) FILTER (WHERE f.wanted = 'medium') AS wanted_medium,
                               count(*) FILTER (WHERE f.wanted = 'strong') AS wanted_strong
                             FROM decisions d LEFT JOIN f USING (request_id) WHERE d.tier IS NOT NULL
                             GROUP BY d.tier ORDER BY d.tier""")

    def messages(self, *, days=None):
        """The routed messages with their text: ``request_id, day, text, category, tier, confidence, abstain``.

        Parameters
        ----------
        days : sequence of str, optional
            Only these days (``YYYY-MM-DD``).
        """
        cols = {"request_id": "VARCHAR", "text": "VARCHAR"}
        sql = (f"SELECT d.request_id, d.day, coalesce(x.text, '') AS text, d.category, d.tier, d.confidence, d.abstain "
               f"FROM decisions d JOIN {_reader('?', cols)} x USING (request_id)"
               + (" WHERE d.day IN (SELECT unnest(?::VARCHAR[]))" if days is not None else "")
               + " ORDER BY d.time, d.request_id")
        return _read_complete(lambda paths: self.query(sql, [paths] + ([list(days)] if days is not None else [])),
                              self.decision_files, dict(DECISION_COLUMNS, text="VARCHAR"))


def _files(folder, pattern):
    return sorted(str(p) for p in Path(folder).glob(pattern))


def check_log_folder(folder):
    """The ``decisions-*.jsonl`` files of a decision-log folder, or a one-line WorkbenchError (checked before work)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WorkbenchError(f"{folder}: no such decision-log folder")
    decisions = _files(folder, _config.DECISIONS_GLOB)
    if not decisions:
        raise WorkbenchError(f"{folder}: no decision log here (no decisions-*.jsonl)")
    return decisions


def open_log(folder):
    """Load a decision-log folder for :class:`TrafficLog`'s queries.

    Raises
    ------
    WorkbenchError
        The folder is missing or holds no ``decisions-*.jsonl``.
    DataError
        A line that is not a JSON object, or a field of the wrong type (``file:line: problem``).
    """
    duckdb = require("duckdb", purpose="the traffic section")
    folder = Path(folder)
    decisions, feedback = check_log_folder(folder), _files(folder, _config.FEEDBACK_GLOB)
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    cols = ", ".join(DECISION_COLUMNS)
    _read_complete(lambda paths: con.execute(
        f"""CREATE OR REPLACE TABLE decisions AS SELECT {cols}, strftime(time, '%Y-%m-%d') AS day
            FROM {_reader('?', DECISION_COLUMNS)} WHERE routed IS NOT FALSE AND time IS NOT NULL""", [paths]),
        decisions, DECISION_COLUMNS)
    con.execute("CREATE TABLE feedback (time TIMESTAMP, request_id VARCHAR, rating VARCHAR, tier_wanted VARCHAR)")
    if feedback:
        _read_complete(lambda paths: con.execute(
            f"INSERT INTO feedback SELECT * FROM {_reader('?', FEEDBACK_COLUMNS)}", [paths]),
            feedback, FEEDBACK_COLUMNS, _feedback_check)
        bad = con.execute("SELECT count(*) FROM feedback WHERE rating NOT IN ('up', 'down') OR rating IS NULL "
                          "OR request_id IS NULL OR tier_wanted NOT IN ('cheap', 'medium', 'strong')").fetchone()[0]
        if bad:
            raise _bad_in("", feedback, FEEDBACK_COLUMNS, _feedback_check) or DataError(
                feedback[0], None, f"{bad} feedback records with a bad rating, tier or request id")
    return TrafficLog(folder, decisions, feedback, con)


class Drift(NamedTuple):
    """What :func:`drift` returns."""

    flag: bool
    reasons: list        # one sentence per reason the flag is raised
    day: object          # the latest day (None without decisions)
    tier_change: dict    # tier -> latest share minus the previous days' share
    uncovered: tuple     # (latest day's uncovered share, the previous days'), or ()


def uncovered_by_day(days, uncovered):
    """``{day: (uncovered messages, messages)}`` from a day and an uncovered flag per message."""
    out = {}
    for d, u in zip(days, uncovered):
        hit, n = out.get(d, (0, 0))
        out[d] = (hit + bool(u), n + 1)
    return out


def drift(tier_mix, uncovered=None, *, points=_config.DRIFT_POINTS, window=_config.DRIFT_WINDOW_DAYS):
    """Whether the latest day's traffic moved against the ``window`` days before it.

    Parameters
    ----------
    tier_mix : pandas.DataFrame from ``TrafficLog.mix("tier")`` (``day, tier, n``)
    uncovered : dict, optional
        ``{day: (uncovered, messages)}`` (:func:`uncovered_by_day`).
    points : float
        A tier's share moving by more than this raises the flag.
    window : int
        Previous days compared with (pooled).

    Returns
    -------
    Drift: flagged when a tier's share moves by more than ``points``, or the uncovered share at least doubles
    (and is not zero).
    """
    days = sorted(set(tier_mix["day"]))
    if not days:
        return Drift(False, [], None, {}, ())
    latest, before = days[-1], days[-1 - window:-1] if window > 0 else []
    if not before:
        return Drift(False, [], latest, {}, ())
    now = tier_mix[tier_mix["day"] == latest].groupby("tier")["n"].sum()
    then = tier_mix[tier_mix["day"].isin(before)].groupby("tier")["n"].sum()
    tiers = sorted(set(now.index) | set(then.index))
    change = {t: float(now.get(t, 0) / now.sum() - then.get(t, 0) / then.sum()) for t in tiers}
    reasons = [f"{t} share {100 * (now.get(t, 0) / now.sum()):.1f}% on {latest} against "
               f"{100 * then.get(t, 0) / then.sum():.1f}% over the {len(before)} days before ({100 * c:+.1f} points)"
               for t, c in change.items() if abs(c) > points]
    shares = ()
    if uncovered:
        hit, n = uncovered.get(latest, (0, 0))
        old_hit, old_n = (sum(uncovered.get(d, (0, 0))[i] for d in before) for i in (0, 1))
        if n and old_n:
            shares = (hit / n, old_hit / old_n)
            if shares[0] > 0 and shares[0] >= 2 * shares[1]:
                reasons.append(f"uncovered share {100 * shares[0]:.1f}% on {latest} against {100 * shares[1]:.1f}% "
                               f"over the {len(before)} days before (at least doubled)")
    return Drift(bool(reasons), reasons, latest, change, shares)


def headline(log, *, uncovered_share=None, flag=None, prices=None):
    """The traffic section's numbers for ``metrics.json`` (section ``traffic``): over every logged day.

    Returns
    -------
    dict: ``days, decisions, latest_day, abstain_rate, fallback_rate, switch_rate, saving_vs_strong,
    saving_vs_medium, feedback`` (a sentence), ``down_rate`` (None without feedback), ``uncovered_share``,
    ``drift`` and ``drift_reasons``.
    """
    rates, switches, cost = log.rates(), log.tier_switches(), log.cost(prices).set_index("day")
    fb = log.feedback()
    rated, down = int(fb["rated"].sum()), int(fb["down"].sum())
    n = int(rates["n"].sum())
    out = {"days": len(rates), "decisions": n, "latest_day": rates["day"].iloc[-1] if n else None,
           "abstain_rate": float(rates["abstains"].sum() / n) if n else None,
           "fallback_rate": float(rates["fallbacks"].sum() / n) if n else None,
           "switch_rate": (float(switches["switches"].sum() / switches["follow_ups"].sum())
                           if switches["follow_ups"].sum() else None),
           "saving_vs_strong": _number(cost["saving_vs_strong"].get("all")),
           "saving_vs_medium": _number(cost["saving_vs_medium"].get("all")),
           "feedback": (f"{rated} rated decisions, {down} down" if rated else "no feedback yet"),
           "down_rate": down / rated if rated else None,
           "uncovered_share": _number(uncovered_share)}
    if flag is not None:
        out.update(drift=bool(flag.flag), drift_reasons="; ".join(flag.reasons) or "none")
    return out


def _number(value):
    return None if value is None or value != value else float(value)
