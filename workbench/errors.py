"""Project exceptions: one base class, so the CLI can turn any of them into a one-line message."""


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
