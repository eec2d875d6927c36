"""Analysis of a pool: leave-one-out evaluation, metrics, maps, baselines, review queue, curves, tables."""
