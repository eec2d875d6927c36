"""The gateway's cost: added latency and service CPU per routed message, against the bare encoder measured in the same run.

    python benchmarks/gateway.py [--backend e5-small] [--n 200] [--requests 256] [--workers 1 2] [--json PATH]

1. **Added latency.** One client sends each message to an upstream that
   answers at once, directly and through the gateway (``model: "auto"``,
   decision log on); added = gateway - direct, paired per message. Against
   the bare encoder's time for the same message (``encode([text])`` in a
   fresh process that imports what the server imports). Goal: added p50 <= encoder p50 + 5 ms.
2. **Service CPU per routed message**, read from the server processes
   (``/proc``, via psutil: the master and its workers), so the clients'
   CPU on the same cores does not count: one-message chat requests (batch
   size 1) and ``POST /route`` batches of 32, against the bare encoder's
   CPU per message at the same batch size (``time.process_time`` around
   ``encode``). Goals: <= 1.25x and <= 1.1x. Repeated for each ``--workers``.
3. **Throughput and p50/p99** through the gateway at 1, 16 and 64 clients
   (one keep-alive connection each), with the number of failed requests.

The upstream is a separate process (a minimal Starlette app on uvicorn), so
its CPU is not the gateway's.
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANSWER = {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
          "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
          "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}]}


def upstream_main(port):
    """The upstream process: answers every chat request at once."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    body = json.dumps(ANSWER).encode()

    async def chat(request):
        await request.body()
        return Response(body, media_type="application/json")

    uvicorn.run(Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])]), host="127.0.0.1",
                port=port, log_level="warning", access_log=False)


def progress(line):
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, path, proc, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process on port {port} exited")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answered on port {port}")


class Client:
    """One keep-alive connection; :meth:`post` returns (status, seconds)."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(self, path, obj):
        data = json.dumps(obj).encode()
        start = time.perf_counter()
        self.conn.request("POST", path, body=data, headers={"content-type": "application/json"})
        r = self.conn.getresponse()
        r.read()
        return r.status, time.perf_counter() - start


def chat_body(text, model="auto"):
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def server_cpu(pid):
    import psutil

    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def bare_encoder(backend, texts):
    """Per message: wall time at batch 1, and CPU seconds at batch 1 and 32."""
    from workbench.core.embed import get_embedder

    emb = get_embedder(backend)
    emb.encode(texts[:8])
    wall = []
    for t in texts:
        s = time.perf_counter()
        emb.encode([t])
        wall.append(time.perf_counter() - s)
    cpu = {}
    for size in (1, 32):
        s = time.process_time()
        for i in range(0, len(texts), size):
            emb.encode(texts[i:i + size])
        cpu[size] = (time.process_time() - s) / len(texts)
    return wall, cpu


def bare_encoder_clean(backend, texts, folder):
    """:func:`bare_encoder` in a fresh process that imports what the server imports (the core and the encoder):
    in this process, pandas and scikit-learn's thread pools (loaded by the export) slow the encoder down."""
    path = Path(folder) / "texts.json"
    path.write_text(json.dumps(texts))
    res = subprocess.run([sys.executable, __file__, "--bare", backend, str(path)], capture_output=True, text=True,
                         check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    out = json.loads(res.stdout)
    return out["wall"], {int(k): v for k, v in out["cpu"].items()}


def start_gateway(pool, upstreams, folder, workers):
    port = free_port()
    log = open(Path(folder) / f"gateway-{workers}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "serve", "--pool", str(pool), "--port", str(port),
                             "--upstreams", str(upstreams), "--decision-log", str(Path(folder) / "decisions"),
                             "--workers", str(workers)],
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), BENCH_KEY="sk-bench"),
                            stdout=log, stderr=subprocess.STDOUT)
    wait_http(port, "/healthz", proc)
    return proc, port


def drive(port, texts, clients, total):
    lat, failed, lock, it = [], [], threading.Lock(), iter(range(total))

    def run():
        c = Client(port)
        while True:
            with lock:
                i = next(it, None)
            if i is None:
                return
            try:
                status, s = c.post("/v1/chat/completions", chat_body(texts[i % len(texts)]))
            except OSError as e:
                failed.append(repr(e))
                c = Client(port)
                continue
            (lat if status == 200 else failed).append(s if status == 200 else status)

    start = time.perf_counter()
    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, failed, time.perf_counter() - start


