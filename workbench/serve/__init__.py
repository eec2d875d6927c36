"""The router as an HTTP service (``workbench serve``): Starlette on uvicorn, the ``serve`` extra.

:mod:`.app` (endpoints and the error contract), :mod:`.batching` (one
encoder thread, micro-batches, pool swaps between batches), :mod:`.pools`
(loading, verifying and watching pool.npz), :mod:`.metrics` (Prometheus
text), :mod:`.server` (uvicorn). It depends on the routing core only.
"""
