"""The routing taxonomy: categories, the tier each routes to, and the tier order."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError, require
from ..io import read_text_file

__all__ = ["Taxonomy", "load_taxonomy"]


@dataclass(frozen=True)
class Taxonomy:
    """Categories mapped to tiers, with tiers ordered cheapest first.

    Parameters
    ----------
    tiers : tuple of str
        Tier names, cheapest first.
    tier_map : dict
        Category name -> tier name. Its order is the category order used in
        every array (category index ``i`` is ``categories[i]``).
    descriptions : dict, optional
        Category name -> one-line description (used in the labelling prompt).
    cost : dict, optional
        ``cost[true_tier][routed_tier]``: cost of a routing decision.
    """

    tiers: tuple
    tier_map: dict
    descriptions: dict = field(default_factory=dict)
    cost: dict = field(default_factory=dict)

    def __post_init__(self):
        tiers = tuple(self.tiers)
        object.__setattr__(self, "tiers", tiers)
        if not tiers:
            raise ValueError("taxonomy: no tiers")
        if len(set(tiers)) != len(tiers):
            raise ValueError(f"taxonomy: duplicate tier in {list(tiers)}")
        if not self.tier_map:
            raise ValueError("taxonomy: no categories")
        for cat, tier in self.tier_map.items():
            if tier not in tiers:
                raise ValueError(f"taxonomy: category {cat!r} has unknown tier {tier!r} (tiers: {list(tiers)})")
        for t in self.cost:
            if t not in tiers or set(self.cost[t]) != set(tiers):
                raise ValueError(f"taxonomy: cost row {t!r} must name every tier {list(tiers)}")

    @property
    def categories(self) -> tuple:
        return tuple(self.tier_map)

    def tier_of(self, category: str) -> str:
        return self.tier_map[category]

    def tier_rank(self, tier: str) -> int:
        """Position of ``tier`` in the order, 0 = cheapest."""
        return self.tiers.index(tier)

    def category_index(self, categories) -> np.ndarray:
        """Category names -> integer indices (unknown names raise KeyError)."""
        pos = {c: i for i, c in enumerate(self.categories)}
        return np.array([pos[c] for c in categories], dtype=np.int64)

    @property
    def category_tier_rank(self) -> np.ndarray:
        """For each category index, the rank of its tier (0 = cheapest)."""
        return np.array([self.tier_rank(self.tier_map[c]) for c in self.categories], dtype=np.int64)

    def cost_matrix(self) -> np.ndarray:
        """``C[true_rank, routed_rank]``; defaults to 0/1 cost when the file has none."""
        n = len(self.tiers)
        if not self.cost:
            return 1.0 - np.eye(n)
        return np.array([[float(self.cost[a][b]) for b in self.tiers] for a in self.tiers])

    def to_dict(self) -> dict:
        return {
            "tiers": list(self.tiers),
            "tier_map": dict(self.tier_map),
            "descriptions": dict(self.descriptions),
            "cost": {a: dict(r) for a, r in self.cost.items()},
        }

    @classmethod
    def from_metadata(cls, meta: dict) -> "Taxonomy":
        """The taxonomy a pool.npz was exported with (tiers, tier map and cost)."""
        tiers = tuple(meta["tiers"])
        cost = meta.get("cost")
        cost = {a: dict(zip(tiers, row)) for a, row in zip(tiers, cost)} if cost else {}
        return cls(tiers, dict(meta["tier_map"]), {}, cost)

    @classmethod
    def from_dict(cls, d: dict) -> "Taxonomy":
        return cls(tuple(d["tiers"]), dict(d["tier_map"]), dict(d.get("descriptions", {})),
                   {a: dict(r) for a, r in d.get("cost", {}).items()})


def load_taxonomy(path=None) -> Taxonomy:
    """Load and validate a taxonomy file (YAML).

    Every category needs a known tier; category and tier names must be unique.
    Errors name the file and the problem.
    """
    from ..config import TAXONOMY_PATH

    yaml = require("yaml", purpose="reading a taxonomy file")
    path = Path(path or TAXONOMY_PATH)
    text = read_text_file(path)

    class _UniqueKeyLoader(yaml.SafeLoader):
        pass

    def _construct_mapping(loader, node, deep=False):
        keys = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise DataError(path, key_node.start_mark.line + 1, f"a key must be a plain name; got {key!r:.60}")
            if key in keys:
                raise DataError(path, key_node.start_mark.line + 1, f"duplicate key {key!r}")
            keys.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    _UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        problem = " ".join(str(getattr(e, "problem", None) or e).split())
        raise DataError(path, None if line is None else line + 1, f"invalid YAML ({problem})") from None
    except RecursionError:
        raise DataError(path, None, "invalid YAML (nested too deeply)") from None
    if not isinstance(raw, dict) or "tiers" not in raw or "categories" not in raw:
        raise DataError(path, None, "taxonomy needs top-level 'tiers' and 'categories'")
    tiers, cats, cost = raw["tiers"], raw["categories"] or {}, raw.get("cost") or {}
    if not isinstance(tiers, list) or not all(isinstance(t, str) and t for t in tiers):
        raise DataError(path, None, f"'tiers' must be a list of tier names, cheapest first; got {tiers!r:.80}")
    if not isinstance(cats, dict):
        raise DataError(path, None, f"'categories' must map each name to its tier and description; "
                                    f"got a {type(cats).__name__}")
    tier_map, desc = {}, {}
    for name, spec in cats.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("tier"), str):
            raise DataError(path, None, f"category {name!r} has no tier")
        tier_map[str(name)] = spec["tier"]
        desc[str(name)] = str(spec.get("description", ""))
    if not isinstance(cost, dict) or not all(
            isinstance(row, dict) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                          and math.isfinite(v) and v >= 0 for v in row.values())
            for row in cost.values()):
        raise DataError(path, None, "'cost' must map each true tier to {routed tier: a number >= 0}")
    try:
        return Taxonomy(tuple(tiers), tier_map, desc, cost)
    except ValueError as e:
        raise DataError(path, None, str(e)) from None
