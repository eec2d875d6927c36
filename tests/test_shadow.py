import json

import pytest

from tests.helpers import ROOT, write_jsonl
from tests.helpers import run_cli
from workbench.errors import ConfigError, DataError
from workbench.traffic.shadow import audit_generated, compare_shadow, outage_comparison, read_audit, read_shadow_log

LOG = [
    {"id": "s1", "text": "fix my python traceback", "lang": "en", "label_category": "coding", "routed_category": "coding"},
    {"id": "s2", "text": "explain recursion", "lang": "en", "label_category": "analysis", "routed_category": "coding"},
    {"id": "s3", "text": "hola!", "lang": "es", "label_category": "casual", "routed_category": "casual"},
    {"id": "s4", "text": "prove this lemma", "lang": "en", "label_category": "reasoning", "routed_category": "analysis"},
    {"id": "s5", "text": "history of Rome", "lang": "en", "label_category": "research_lookup",
     "routed_category": "analysis"},
]
AUDIT = [
    {"text": "explain the time complexity of this algorithm", "intended_category": "coding", "category": "analysis"},
    {"text": "write a function that sorts a list", "intended_category": "coding", "category": "coding"},
    {"text": "history of jazz", "intended_category": "research_lookup", "category": "analysis"},
    {"text": "hi!", "intended_category": "casual", "category": "casual"},
]
SAMPLE_LOG = ROOT / "data" / "shadow" / "sample_log.jsonl"
SAMPLE_AUDIT = ROOT / "data" / "shadow" / "generated_audit.jsonl"


@pytest.fixture
def log_frame(taxonomy, tmp_path):
    return read_shadow_log(write_jsonl(tmp_path / "log.jsonl", LOG), taxonomy)


def test_agreement_at_category_and_tier_level(log_frame, taxonomy):
    h = compare_shadow(log_frame, taxonomy).headline()
    assert h["category_agreement"] == pytest.approx(2 / 5)
    assert h["tier_agreement"] == pytest.approx(3 / 5)  # research_lookup -> analysis shares a tier
    assert (h["downgrade_rate"], h["upgrade_rate"]) == (pytest.approx(1 / 5), pytest.approx(1 / 5))


def test_cross_tier_disagreements_are_listed_downgrades_first(log_frame, taxonomy):
    d = compare_shadow(log_frame, taxonomy).disagreements
    assert list(d["id"]) == ["s4", "s2"] and list(d["direction"]) == ["downgrade", "upgrade"]


def test_confusion_rows_are_the_label_source(log_frame, taxonomy):
    m = compare_shadow(log_frame, taxonomy).metrics
    assert m.confusion_category.loc["analysis", "coding"] == 1 and m.confusion_tier.loc["strong", "medium"] == 1


def test_outage_compares_a_static_tier_with_the_router(taxonomy):
    labels = ["coding", "casual", "analysis", "creative"]
    out = outage_comparison(labels, labels, taxonomy, default_tier="medium")
    assert out.loc["k-NN router", "tier_accuracy"] == 1.0
    assert out.loc["static medium"].to_dict() == {"tier_accuracy": 0.5, "downgrade_rate": 0.25, "upgrade_rate": 0.25}


def test_unknown_fallback_tier_is_a_config_error(taxonomy):
    with pytest.raises(ConfigError, match="default_tier must be one of"):
        outage_comparison(["coding"], ["coding"], taxonomy, default_tier="premium")


def test_explicit_routing_replaces_the_logged_decisions(log_frame, taxonomy):
    rep = compare_shadow(log_frame, taxonomy, routed=list(log_frame["label_category"]))
    assert rep.headline()["tier_agreement"] == 1.0 and rep.disagreements.empty


def test_a_log_without_decisions_needs_a_pool(taxonomy, tmp_path):
    frame = read_shadow_log(write_jsonl(tmp_path / "l.jsonl", [{"text": "hi", "label_category": "casual"}]), taxonomy)
    with pytest.raises(ConfigError, match="route it with a pool"):
        compare_shadow(frame, taxonomy)


def test_an_unknown_label_names_file_and_line(taxonomy, tmp_path):
    path = write_jsonl(tmp_path / "l.jsonl", [LOG[0], dict(LOG[1], label_category="chitchat")])
    with pytest.raises(DataError, match=r"l.jsonl:2: unknown label_category 'chitchat'"):
        read_shadow_log(path, taxonomy)


def test_audit_matrix_and_boundary_examples(taxonomy, tmp_path):
    a = audit_generated(read_audit(write_jsonl(tmp_path / "a.jsonl", AUDIT), taxonomy), taxonomy)
    assert a.matrix.loc["coding", "analysis"] == 1 and a.matrix.to_numpy().sum() == 4
    assert a.agreement == 0.5 and a.tier_agreement == 0.75
    b = a.boundary
    assert list(b["text"]) == ["explain the time complexity of this algorithm", "history of jazz"]
    assert list(b["cross_tier"]) == [True, False]


def test_bundled_samples_show_the_router_beating_the_static_fallback(taxonomy):
    rep = compare_shadow(read_shadow_log(SAMPLE_LOG, taxonomy), taxonomy)
    assert rep.metrics.n == 60 and len(set(rep.metrics.by_group["lang"].index)) >= 5
    assert rep.outage.loc["k-NN router", "tier_accuracy"] > rep.outage.loc["static medium", "tier_accuracy"]
    audit = audit_generated(read_audit(SAMPLE_AUDIT, taxonomy), taxonomy)
    assert any(t.startswith("explain the time complexity") for t in audit.boundary["text"])


def test_cli_shadow_reroutes_with_a_pool_and_writes_json(small_npz, tmp_path):
    js = tmp_path / "shadow.json"
    res = run_cli("shadow", "--pool", str(small_npz), "--log", str(SAMPLE_LOG), "--audit", str(SAMPLE_AUDIT),
                  "--json", str(js))
    assert res.returncode == 0, res.stderr
    assert "outage comparison" in res.stdout and "static medium" in res.stdout and "boundary examples" in res.stdout
    data = json.loads(js.read_text())
    assert data["shadow"]["n"] == 60 and 0 < data["shadow"]["tier_agreement"] <= 1
    assert data["audit"]["matrix"]["coding"]["analysis"] >= 1


def test_cli_shadow_bad_log_is_one_line_exit_2(tmp_path):
    path = write_jsonl(tmp_path / "l.jsonl", [{"text": "hi"}])
    res = run_cli("shadow", "--log", str(path))
    assert res.returncode == 2 and "l.jsonl:1: missing or empty 'label_category'" in res.stderr
    assert "Traceback" not in res.stderr
