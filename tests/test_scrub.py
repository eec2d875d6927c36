"""Contact details never leave the import unless asked (issue 11, class 5)."""
import json

import pytest

from tests.helpers import write_jsonl
from workbench.traffic.ingest import scrub_text

PHONES = [
    "+49 1 2345 6789",        # a one-digit group after the country code
    "+31 6 12345678",
    "+49 30/1234567",         # a slash
    "030/12345678",
    "+44 20 7946 0958",
    "+1 (555) 123-4567",
    "+33 6 12 34 56 78",
    "+46 8 123 456 78",
    "+49 (0)30 12345-678",
    "55 12345 12345",         # five-digit groups
    "12 34 56 78",            # an eight-digit national number
    "12345678",
    "0044 20 7946 0958",
    "+7 495 123-45-67",
    "+86 138 0013 8000",
    "(030) 1234 5678",
    "555-123-4567",
]
KEEP = ["meet on 2026-11-25 at 14:30", "what is 12345 * 6789", "ISBN-free 3 4 5 6", "sort 3 1 4 1 5 9 2 6",
        "the war lasted 1939-1945", "pi is 3.14159 and e is 2.71828", "due 03.04.2025 or 12/05/2024",
        "x = 12.5, y = 7.25", "version 1.2.3"]


@pytest.mark.parametrize("phone", PHONES)
def test_international_and_national_phone_formats_are_scrubbed(phone):
    text, n = scrub_text(f"call me at {phone} tonight")
    assert text == "call me at [phone] tonight" and n == 1


@pytest.mark.parametrize("text", KEEP)
def test_dates_ranges_and_maths_are_kept(text):
    assert scrub_text(text) == (text, 0)


def test_ids_carrying_contact_details_become_stable_hashes():
    from workbench.traffic.scrub import scrub_id

    assert scrub_id("c-1b2f", "conv") == "c-1b2f"
    a, b = scrub_id("anna.smith@example.com", "conv"), scrub_id("anna.smith@example.com", "conv")
    assert a == b and a.startswith("conv-") and "@" not in a
    assert scrub_id("export_+4917612345678.json", "file").startswith("file-")


@pytest.mark.slow  # langid loads its model (about 5 s)
def test_import_scrubs_by_default_including_conversation_ids_and_origins(tmp_path):
    from workbench.traffic.ingest import import_transcripts

    conv = {"id": "anna.smith@example.com", "messages": [
        {"role": "user", "content": "please call me back on +49 1 2345 6789 or mail anna.smith@example.com"}]}
    src = write_jsonl(tmp_path / "chat_+4917612345678.jsonl", [conv])
    out = tmp_path / "cand.jsonl"
    import_transcripts(src, out, pool=False, backend=False)
    row = json.loads(out.read_text(encoding="utf-8"))
    assert row["text"] == "please call me back on [phone] or mail [email]"
    assert row["conversation"].startswith("conv-") and row["origin"].startswith("file-") and row["origin"][-2:] == ":1"
    assert "4917612345678" not in out.read_text(encoding="utf-8") and "anna" not in out.read_text(encoding="utf-8")
    import_transcripts(src, tmp_path / "raw.jsonl", pool=False, backend=False, scrub=False)
    assert "+49 1 2345 6789" in (tmp_path / "raw.jsonl").read_text(encoding="utf-8")


def test_merge_scrubs_carried_ids_that_hold_contact_details(tmp_path, taxonomy):
    from workbench.traffic.merge import merge_labelled

    pool = write_jsonl(tmp_path / "p.jsonl", [{"id": "p1", "text": "other", "category": "casual", "source": "w",
                                               "lang": "en", "label_source": "author"}])
    labelled = write_jsonl(tmp_path / "l.jsonl", [{"id": "real-1", "text": "sort a list", "category": "coding",
                                                   "label_source": "m", "conversation": "+49 176 1234 5678",
                                                   "origin": "bob@example.com.jsonl:7", "turn": 2}])
    merge_labelled(labelled, tmp_path / "real.jsonl", pool=pool, taxonomy=taxonomy)
    row = json.loads((tmp_path / "real.jsonl").read_text(encoding="utf-8"))
    assert row["conversation"].startswith("conv-") and row["origin"].startswith("file-") and row["origin"][-2:] == ":7"
    assert row["turn"] == 2


def test_the_cli_scrubs_unless_told_not_to():
    from workbench.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["import", "x.jsonl", "--out", "y.jsonl"]).scrub is True
    assert parser.parse_args(["import", "x.jsonl", "--out", "y.jsonl", "--no-scrub"]).scrub is False
