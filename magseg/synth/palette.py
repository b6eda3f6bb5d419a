"""Colours and textures of Indian crops by season, soils, roofs and water, as seen from 0.3–1 m imagery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np


@dataclass(frozen=True)
class Crop:
    """How a crop looks from above: a base colour and texture strengths (relative brightness)."""

    name: str
    rgb: tuple[int, int, int]
    rows: float  # amplitude of furrows / tramlines
    row_m: tuple[float, float]  # their spacing range in metres
    grain: float  # medium-scale clumpiness (canopy, clods)
    patches: float  # low-frequency patchiness (uneven growth, wet spots)
    soil: float  # fraction of bare soil showing between plants


CROPS: tuple[Crop, ...] = (
    Crop("wheat", (78, 106, 52), 0.04, (1.5, 3.0), 0.05, 0.06, 0.0),
    Crop("young", (96, 118, 62), 0.12, (0.8, 1.6), 0.05, 0.10, 0.5),
    Crop("mustard", (182, 176, 78), 0.03, (1.5, 3.0), 0.06, 0.07, 0.0),
    Crop("sugarcane", (52, 84, 44), 0.05, (1.2, 1.6), 0.14, 0.05, 0.0),
    Crop("paddy_flooded", (66, 86, 76), 0.03, (1.0, 2.0), 0.03, 0.08, 0.0),
    Crop("paddy", (86, 124, 60), 0.03, (1.0, 2.0), 0.04, 0.07, 0.0),
    Crop("stubble", (168, 152, 114), 0.10, (2.0, 4.5), 0.05, 0.06, 0.0),
    Crop("ploughed", (128, 106, 84), 0.16, (0.8, 1.5), 0.08, 0.06, 0.0),
    Crop("fallow", (138, 130, 96), 0.02, (2.0, 3.0), 0.08, 0.1, 0.3),
    Crop("vegetables", (98, 122, 70), 0.16, (0.9, 1.4), 0.08, 0.08, 0.25),
    Crop("cotton", (108, 118, 74), 0.10, (0.9, 1.2), 0.08, 0.08, 0.35),
)
_I = {c.name: i for i, c in enumerate(CROPS)}

#: Relative crop frequencies by month group (rabi winter, summer, kharif monsoon, post-harvest).
_SEASONS: dict[str, dict[str, float]] = {
    "rabi": {
        "wheat": 5,
        "mustard": 1.5,
        "young": 1.5,
        "sugarcane": 1,
        "fallow": 0.7,
        "vegetables": 1,
        "ploughed": 0.6,
    },
    "summer": {"stubble": 4, "ploughed": 4, "fallow": 2.5, "sugarcane": 1, "vegetables": 0.7, "young": 0.5},
    "kharif": {
        "paddy_flooded": 2.5,
        "paddy": 4,
        "sugarcane": 1,
        "cotton": 2,
        "young": 1,
        "fallow": 0.5,
        "vegetables": 0.7,
    },
    "autumn": {"stubble": 3, "ploughed": 3, "young": 3, "sugarcane": 1, "wheat": 1, "fallow": 0.7},
}
_MONTH_SEASON = {
    12: "rabi",
    1: "rabi",
    2: "rabi",
    3: "rabi",
    4: "summer",
    5: "summer",
    6: "summer",
    11: "autumn",
}

#: Soil colours: Indo-Gangetic alluvium, Deccan black cotton soil, red laterite.
SOILS: tuple[tuple[int, int, int], ...] = ((152, 134, 104), (104, 94, 82), (150, 106, 80))
#: Roofs: concrete, whitewash, brick/tile, blue tarpaulin, dark sheet.
ROOFS: tuple[tuple[int, int, int], ...] = (
    (150, 148, 144),
    (205, 202, 194),
    (150, 96, 76),
    (70, 112, 162),
    (86, 82, 80),
)
#: Pond water: algal green, grey-blue, turbid brown.
WATERS: tuple[tuple[int, int, int], ...] = ((52, 76, 58), (48, 64, 80), (92, 88, 68))


def season_of(when: datetime) -> str:
    return _MONTH_SEASON.get(when.month, "kharif")


def crop_weights(rng: np.random.Generator, when: datetime) -> np.ndarray:
    """This scene's crop frequencies: the season's, reweighted at random so each scene has a few dominant crops."""
    base = np.zeros(len(CROPS))
    for name, w in _SEASONS[season_of(when)].items():
        base[_I[name]] = w
    weights = base * rng.gamma(1.0, 1.0, base.size)
    keep = int(rng.integers(3, 7))  # a handful of crops per scene: neighbours often share one
    weights[np.argsort(-weights)[keep:]] = 0.0
    return weights / weights.sum()
