"""Decisions: policies fitted to targets, what routing saves, out-of-sample decisions and the export of pool.npz."""
