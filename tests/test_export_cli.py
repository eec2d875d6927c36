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
                 "--k", "5", "--vote", "distance", "--center", "--max-downgrade", "0.05", "--max-abstain", "0.3",
                 "--policy", "cost", "--head", "knn"]) == 0
    out = capsys.readouterr().out
    assert "policy cost" in out and "operating point" in out
    rows = route(npz)
    assert all(set(r) == {"id", "category", "tier", "confidence", "margin", "abstain"} for r in rows)
    assert rows[0]["tier"] == "strong"


@pytest.mark.model
def test_export_with_a_vote_policy_and_no_threshold_adds_no_abstain(small_pool_file, cache_dir, tmp_path):
    npz = tmp_path / "pool.npz"
    assert main(["export", "--pool-dir", str(small_pool_file), "--cache-dir", str(cache_dir), "--out", str(npz),
                 "--k", "5", "--vote", "distance", "--center", "--policy", "vote", "--head", "logreg",
                 "--never-abstain"]) == 0
    rows = route(npz)
    assert rows and not any(r["abstain"] for r in rows)


def test_out_of_range_target_is_a_usage_error(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit) as e:
        main(["export", "--out", str(tmp_path / "x.npz"), "--max-downgrade", "2"])
    assert e.value.code == 2 and "between 0 and 1" in capsys.readouterr().err


def test_threshold_with_a_downgrade_target_is_a_one_line_error(tmp_path, capsys):
    assert main(["export", "--out", str(tmp_path / "x.npz"), "--abstain-threshold", "0.5", "--max-downgrade", "0.02"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "either an abstain threshold or a target" in err and "not both" in err


@pytest.mark.model
def test_export_without_options_ships_what_the_nightly_ships(small_pool_file, small_pool, cache_dir, tmp_path, capsys):
    """`workbench export` and export_pool's defaults with the follow-up detector (06_export) write the same
    artifact (here with e5-small alone, the detector fitted on a few conversations)."""
    import numpy as np

    from workbench.analysis.conversations import shipped_follow_up
    from workbench.analysis.evaluate import choose_config
    from workbench.decisions.export import export_pool
    from workbench.decisions.targets import HeadParams

    conversations = tmp_path / "conversations.jsonl"
    conversations.write_text("".join((ROOT / "data" / "conversations" / "conversations_c.jsonl").read_text(
        encoding="utf-8").splitlines(keepends=True)[:12]), encoding="utf-8")
    cli = tmp_path / "cli.npz"
    assert main(["export", "--pool-dir", str(small_pool_file), "--cache-dir", str(cache_dir), "--out", str(cli),
                 "--backend", "e5-small", "--conversations-dir", str(conversations),
                 "--dev-dir", str(tmp_path / "no-dev")]) == 0
    out = capsys.readouterr().out
    assert "head " in out and "follow-up detector: fitted on" in out
    detector, turns = shipped_follow_up(small_pool, conversations_dir=conversations, dev_dir=tmp_path / "no-dev",
                                        cache_dir=cache_dir)
    assert turns["conversation_id"].nunique() == 12
    lib = export_pool(small_pool, tmp_path / "lib.npz", choose_config(small_pool)[0],
                      params=HeadParams(follow_up=detector)).path
    with np.load(cli, allow_pickle=False) as a, np.load(lib, allow_pickle=False) as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            if name != "metadata":
                np.testing.assert_array_equal(a[name], b[name])
        ma, mb = (json.loads(str(z["metadata"])) for z in (a, b))
    for m in (ma, mb):  # the creation time differs, and the content digest covers it
        m.pop("created"), m.pop("sha256")
    assert ma == mb and ma["head"] in ("knn", "logreg", "blend", "mlp") and ma["policy"]["threshold"] is not None


def test_export_refuses_an_out_path_whose_folder_does_not_exist(tmp_path, capsys):
    """A typo in --out used to create a tree of folders silently (issue 22)."""
    from workbench.cli import main

    assert main(["export", "--out", str(tmp_path / "no" / "such" / "pool.npz")]) == 2
    err = capsys.readouterr().err
    assert "does not exist (create it first)" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "no").exists()
