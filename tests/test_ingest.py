import json

import pytest

from tests.helpers import ROOT, write_jsonl
from workbench.errors import ConfigError, DataError
from workbench.traffic.ingest import (detect_language, filter_messages, import_transcripts, read_transcripts,
                              scrub_text)

SAMPLE = ROOT / "data" / "transcripts" / "sample_conversations.jsonl"
CONVERSATION = {"id": "c1", "messages": [
    {"role": "system", "content": "be nice"},
    {"role": "user", "content": "first question"},
    {"role": "assistant", "content": "an answer"},
    {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "text", "text": "question"}]},
]}
CHATGPT = [{"id": "g1", "mapping": {
    "r": {"message": None, "parent": None, "children": ["a"]},
    "a": {"parent": "r", "children": ["b"], "message": {"author": {"role": "user"},
                                                        "content": {"content_type": "text", "parts": ["hello tree"]}}},
    "b": {"parent": "a", "children": ["c"], "message": {"author": {"role": "assistant"},
                                                        "content": {"content_type": "text", "parts": ["hi"]}}},
    "c": {"parent": "b", "children": [], "message": {"author": {"role": "user"},
                                                     "content": {"content_type": "text", "parts": ["and again"]}}},
}}]


def rows(*texts):
    return [{"text": t, "conversation": None, "turn": None, "line": i, "file": "x"} for i, t in enumerate(texts, 1)]


def test_messages_jsonl_keeps_user_turns_in_order(tmp_path):
    got = read_transcripts(write_jsonl(tmp_path / "c.jsonl", [CONVERSATION]))
    assert [(r["text"], r["conversation"], r["turn"], r["line"]) for r in got] == [
        ("first question", "c1", 1, 1), ("second\nquestion", "c1", 2, 1)]


def test_chatgpt_export_walks_the_message_tree(tmp_path):
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(CHATGPT), encoding="utf-8")
    assert [(r["text"], r["turn"]) for r in read_transcripts(path)] == [("hello tree", 1), ("and again", 2)]


