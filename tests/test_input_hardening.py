"""Readers against malformed and invisible input (issue 11, classes 6, 10, 11 and 12).

Every reader answers bad input with one DataError naming the file and the line, never a traceback; text that shows
nothing is empty; what reaches an encoder is prepared in one place (controls, length cap) and the cache keys it.
"""
import json
import logging

import numpy as np
import pytest

from tests.helpers import write_jsonl
from workbench import config
from workbench.core.embed import Embedder
from workbench.dataset.embeddings import EmbeddingCache, embed_texts, load_embedded_pool
from workbench.dataset.pool import load_pool
from workbench.errors import DataError, WorkbenchError
from workbench.traffic.merge import merge_labelled
from workbench.traffic.shadow import read_shadow_log
from workbench.traffic.transcripts import read_transcripts

GOOD = {"id": "a1", "text": "write a haiku about rain", "category": "creative", "source": "written", "lang": "en",
        "label_source": "author"}
CAP = getattr(config, "MAX_TEXT_CHARS", None)  # what an encoder gets at most (None before the cap existed)
POOL_ROW = dict(GOOD, id="p1", text="an unrelated pool message")
INVISIBLE = ["\u200b\u200b", "\u200d\ufeff", " \t\u3164 ", "\x00\x01", "\u2800\u180e", "\u0301\u0301", "\u202e"]
BAD_LINES = [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"id": "x", "text": ' + "1" * 5000 + "}", "invalid JSON"),
    ('{"id": "x", "text": "hi \\ud800 there"}', "lone surrogate"),
    (json.dumps(dict(GOOD, id="x", category=["coding"], label_category=["coding"])), None),
    (json.dumps(dict(GOOD, id="x", category={"a": 1}, label_category={"a": 1})), None),
    ("[1, 2]", "expected a JSON object"),
]


class Recording(Embedder):
    """A numpy-only backend that records exactly what it was given."""

    name, model_id, dim, prefix = "recording", "recording@1", 8, ""

    def __init__(self):
        self.seen = []

    def _encode(self, texts):
        self.seen.extend(texts)
        rng = [np.random.default_rng(abs(hash(t)) % 2**32) for t in texts]
        return np.stack([r.normal(size=self.dim) for r in rng]).astype(np.float32)


def one_line(err):
    return "\n" not in str(err) and "Traceback" not in str(err)


# -- class 10: every JSONL reader, every kind of JSON failure ---------------------------------------------------


@pytest.mark.parametrize("reader, line, problem", [
    (reader, line, problem) for reader in ("pool", "transcripts", "shadow", "merge") for line, problem in BAD_LINES
    if not (reader == "transcripts" and problem is None)])  # a transcript has no category to get wrong
def test_every_jsonl_reader_names_file_and_line_for_every_json_failure(tmp_path, taxonomy, reader, line, problem):
    good = dict(GOOD, label_category="coding", intended_category="coding")
    path = write_jsonl(tmp_path / "in.jsonl", [good, line])
    calls = {"pool": lambda: load_pool(path, taxonomy), "transcripts": lambda: read_transcripts(path, fmt="text"),
             "shadow": lambda: read_shadow_log(path, taxonomy),
             "merge": lambda: merge_labelled(path, tmp_path / "out.jsonl", pool=write_jsonl(tmp_path / "p.jsonl",
                                                                                            [POOL_ROW]), taxonomy=taxonomy)}
    with pytest.raises(DataError) as e:
        calls[reader]()
    assert str(e.value).startswith(f"{path}:2: ") and one_line(e.value)
    if problem:
        assert problem in str(e.value)


def test_a_non_utf8_byte_names_its_line_and_column(tmp_path, taxonomy):
    path = tmp_path / "p.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"id": "b", "text": "caf\xe9"}\n')
    for call in (lambda: load_pool(path, taxonomy), lambda: read_transcripts(path, fmt="text")):
        with pytest.raises(DataError, match=r"p.jsonl:2: not UTF-8: byte 0xe9 at column 25"):
            call()


