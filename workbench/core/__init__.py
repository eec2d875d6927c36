"""The routing core: what production imports. numpy only at module level.

taxonomy (categories and tiers), knn (config, the one predict path),
heads and policy (from votes to a tier), artifact (pool.npz), embed
(backends and their registry; ``maps/`` holds the maps a composite uses for
texts outside a part's languages), scripts (which languages' scripts a
text is written in) and router.
"""
