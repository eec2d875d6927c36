import numpy as np
import pytest

from workbench.errors import DataError
from workbench.core.taxonomy import Taxonomy, load_taxonomy

DUP_KEY = "tiers: [cheap, strong]\ncategories:\n  a: {tier: cheap}\n  a: {tier: strong}\n"
BAD_TIER = "tiers: [cheap, strong]\ncategories:\n  a: {tier: medium}\n"


def test_default_taxonomy_has_seven_categories_in_three_ordered_tiers(taxonomy):
    assert taxonomy.tiers == ("cheap", "medium", "strong")
    assert len(taxonomy.categories) == 7
    assert taxonomy.tier_of("coding") == "strong" and taxonomy.tier_of("casual") == "cheap"
    assert taxonomy.tier_rank("strong") > taxonomy.tier_rank("medium") > taxonomy.tier_rank("cheap")


def test_duplicate_category_is_refused_with_file_and_line(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text(DUP_KEY)
    with pytest.raises(DataError, match=r"t\.yaml:4: duplicate key 'a'"):
        load_taxonomy(p)


def test_unknown_tier_is_refused(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text(BAD_TIER)
    with pytest.raises(DataError, match="unknown tier 'medium'"):
        load_taxonomy(p)


def test_cost_matrix_makes_downgrades_dearer_than_upgrades(taxonomy):
    c = taxonomy.cost_matrix()
    assert np.all(np.diag(c) == 0)
    assert c[2, 0] > c[0, 2] and c[1, 0] > c[0, 1]


def test_round_trip_through_dict(taxonomy):
    assert Taxonomy.from_dict(taxonomy.to_dict()) == taxonomy
