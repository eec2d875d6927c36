"""The nightly run: execute every numbered notebook with papermill into ``reports/<date>/``.

Each notebook gets the parameters it declares (from one common set), runs
with static outputs (no widgets, no progress bars: see
:data:`workbench.report.notebook.STATIC_ENV`), is stored compactly and
rendered to a light HTML page (:mod:`workbench.report.html`), and records
its headline numbers with :func:`workbench.report.record.record_metrics`. An
``index.html`` links everything and compares the numbers with the previous
report; ``reports/latest`` points at the newest successful run, and the
oldest reports beyond ``keep`` are deleted (never the one ``latest`` points
to). A failing notebook stops the run with its name and cell; what was
produced so far stays on disk.
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
import re
import shutil
import time
from pathlib import Path

from .. import config as _config
from ..errors import ConfigError, WorkbenchError, require
from .html import compact_notebook, notebook_to_html
from .notebook import STATIC_ENV
from .record import jsonable, record_metrics

log = logging.getLogger(__name__)

__all__ = ["NotebookError", "COMMON_PARAMETERS", "run_folder_name", "find_notebooks", "notebook_parameters", "run_notebook",
           "notebook_to_html", "update_latest", "prune_reports", "run_nightly"]

#: Parameters the nightly run can pass; each notebook receives those it declares.
COMMON_PARAMETERS = ("pool_dir", "templates_dir", "taxonomy_path", "backend", "backends", "output_dir", "cache_dir",
                     "k", "dup_threshold", "cluster_threshold", "seed", "eval_dir", "per_source", "conversations_dir",
                     "dev_dir", "decision_log")
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
#: Parameters that name files: resolved against the caller's working folder before they reach a kernel.
PATH_PARAMETERS = ("pool_dir", "templates_dir", "taxonomy_path", "cache_dir", "decision_log")


class NotebookError(WorkbenchError):
    """A notebook failed while the nightly run executed it."""


def run_folder_name(date):
    """``date`` if it is a real date (``YYYY-MM-DD``) or a simple name (letters, digits, ``-``, ``_``; no dots).

    The run folder is ``reports/<date>/``: anything else (``..``, ``a/b``,
    ``.hidden``, ``latest``, ``2026-13-45``) is a ConfigError, so a run never
    writes outside ``reports/`` or over the ``latest`` link.
    """
    text = str(date)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            datetime.date.fromisoformat(text)
        except ValueError:
            raise ConfigError(f"date {text!r} is not a real date (YYYY-MM-DD)") from None
        return text
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", text) or text == "latest":
        raise ConfigError(f"date must be a date (YYYY-MM-DD) or a simple name of letters, digits, '-' and '_' "
                          f"(not 'latest'); got {text[:80]!r}")
    return text


def find_notebooks(notebooks_dir=None, select=None):
    """The numbered notebooks (``NN_*.ipynb``) in order; ``select`` keeps those whose name starts with an entry."""
    notebooks_dir = Path(notebooks_dir or _config.NOTEBOOKS_DIR)
    found = sorted(notebooks_dir.glob(NOTEBOOK_GLOB))
    if select:
        unknown = [s for s in select if not any(p.name.startswith(s) for p in found)]
        if unknown:
            raise ConfigError(f"--notebooks must name notebooks in {notebooks_dir} "
                              f"({', '.join(p.stem for p in found)}); got {', '.join(unknown)}")
        found = [p for p in found if any(p.name.startswith(s) for s in select)]
    if not found:
        raise ConfigError(f"no notebooks matching {NOTEBOOK_GLOB} in {notebooks_dir}")
    return found


def notebook_parameters(path):
    """Names of the parameters a notebook declares in its ``parameters`` cell."""
    papermill = require("papermill", purpose="running notebooks")
    return set(papermill.inspect_notebook(str(path)))


def run_notebook(path, output_path, parameters, *, cwd=None, kernel_name="python3", start_timeout=120):
    """Execute one notebook with papermill.

    Raises
    ------
    ConfigError
        When ``parameters`` names one the notebook does not declare.
    NotebookError
        Naming the notebook and the failing cell; the partly executed
        notebook is kept at ``output_path``.
    """
    papermill = require("papermill", purpose="running notebooks")
    from papermill.exceptions import PapermillExecutionError

    path = Path(path)
    declared = notebook_parameters(path)
    unknown = sorted(set(parameters) - declared)
    if unknown:
        raise ConfigError(f"{path.name}: unknown parameter(s) {unknown}; it declares {sorted(declared)}")
    try:
        papermill.execute_notebook(str(path), str(output_path), parameters=jsonable(dict(parameters)),
                                   kernel_name=kernel_name, progress_bar=False, log_output=False,
                                   cwd=str(cwd or path.parent), start_timeout=start_timeout,
                                   # the kernel's own warnings (e.g. about TCP transport) would drown the progress lines
                                   extra_arguments=["--IPKernelApp.log_level=ERROR"])
    except PapermillExecutionError as e:
        first = next((ln for ln in str(e.source).splitlines() if ln.strip()), "")
        raise NotebookError(f"notebook {path.name} failed in cell {e.cell_index} (execution count {e.exec_count}, "
                            f"starts {first.strip()[:60]!r}): {e.ename}: {e.evalue}; "
                            f"partial output in {output_path}") from None
    except Exception as e:  # a dead kernel, a timeout, an unreadable notebook: still name the notebook
        raise NotebookError(f"notebook {path.name} failed: {type(e).__name__}: {e}") from e


def update_latest(reports_dir, run_dir):
    """Point ``<reports_dir>/latest`` at ``run_dir`` (a relative symlink, swapped atomically)."""
    reports_dir, run_dir = Path(reports_dir), Path(run_dir)
    link = reports_dir / "latest"
    if link.exists() and not link.is_symlink():
        raise WorkbenchError(f"{link} exists and is not a symlink; move it away")
    tmp = reports_dir / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(run_dir, reports_dir), target_is_directory=True)
    os.replace(tmp, link)


def prune_reports(reports_dir, keep):
    """Delete the oldest report folders beyond the newest ``keep`` ones; returns the deleted paths.

    A report folder is a dated folder (``YYYY-MM-DD``, the nightly's
    default name) holding a ``metrics.json``; other folders are left alone,
    and so is the folder ``latest`` points to, whatever its age.
    """
    from .index import is_report_folder

    if keep is None or keep < 1:
        raise ConfigError(f"keep must be an integer >= 1; got {keep!r}")
    reports_dir = Path(reports_dir)
    link = reports_dir / "latest"
    protected = link.resolve() if link.is_symlink() else None
    reports = sorted((p for p in reports_dir.iterdir() if is_report_folder(p)), key=lambda p: p.name, reverse=True)
    deleted = []
    for old in reports[keep:]:
        if protected is not None and old.resolve() == protected:
            continue
        shutil.rmtree(old)
        deleted.append(old)
    return deleted


@contextlib.contextmanager
def _kernel_environment():
    """Kernels import the same workbench checkout as this process and make static outputs (see STATIC_ENV)."""
    root = str(Path(__file__).resolve().parents[2])
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", STATIC_ENV)}
    os.environ["PYTHONPATH"] = root + (os.pathsep + saved["PYTHONPATH"] if saved["PYTHONPATH"] else "")
    os.environ[STATIC_ENV] = "1"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _gate(run_dir, reports_dir, common, say):
    """The promotion gate of tonight's pool against the kept one (:mod:`.gate`), on the nightly's labelled sets,
    with what it would change on the decision log ``09_traffic`` reads (default the bundled sample)."""
    from .gate import nightly_gate

    def folder(key, default):
        path = Path(common.get(key) or default)
        return path if path.is_dir() else None

    gate = nightly_gate(run_dir, reports_dir, eval_dir=folder("eval_dir", _config.EVAL_DIR),
                        conversations_dir=folder("conversations_dir", _config.CONVERSATIONS_DIR),
                        per_source=common.get("per_source", _config.EVAL_PER_SOURCE),
                        seed=common.get("seed", _config.SEED), cache_dir=common.get("cache_dir"),
                        decision_log=folder("decision_log", _config.TRAFFIC_DIR))
    say(f"promotion gate: {gate['status']}")


def run_nightly(parameters=None, *, reports_dir=None, date=None, notebooks_dir=None, select=None, progress=None,
                keep=_config.REPORTS_KEEP):
    """Run the numbered notebooks into ``<reports_dir>/<date>/`` and write index.html.

    Parameters
    ----------
    parameters : dict, optional
        Values for :data:`COMMON_PARAMETERS` (``None`` values are left to
        the notebooks' defaults; ``output_dir`` is always the run folder,
        the kernels' working folder).
    reports_dir : path, optional
        Default ``reports/``.
    date : str, optional
        Run folder name (default: today, ``YYYY-MM-DD``, UTC).
    select : list of str, optional
        Run only notebooks whose names start with these.
    progress : callable(str), optional
        Called with one line per notebook.
    keep : int
        Report folders kept after a successful run (:func:`prune_reports`).

    Returns
    -------
    pathlib.Path of the run folder.
    """
    from .index import write_index

    say = progress or log.info
    reports_dir = Path(reports_dir or _config.REPORTS_DIR)
    date = run_folder_name(date or time.strftime("%Y-%m-%d", time.gmtime()))
    unknown = sorted(set(parameters or {}) - set(COMMON_PARAMETERS))
    if unknown:
        raise ConfigError(f"unknown nightly parameter(s) {unknown}; known: {', '.join(COMMON_PARAMETERS)}")
    if not isinstance(keep, int) or keep < 1:
        raise ConfigError(f"keep must be an integer >= 1; got {keep!r}")
    run_dir = reports_dir / date
    run_dir.mkdir(parents=True, exist_ok=True)
    # a re-run on the same day overwrites the sections of the notebooks it runs and keeps the others
    common = {k: (str(Path(v).resolve()) if k in PATH_PARAMETERS else v)
              for k, v in (parameters or {}).items() if v is not None}
    # kernels run in the run folder: the published pages show output_dir = ".", not a path of this machine
    common["output_dir"] = "."
    notebooks = find_notebooks(notebooks_dir, select)
    runs, started = [], time.perf_counter()
    try:
        with _kernel_environment():
            for n, nb in enumerate(notebooks, 1):
                params = {k: v for k, v in common.items() if k in notebook_parameters(nb)}
                out = run_dir / nb.name
                t0 = time.perf_counter()
                say(f"[{n}/{len(notebooks)}] {nb.stem} ...")
                error = None
                try:
                    run_notebook(nb, out, params, cwd=run_dir.resolve())
                except NotebookError as e:
                    error = e
                if out.exists():
                    compact_notebook(out)
                    notebook_to_html(out, out.with_suffix(".html"), run_dir=run_dir)
                runs.append({"notebook": nb.stem, "seconds": round(time.perf_counter() - t0, 1),
                             "status": "failed" if error else "ok"})
                say(f"[{n}/{len(notebooks)}] {nb.stem} {'FAILED' if error else 'done'} "
                    f"in {time.perf_counter() - t0:.1f} s")
                if error:
                    raise error
    except NotebookError as e:
        record_metrics(run_dir, "run", {"status": "failed", "error": str(e), "notebooks": runs,
                                        "seconds": round(time.perf_counter() - started, 1)}, replace=True)
        write_index(run_dir)
        raise
    record_metrics(run_dir, "run", {"status": "ok", "notebooks": runs, "seconds": round(time.perf_counter() - started, 1)},
                   replace=True)
    _gate(run_dir, reports_dir, common, say)
    write_index(run_dir)
    update_latest(reports_dir, run_dir)
    for old in prune_reports(reports_dir, keep):
        say(f"deleted the old report {old.name} (keeping the newest {keep})")
    return run_dir