def cpu_per_message(proc, port, texts, batch):
    c = Client(port)
    c.post("/route", {"text": "warm-up"})
    before = server_cpu(proc.pid)
    for i in range(0, len(texts), batch):
        group = texts[i:i + batch]
        if batch == 1:
            assert c.post("/v1/chat/completions", chat_body(group[0]))[0] == 200
        else:
            assert c.post("/route", {"messages": [{"text": t} for t in group]})[0] == 200
    return (server_cpu(proc.pid) - before) / len(texts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="e5-small")
    ap.add_argument("--n", type=int, default=200, help="messages for the latency and CPU measures")
    ap.add_argument("--requests", type=int, default=256, help="requests per concurrency level")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="gateway processes to measure CPU with")
    ap.add_argument("--max-chars", type=int, default=200, help="longest pool message used")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--upstream", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--bare", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.upstream:
        return upstream_main(args.upstream)
    if args.bare:
        wall, cpu = bare_encoder(args.bare[0], json.loads(Path(args.bare[1]).read_text()))
        return print(json.dumps({"wall": wall, "cpu": cpu}))
    from workbench.core.knn import KNNConfig
    from workbench.dataset.embeddings import load_embedded_pool
    from workbench.decisions.export import export_pool

    from workbench.decisions.targets import Targets

    folder = tempfile.mkdtemp(prefix="bench-gateway-")
    pool = load_embedded_pool(backend=args.backend)
    progress(f"pool embedded: {len(pool.vectors)} rows")
    # the k-NN vote without fitted targets: the export is quick, and routing costs what it costs with any head
    export_pool(pool, Path(folder) / "pool.npz", KNNConfig(k=15), head="knn",
                targets=Targets(max_abstain=None, calibration="none"))
    progress("pool exported")
    # chat-sized messages (at most --max-chars): the encoder's cost grows with the tokens
    texts = [t for t in dict.fromkeys(pool.frame["text"].tolist()) if len(t) <= args.max_chars][:max(args.n, 64)]
    texts = (texts * (args.n // len(texts) + 1))[:args.n]
    up_port = free_port()
    upstream = subprocess.Popen([sys.executable, __file__, "--upstream", str(up_port)])
    wait_http(up_port, "/", upstream)
    tiers = pool.taxonomy.tiers if hasattr(pool, "taxonomy") else ["cheap", "medium", "strong"]
    (Path(folder) / "upstreams.yaml").write_text("tiers:\n" + "".join(
        f"  {t}: {{base_url: 'http://127.0.0.1:{up_port}/v1', model: m-{t}, api_key_env: BENCH_KEY}}\n" for t in tiers))
    out = {"backend": args.backend, "n": args.n}
    try:
        wall, bare_cpu = bare_encoder_clean(args.backend, texts, folder)
        progress("bare encoder measured")
        proc, port = start_gateway(Path(folder) / "pool.npz", Path(folder) / "upstreams.yaml", folder, 1)
        try:
            direct, through = Client(up_port), Client(port)
            for t in texts[:10]:  # warm both paths
                direct.post("/v1/chat/completions", chat_body(t, "m-cheap"))
                through.post("/v1/chat/completions", chat_body(t))
            added, d_lat, g_lat = [], [], []
            for t in texts:
                d = direct.post("/v1/chat/completions", chat_body(t, "m-cheap"))[1]
                g = through.post("/v1/chat/completions", chat_body(t))[1]
                d_lat.append(d), g_lat.append(g), added.append(g - d)
            out["latency_ms"] = {"direct_p50": 1e3 * pct(d_lat, 50), "gateway_p50": 1e3 * pct(g_lat, 50),
                                 "added_p50": 1e3 * pct(added, 50), "added_p99": 1e3 * pct(added, 99),
                                 "encoder_p50": 1e3 * pct(wall, 50), "encoder_p99": 1e3 * pct(wall, 99)}
            progress("added latency measured")
            out["load"] = {}
            for clients in (1, 16, 64):
                lat, failed, secs = drive(port, texts, clients, args.requests)
                out["load"][clients] = {"rps": len(lat) / secs, "p50_ms": 1e3 * pct(lat, 50) if lat else None,
                                        "p99_ms": 1e3 * pct(lat, 99) if lat else None, "failed": len(failed)}
        finally:
            proc.terminate()
            proc.wait(60)
        out["cpu"] = {}
        progress("load levels done")
        for workers in args.workers:
            proc, port = start_gateway(Path(folder) / "pool.npz", Path(folder) / "upstreams.yaml", folder, workers)
            try:
                one, many = cpu_per_message(proc, port, texts, 1), cpu_per_message(proc, port, texts, 32)
            finally:
                proc.terminate()
                proc.wait(60)
            out["cpu"][workers] = {"chat_1_ms": 1e3 * one, "route_32_ms": 1e3 * many,
                                   "ratio_1": one / bare_cpu[1], "ratio_32": many / bare_cpu[32]}
        out["bare_cpu_ms"] = {1: 1e3 * bare_cpu[1], 32: 1e3 * bare_cpu[32]}
    finally:
        upstream.terminate()
        upstream.wait(30)
    report(out)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


def report(out):
    lat = out["latency_ms"]
    print(f"backend {out['backend']}, {out['n']} messages")
    print(f"added latency: p50 {lat['added_p50']:.2f} ms, p99 {lat['added_p99']:.2f} ms "
          f"(direct p50 {lat['direct_p50']:.2f} ms, gateway p50 {lat['gateway_p50']:.2f} ms); bare encoder p50 "
          f"{lat['encoder_p50']:.2f} ms, p99 {lat['encoder_p99']:.2f} ms; goal added p50 <= encoder + 5 ms: "
          f"{'met' if lat['added_p50'] <= lat['encoder_p50'] + 5 else 'NOT met'}")
    print(f"bare encoder CPU per message: batch 1 {out['bare_cpu_ms'][1]:.2f} ms, batch 32 {out['bare_cpu_ms'][32]:.2f} ms")
    for w, c in out["cpu"].items():
        print(f"--workers {w}: server CPU per routed message: chat (batch 1) {c['chat_1_ms']:.2f} ms = "
              f"{c['ratio_1']:.2f}x (goal <= 1.25x), /route batches of 32 {c['route_32_ms']:.2f} ms = "
              f"{c['ratio_32']:.2f}x (goal <= 1.1x)")
    print(f"{'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'failed':>6}")
    for clients, r in out["load"].items():
        print(f"{clients:>7} {r['rps']:>8.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['failed']:>6}")


if __name__ == "__main__":
    main()
