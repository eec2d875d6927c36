"""Make the bundled decision-log sample ``data/traffic/``: the bundled conversations and transcripts routed through the
real gateway (``workbench serve --upstreams``) with three test upstreams on 127.0.0.1, over 14 days.

    python scripts/make_traffic_sample.py [--pool reports/pool.npz] [--out data/traffic] [--per-day 70]

What it does, in order (seeded: the same pool gives the same traffic):

1. starts three OpenAI-compatible upstreams written for this script (answers at once; ``usage`` counts tokens from
   the message length, the answer length by tier; the cheap one fails with 500 on about 1 request in 40, so the
   gateway falls back and says so in the record);
2. starts ``workbench serve --pool POOL --upstreams ... --decision-log TMP`` in a subprocess (anonymous, loopback);
3. for each of 14 days, draws ``--per-day`` conversations (seeded) from ``data/conversations`` and
   ``data/transcripts`` and sends their user turns one request per turn, with the earlier turns in ``messages``
   and the conversation in ``user``, through the official ``openai`` client. The last day draws three times as many
   conversations that open with a strong-tier task, so the sample's latest day shows the
   drift flag, and adds a few seeded messages unlike any chat message (``analysis.coverage.uncovered_probes``);
4. the gateway stamps the time it ran: afterwards every record is re-stamped to its day (times seeded within the
   day, turns a minute or two apart) and written to ``decisions-YYYY-MM-DD.jsonl``, sorted by time. Request ids
   are given by the script (``x-request-id``), so they are stable; ``routing_ms`` and ``upstream_ms`` are measured
   and differ between runs;
5. writes ``feedback-YYYY-MM-DD.jsonl`` for a seeded 4% of the requests in the format of ``POST /v1/feedback``.

Without ``--pool`` the bundled pool is exported first (``workbench export``, a minute or two).
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DAYS = [datetime.date(2026, 11, 22) + datetime.timedelta(days=i) for i in range(14)]
MODELS = {"cheap": "small-chat", "medium": "mid-chat", "strong": "big-chat"}
PRICES = {"cheap": (0.10, 0.40), "medium": (0.50, 1.50), "strong": (3.00, 15.00)}  # $/Mtok in, out
ANSWER_TOKENS = {"cheap": (40, 220), "medium": (120, 520), "strong": (300, 1400)}


def stable(text, mod):
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) % mod


def upstream_app(tier):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def chat(request):
        body = await request.json()
        last = next((m.get("content") for m in reversed(body["messages"]) if m.get("role") == "user"), "") or ""
        if tier == "cheap" and stable("fail" + str(last), 40) == 0:
            return JSONResponse({"error": {"message": "cheap upstream overloaded"}}, status_code=500)
        prompt = 12 + sum(len(str(m.get("content") or "")) for m in body["messages"]) // 4
        low, high = ANSWER_TOKENS[tier]
        completion = low + stable(tier + str(last), high - low)
        return JSONResponse({"id": "chatcmpl-sample", "object": "chat.completion", "created": 0, "model": body["model"],
                             "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                       "total_tokens": prompt + completion},
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": f"({tier} answer)"}}]})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


def start_upstreams():
    import uvicorn

    from tests.fake_upstream import free_port

    out = {}
    for tier in MODELS:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(upstream_app(tier), host="127.0.0.1", port=port, log_level="critical",
                                               lifespan="off"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.02)
        out[tier] = (server, f"http://127.0.0.1:{port}/v1")
    return out


def upstreams_yaml(urls):
    lines = ["alias: auto", "abstain_tier: medium", "on_upstream_failure: fallback", "tiers:"]
    fallback = {"cheap": ["medium"], "medium": ["strong"], "strong": ["medium"]}
    for tier, url in urls.items():
        spec = dict(base_url=url, model=MODELS[tier], api_key_env=f"{tier.upper()}_API_KEY", timeout_s=30, retries=0,
                    fallback=fallback[tier], price_in_per_mtok=PRICES[tier][0], price_out_per_mtok=PRICES[tier][1])
        lines.append(f"  {tier}: {json.dumps(spec)}")
    return "\n".join(lines) + "\n"


def conversations(taxonomy):
    """``[(id, opens with a strong-tier task, [user turns])]`` of data/conversations and data/transcripts."""
    from workbench.traffic.transcripts import read_transcripts

    out = []
    for f in sorted((ROOT / "data" / "conversations").glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            c = json.loads(line)
            strong = taxonomy.tier_of(c["turns"][0]["category"]) == "strong"
            out.append((c["conversation_id"], strong, [t["text"] for t in c["turns"]]))
    for f in sorted((ROOT / "data" / "transcripts").glob("sample_*")):
        groups = {}
        for row in read_transcripts(f, text_column="message"):
            if row["text"].strip():
                groups.setdefault(row["conversation"] or f"{f.stem}-{row['line']}", []).append(row["text"])
        out += [(f"{f.stem}-{k}", False, v) for k, v in groups.items()]
    return out


def plan(convs, per_day, seed):
    """``[(day index, conversation id, turns)]``: the conversations each day sends (seeded)."""
    import numpy as np

    from workbench.analysis.coverage import uncovered_probes

    rng = np.random.default_rng(seed)
    strong = [i for i, c in enumerate(convs) if c[1]]
    out = []
    for d in range(len(DAYS)):
        picks = list(rng.choice(len(convs), per_day, replace=False))
        if d == len(DAYS) - 1:  # the latest day: more strong-tier conversations, and messages unlike any chat
            picks += list(rng.choice(strong, 2 * per_day // 3, replace=False))
        out += [(d, f"{convs[i][0]}@{DAYS[d]}#{n}", convs[i][2]) for n, i in enumerate(picks)]
    out += [(len(DAYS) - 1, f"probe@{DAYS[-1]}#{n}", [t]) for n, t in enumerate(uncovered_probes(12, seed=seed))]
    return out


def send(base_url, jobs):
    """One request per user turn; returns ``{request_id: (day index, conversation, turn)}``."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="sample", max_retries=0, timeout=60)
    sent = {}
    for j, (day, conv, turns) in enumerate(jobs):
        messages = []
        for t, text in enumerate(turns, 1):
            messages.append({"role": "user", "content": text})
            rid = f"s{DAYS[day]:%m%d}-{j:04d}-{t}"
            reply = client.chat.completions.create(model="auto", messages=messages, user=conv,
                                                   extra_headers={"x-request-id": rid})
            messages.append({"role": "assistant", "content": reply.choices[0].message.content})
            sent[rid] = (day, conv, t)
        if j % 100 == 0:
            print(f"{j}/{len(jobs)} conversations", file=sys.stderr, flush=True)
    return sent


