"""Where the bundled models live (a light module: reading the paths imports no ML stack)."""

import os
from pathlib import Path

_ASSETS = Path(__file__).resolve().parent / "assets"

#: The bundled tiny model (scripts/train_tiny_model.py writes it; its README.md is the model card).
BUNDLED_MODEL = _ASSETS / "tiny-magseg"
#: The bundled EPOC boundary model (tiny SegFormer; the same script trains it): the default refinement.
BUNDLED_BOUNDARY = _ASSETS / "tiny-boundary"
#: The --boundary value that asks for the image fallback (no trained boundary model).
NO_BOUNDARY = "none"


def boundary_choice(value: str | os.PathLike[str] | None) -> str | None:
    """The boundary model folder a ``--boundary`` value means: None -> the bundled one (when installed),
    "none" -> None (the image fallback), a folder -> that folder."""
    if value is None:
        return str(BUNDLED_BOUNDARY) if (BUNDLED_BOUNDARY / "config.json").is_file() else None
    if str(value).lower() == NO_BOUNDARY:
        return None
    return str(value)
