"""What the tile server needs: the model, the catalog, the tiling it shares with the region job, limits."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from magseg.bundled import BUNDLED_MODEL
from magseg.configfile import read_yaml_mapping
from magseg.decoding import check_share
from magseg.dtypes import check_dtype
from magseg.errors import InputError
from magseg.mapping.plan import DEFAULT_MARGIN_PX, DEFAULT_TILE_PX
from magseg.mapping.tile import RefineSettings

__all__ = ["ServeConfig", "load_serve_config"]


@dataclass
class ServeConfig:
    """A tile server. The tiling (gsd, tile_px, margin_px, epsg) is the region job's, so both give one layer."""

    stac: str
    model: str = str(BUNDLED_MODEL)
    # What /tilejson.json calls the imagery and the layer. The catalog's path or URL is never published:
    # None names the searched collections, else "the configured STAC catalog".
    title: str | None = None
    engine: str = "hf"  # hf (transformers, CPU or GPU) | vllm (GPU replicas)
    collections: list[str] | None = None
    datetime: str | None = None
    max_cloud: float | None = None
    asset: str = "image"
    boundary: str | None = None  # boundary model folder; None: the bundled one; "none": image fallback
    refine: RefineSettings = field(default_factory=RefineSettings)  # boundary_scale None: estimated at start
    gsd: float = 0.5
    tile_px: int = DEFAULT_TILE_PX
    margin_px: int = DEFAULT_MARGIN_PX
    epsg: int | None = None  # the UTM zone of every grid tile; None: the zone of the catalog's centre
    min_zoom: int = 17  # below: the tile holds too many model windows to compute on request (4xx)
    max_zoom: int = 22
    cache_tiles: int = 1024  # grid tiles kept in memory per server replica
    cache_responses: int = 8192  # rendered tile bodies (PNG, GeoJSON) kept in memory per server replica
    cache_dir: str | None = (
        None  # also keep computed grid tiles on disk, in a sub-folder per settings fingerprint
    )
    max_grid_tiles: int = 64  # most grid tiles one request may compute (request size limit)
    # a finished layer (a `magseg map` run's fields/ folder) served at every zoom as /layer/{z}/{x}/{y}.png|.mvt
    layer: str | None = None
    layer_detail_zoom: int = 12  # from here on one feature per field (with its id); below: class coverage
    layer_max_features: int = 2000  # more fields in one MVT tile: its class coverage instead (tile size)
    layer_cache_parts: int = 32  # part files kept in memory (polygons in Web Mercator + an STRtree)
    layer_refresh_s: float = 10.0  # rescan the layer folder for new or rewritten parts at most this often
    api_key_env: str = "MAGSEG_API_KEY"  # when this variable is set, requests must carry its value
    host: str = "127.0.0.1"
    port: int = 8000
    # Ray Serve: the model deployment (batches patches across requests) and the HTTP ingress
    model_replicas: int = 1
    model_cpus: float = 1.0
    model_gpus: float = 0.0
    model_threads: int = 1
    max_new_tokens: int | None = None  # generation cap per patch (None: the longest RRLE of the model's grid)
    # model weights cast to float32 | bfloat16 | float16 (None: the checkpoint's own)
    dtype: str | None = None
    rereads: float | None = None  # share of seam re-reads per grid tile (None: the model card's; 0: none)
    max_batch_size: int = 32
    batch_wait_timeout_s: float = 0.02
    server_replicas: int = 1
    server_cpus: float = 0.5
    max_ongoing_requests: int = 32
    max_queued_requests: int = 256
    autoscaling: dict[str, Any] | None = None  # Serve autoscaling_config for the model deployment

    def public_source(self) -> str:
        """How public endpoints name the imagery: the title, else the collections (never a server path)."""
        if self.title:
            return self.title
        if self.collections:
            return "STAC collection(s) " + ", ".join(self.collections)
        return "the configured STAC catalog"

    def __post_init__(self) -> None:
        if isinstance(self.refine, dict):
            self.refine = RefineSettings(**self.refine)
        if not 0 <= self.min_zoom <= self.max_zoom <= 24:
            raise InputError(f"need 0 <= min_zoom ({self.min_zoom}) <= max_zoom ({self.max_zoom}) <= 24")
        for name in (
            "cache_tiles",
            "cache_responses",
            "max_grid_tiles",
            "model_replicas",
            "server_replicas",
            "max_batch_size",
            "layer_max_features",
            "layer_cache_parts",
        ):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        check_dtype(self.dtype)
        if self.rereads is not None:
            self.rereads = check_share(self.rereads, "rereads")
        if self.max_new_tokens is not None and int(self.max_new_tokens) < 1:
            raise InputError(f"max_new_tokens must be at least 1 (or unset), got {self.max_new_tokens}")
        if not 0 <= self.layer_detail_zoom <= 24:
            raise InputError(f"layer_detail_zoom {self.layer_detail_zoom} is not a zoom in 0..24")
        if self.engine not in ("hf", "vllm"):
            raise InputError(f"engine {self.engine!r} is not one of hf, vllm")
        if self.tile_px % 64 or self.margin_px < 0:
            raise InputError(f"tile_px {self.tile_px} must be a multiple of 64 and margin_px >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None


def load_serve_config(path: str | os.PathLike[str] | None = None, **overrides: Any) -> ServeConfig:
    """A ServeConfig from a YAML file (ServeConfig keys), ``overrides`` (None ignored) winning."""
    values = read_yaml_mapping(path, "a serve config", "see jobs/configs/serve_*.yaml") if path else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(ServeConfig)}
    unknown = sorted(str(k) for k in set(values) - known)
    if unknown:
        raise InputError(f"unknown serve config keys {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if not values.get("stac"):
        raise InputError("the tile server needs a catalog: give --stac URL|FILE")
    return ServeConfig(**values)
