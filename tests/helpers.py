"""Helpers shared by the tests: paths, small files, synthetic vectors, a numpy-only embedder, the CLI in a subprocess."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
XSS = "<script>window.__xss=1</script><img src=x onerror=alert(1)>"
#: Hostile messages the nightly fixture adds to its pool: every page must show them as text.
XSS_SCRIPT = "<script>window.__xss=1</script> can you fix my script tag please"
XSS_ROWS = [
    {"id": "xss-1", "text": XSS_SCRIPT},
    {"id": "xss-2", "text": XSS_SCRIPT + "?!"},
    {"id": "xss-3", "text": '<img src=x onerror="window.__xss=2"> why does this image not load'},
]


def write_jsonl(path, rows):
    """Write rows (dicts, or raw strings kept as they are) one per line."""
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def log_lines(folder, pattern):
    """The complete lines of a live log's files (``decisions-*.jsonl``, ``feedback-*.jsonl``), as the package reads them:
    the gateway may be appending a line while a test polls."""
    from workbench.io import read_jsonl

    return [obj for f in sorted(Path(folder).glob(pattern)) for _, obj in read_jsonl(f, live=True)]


def unit_rows(rng, n, d):
    """``n`` random unit vectors of dimension ``d`` (float32)."""
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def run_cli(*args, stdin=None, env=None, timeout=600):
    """``python -m workbench ARGS`` in the project root; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "workbench", *map(str, args)], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=timeout)


class HashEmbedder:
    """A deterministic numpy-only stand-in for an embedding backend (for tests that must not load a model).

    Texts sharing words get similar vectors: each word adds a pseudo-random unit vector seeded by its hash.
    """

    name = "test-hash"
    model_id = "test-hash@1"
    prefix = ""

    def __init__(self, dim=32):
        self.dim = dim

    @property
    def spec(self):
        return {"backend": self.name, "model_id": self.model_id, "dim": self.dim, "prefix": self.prefix}

    def encode(self, texts):
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for w in (t.lower().split() or [""]):
                seed = int.from_bytes(hashlib.sha256(w.encode()).digest()[:8], "little")
                out[i] += np.random.default_rng(seed).normal(size=self.dim)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def synthetic_pool(rng, taxonomy, per_class=12, dim=16, spread=0.35):
    """Labelled unit vectors clustered per category: ``(vectors, labels, ids)``."""
    n_cls = len(taxonomy.categories)
    centers = unit_rows(rng, n_cls, dim)
    labels = np.repeat(np.arange(n_cls), per_class)
    x = centers[labels] + spread * rng.normal(size=(len(labels), dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels, np.array([f"m{i}" for i in range(len(labels))])


class _ExternalRefs(HTMLParser):
    """Collect src/href of elements that would load something (scripts, styles, images, frames)."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if tag != "a" and name in ("src", "href") and value and "://" in value:
                self.found.append((tag, value))


def external_refs(path):
    """Every network reference of an HTML page (should be none: reports read offline)."""
    p = _ExternalRefs()
    p.feed(Path(path).read_text(encoding="utf-8"))
    return p.found


def notebook_strip_keys():
    """The run metadata the Makefile's git filter strips besides outputs (``NB_STRIP_KEYS``)."""
    import re

    text = (ROOT / "Makefile").read_text()
    return " ".join(re.search(r"^NB_STRIP_KEYS := ((?:.*\\\n)*.*)$", text, re.M).group(1).replace("\\\n", " ").split())


def as_committed(path):
    """A notebook's text as the git filter stores it (nbstripout with the Makefile's extra keys)."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "nbstripout", "--textconv", "--extra-keys", notebook_strip_keys(),
                           str(path)], capture_output=True, text=True, check=True, encoding="utf-8").stdout