def test_a_utf8_bom_is_accepted_in_jsonl_and_csv(tmp_path, taxonomy):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n")
    assert list(load_pool(path, taxonomy).frame["id"]) == ["a1"]
    assert read_transcripts(path, fmt="text")[0]["text"] == GOOD["text"]
    csv = tmp_path / "m.csv"
    csv.write_bytes("\ufefftext,id\nbonjour à tous,1\n".encode("utf-8"))  # Excel's "CSV UTF-8"
    assert [r["text"] for r in read_transcripts(csv)] == ["bonjour à tous"]


def test_csv_in_cp1252_and_csv_with_a_huge_field_are_one_line_errors(tmp_path):
    cp = tmp_path / "excel.csv"
    cp.write_bytes("text\nfine\ncaf\u00e9 cr\u00e8me\n".encode("cp1252"))
    with pytest.raises(DataError, match=r"excel.csv:3: not UTF-8: byte 0xe9") as e:
        read_transcripts(cp)
    assert one_line(e.value)
    big = tmp_path / "big.csv"
    big.write_text("text\n" + '"' + "x" * 200_000 + '"\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"big.csv:\d+: a field longer than"):
        read_transcripts(big)


@pytest.mark.parametrize("export", [
    [{"mapping": {"a": "not a node"}}],
    [{"mapping": {"a": {"message": "text", "children": "b"}}}],
    [{"mapping": {"a": {"message": {"author": "user", "content": 5}, "children": [["x"]]}}}],
    [{"mapping": {"a": {"message": {"author": {"role": "user"}, "content": {"parts": "hello"}}, "children": None}}}],
    [{"id": ["not", "an", "id"], "mapping": {"a": {"message": {"author": {"role": "user"},
                                                               "content": {"parts": [{"x": 1}, "hi"]}}}}}],
])
def test_malformed_chatgpt_nodes_are_skipped_not_a_crash(tmp_path, export):
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    rows = read_transcripts(path)
    assert all(isinstance(r["text"], str) and isinstance(r["conversation"], str) for r in rows)


@pytest.mark.parametrize("yaml_text, problem", [
    ("tiers: [cheap]\ncategories: [casual, coding]\n", "'categories' must map"),
    ("tiers: [cheap]\ncategories: {casual: {tier: cheap}}\ncost: {cheap: {cheap: free}}\n", "'cost' must map"),
    ("tiers: cheap\ncategories: {casual: {tier: cheap}}\n", "'tiers' must be a list"),
    ("tiers: [cheap]\ncategories: {casual: {tier: [cheap]}}\n", "has no tier"),
    ("tiers: [cheap]\ncategories:\n  ? [a, b]\n  : {tier: cheap}\n", "a key must be a plain name"),
    ("tiers: [cheap]\n" + "x: " + "[" * 5000 + "]" * 5000 + "\n", "invalid YAML"),
])
def test_a_malformed_taxonomy_is_a_one_line_error(tmp_path, yaml_text, problem):
    from workbench.core.taxonomy import load_taxonomy

    path = tmp_path / "taxonomy.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(DataError, match=problem) as e:
        load_taxonomy(path)
    assert one_line(e.value) and str(path) in str(e.value)


def test_an_empty_pool_is_an_error_not_an_empty_frame(tmp_path, taxonomy):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no messages in the pool"):
        load_pool(path, taxonomy)


# -- class 11: invisible text and control characters -------------------------------------------------------------


@pytest.mark.parametrize("text", INVISIBLE)
def test_invisible_only_text_is_empty_for_every_reader(tmp_path, taxonomy, text):
    from workbench.core.text import has_visible_text

    assert not has_visible_text(text)
    row = dict(GOOD, text=text, label_category="coding")
    path = write_jsonl(tmp_path / "in.jsonl", [row])
    for call in (lambda: load_pool(path, taxonomy), lambda: read_shadow_log(path, taxonomy)):
        with pytest.raises(DataError, match=r"in.jsonl:1: .*('text' has no visible characters|missing or empty)"):
            call()


def test_invisible_only_text_counts_as_empty_in_the_import_filter():
    from workbench.traffic.ingest import filter_messages

    rows = [{"text": t, "conversation": None, "turn": None, "line": i, "file": "x"} for i, t in enumerate(INVISIBLE)]
    kept, s = filter_messages(rows + [dict(rows[0], text="a real question")], scrub=False)
    assert s["empty"] == len(INVISIBLE) and len(kept) == 1


def test_the_router_refuses_invisible_text(tmp_path, taxonomy):
    from tests.helpers import HashEmbedder, synthetic_pool
    from workbench.core.artifact import write_pool_npz
    from workbench.core.knn import KNNConfig
    from workbench.core.router import Router

    x, labels, ids = synthetic_pool(np.random.default_rng(0), taxonomy, per_class=3, dim=16)
    write_pool_npz(tmp_path / "p.npz", x, labels, ids, taxonomy=taxonomy, embedder_spec=HashEmbedder(16).spec,
                   config=KNNConfig(k=3))
    router = Router.load(tmp_path / "p.npz", embedder=HashEmbedder(16))
    with pytest.raises(WorkbenchError, match="text 1 has no visible characters"):
        router.route_batch(["hello there", "\u200b\u200b"])


def test_a_nul_no_longer_ends_the_text_an_encoder_sees():
    rec = Recording()
    rec.encode(["hi \0 write a quicksort in rust", "tab\tand\nnewline kept", "esc \x1b[31m and c1 \x9b"])
    assert rec.seen == ["hi   write a quicksort in rust", "tab\tand\nnewline kept", "esc  [31m and c1  "]
    from workbench.core.text import prepare_text

    assert prepare_text("lone \ud800 surrogate") == "lone \ufffd surrogate"


@pytest.mark.model
def test_the_default_backend_embeds_what_follows_a_nul(e5):
    v = e5.encode(["hi \0 write a quicksort in rust", "hi", "hi   write a quicksort in rust"])
    assert float(v[0] @ v[1]) < 0.95 and float(v[0] @ v[2]) > 0.999


# -- class 6: the length cap -------------------------------------------------------------------------------------


def test_no_encoder_gets_more_than_its_cap(tmp_path):
    rec = Recording()
    long = "word " * 50_000
    embed_texts([long, "short"], rec, cache_dir=tmp_path)
    assert [len(t) for t in rec.seen] == [CAP, 5]


def test_the_cache_keys_the_text_the_encoder_sees_so_an_uncapped_vector_is_not_reused(tmp_path):
    rec = Recording()
    long = "a long message " * 1000
    cache = EmbeddingCache(tmp_path, rec)
    # what the cache held before the cap: the raw text's key, with the vector of the whole text
    raw_key = __import__("hashlib").sha256(f"{rec.name}\0{rec.model_id}\0{long}".encode()).hexdigest()
    cache.put([raw_key], np.ones((1, rec.dim), np.float32) / np.sqrt(rec.dim))
    embed_texts([long], rec, cache_dir=tmp_path)
    from workbench.core.text import prepare_text

    assert rec.seen == [prepare_text(long, CAP)]  # blanks collapsed, then its beginning and end
    assert cache.key(long) == cache.key(prepare_text(long, CAP)) != raw_key


def test_clipped_pool_messages_are_reported_with_file_and_line(tmp_path, taxonomy, caplog):
    path = write_jsonl(tmp_path / "p.jsonl", [GOOD, dict(GOOD, id="long", text="very long " * 1000)])
    with caplog.at_level(logging.WARNING):
        pool = load_embedded_pool(path, taxonomy=taxonomy, backend=Recording(), cache_dir=tmp_path / "c")
    assert pool.clipped == [{"file": str(path), "line": 2, "id": "long", "chars": 10_000}]
    assert f"{path}:2: message 'long' has 10000 characters" in caplog.text


# -- class 12: the cache trusts only sound vectors ----------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.full(8, np.nan), np.zeros(8), np.ones(5) / np.sqrt(5), np.ones(8) * 3])
def test_an_unsound_cached_vector_is_embedded_again(tmp_path, bad):
    rec = Recording()
    cache = EmbeddingCache(tmp_path, rec)
    cache._write_shard([cache.key("hello")], bad[None, :] if bad.shape == (8,) else bad[None, :])
    v = embed_texts(["hello"], rec, cache_dir=tmp_path)
    assert rec.seen == ["hello"] and np.isfinite(v).all() and abs(np.linalg.norm(v[0]) - 1) < 1e-5
