"""What a region job needs to know: the area, the catalog query, the model, the tiling and the Ray resources."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from magseg.bundled import BUNDLED_MODEL
from magseg.configfile import read_yaml_mapping
from magseg.decoding import check_share
from magseg.dtypes import check_dtype
from magseg.errors import InputError
from magseg.mapping.plan import DEFAULT_MARGIN_PX, DEFAULT_TILE_PX, check_bbox
from magseg.mapping.tile import RefineSettings

__all__ = ["ENGINES", "STANDINS", "MapConfig", "check_model_dir", "load_map_config"]

#: hf: transformers (CPU or GPU); hf-generate: the same model through transformers' own generate, no
#: shared prefix (the reference: the same tokens, slower; benchmarks measure hf against it); vllm: GPU
#: hosts; truth: a stand-in that writes the RRLE of the items' label rasters instead of running a model
#: (scale drills and tests measure the pipeline, not the model); field and classifier: the baselines as
#: stand-ins, "field" everywhere and a fitted per-pixel classifier (``classifier``), so that a region
#: layer of the model can be compared with theirs through the same job (the demo does).
ENGINES = ("hf", "hf-generate", "vllm", "truth", "field", "classifier")
#: The engines that run no model: the model folder only gives the RRLE format.
STANDINS = ("truth", "field", "classifier")


@dataclass
class MapConfig:
    """A region job. Fields marked *result* in ``result_settings`` decide the polygons; the rest is speed."""

    bbox: tuple[float, float, float, float]
    stac: str
    out: str
    model: str = str(BUNDLED_MODEL)
    collections: list[str] | None = None  # STAC collections to search (None: all)
    datetime: str | None = None  # RFC 3339 instant or interval "start/end"
    max_cloud: float | None = None  # percent
    asset: str = "image"  # the items' RGB asset key
    engine: str = "hf"  # hf (transformers, CPU or GPU) | hf-generate | vllm (GPU hosts) | truth (see ENGINES)
    truth_asset: str = "labels"  # engine truth: the items' label raster asset ...
    truth_band: int = 2  # ... and its class band (magseg synth writes instance ids in 1, classes in 2)
    classifier: str | None = None  # engine classifier: a PixelClassifier saved as .npz (PixelClassifier.save)
    boundary: str | None = None  # boundary model folder; None: the bundled one; "none": image fallback
    export: str | None = None  # one-file copy of the layer: .parquet | .fgb | .gpkg
    address: str | None = None  # Ray address (ray://host:10001, "auto"); None: start a local Ray
    gsd: float = 0.5  # metres per pixel the model reads at
    tile_px: int = DEFAULT_TILE_PX  # tile core side; core + 2 margins is the scene the model sees
    margin_px: int = DEFAULT_MARGIN_PX  # read around the core, so objects on the seams are seen whole
    max_new_tokens: int | None = None  # generation cap per patch (None: the longest RRLE of the model's grid)
    dtype: str | None = None  # weights cast to float32 | bfloat16 | float16 (None: the checkpoint's own)
    rereads: float | None = None  # share of seam re-reads per tile (None: the model card's; 0: none)
    batch_size: int = 128  # patches per generate call, filled from several tiles (a default tile has 64)
    actors: int = 1  # model actors
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    threads_per_actor: int = 1  # torch threads in each actor (Ray sets 1 per CPU; say more here)
    max_tiles: int = 5000  # refuse bigger regions unless yes
    allow_large: bool = False  # map regions above max_tiles (the --yes flag)
    collection_id: str = "magseg"  # the fiboa collection id written in the layer
    progress: bool = True  # one progress bar (tiles, patches/s, ETA) on the console
    pictures: bool = True  # quicklook.png + map.html (one-zone runs up to 4,096 tiles; they embed the layer)
    verbose: bool = False  # library logs (Ray's) on the console and a line per tile, instead of logs/ in out
    no_progress_timeout_s: float = 900.0  # fail instead of hanging when no stage moves for this long
    refine: RefineSettings = field(default_factory=RefineSettings)

    def __post_init__(self) -> None:
        self.bbox = check_bbox(self.bbox, max_lon_span=None)  # split by UTM zone when mapped
        if isinstance(self.refine, dict):
            self.refine = RefineSettings(**self.refine)
        if self.engine not in ENGINES:
            raise InputError(f"engine {self.engine!r} is not one of {', '.join(ENGINES)}")
        if self.engine == "classifier" and not (self.classifier and Path(self.classifier).is_file()):
            raise InputError(
                f"engine classifier needs classifier: a PixelClassifier .npz file, got {self.classifier!r}"
            )
        if not (math.isfinite(self.gsd) and self.gsd > 0):
            raise InputError(f"gsd {self.gsd!r} must be a positive number of metres per pixel")
        check_dtype(self.dtype)
        if self.rereads is not None:
            self.rereads = check_share(self.rereads, "rereads")
        if self.max_new_tokens is not None and int(self.max_new_tokens) < 1:
            raise InputError(f"max_new_tokens must be at least 1 (or unset), got {self.max_new_tokens}")
        for name in ("batch_size", "actors", "threads_per_actor", "max_tiles"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.cpus_per_actor < 0 or self.gpus_per_actor < 0:
            raise InputError("cpus_per_actor and gpus_per_actor must be >= 0")
        if self.max_cloud is not None and not 0 <= self.max_cloud <= 100:
            raise InputError(f"max_cloud {self.max_cloud} must be a percentage in 0..100")
        if self.export is not None and Path(self.export).suffix.lower() not in (".parquet", ".fgb", ".gpkg"):
            raise InputError(f"--export {self.export}: the extension must be .parquet, .fgb or .gpkg")

    def result_settings(self) -> dict[str, Any]:
        """What decides the polygons: a rerun into the same folder must match these exactly."""
        keys = ("bbox", "stac", "collections", "datetime", "max_cloud", "asset", "engine", "boundary") + (
            "gsd",
            "tile_px",
            "margin_px",
            "collection_id",
        )
        out = {k: getattr(self, k) for k in keys}
        out["bbox"] = list(self.bbox)
        out["model"] = os.path.abspath(self.model)
        out["refine"] = asdict(self.refine)
        if self.engine == "truth":
            out["truth"] = [self.truth_asset, self.truth_band]
        if self.engine == "classifier":
            out["classifier"] = os.path.abspath(str(self.classifier))
        if self.max_new_tokens is not None:  # a cap cuts long RRLE: it decides polygons
            out["max_new_tokens"] = int(self.max_new_tokens)
        if self.dtype is not None:  # another dtype writes slightly other masks
            out["dtype"] = self.dtype
        if self.rereads is not None:  # re-reads rewrite masks along seams
            out["rereads"] = self.rereads
        return out

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["bbox"] = list(self.bbox)
        return out


def load_map_config(path: str | os.PathLike[str], **overrides: Any) -> MapConfig:
    """A MapConfig from a YAML file (the keys of MapConfig; ``refine`` a mapping), ``overrides`` winning."""
    values = read_yaml_mapping(path, "a map config", "see jobs/configs/map_*.yaml for examples")
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(MapConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(
            f"{path}: unknown keys {', '.join(map(str, unknown))}; known: {', '.join(sorted(known))}"
        )
    missing = [k for k in ("bbox", "stac", "out") if values.get(k) is None]
    if missing:
        raise InputError(f"{path}: missing {', '.join(missing)}")
    return MapConfig(**values)


def check_model_dir(path: str | os.PathLike[str]) -> Path:
    """The model folder, or a one-line InputError when it is not a model magseg can load."""
    from magseg.model import resolve_model_path  # transformers: only when a job is about to run

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InputError(f"--model {path}: no such folder; give a model directory (e.g. from magseg train)")
    try:
        resolve_model_path(folder)
    except InputError as exc:
        raise InputError(f"--model {exc}") from None
    return folder.resolve()
