"""Issue 21 class 3: contact details in any Unicode spelling are scrubbed wherever text leaves the machine or
enters the pool, including the README's big-log path (``embed`` -> ``label --input SHARDS`` -> ``merge``).

Hypothesis writes phone numbers with Unicode dashes, spaces and digits of other scripts, and e-mail addresses
with non-ASCII domains; decimal numbers stay as they are.
"""
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from tests.fake_llm import FakeLLM
from tests.helpers import ROOT, HashEmbedder, write_jsonl
from workbench.traffic.scrub import fold, scrub_id, scrub_text

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None)

DASHES = ["-", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212", "\ufe63", "\uff0d"]
SPACES = [" ", "\u00a0", "\u2007", "\u202f", "\u3000", "\u2009"]
#: Digit sets: ASCII, full-width, Arabic-Indic, Devanagari.
DIGITS = ["0123456789", "０１２３４５６７８９", "٠١٢٣٤٥٦٧٨٩", "०१२३४५६७८९"]


@pytest.mark.parametrize("text,expected", [
    ("call 555–123–4567 now", "call [phone] now"), ("０９０−１２３４−５６７８", "[phone]"),
    ("mail ivan@пример.рф please", "mail [email] please"), ("pi is 3.14159265", "pi is 3.14159265"),
    ("ring 555\u00a0123\u00a04567", "ring [phone]"), ("ｉｖａｎ＠ｅｘａｍｐｌｅ．ｃｏｍ", "[email]"),
    ("x@y.xn--p1ai", "[email]"), ("2,5 kg and 0.000123456 m", "2,5 kg and 0.000123456 m"),
])
def test_unicode_spellings_of_contact_details(text, expected):
    assert scrub_text(text)[0] == expected


def test_a_conversation_id_with_a_unicode_phone_or_email_is_hashed():
    assert scrub_id("conv-555–123–4567", "conv").startswith("conv-") and "4567" not in scrub_id("conv-555–123–4567",
                                                                                                  "conv")
    assert "пример" not in scrub_id("ivan@пример.рф", "conv")


@st.composite
def phone(draw):
    digits = draw(st.sampled_from(DIGITS))
    sep = draw(st.sampled_from(DASHES + SPACES + ["."]))
    groups = [draw(st.text(alphabet=digits[1:], min_size=n, max_size=n)) for n in (3, 3, 4)]
    return sep.join(groups)


_WORDS = st.text(alphabet="abcdefghij éü漢字", max_size=12)


@FUZZ
@given(_WORDS, phone(), _WORDS)
def test_a_phone_number_in_any_unicode_spelling_is_scrubbed(before, number, after):
    out, n = scrub_text(f"{before} {number} {after}")
    assert n >= 1 and sum(c.isdigit() for c in fold(out)) <= sum(c.isdigit() for c in before + after)


@FUZZ
@given(st.text(alphabet="abcxyz._", min_size=1, max_size=8).filter(lambda s: s[0].isalpha()),
       st.sampled_from(["пример", "例え", "bücher", "example", "δοκιμή"]), st.sampled_from(["рф", "ελ", "com", "中国"]),
       st.sampled_from(["@", "＠"]))
def test_an_email_with_any_script_in_its_domain_is_scrubbed(local, domain, tld, at):
    out, n = scrub_text(f"write to {local}{at}{domain}.{tld} today")
    assert n == 1 and domain not in out and "[email]" in out


@FUZZ
@given(st.integers(1, 999), st.integers(0, 10**8 - 1), st.sampled_from([".", ","]))
def test_a_decimal_number_is_kept(whole, frac, point):
    text = f"the value is {whole}{point}{frac:08d} exactly"
    assert scrub_text(text) == (text, 0)


@FUZZ
@given(st.text(max_size=40))
def test_what_is_not_scrubbed_is_kept_character_for_character(text):
    out, n = scrub_text(text)
    if n == 0:
        assert out == text
    assert len(fold(text)) == len(text)


PII_ROWS = [{"id": "m1", "text": "call me at 555–123–4567 about the python script"},
            {"id": "ivan@пример.рф", "text": "write to ivan@пример.рф about the sql query"},
            {"id": "m3", "text": "mi número es ０９０−１２３４−５６７８ gracias"},
            {"id": "m4", "text": "what is 3.14159265 times two"}]
RAW = ["555–123–4567", "ivan@пример.рф", "０９０−１２３４−５６７８"]


def test_the_big_log_path_embed_label_shards_merge_never_sends_or_stores_contact_details(tmp_path, taxonomy):
    from workbench.scale.embed_logs import embed_logs
    from workbench.traffic.merge import merge_labelled

    shards = tmp_path / "shards"
    embed_logs([write_jsonl(tmp_path / "log.jsonl", PII_ROWS)], shards, backend=HashEmbedder(8))
    labelled = tmp_path / "labelled.jsonl"
    with FakeLLM(key="k") as llm:
        res = subprocess.run([sys.executable, "-m", "workbench", "label", "--input", str(shards), "--out",
                              str(labelled), "--cache", str(tmp_path / "c.jsonl"), "--base-url", llm.base_url,
                              "--model", "m", "--api-key-env", "WB_TEST_KEY"], capture_output=True, text=True,
                             cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), WB_TEST_KEY="k"), timeout=120)
        sent = [r["text"] for r in llm.requests]
    assert res.returncode == 0, res.stderr
    assert len(sent) == 4 and not any(raw in t for raw in RAW for t in sent)
    assert any("3.14159265" in t for t in sent)
    pool = tmp_path / "pool"
    pool.mkdir()
    write_jsonl(pool / "seed.jsonl", [{"id": "p1", "text": "Buenas noches", "category": "casual",
                                       "source": "generated", "lang": "es", "label_source": "x"}])
    out = tmp_path / "real.jsonl"
    merge_labelled(labelled, out, pool=pool, taxonomy=taxonomy)
    stored = out.read_text() + labelled.read_text() + (tmp_path / "c.jsonl").read_text()
    assert not any(raw in stored for raw in RAW) and "[phone]" in stored and "[email]" in stored


def test_merge_scrubs_a_labelled_file_that_was_never_scrubbed(tmp_path, taxonomy):
    from workbench.traffic.merge import merge_labelled

    pool = tmp_path / "pool"
    pool.mkdir()
    write_jsonl(pool / "seed.jsonl", [{"id": "p1", "text": "Buenas noches", "category": "casual",
                                       "source": "generated", "lang": "es", "label_source": "x"}])
    rows = [dict(r, category="coding", label_source="m") for r in PII_ROWS]
    out = tmp_path / "real.jsonl"
    merge_labelled(write_jsonl(tmp_path / "l.jsonl", rows), out, pool=pool, taxonomy=taxonomy)
    merged = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(merged) == 4 and not any(raw in json.dumps(m, ensure_ascii=False) for raw in RAW for m in merged)
