"""Where the bundled tiny MAgSeg model lives (a light module: reading the path imports no ML stack)."""

from pathlib import Path

#: The bundled tiny model (scripts/train_tiny_model.py writes it; its README.md is the model card).
BUNDLED_MODEL = Path(__file__).resolve().parent / "assets" / "tiny-magseg"
