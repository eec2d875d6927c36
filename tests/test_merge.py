import json

import pytest

from tests.helpers import write_jsonl
from workbench.errors import ConfigError, DataError
from workbench.traffic.merge import merge_labelled

LABELLED = [
    {"id": "real-aaa", "text": "how do I undo the last git commit", "category": "coding", "lang": "en",
     "label_source": "llama-3.1-8b-instant", "conversation": "c1", "turn": 1, "origin": "x.jsonl:1"},
    {"id": "real-bbb", "text": "buenas noches", "category": "casual", "lang": "es", "label_source": "llama-3.1-8b-instant"},
]
POOL = [{"id": "p1", "text": "Buenas noches", "category": "casual", "source": "generated", "lang": "es",
         "label_source": "author"},
        {"id": "p2", "text": "fizzbuzz in kotlin", "category": "coding", "source": "generated", "lang": "en",
         "label_source": "author"}]


@pytest.fixture
def pool(tmp_path):
    return write_jsonl(tmp_path / "pool.jsonl", POOL)


def test_merge_writes_a_new_pool_file_with_source_real(pool, taxonomy, tmp_path):
    out = tmp_path / "real.jsonl"
    s = merge_labelled(write_jsonl(tmp_path / "l.jsonl", LABELLED), out, pool=pool, taxonomy=taxonomy)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert s == {"written": 1, "skipped_in_pool": 1, "out": str(out)}  # 'buenas noches' is already in the pool
    assert rows == [{"id": "real-aaa", "text": LABELLED[0]["text"], "category": "coding", "source": "real",
                     "lang": "en", "label_source": "llama-3.1-8b-instant", "conversation": "c1", "turn": 1,
                     "origin": "x.jsonl:1"}]


def test_merged_file_loads_as_part_of_the_pool(pool, taxonomy, tmp_path):
    from workbench.dataset.pool import load_pool

    out = tmp_path / "real.jsonl"
    merge_labelled(write_jsonl(tmp_path / "l.jsonl", LABELLED), out, pool=pool, taxonomy=taxonomy)
    frame = load_pool([pool, out], taxonomy).frame
    assert sorted(frame["source"]) == ["generated", "generated", "real"]


def test_an_id_already_in_the_pool_is_refused(pool, taxonomy, tmp_path):
    path = write_jsonl(tmp_path / "l.jsonl", [LABELLED[0], dict(LABELLED[0], id="p2", text="other")])
    with pytest.raises(DataError, match=r"l.jsonl:2: id 'p2' already in the pool at .*pool.jsonl:2"):
        merge_labelled(path, tmp_path / "real.jsonl", pool=pool, taxonomy=taxonomy)


def test_an_existing_output_is_never_rewritten(pool, taxonomy, tmp_path):
    out = write_jsonl(tmp_path / "real.jsonl", [POOL[0]])
    before = out.read_bytes()
    with pytest.raises(ConfigError, match="must be a new file"):
        merge_labelled(write_jsonl(tmp_path / "l.jsonl", LABELLED), out, pool=pool, taxonomy=taxonomy)
    assert out.read_bytes() == before


def test_a_row_without_label_source_is_refused(pool, taxonomy, tmp_path):
    row = {k: v for k, v in LABELLED[0].items() if k != "label_source"}
    with pytest.raises(DataError, match="l.jsonl:1: missing 'label_source'"):
        merge_labelled(write_jsonl(tmp_path / "l.jsonl", [row]), tmp_path / "o.jsonl", pool=pool, taxonomy=taxonomy)
