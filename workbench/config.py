"""Default paths, all derived from the project root.

Functions take paths as arguments and default to these; nothing here touches
the file system at import time.
"""
import os
from pathlib import Path

#: The checkout that holds ``workbench/``, ``data/`` and ``reports/``.
PROJECT_ROOT = Path(os.environ.get("WORKBENCH_ROOT", Path(__file__).resolve().parent.parent))
DATA_DIR = PROJECT_ROOT / "data"
TAXONOMY_PATH = DATA_DIR / "taxonomy.yaml"
POOL_DIR = DATA_DIR / "pool"
TEMPLATES_DIR = DATA_DIR / "templates"
TRANSCRIPTS_DIR = DATA_DIR / "transcripts"
#: Derived data (embedding caches, label caches, candidates): git-ignored, safe to delete.
INTERIM_DIR = DATA_DIR / "interim"
CACHE_DIR = INTERIM_DIR / "embeddings"
REPORTS_DIR = PROJECT_ROOT / "reports"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
#: Where the public benchmark prompts live (evaluation only, never copied into the pool).
EXTERNAL_DIR = PROJECT_ROOT.parent / "shared" / "external"

DEFAULT_BACKEND = "e5-small"
