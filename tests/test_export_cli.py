import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT
from workbench.cli import main

MESSAGES = [{"id": "a", "text": "write a bash one-liner that counts lines in all .py files"},
            {"id": "b", "text": "谢谢你！你太棒了，晚安 😊"}]


def route(npz):
    stdin = "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in MESSAGES)
    res = subprocess.run([sys.executable, "-m", "workbench", "route", "--pool", str(npz)], input=stdin,
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


@pytest.mark.model
def test_export_with_a_downgrade_target_stores_an_abstain_policy(small_pool_file, cache_dir, tmp_path, capsys):
    npz = tmp_path / "pool.npz"
    assert main(["export", "--pool-dir", str(small_pool_file), "--cache-dir", str(cache_dir), "--out", str(npz),
                 "--k", "5", "--vote", "distance", "--center", "--max-downgrade", "0.05", "--max-abstain", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "policy cost" in out and "operating point" in out
    rows = route(npz)
    assert all(set(r) == {"id", "category", "tier", "confidence", "margin", "abstain"} for r in rows)
    assert rows[0]["tier"] == "strong"


@pytest.mark.model
def test_export_with_a_vote_policy_and_no_threshold_adds_no_abstain(small_pool_file, cache_dir, tmp_path):
    npz = tmp_path / "pool.npz"
    assert main(["export", "--pool-dir", str(small_pool_file), "--cache-dir", str(cache_dir), "--out", str(npz),
                 "--k", "5", "--vote", "distance", "--center", "--policy", "vote", "--head", "logreg"]) == 0
    rows = route(npz)
    assert rows and not any(r["abstain"] for r in rows)


def test_out_of_range_target_is_a_usage_error(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit) as e:
        main(["export", "--out", str(tmp_path / "x.npz"), "--max-downgrade", "2"])
    assert e.value.code == 2 and "between 0 and 1" in capsys.readouterr().err
