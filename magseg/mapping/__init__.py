"""Map a region: plan the tiles of a bbox, read each tile from STAC scenes (and, later, run and mosaic them)."""

from magseg.mapping.plan import (
    BUNDLED_MODEL,
    ModelRates,
    RegionPlan,
    Tile,
    check_bbox,
    plan_region,
    read_model_rates,
    utm_epsg,
)
from magseg.mapping.read import TileImage, read_tile

__all__ = [
    "BUNDLED_MODEL",
    "ModelRates",
    "RegionPlan",
    "Tile",
    "TileImage",
    "check_bbox",
    "plan_region",
    "read_model_rates",
    "read_tile",
    "utm_epsg",
]
