"""Map a region: plan the tiles of a bbox (and, later, run and mosaic them)."""

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

__all__ = [
    "BUNDLED_MODEL",
    "ModelRates",
    "RegionPlan",
    "Tile",
    "check_bbox",
    "plan_region",
    "read_model_rates",
    "utm_epsg",
]
