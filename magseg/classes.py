"""The class table shared by every stage: ids, RRLE descriptors and display colours."""

from __future__ import annotations

from typing import Final

#: Descriptor of class i is CLASSES[i]; class 0 is background, written "others" as in Text4Seg.
CLASSES: Final[tuple[str, ...]] = ("others", "field", "tree", "cloud", "pond", "well")

BACKGROUND: Final[int] = 0
FIELD: Final[int] = 1
TREE: Final[int] = 2
CLOUD: Final[int] = 3
POND: Final[int] = 4
WELL: Final[int] = 5

#: How much one pixel of each class counts when the "weighted" grid rule gives a cell one class
#: (magseg.codec.mask_to_grid): a well (4-7 px) is smaller than an 8 px cell and loses every majority
#: vote, so its pixels count three times; on held-out synthetic scenes this keeps the truth-at-grid
#: well DICE at 0.42 instead of 0.32 and costs no other class anything.
CELL_WEIGHTS: Final[tuple[float, ...]] = (1.0, 1.0, 1.0, 1.0, 1.0, 3.0)

#: Human-facing names (layers, tables); "background" rather than the RRLE descriptor "others".
CLASS_NAMES: Final[tuple[str, ...]] = ("background", "field", "tree", "cloud", "pond", "well")

#: RGBA colours for quick-looks and map tiles (background transparent).
CLASS_COLOURS: Final[tuple[tuple[int, int, int, int], ...]] = (
    (0, 0, 0, 0),
    (255, 200, 0, 200),
    (20, 120, 40, 200),
    (230, 230, 230, 200),
    (30, 110, 230, 200),
    (200, 30, 200, 230),
)


def class_id(name: str) -> int:
    """Return the id of a class given its name or RRLE descriptor."""
    key = name.strip().lower()
    if key in CLASS_NAMES:
        return CLASS_NAMES.index(key)
    if key in CLASSES:
        return CLASSES.index(key)
    raise ValueError(f"unknown class {name!r}: expected one of {', '.join(CLASS_NAMES)}")
