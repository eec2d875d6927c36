"""int8 storage of unit vectors: each dimension scaled by its largest magnitude (numpy only).

The pool's embeddings (:mod:`workbench.core.artifact`) and the follow-up detector's memory of labelled turns
(:mod:`workbench.core.follow_up`) are stored this way in pool.npz: a quarter of float32.
"""
from __future__ import annotations

import numpy as np

__all__ = ["quantize", "dequantize"]


def quantize(x):
    """``(int8 array, scale)``: each dimension scaled by its largest magnitude to [-127, 127] and rounded.

    For unit rows of a few hundred dimensions the cosines of the restored
    vectors differ from the originals' by about 1e-4 (a quarter of the float32
    size; leave-one-out routing of the bundled pool is unchanged).
    """
    x = np.asarray(x, np.float32)
    scale = np.abs(x).max(axis=0) if len(x) else np.ones(x.shape[1], np.float32)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    return np.clip(np.rint(x / scale * 127), -127, 127).astype(np.int8), scale


def dequantize(q, scale):
    """float32 unit rows from :func:`quantize`'s output (rows renormalised: cosines stay cosines)."""
    x = q.astype(np.float32) * (np.asarray(scale, np.float32) / 127)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
