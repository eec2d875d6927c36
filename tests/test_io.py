import os

import pytest

from workbench.io import atomic_file, write_text_atomic


def test_atomic_write_replaces_and_gives_ordinary_permissions(tmp_path):
    p = tmp_path / "a.txt"
    write_text_atomic(p, "one")
    write_text_atomic(p, "two")
    mask = os.umask(0)
    os.umask(mask)
    assert p.read_text() == "two"
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [q.name for q in tmp_path.iterdir()] == ["a.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(p) as fh:
            fh.write(b"half")
            raise RuntimeError("interrupted")
    assert p.read_text() == "old"
    assert [q.name for q in tmp_path.iterdir()] == ["a.txt"]
