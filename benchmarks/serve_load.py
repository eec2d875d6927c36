"""The router service under load, against the bare encoder's best throughput measured in the same run.

    python benchmarks/serve_load.py [--backends e5-small use-multilingual] [--requests 96] [--json PATH]

Per backend: export the bundled pool, measure the bare encoder's best
throughput (``encode`` in batches of 1, 8, 32 and 128 messages, best kept:
the limit on this machine), then start ``workbench serve`` on 127.0.0.1 and
drive it with 1, 8 and 32 concurrent clients (one keep-alive connection
each, one message per request) for ``--requests`` requests per level:
throughput, p50/p95/p99 latency, errors and the ratio of served throughput
to the bare encoder's. Then 32 clients again while the pool file is
replaced atomically three times (alternating two valid pools): failed
requests must be 0. Last, 32 clients against a server with micro-batching
off (``--max-batch 1``): what batching is worth for the backend.
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def export(backend, directory):
    from workbench.core.knn import KNNConfig
    from workbench.dataset.embeddings import load_embedded_pool
    from workbench.decisions.export import export_pool

    pool = load_embedded_pool(backend=backend)
    paths = [Path(directory) / f"{backend}-{k}.npz" for k in (7, 9)]
    for k, path in zip((7, 9), paths):
        export_pool(pool, path, KNNConfig(k=k))
    return paths, pool.frame["text"].tolist()


def bare_encoder(backend, texts, n):
    from workbench.core.embed import get_embedder

    emb = get_embedder(backend)
    emb.encode(texts[:8])
    best = {}
    for size in (1, 8, 32, 128):
        sample = texts[:n]
        start = time.perf_counter()
        for i in range(0, len(sample), size):
            emb.encode(sample[i:i + size])
        best[size] = len(sample) / (time.perf_counter() - start)
    return best


def drive(port, texts, clients, total, on_tick=None):
    """``total`` single-message requests from ``clients`` threads; returns latencies (s), errors and wall time."""
    latencies, errors, lock = [], [], threading.Lock()
    counter = iter(range(total))

    def client(seed):
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            body = json.dumps({"text": rng.choice(texts)}).encode()
            start = time.perf_counter()
            try:
                conn.request("POST", "/route", body=body, headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                status = r.status
            except (OSError, http.client.HTTPException) as e:
                status = repr(e)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            with lock:
                (latencies if status == 200 else errors).append(time.perf_counter() - start if status == 200
                                                                 else status)
                if on_tick is not None:
                    on_tick(i)
        conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - start


def http_get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] * 1000 if v else float("nan")


def start_server(pool, port, *extra):
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "serve", "--pool", str(pool), "--port", str(port),
                             *extra],
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not start: {proc.stderr.read()}")


def bench(backend, requests, directory):
    (pool_a, pool_b), texts = export(backend, directory)
    texts = random.Random(0).sample(texts, len(texts))
    bare = bare_encoder(backend, texts, min(256, len(texts)))
    best = max(bare.values())
    served = Path(directory) / f"served-{backend}.npz"
    served.write_bytes(pool_a.read_bytes())
    port = free_port()
    proc = start_server(served, port)
    rows = []
    try:
        drive(port, texts, 4, 8)  # warm-up
        for clients in (1, 8, 32):
            lat, err, wall = drive(port, texts, clients, requests)
            rows.append({"clients": clients, "requests": requests, "throughput": len(lat) / wall,
                         "p50_ms": pct(lat, 0.5), "p95_ms": pct(lat, 0.95), "p99_ms": pct(lat, 0.99),
                         "errors": len(err), "ratio_to_bare": len(lat) / wall / best})
        done, replaced = [0], []

        def replacer():
            # three atomic replacements spread over the run (alternating two valid pools), each one waited for
            # until /healthz serves it, so every one is a reload under traffic
            for n, mark in enumerate((requests // 4, requests // 2, 3 * requests // 4)):
                while done[0] < mark:
                    time.sleep(0.01)
                src = pool_b if n % 2 == 0 else pool_a
                tmp = served.with_suffix(".tmp")
                tmp.write_bytes(src.read_bytes())
                os.replace(tmp, served)
                want = hashlib.sha256(src.read_bytes()).hexdigest()
                while json.loads(http_get(port, "/healthz"))["pool_sha256"] != want:
                    time.sleep(0.05)
                replaced.append(done[0])

        t = threading.Thread(target=replacer)
        t.start()
        lat, err, wall = drive(port, texts, 32, requests, on_tick=lambda i: done.__setitem__(0, done[0] + 1))
        t.join()
        text = http_get(port, "/metrics")
        reloads = sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                      if line.startswith('workbench_pool_reloads_total{result="ok"}'))
        reload_row = {"clients": 32, "requests": requests, "replacements": len(replaced), "reloads_ok": reloads,
                      "failed_requests": len(err), "throughput": len(lat) / wall, "p99_ms": pct(lat, 0.99)}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    # the same 32 clients with micro-batching off: what batching is worth for this backend
    port = free_port()
    proc = start_server(served, port, "--max-batch", "1")
    try:
        drive(port, texts, 4, 8)
        lat, err, wall = drive(port, texts, 32, requests)
        unbatched = {"clients": 32, "requests": requests, "throughput": len(lat) / wall, "p50_ms": pct(lat, 0.5),
                     "p99_ms": pct(lat, 0.99), "errors": len(err), "ratio_to_bare": len(lat) / wall / best}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    return {"backend": backend, "bare_encoder_msgs_per_s": bare, "bare_best": best, "load": rows,
            "reload": reload_row, "unbatched_32": unbatched}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", nargs="+", default=["e5-small", "use-multilingual"])
    ap.add_argument("--requests", type=int, default=96, help="requests per concurrency level")
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends:
            r = bench(backend, args.requests, tmp)
            results.append(r)
            bare = ", ".join(f"batch {k}: {v:.1f}" for k, v in r["bare_encoder_msgs_per_s"].items())
            print(f"\n{backend}: bare encoder msg/s ({bare}); best {r['bare_best']:.1f}")
            print(f"{'clients':>7} {'msg/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6} {'vs bare':>8}")
            for row in r["load"]:
                print(f"{row['clients']:>7} {row['throughput']:>8.1f} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} "
                      f"{row['p99_ms']:>8.1f} {row['errors']:>6} {row['ratio_to_bare']:>7.2f}x")
            ub = r["unbatched_32"]
            print(f"32 clients, micro-batching off (--max-batch 1): {ub['throughput']:.1f} msg/s "
                  f"({ub['ratio_to_bare']:.2f}x bare), p50 {ub['p50_ms']:.0f} ms, {ub['errors']} errors")
            rl = r["reload"]
            print(f"32 clients with {rl['replacements']} pool replacements ({rl['reloads_ok']} reloads): "
                  f"{rl['failed_requests']} failed request(s), {rl['throughput']:.1f} msg/s, p99 {rl['p99_ms']:.0f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
