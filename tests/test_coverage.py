"""Languages a backend covers (the scripts of a text's letters); what the composite does with a text outside them."""
import unicodedata

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import HashEmbedder
from workbench.analysis.backends import fit_part_map
from workbench.core import embed
from workbench.core.embed import BACKENDS, CompositeEmbedder, Embedder, get_embedder, load_part_map, normalize_rows
from workbench.core.scripts import covered_share, covers, script_of, scripts_of_languages
from workbench.dataset.embeddings import embed_texts
from workbench.errors import ConfigError

HINDI = "सुबह से सिर दर्द है, कुछ करने का मन नहीं कर रहा"
VIETNAMESE = "Làm sao để nấu phở ngon như ngoài quán?"
COVERED = ["write a python function that merges two sorted lists", "¿qué hora es en Lima?", "谢谢，晚安", "東京の天気は?",
           "Привет, как дела?", "2 + 2 = ?", "🙂🙂", ""]
USE_LANGUAGES = BACKENDS["use-multilingual"].languages
# letters of covered and uncovered scripts, digits, blanks, emoji
ALPHABET = list("abcxyzéüñ中文あア한글हिंदीệạơưđ Σ1🙂,?")


def test_letters_are_told_apart_by_script():
    assert [script_of(c) for c in "aéơệ中あ한हΣ1 "] == ["latin", "latin", "vietnamese", "vietnamese", "han", "kana",
                                                       "hangul", "devanagari", "greek", None, None]


def test_use_multilingual_covers_its_languages_but_not_hindi_or_vietnamese():
    assert covers(COVERED, USE_LANGUAGES) == [True] * len(COVERED)
    assert covers([HINDI, VIETNAMESE], USE_LANGUAGES) == [False, False]
    assert covers([HINDI, VIETNAMESE], None) == [True, True]  # a backend without declared languages covers all


def test_a_few_foreign_letters_leave_a_text_covered():
    text = "where is the best phở near Nguyễn Huệ street in the city centre, and is it still open after midnight"
    assert covers([text], USE_LANGUAGES) == [True]


def test_decomposed_vietnamese_is_still_vietnamese():
    assert covered_share(unicodedata.normalize("NFD", VIETNAMESE), scripts_of_languages(["en"])) < 0.95


def test_a_language_without_known_scripts_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"\['xx'\]"):
        scripts_of_languages(["en", "xx"])


class Part(Embedder):
    """A numpy-only part; ``languages`` as a backend declares them."""

    def __init__(self, name, dim, languages=None):
        self.name, self.model_id, self.dim, self.prefix, self.languages = name, f"{name}@test", dim, "", languages
        self._hash = HashEmbedder(dim)

    def _encode(self, texts):
        return self._hash.encode([f"{self.name} {t} x" for t in texts])


@pytest.fixture
def mapped(tmp_path, monkeypatch):
    """A composite whose second part covers English only, with a map into it from the first part."""
    source, target = Part("src", 8), Part("tgt", 12, languages=frozenset({"en"}))
    w = np.random.default_rng(0).normal(size=(8, 12)).astype(np.float32)
    np.savez(tmp_path / "src__tgt.npz", map=w)
    monkeypatch.setattr(embed, "MAPS_DIR", tmp_path)
    monkeypatch.setitem(embed.PART_MAPS, ("src", "tgt"), "src__tgt.npz")
    return CompositeEmbedder([source, target]), w


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(alphabet=ALPHABET, max_size=30), min_size=1, max_size=6), seed=st.integers(0, 2**16))
def test_uncovered_texts_get_the_mapped_part_and_covered_texts_stay_as_they_were(mapped, texts, seed):
    comp, w = mapped
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(len(texts), 8)), rng.normal(size=(len(texts), 12))
    v = comp.combine([a, b], texts)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    plain = comp.combine([a, b])
    for i, ok in enumerate(covers(texts, frozenset({"en"}))):
        expected = plain[i] if ok else np.hstack([normalize_rows(a[i]), normalize_rows(a[i] @ w)])[0] / np.sqrt(2)
        np.testing.assert_allclose(v[i], expected, atol=1e-5)