def restamp(log_dir, sent, out_dir, seed):
    """Records to their planned day (seeded times), one ``decisions-<day>.jsonl`` a day, sorted by time."""
    import numpy as np

    rng = np.random.default_rng(seed + 1)
    records = [json.loads(line) for f in sorted(Path(log_dir).glob("decisions-*.jsonl"))
               for line in f.read_text(encoding="utf-8").splitlines()]
    start = {}
    by_day = {}
    for rec in sorted(records, key=lambda r: r["request_id"]):
        day, conv, turn = sent[rec["request_id"]]
        if conv not in start:
            start[conv] = float(rng.uniform(6 * 3600, 22 * 3600))
        t = start[conv] + (turn - 1) * float(rng.uniform(40, 150))
        stamp = datetime.datetime.combine(DAYS[day], datetime.time()) + datetime.timedelta(seconds=t)
        rec["time"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
        by_day.setdefault(DAYS[day], []).append(rec)
    for day, recs in by_day.items():
        recs.sort(key=lambda r: (r["time"], r["request_id"]))
        (out_dir / f"decisions-{day}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    return by_day


def feedback(by_day, out_dir, seed, share=0.04):
    """Seeded ratings of ``share`` of the requests (down more often for cheaper tiers), ``POST /v1/feedback``'s format."""
    import numpy as np

    rng = np.random.default_rng(seed + 2)
    down_p, up = {"cheap": 0.35, "medium": 0.2, "strong": 0.1}, {"cheap": "medium", "medium": "strong"}
    for day, recs in sorted(by_day.items()):
        rows = []
        for rec in recs:
            if rec.get("tier") and rng.random() < share:
                down = rng.random() < down_p[rec["tier"]]
                when = datetime.datetime.fromisoformat(rec["time"].replace("Z", "+00:00")) + datetime.timedelta(minutes=3)
                rows.append({"time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "request_id": rec["request_id"],
                             "rating": "down" if down else "up",
                             "tier_wanted": up.get(rec["tier"]) if down and rng.random() < 0.6 else None})
        if rows:
            (out_dir / f"feedback-{day}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def gateway(pool, folder, urls):
    from tests.fake_upstream import free_port

    port = free_port()
    (folder / "upstreams.yaml").write_text(upstreams_yaml(urls))
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{f"{t.upper()}_API_KEY": f"sk-sample-{t}" for t in MODELS})
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "serve", "--pool", str(pool), "--port", str(port),
                             "--upstreams", str(folder / "upstreams.yaml"), "--decision-log", str(folder / "log")],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(folder / "gateway.log", "w"))
    for _ in range(1500):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read()
            return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"the gateway exited: {(folder / 'gateway.log').read_text()[-2000:]}")
            time.sleep(0.2)
    raise SystemExit("the gateway did not start")


def main(argv=None):
    from workbench.core.taxonomy import load_taxonomy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", help="pool.npz to serve (default: export the bundled pool first)")
    ap.add_argument("--out", default=str(ROOT / "data" / "traffic"))
    ap.add_argument("--per-day", type=int, default=70, help="conversations a day")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pool = args.pool
        if pool is None:
            pool = tmp / "pool.npz"
            subprocess.run([sys.executable, "-m", "workbench", "export", "--out", str(pool)], cwd=ROOT, check=True,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)))
        jobs = plan(conversations(load_taxonomy()), args.per_day, args.seed)
        ups = start_upstreams()
        proc, base_url = gateway(pool, tmp, {t: url for t, (_, url) in ups.items()})
        try:
            sent = send(base_url, jobs)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        out.mkdir(parents=True, exist_ok=True)
        for old in list(out.glob("decisions-*.jsonl")) + list(out.glob("feedback-*.jsonl")):
            old.unlink()
        by_day = restamp(tmp / "log", sent, out, args.seed)
        feedback(by_day, out, args.seed)
    print(f"{sum(len(v) for v in by_day.values())} decision records over {len(by_day)} days in {out}")


if __name__ == "__main__":
    main()
