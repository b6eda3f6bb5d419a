"""Score files: label rasters or polygon layers, chosen by extension, read with the project's readers."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from magseg.classes import class_id
from magseg.errors import InputError
from magseg.metrics.instances import score_instances
from magseg.metrics.layers import score_layers
from magseg.metrics.scores import ClassScores

if TYPE_CHECKING:
    import geopandas as gpd

RASTER_SUFFIXES = (".tif", ".tiff")
PARQUET_SUFFIXES = (".parquet", ".geoparquet")
LAYER_SUFFIXES = (*PARQUET_SUFFIXES, ".gpkg", ".fgb", ".geojson", ".json", ".shp")

Kind = Literal["raster", "layer"]


def input_kind(path: str | os.PathLike[str]) -> Kind:
    """Whether a path names a label raster or a polygon layer, by its extension."""
    suffix = Path(path).suffix.lower()
    if suffix in RASTER_SUFFIXES:
        return "raster"
    if suffix in LAYER_SUFFIXES:
        return "layer"
    raise InputError(
        f"{path}: unknown extension {suffix or '(none)'!r}; give a label GeoTIFF (.tif) or a polygon layer "
        f"({', '.join(LAYER_SUFFIXES)})"
    )


def parse_classes(text: str | None) -> tuple[int, ...] | None:
    """Class ids from a comma-separated list of class names ("field,tree"); None or "" means all."""
    if not text or not text.strip():
        return None
    ids: list[int] = []
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        try:
            cid = class_id(name)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if cid == 0:
            raise InputError(
                "background is never scored; name foreground classes (field, tree, cloud, pond, well)"
            )
        ids.append(cid)
    return tuple(ids) or None


def read_layer(path: str | os.PathLike[str]) -> gpd.GeoDataFrame:
    """Read a polygon layer (GeoParquet via read_parquet, anything else via read_file)."""
    import geopandas as gpd  # imported here so the RL reward path (mean_dice) never pays for it

    if not os.path.exists(path):
        raise InputError(f"{path}: no such file; give the path of a polygon layer")
    try:
        if Path(path).suffix.lower() in PARQUET_SUFFIXES:
            return gpd.read_parquet(path)
        return gpd.read_file(path)
    except Exception as exc:  # pyogrio, pyarrow and geopandas each raise their own types
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable polygon layer ({reason})") from exc


def score_files(
    pred_path: str | os.PathLike[str],
    truth_path: str | os.PathLike[str],
    classes: Sequence[int] | None = None,
) -> dict[str, ClassScores]:
    """Score a prediction file against a truth file of the same kind (two label rasters or two layers)."""
    pred_kind, truth_kind = input_kind(pred_path), input_kind(truth_path)
    if pred_kind != truth_kind:
        raise InputError(
            f"prediction is a {pred_kind} but truth is a {truth_kind}; give two label rasters or two polygon layers"
        )
    if pred_kind == "layer":
        return score_layers(read_layer(pred_path), read_layer(truth_path), classes)
    from magseg.labels import read_label_raster  # rasterio is only needed for raster inputs

    pred, truth = read_label_raster(pred_path), read_label_raster(truth_path)
    if pred.shape != truth.shape:
        raise InputError(
            f"{pred_path} is {pred.shape[0]}x{pred.shape[1]} but {truth_path} is {truth.shape[0]}x{truth.shape[1]}; "
            "resample/crop the prediction to the truth grid"
        )
    if pred.crs is not None and truth.crs is not None and pred.crs != truth.crs:
        raise InputError(
            f"{pred_path} is in {pred.crs.to_string()} but {truth_path} in {truth.crs.to_string()}; "
            "reproject the prediction to the truth grid"
        )
    return score_instances(pred.instance, pred.semantic, truth.instance, truth.semantic, classes)
