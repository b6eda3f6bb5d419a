"""One synthetic scene: layout, objects, paint, clouds, sensor effects, and its ground truth (raster + polygons)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import geopandas as gpd
import numpy as np
from rasterio.crs import CRS
from rasterio.errors import CRSError as RasterioCRSError
from scipy import ndimage

from magseg.classes import CLASS_NAMES, FIELD, POND, TREE, WELL
from magseg.errors import CRSError, InputError
from magseg.labels import LabelRaster
from magseg.synth.clouds import cloud_field, composite
from magseg.synth.layout import lay_out_fields
from magseg.synth.objects import finalize, place_objects
from magseg.synth.palette import crop_weights
from magseg.synth.render import render
from magseg.synth.truth import ground_truth

MIN_SIZE, MAX_SIZE = 64, 8192


@dataclass
class SyntheticScene:
    """An RGB scene with its label raster and the polygons of every labelled instance."""

    image: np.ndarray  # (3, H, W) uint8
    labels: LabelRaster
    polygons: gpd.GeoDataFrame  # id, class, instance, scene, edge, occluded, area_m2, geometry (scene CRS)
    cloud_cover: float  # percent of pixels labelled cloud
    datetime: datetime
    scene_id: str = "synth"
    seed: int = 0

    def counts(self) -> dict[str, int]:
        """Number of instances per class name."""
        return {name: int((self.polygons["class"] == name).sum()) for name in CLASS_NAMES[1:]}


def check_params(size: int, gsd: float, cloud_fraction: float = 0.0) -> None:
    """Refuse sizes, GSDs and cloud fractions the generator cannot honour, with a one-line InputError."""
    if not (MIN_SIZE <= size <= MAX_SIZE) or size % 16:
        raise InputError(f"size {size}: must be a multiple of 16 between {MIN_SIZE} and {MAX_SIZE} pixels")
    if not (gsd > 0 and np.isfinite(gsd)):
        raise InputError(f"gsd {gsd}: must be a positive number of metres per pixel (e.g. 0.5)")
    if not (0.0 <= cloud_fraction <= 1.0):
        raise InputError(f"cloud fraction {cloud_fraction}: must lie between 0 and 1")


def scene_datetime(seed: int) -> datetime:
    """An acquisition time drawn from the seed: a day of 2024 at 05:30 UTC (about 11:00 in India)."""
    day = int(np.random.default_rng([seed, 1]).integers(0, 366))
    return datetime(2024, 1, 1, 5, 30, tzinfo=UTC) + timedelta(days=day)


def generate_scene(
    seed: int,
    size: int,
    gsd: float,
    origin: tuple[float, float],
    crs: str,
    cloud_fraction: float = 0.3,
    *,
    scene_id: str | None = None,
    when: datetime | None = None,
) -> SyntheticScene:
    """Generate one scene whose top-left corner is ``origin`` (x, y in ``crs``, a projected CRS).

    ``cloud_fraction`` is the chance that the scene is cloudy; a cloudy scene has 4–40% cloud cover. The
    same arguments always give the same image, labels and polygons.
    """
    check_params(size, gsd, cloud_fraction)
    try:
        crs_obj = CRS.from_user_input(crs)
    except RasterioCRSError as exc:
        raise CRSError(f"crs {crs!r}: not a CRS rasterio knows ({exc}); give e.g. EPSG:32643") from exc
    if not crs_obj.is_projected:
        raise CRSError(f"crs {crs!r} is not projected; give a metric CRS such as a UTM zone (EPSG:326zz)")
    when = when or scene_datetime(seed)
    scene_id = scene_id or f"synth-{seed}"
    rng = np.random.default_rng(seed)
    lay = lay_out_fields(rng, size, gsd, crop_weights(rng, when))
    place_objects(rng, lay)
    finalize(lay)
    img = render(rng, lay)

    # clouds draw from their own stream, so a scene with and without clouds shows the same landscape
    cloud_rng = np.random.default_rng([seed, 2])
    cloud_mask = np.zeros((size, size), bool)
    if cloud_rng.random() < cloud_fraction:
        alpha, cloud_mask = cloud_field(cloud_rng, size, gsd, float(cloud_rng.uniform(0.04, 0.4)))
        img = composite(cloud_rng, img, alpha, gsd)
    # sensor: optics blur, haze, a per-scene colour balance, and noise
    img = ndimage.gaussian_filter(img, sigma=(0.55, 0.55, 0))
    haze = rng.uniform(0.02, 0.1)
    img = img * (1 - haze) * rng.uniform(0.96, 1.04, 3) + haze * np.array([200, 204, 212], np.float32)
    img = img + rng.normal(0, 2.0, img.shape)
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8).transpose(2, 0, 1).copy()

    objects = (
        [(f.geom, FIELD) for f in lay.fields]
        + [(g, TREE) for g in lay.trees]
        + [(g, POND) for g in lay.ponds]
        + [(g, WELL) for g in lay.wells]
    )
    labels, polygons = ground_truth(objects, cloud_mask, gsd, origin, crs_obj, scene_id)
    return SyntheticScene(
        image=image,
        labels=labels,
        polygons=polygons,
        cloud_cover=100.0 * float(cloud_mask.mean()),
        datetime=when,
        scene_id=scene_id,
        seed=seed,
    )
