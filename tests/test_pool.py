import pytest

from tests.helpers import write_jsonl
from workbench.errors import DataError
from workbench.dataset.pool import load_pool

GOOD = {"id": "a1", "text": "hello there", "category": "casual", "source": "generated", "lang": "en",
        "label_source": "author"}


def row(**kw):
    return dict(GOOD, **kw)


def test_loads_rows_with_tier_and_location(tmp_path, taxonomy):
    p = write_jsonl(tmp_path / "p.jsonl", [row(), row(id="a2", text="sort this list in python", category="coding")])
    df = load_pool(p, taxonomy).frame
    assert list(df["id"]) == ["a1", "a2"]
    assert list(df["tier"]) == ["cheap", "strong"]
    assert list(df["line"]) == [1, 2]


@pytest.mark.parametrize("bad, message", [
    ('{"id": "x", "text": ', r"p\.jsonl:2: invalid JSON"),
    (row(id="x", text="   "), r"p\.jsonl:2: missing or empty 'text'"),
    (row(id="x", text="hola", category="smalltalk"), r"p\.jsonl:2: unknown category 'smalltalk'"),
    (row(text="something else"), r"p\.jsonl:2: duplicate id 'a1' \(first at .*p\.jsonl:1\)"),
    ('[1, 2]', r"p\.jsonl:2: expected a JSON object"),
])
def test_bad_input_names_file_line_and_problem(tmp_path, taxonomy, bad, message):
    p = write_jsonl(tmp_path / "p.jsonl", [row(), bad])
    with pytest.raises(DataError, match=message):
        load_pool(p, taxonomy)


def test_exact_duplicates_after_normalisation_are_dropped_and_reported(tmp_path, taxonomy):
    p = write_jsonl(tmp_path / "p.jsonl", [row(), row(id="a2", text="  HELLO\tthere "), row(id="a3", text="bye")])
    loaded = load_pool(p, taxonomy)
    assert list(loaded.frame["id"]) == ["a1", "a3"]
    assert loaded.dropped == [{"id": "a2", "kept_id": "a1", "file": str(p), "line": 2, "same_label": True}]


def test_input_file_is_never_rewritten(tmp_path, taxonomy):
    p = write_jsonl(tmp_path / "p.jsonl", [row(), row(id="a2", text="hello THERE")])
    before = p.read_bytes()
    load_pool(p, taxonomy)
    assert p.read_bytes() == before


def test_bundled_pool_loads_cleanly(taxonomy):
    df = load_pool(None, taxonomy).frame
    assert len(df) > 0 and set(df["category"]) <= set(taxonomy.categories)
