import subprocess
import sys

import pytest

from workbench.errors import ArtifactError
from workbench.core.router import Router

MESSAGES = {
    "coding": ["write a python function that removes duplicates from a list",
               "帮我写一个 SQL 查询，统计每个用户的订单数量"],
    "casual": ["haha thanks, you're the best! good night 😴", "¡hola! ¿qué tal tu día?"],
}


def test_router_sends_code_requests_to_strong_and_small_talk_to_cheap(small_npz, e5):
    router = Router.load(small_npz, embedder=e5)
    for cat, texts in MESSAGES.items():
        for d in router.route_batch(texts):
            assert d.tier == {"coding": "strong", "casual": "cheap"}[cat], (cat, d)
            assert 0 < d.confidence <= 1 and len(d.neighbors) == 5


def test_route_and_route_batch_agree(small_npz, e5):
    router = Router.load(small_npz, embedder=e5)
    texts = MESSAGES["coding"] + MESSAGES["casual"]
    batch = router.route_batch(texts)
    assert [router.route(t).category for t in texts] == [d.category for d in batch]


def test_router_refuses_another_backend(small_npz):
    from workbench.core.embed import USEMultilingual

    with pytest.raises(ArtifactError, match="backend"):
        Router.load(small_npz, embedder=USEMultilingual())
