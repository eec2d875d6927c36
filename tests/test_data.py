"""The bundled data set holds what the datasheet promises (issue: the pool data set)."""
import pytest

from tests.helpers import ROOT
from workbench.dataset.duplicates import shared_openings

MIN_TOTAL, MIN_PER_CATEGORY, MIN_LANGUAGES = 1800, 200, 12


@pytest.fixture(scope="module")
def pool_frame(taxonomy):
    from workbench.dataset.pool import load_pool

    loaded = load_pool(ROOT / "data" / "pool", taxonomy)
    assert not loaded.dropped
    return loaded.frame


def test_pool_size_and_every_category(pool_frame, taxonomy):
    assert len(pool_frame) >= MIN_TOTAL
    counts = pool_frame["category"].value_counts()
    assert set(counts.index) == set(taxonomy.categories)
    assert counts.min() >= MIN_PER_CATEGORY
    assert set(pool_frame["source"]) == {"generated"} and set(pool_frame["label_source"]) == {"author"}


def test_languages_english_at_most_half_chinese_at_least_a_fifth(pool_frame):
    base = pool_frame["lang"].str.split(r"[+-]", regex=True).str[0]
    assert base.nunique() >= MIN_LANGUAGES
    assert (pool_frame["lang"] == "en").mean() <= 0.5
    assert (base == "zh").mean() >= 0.2
    assert (pool_frame["lang"] == "zh-Hant").sum() > 0
    assert pool_frame["lang"].str.contains("+", regex=False).sum() >= 50


def test_boundary_cases_are_at_least_a_fifth(pool_frame):
    assert pool_frame["boundary"].notna().mean() >= 0.2


def test_lengths_range_from_a_word_to_paragraphs(pool_frame):
    length = pool_frame["text"].str.len()
    assert length.min() <= 5 and length.max() >= 400
    assert (pool_frame["text"].str.count("\n\n") >= 1).sum() >= 20


def test_no_two_messages_share_an_opening_frame(pool_frame):
    assert shared_openings(pool_frame["text"]) == {}


def test_fewer_than_one_percent_have_a_near_duplicate(bundled_pool):
    from workbench.dataset.duplicates import diversity_summary

    assert diversity_summary(bundled_pool.vectors, 0.95)["near_duplicate_share"] < 0.01


def test_no_external_benchmark_prompt_is_in_the_pool(pool_frame):
    from workbench.io import normalize_text, read_jsonl

    external = ROOT.parent / "shared" / "external"
    if not external.is_dir():
        pytest.skip("../shared/external is not beside this checkout")
    theirs = {normalize_text(obj["text"]) for f in external.glob("*.jsonl") for _, obj in read_jsonl(f)}
    ours = set(pool_frame["text"].map(normalize_text))
    assert not ours & theirs


def test_template_set_is_about_sixty_per_category_and_not_in_the_pool(taxonomy, pool_frame):
    from workbench.dataset.pool import load_pool

    tpl = load_pool(ROOT / "data" / "templates", taxonomy).frame
    counts = tpl["category"].value_counts()
    assert set(counts.index) == set(taxonomy.categories) and counts.between(50, 70).all()
    assert set(tpl["source"]) == {"template"}
    assert not set(tpl["id"]) & set(pool_frame["id"])


def test_datasheet_tables_are_current(bundled_pool, taxonomy, e5, cache_dir):
    from workbench import config
    from workbench.dataset.datasheet import datasheet_tables, update_datasheet
    from workbench.dataset.embeddings import load_embedded_pool

    templates = load_embedded_pool(ROOT / "data" / "templates", taxonomy=taxonomy, backend=e5, cache_dir=cache_dir)
    tables = datasheet_tables(bundled_pool, templates, transcripts_dir=ROOT / "data" / "transcripts")
    assert not update_datasheet(ROOT / "data" / "README.md", tables, check=True), \
        "data/README.md tables are stale: run `workbench datasheet`"
    assert config.POOL_DIR == ROOT / "data" / "pool"