def test_csv_reads_the_named_text_column(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text('id,body\n1,"hello, world"\n2,second one\n', encoding="utf-8")
    assert [(r["text"], r["line"]) for r in read_transcripts(path, text_column="body")] == [
        ("hello, world", 2), ("second one", 3)]


def test_csv_without_the_column_names_the_file_and_the_columns(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("id,body\n1,x\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"m.csv:1: no column 'text' \(columns: id, body\)"):
        read_transcripts(path)


def test_bad_json_line_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [CONVERSATION, '{"messages": ['])
    with pytest.raises(DataError, match=r"c.jsonl:2: invalid JSON"):
        read_transcripts(path)


@pytest.mark.parametrize("text, expected", [
    ("write to ana.b+x@mail.example.com today", "write to [email] today"),
    ("call me on +44 20 7946 0958 tonight", "call me on [phone] tonight"),
    ("my number is 555-123-4567", "my number is [phone]"),
    ("account 12345678901234 is blocked", "account [number] is blocked"),
])
def test_scrub_replaces_contact_details(text, expected):
    assert scrub_text(text)[0] == expected


@pytest.mark.parametrize("text", ["meet on 2026-11-25 at 14:30", "what is 12345 * 6789", "ISBN-free 3 4 5 6"])
def test_scrub_keeps_dates_and_maths(text):
    assert scrub_text(text) == (text, 0)


@pytest.mark.parametrize("text, reason", [
    ("   ", "empty"), ("https://example.com/a?b=1", "url_only"), ("www.example.org/x", "url_only"),
    ("[image]", "attachment_only"), ("<Media omitted>", "attachment_only"), ("[Photo] [image]", "attachment_only"),
    ("k", "too_short"), ("x" * 50, "too_long"),
])
def test_each_filter_counts_what_it_drops(text, reason):
    kept, s = filter_messages(rows(text, "a real question here"), min_chars=2, max_chars=40)
    assert len(kept) == 1 and s[reason] == 1 and s["kept"] == 1


def test_exact_normalised_and_pool_duplicates_are_counted_apart():
    kept, s = filter_messages(rows("Hello there", "Hello there", "hello   THERE", "fizzbuzz in kotlin"),
                              pool_texts=["FizzBuzz in Kotlin"])
    assert [r["text"] for r in kept] == ["Hello there"]
    assert (s["exact_duplicate"], s["normalized_duplicate"], s["pool_duplicate"]) == (1, 1, 1)


def test_near_duplicates_of_each_other_and_of_the_pool_use_the_backend(e5, cache_dir):
    from workbench.dataset.embeddings import embed_texts

    pool_vec = embed_texts(["write a python function that reverses a string"], e5, cache_dir=cache_dir)
    kept, s = filter_messages(
        rows("write a python function that reverses a string!", "what is the capital of france",
             "what is the capital of france??", "tell me a story about a dragon"),
        pool_vectors=pool_vec, embedder=e5, cache_dir=cache_dir, dup_threshold=0.95)
    assert [r["text"] for r in kept] == ["what is the capital of france", "tell me a story about a dragon"]
    assert (s["near_duplicate_pool"], s["near_duplicate"]) == (1, 1)


@pytest.mark.slow  # langid loads its model (about 5 s)
@pytest.mark.parametrize("text, lang", [("¿Dónde está la estación de tren más cercana?", "es"),
                                        ("我想学习怎么用 Python 处理表格数据", "zh"),
                                        ("Kannst du mir bitte bei meiner Steuererklärung helfen?", "de"),
                                        ("明日の天気はどうなりますか？", "ja"),
                                        ("Je voudrais réserver une table pour deux personnes ce soir.", "fr")])
def test_language_is_detected_offline(text, lang):
    assert detect_language(text) == lang


def test_bundled_sample_imports_with_every_filter_counted(e5, cache_dir, tmp_path):
    out = tmp_path / "cand.jsonl"
    before = SAMPLE.read_bytes()
    s = import_transcripts([SAMPLE, SAMPLE.with_suffix(".json")], out, scrub=True, pool=False, backend=e5,
                           cache_dir=cache_dir)
    assert SAMPLE.read_bytes() == before  # the input is never rewritten
    assert (s["read"], s["empty"], s["url_only"], s["attachment_only"]) == (59, 1, 2, 2)
    assert (s["exact_duplicate"], s["normalized_duplicate"], s["near_duplicate"], s["scrubbed"]) == (1, 1, 1, 2)
    cands = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(cands) == s["kept"] == 51 and len({c["id"] for c in cands}) == 51
    assert {"en", "zh", "es", "de", "ja", "fr"} <= set(s["languages"])
    assert all(c["source"] == "real" and c["id"].startswith("real-") for c in cands)
    assert not any("@" in c["text"] for c in cands)


def test_output_must_not_be_an_input(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [CONVERSATION])
    with pytest.raises(ConfigError, match="not one of the inputs"):
        import_transcripts(path, path, pool=False, backend=False)


@pytest.mark.model
def test_cli_import_prints_the_summary(tmp_path):
    from tests.helpers import run_cli

    out = tmp_path / "c.jsonl"
    res = run_cli("import", str(ROOT / "data" / "transcripts" / "sample_messages.csv"), "--text-column", "message",
                  "--out", str(out), "--no-pool", "--no-near-duplicates")
    assert res.returncode == 0, res.stderr
    assert "read 10 user turns" in res.stdout and "kept 7" in res.stdout and "url only" in res.stdout
    assert len(out.read_text().splitlines()) == 7


def test_jsonl_with_a_named_text_field(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"body": "first"}, {"body": "second", "conversation": "c9"}])
    got = read_transcripts(path, text_column="body")
    assert [(r["text"], r["conversation"], r["line"]) for r in got] == [("first", None, 1), ("second", "c9", 2)]
