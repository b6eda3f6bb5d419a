"""generate_scene: reproducibility, labels agree with polygons, field sizes, classes present, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from rasterio.features import rasterize

from magseg.classes import CLASS_NAMES, CLOUD, FIELD, class_id
from magseg.errors import CRSError, InputError
from magseg.synth import generate_scene
from magseg.synth.layout import FIELD_MAX_HA, FIELD_MIN_HA

ORIGIN = (700_000.0, 3_290_000.0)
CRS = "EPSG:32643"


def scene(seed: int, size: int = 256, cloud_fraction: float = 0.5):  # type: ignore[no-untyped-def]
    return generate_scene(seed, size, 0.5, ORIGIN, CRS, cloud_fraction=cloud_fraction)


def test_same_seed_same_scene_and_other_seed_differs() -> None:
    a, b, c = scene(11), scene(11), scene(12)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.labels.instance, b.labels.instance)
    assert np.array_equal(a.labels.semantic, b.labels.semantic)
    assert a.polygons.geometry.geom_equals_exact(b.polygons.geometry, 0).all()
    assert a.datetime == b.datetime
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.labels.instance, c.labels.instance)


def test_image_and_grid() -> None:
    sc = scene(3, size=128)
    assert sc.image.shape == (3, 128, 128) and sc.image.dtype == np.uint8
    assert sc.labels.shape == (128, 128)
    assert sc.labels.transform.a == 0.5 and sc.labels.transform.e == -0.5
    assert (sc.labels.transform.c, sc.labels.transform.f) == ORIGIN
    assert sc.labels.crs is not None and sc.labels.crs.to_epsg() == 32643
    assert sc.image.std() > 5  # textured, not flat


def test_clouds_do_not_change_the_ground() -> None:
    clear, cloudy = scene(4, cloud_fraction=0.0), scene(4, cloud_fraction=1.0)
    assert clear.cloud_cover == 0 and not (clear.labels.semantic == CLOUD).any()
    assert 1 < cloudy.cloud_cover <= 45
    under = cloudy.labels.semantic == CLOUD
    assert np.isclose(100 * under.mean(), cloudy.cloud_cover)
    # outside the clouds the scene's classes are those of the clear scene: clouds only cover
    same = clear.labels.semantic[~under] == cloudy.labels.semantic[~under]
    assert same.mean() > 0.999
    assert (cloudy.polygons["occluded"]).any() and not clear.polygons["occluded"].any()


@pytest.mark.parametrize("seed", [1, 2])
def test_labels_match_polygons(seed: int) -> None:
    sc = scene(seed, cloud_fraction=1.0)
    gdf = sc.polygons
    assert gdf["instance"].is_unique and gdf["id"].is_unique
    assert set(gdf["instance"]) == set(np.unique(sc.labels.instance)) - {0}
    assert gdf.geometry.is_valid.all()
    burnt = rasterize(
        zip(gdf.geometry, gdf["instance"], strict=True),
        out_shape=sc.labels.shape,
        transform=sc.labels.transform,
        dtype="int32",
    )
    assert (burnt == sc.labels.instance).mean() > 0.995
    # each instance has one class, and it is the polygon's class
    cls_of = dict(zip(gdf["instance"], (class_id(c) for c in gdf["class"]), strict=True))
    lut = np.zeros(sc.labels.instance.max() + 1, np.uint8)
    for inst, cid in cls_of.items():
        lut[inst] = cid
    assert np.array_equal(lut[sc.labels.instance], sc.labels.semantic)


def test_field_sizes_within_smallholder_range() -> None:
    areas = []
    for seed in range(3):
        gdf = scene(seed, size=512, cloud_fraction=0.0).polygons
        fields = gdf[gdf["class"] == "field"]
        assert (fields["area_m2"] <= FIELD_MAX_HA * 1e4 + 1).all()
        inner = fields[~fields["edge"]]
        areas.extend(inner["area_m2"] / 1e4)
        # instances are disjoint objects
        assert shapely.union_all(gdf.geometry.to_numpy()).area == pytest.approx(gdf.area.sum(), rel=1e-6)
    areas_ha = np.array(areas)
    assert areas_ha.size > 30
    assert areas_ha.min() >= FIELD_MIN_HA - 1e-9 and areas_ha.max() <= FIELD_MAX_HA
    assert areas_ha.max() / areas_ha.min() > 4  # heterogeneous sizes


def test_all_classes_appear_across_a_few_scenes() -> None:
    seen: set[str] = set()
    for seed in range(4):
        seen |= set(scene(seed, size=512, cloud_fraction=1.0).polygons["class"])
    assert seen == set(CLASS_NAMES[1:])


def test_fields_dominate_and_neighbours_sometimes_share_colour() -> None:
    sc = scene(21, size=512, cloud_fraction=0.0)
    assert (sc.labels.semantic == FIELD).mean() > 0.5
    fields = sc.polygons[sc.polygons["class"] == "field"]
    means = {}
    for inst in fields["instance"]:
        means[inst] = sc.image[:, sc.labels.instance == inst].mean(axis=1)
    colours = np.array(list(means.values()))
    spread = np.linalg.norm(colours - colours.mean(axis=0), axis=1)
    assert spread.max() > 15  # several crops, not one colour


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"size": 48}, InputError),
        ({"size": 200}, InputError),
        ({"gsd": 0.0}, InputError),
        ({"gsd": -1.0}, InputError),
        ({"cloud_fraction": 1.5}, InputError),
        ({"crs": "EPSG:4326"}, CRSError),
        ({"crs": "not a crs"}, CRSError),
    ],
)
def test_bad_input(kwargs: dict, error: type[Exception]) -> None:
    args = {"seed": 0, "size": 64, "gsd": 0.5, "origin": ORIGIN, "crs": CRS} | kwargs
    with pytest.raises(error) as exc:
        generate_scene(**args)
    assert "\n" not in str(exc.value)


def test_village_of_several_blobs_does_not_crash() -> None:
    # seed/gsd found by the eval baseline: the village's blobs do not touch and union to a MultiPolygon
    from magseg.synth import scene_seed

    scene = generate_scene(scene_seed(1, 2), 256, 0.997, (700_000.0, 3_300_000.0), "EPSG:32643")
    assert scene.image.shape == (3, 256, 256)
