"""Where shipped models live, and how a component's ``model`` setting becomes a folder."""

from __future__ import annotations

from pathlib import Path

from nlp.errors import ModelNotFoundError

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


def resolve_model_dir(model: str) -> Path:
    """An existing model folder: ``model`` as a path, else ``models/<model>``."""
    path = Path(model).expanduser()
    if not path.is_absolute() and not path.exists():
        path = MODELS_DIR / model
    if not path.is_dir():
        raise ModelNotFoundError(
            f"model folder {model!r} not found (looked at {path}); train one with "
            "`notes2fhir train ner` or pass the path of a trained model"
        )
    return path
