"""Errors edgesbert raises on purpose: each says what was wrong and what to do."""

from __future__ import annotations


class EdgesbertError(Exception):
    """Base class of every error edgesbert raises on purpose."""


class ManifestError(EdgesbertError, ValueError):
    """The manifest of a model folder is missing, malformed or of an unknown schema version."""


class ModelLoadError(EdgesbertError, OSError):
    """A model folder or one of its files cannot be read."""


class ModelNotFoundError(EdgesbertError, FileNotFoundError):
    """A model name or path could not be resolved to a local folder."""


class DeviceNotAvailableError(EdgesbertError, RuntimeError):
    """The requested device is not present, or the backend cannot use it."""


class ExportError(EdgesbertError, RuntimeError):
    """An export could not be completed; nothing was written."""


class ValidationFailedError(ExportError):
    """An exported graph disagrees with the PyTorch reference beyond its tolerance."""


class PartialExportError(ValidationFailedError):
    """Some variants failed validation; the folder was written with the others, which passed."""

    def __init__(self, message: str, folder: str, failed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.folder = folder
        self.failed = failed


class MissingExtraError(EdgesbertError, ImportError):
    """An optional dependency is not installed."""


def require(module: str, extra: str) -> None:
    """Import ``module`` or raise an error naming the ``pip install`` that provides it.

    Args:
        module: importable module name, e.g. ``"torch"``.
        extra: the edgesbert extra that installs it, e.g. ``"torch"``.
    """
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(
            f"{module!r} is not installed; it comes with the {extra!r} extra: "
            f'pip install "edgesbert[{extra}]"'
        ) from e
