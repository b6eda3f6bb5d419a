"""Seeded synthetic smallholder landscapes: scenes (COG), label rasters, polygons and a STAC catalogue."""

from magseg.synth.catalog import collection_id
from magseg.synth.locations import PRESETS, Location, mosaic_origins, resolve_location
from magseg.synth.scene import SyntheticScene, generate_scene
from magseg.synth.write import scene_seed, write_dataset

__all__ = [
    "PRESETS",
    "Location",
    "SyntheticScene",
    "collection_id",
    "generate_scene",
    "mosaic_origins",
    "resolve_location",
    "scene_seed",
    "write_dataset",
]
