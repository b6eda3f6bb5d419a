"""Map a region: plan a bbox's tiles, read them from STAC scenes, write the partitioned field layer."""

from magseg.mapping.layer import (
    PARTITION_ZOOM,
    export_layer,
    partition_files,
    partition_key,
    read_partitioned,
    write_partitioned,
)
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
from magseg.mapping.zones import ZonedPlan, plan_zones, zone_parts

__all__ = [
    "PARTITION_ZOOM",
    "export_layer",
    "partition_files",
    "partition_key",
    "read_partitioned",
    "write_partitioned",
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
    "ZonedPlan",
    "plan_zones",
    "zone_parts",
]
