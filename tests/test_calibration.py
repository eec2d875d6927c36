"""Calibrated tier confidence: ECE and reliability on known inputs, the calibration maps, and choosing one."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.analysis.calibration import (choose_calibration, expected_calibration_error, fit_calibration,
                                            reliability_table)
from workbench.core.calibration import Calibration
from workbench.errors import ArtifactError, ConfigError


def test_ece_is_zero_when_each_bin_is_as_accurate_as_it_is_confident():
    scores = np.array([0.85] * 10 + [0.35] * 20)
    correct = np.array([1] * 8 + [0] * 2 + [1] * 7 + [0] * 13)  # 0.8 and 0.35 in their bins (0.8-0.9, 0.3-0.4)
    # bin 0.8-0.9: |0.8 - 0.85| = 0.05 on 1/3 of the messages; bin 0.3-0.4: |0.35 - 0.35| = 0
    assert expected_calibration_error(scores, correct) == pytest.approx(0.05 / 3)


def test_ece_of_an_overconfident_score_is_its_gap():
    assert expected_calibration_error(np.ones(100), np.r_[np.ones(50), np.zeros(50)]) == pytest.approx(0.5)
    assert expected_calibration_error(np.full(4, 0.25), [1, 0, 0, 0]) == pytest.approx(0.0)


def test_reliability_table_keeps_empty_bins_and_counts_every_message():
    t = reliability_table([0.05, 0.95, 0.97], [0, 1, 0], n_bins=10)
    assert len(t) == 10 and t["n"].sum() == 3 and t.loc[9, "n"] == 2
    assert t.loc[9, "accuracy"] == pytest.approx(0.5) and np.isnan(t.loc[4, "accuracy"])
    with pytest.raises(ConfigError, match="n_bins"):
        reliability_table([0.5], [1], n_bins=0)


def test_isotonic_and_temperature_maps_are_monotone_and_fix_an_overconfident_score():
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.34, 0.999, 4000)
    truth = Calibration("temperature", temperature=2.5).transform(raw)  # the score is twice too sure of itself
    correct = rng.uniform(size=raw.size) < truth
    before = expected_calibration_error(raw, correct)
    for method in ("isotonic", "temperature"):
        cal = fit_calibration(raw, correct, method)
        grid = np.linspace(0, 1, 101)
        assert (np.diff(cal.transform(grid)) >= -1e-12).all()
        assert expected_calibration_error(cal.transform(raw), correct) < before / 2
    assert fit_calibration(raw, correct, "temperature").temperature == pytest.approx(2.5, rel=0.15)


def test_choice_keeps_none_for_a_calibrated_score_and_calibrates_a_bad_one():
    rng = np.random.default_rng(1)
    raw = rng.uniform(0, 1, 3000)
    good = choose_calibration(raw, rng.uniform(size=raw.size) < raw, n_splits=5)
    assert good.ece_before < 0.05
    bad = choose_calibration(np.ones(3000) * 0.99, rng.uniform(size=3000) < 0.7, n_splits=5)
    assert bad.calibration.method != "none" and bad.ece_after < bad.ece_before - 0.2
    assert bad.table["chosen"].sum() == 1 and set(bad.reliability()) == {
        f"raw (ECE {100 * bad.ece_before:.1f}%)", f"{bad.calibration.method}, cross-fitted (ECE {100 * bad.ece_after:.1f}%)"}


def test_calibration_round_trips_through_plain_arrays():
    iso = Calibration("isotonic", x=np.array([0.3, 0.6, 1.0]), y=np.array([0.2, 0.7, 0.9]))
    again = Calibration.from_arrays("isotonic", iso.arrays())
    np.testing.assert_allclose(again.transform([0.3, 0.45, 1.0]), [0.2, 0.45, 0.9])
    temp = Calibration.from_arrays("temperature", Calibration("temperature", temperature=2.0).arrays())
    assert temp.transform(0.5) == pytest.approx(0.5) and temp.transform(0.9) < 0.9
    assert Calibration.from_arrays(None, {}).transform(0.7) == pytest.approx(0.7)
    with pytest.raises(ArtifactError, match="calibration_x"):
        Calibration.from_arrays("isotonic", {"calibration_y": np.array([0.5])})
    with pytest.raises(ArtifactError, match="non-decreasing"):
        Calibration.from_arrays("isotonic", {"calibration_x": np.array([0.1, 0.2]), "calibration_y": np.array([0.9, 0.1])})
    with pytest.raises(ConfigError, match="calibration must be"):
        Calibration("platt")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=4, max_size=60),
       st.sampled_from(["isotonic", "temperature"]))
def test_every_fitted_calibration_is_a_monotone_map_into_probabilities(pairs, method):
    scores, correct = map(np.array, zip(*pairs))
    cal = fit_calibration(scores, correct, method)
    grid = cal.transform(np.linspace(0, 1, 201))
    assert ((grid >= 0) & (grid <= 1)).all() and (np.diff(grid) >= -1e-9).all()
    assert 0 <= expected_calibration_error(cal.transform(scores), correct) <= 1
