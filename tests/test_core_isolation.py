"""The routing core stands alone: numpy only, and a Router works with every heavy package blocked."""
import subprocess
import sys

from tests.helpers import ROOT

BLOCKED = ("pandas", "scipy", "sklearn", "plotly", "umap", "yaml", "torch", "sentence_transformers", "transformers",
           "papermill", "nbformat", "tqdm")

SCRIPT = f"""
import importlib, pkgutil, sys

BLOCKED = {BLOCKED!r}

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked in this test: {{name}}")

sys.meta_path.insert(0, Block())

import numpy as np
import workbench.core
from tests.helpers import HashEmbedder, synthetic_pool

modules = [m.name for m in pkgutil.iter_modules(workbench.core.__path__, "workbench.core.")]
for name in modules:
    importlib.import_module(name)
import workbench.cli._options  # the CLI's routing commands assemble their options from the core only

from workbench.core.artifact import write_pool_npz
from workbench.core.knn import KNNConfig
from workbench.core.policy import DecisionPolicy
from workbench.core.router import Router
from workbench.core.taxonomy import Taxonomy

tax = Taxonomy(("cheap", "medium", "strong"), {{"casual": "cheap", "analysis": "medium", "coding": "strong"}})
emb = HashEmbedder(dim=24)
texts = ["hello there friend", "hi friend how are you", "good morning friend",
         "compare these two plans", "pros and cons of plans", "explain why plans differ",
         "write python code", "fix this python code", "python code for sorting"]
labels = np.repeat(np.arange(3), 3)
policy = DecisionPolicy("vote", None, "tier_confidence", 0.2)
path = sys.argv[1]
write_pool_npz(path, emb.encode(texts), labels, [f"m{{i}}" for i in range(9)], taxonomy=tax, embedder_spec=emb.spec,
               config=KNNConfig(k=3, vote="distance", center=True), extra_metadata={{"policy": policy.to_metadata()}})
router = Router.load(path, embedder=emb)
d = router.route("python code please")
assert d.tier == "strong" and d.category == "coding", d
assert len(d.neighbors) == 3
heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not heavy, heavy
print("ok", len(modules), "core modules")
"""


def test_every_core_module_imports_and_routes_with_heavy_packages_blocked(tmp_path):
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "pool.npz")], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("ok")