def test_the_router_path_and_the_cached_pool_path_embed_alike(mapped, tmp_path):
    comp, _ = mapped
    texts = ["what is the capital of peru", HINDI, VIETNAMESE, "and of chile"]
    np.testing.assert_allclose(comp.encode(texts), embed_texts(texts, comp, cache_dir=tmp_path), atol=1e-6)
    assert comp.model_id.startswith("src@test+tgt@test+map:src>tgt@")


def test_without_a_map_a_part_keeps_its_own_vector():
    comp = CompositeEmbedder([Part("p", 8), Part("q", 12, languages=frozenset({"en"}))])
    a, b = np.ones((1, 8)), np.arange(1, 13, dtype=float)[None, :]
    np.testing.assert_allclose(comp.combine([a, b], [HINDI]), comp.combine([a, b]))
    assert comp.model_id == "p@test+q@test"


def test_the_map_is_a_ridge_regression_that_recovers_a_linear_relation():
    rng = np.random.default_rng(1)
    x, true = rng.normal(size=(400, 6)), rng.normal(size=(6, 4))
    np.testing.assert_allclose(fit_part_map(x, x @ true, ridge=1e-6), true, atol=1e-4)
    with pytest.raises(ConfigError, match="same rows"):
        fit_part_map(x, x[:10] @ true)
    with pytest.raises(ConfigError, match="ridge must be > 0"):
        fit_part_map(x, x @ true, ridge=0)


def test_the_shipped_map_fits_the_default_ensemble():
    comp = get_embedder("e5-small+use-multilingual")
    w = load_part_map("e5-small", "use-multilingual")
    assert w.shape == (comp.parts[0].dim, comp.parts[1].dim) and np.isfinite(w).all()


@pytest.mark.model
def test_the_default_ensemble_gives_hindi_and_vietnamese_the_mapped_use_part(tmp_path):
    comp = get_embedder("e5-small+use-multilingual", threads=2)
    texts = [HINDI, VIETNAMESE, "write a python function that merges two sorted lists"]
    v = embed_texts(texts, comp, cache_dir=tmp_path)
    e5, use = (embed_texts(texts, p, cache_dir=tmp_path) for p in comp.parts)
    mapped_use = normalize_rows(e5 @ load_part_map("e5-small", "use-multilingual"))
    np.testing.assert_allclose(v[:2, 384:] * np.sqrt(2), mapped_use[:2], atol=1e-5)
    np.testing.assert_allclose(v[2, 384:] * np.sqrt(2), use[2], atol=1e-5)
    np.testing.assert_allclose(v, comp.encode(texts), atol=1e-3)  # what a router embeds for the same texts


def test_an_exported_pool_routes_an_uncovered_text_to_itself_and_names_its_map(mapped, tmp_path, taxonomy):
    from tests.helpers import write_jsonl
    from workbench.core.knn import KNNConfig
    from workbench.core.router import Router
    from workbench.dataset.embeddings import load_embedded_pool
    from workbench.decisions.export import export_pool
    from workbench.decisions.targets import Targets
    from workbench.errors import ArtifactError

    comp, w = mapped
    rows = [{"id": f"m{i}", "text": t, "category": c, "source": "generated", "lang": "xx", "label_source": "author"}
            for i, (t, c) in enumerate([(HINDI, "casual"), (VIETNAMESE, "simple_lookup"), ("sort in go", "coding"),
                                        ("how are you today", "casual"), ("capital of peru", "simple_lookup")])]
    pool = load_embedded_pool(write_jsonl(tmp_path / "p.jsonl", rows), taxonomy=taxonomy, backend=comp,
                              cache_dir=tmp_path / "c")
    npz = tmp_path / "pool.npz"
    export_pool(pool, npz, KNNConfig(k=2), head="knn", targets=Targets(max_abstain=None, calibration="none"),
                dtype="float32")
    router = Router.load(npz, embedder=comp)
    assert router.metadata["model_id"] == comp.model_id and "map:src>tgt@" in comp.model_id
    for text, own in ((HINDI, "m0"), (VIETNAMESE, "m1")):
        d = router.route(text)
        assert d.neighbors[0] == own and d.similarities[0] == pytest.approx(1.0, abs=1e-4)
    np.savez(tmp_path / "src__tgt.npz", map=w[::-1].copy())  # another map: another model
    with pytest.raises(ArtifactError, match="model_id"):
        Router.load(npz, embedder=CompositeEmbedder(list(comp.parts)))
