"""One-line errors that say what to do: CSV given to a JSONL reader, a conversation without --conversation,
unlabelled messages given to score."""
import json

import pytest

from workbench.cli._stream import parse_message
from workbench.core.taxonomy import load_taxonomy
from workbench.errors import DataError


def test_csv_input_gets_a_hint_not_only_invalid_json():
    with pytest.raises(DataError, match=r"messages.csv:1: invalid JSON .*looks like CSV.*reads JSONL"):
        parse_message(b"id,text\n", "messages.csv", 1)
    with pytest.raises(DataError, match="looks like CSV"):
        parse_message(b"m1,write a sort function\n", "<stdin>", 1)
    with pytest.raises(DataError) as err:
        parse_message(b'{"text": "unclosed"\n', "<stdin>", 1)
    assert "CSV" not in str(err.value)  # broken JSON is not called CSV


def test_a_conversation_without_the_flag_says_to_pass_it():
    line = json.dumps({"conversation_id": "c1", "turns": [{"id": "t1", "text": "hi"}]}).encode()
    with pytest.raises(DataError, match="conversation.*pass --conversation"):
        parse_message(line, "conversations.jsonl", 1)


def test_score_on_unlabelled_messages_says_what_is_missing(tmp_path):
    from workbench.analysis.generalisation import read_labelled

    line = json.dumps({"id": "m1", "text": "hello"}).encode()
    with pytest.raises(DataError, match=r"<stdin>:1: missing 'category': score needs labelled messages") as err:
        parse_message(line, "<stdin>", 1, labelled=True, taxonomy=load_taxonomy())
    assert "None" not in str(err.value)
    path = tmp_path / "plain.jsonl"
    path.write_text(line.decode() + "\n")
    with pytest.raises(DataError, match="plain.jsonl:1: missing 'category'.*workbench route"):
        read_labelled(path, load_taxonomy())


def test_every_jsonl_reader_hints_at_csv(tmp_path):
    """The hint lives in the one JSONL parser, so merge, label and the rest say it too (not only route and score)."""
    from workbench.errors import DataError
    from workbench.io import read_jsonl

    path = tmp_path / "export.csv"
    path.write_text("id,text\n1,hello there\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"export\.csv:1: invalid JSON .*this looks like CSV.*workbench import reads CSV"):
        list(read_jsonl(path))
