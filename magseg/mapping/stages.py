"""The region job's Ray Data stages: read a tile (CPU task), run the model (actor), refine and save (CPU task)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pystac
from affine import Affine
from rasterio.crs import CRS

from magseg.classes import FIELD
from magseg.confidence import Calibrator, load_calibrator
from magseg.errors import InputError
from magseg.mapping.config import STANDINS
from magseg.mapping.plan import Tile
from magseg.mapping.read import read_tile
from magseg.mapping.store import RunStore
from magseg.mapping.tile import RefineSettings, core_window, tile_pieces
from magseg.refine.boundary import BoundaryModel, load_boundary_model, scene_boundary

__all__ = ["TileModel", "finish_tile", "read_stage", "tile_row"]

#: Downsampling of the per-tile quick-look arrays kept beside the pieces.
THUMB = 4
#: Token probabilities travel between stages as uint8 (p * CONF_SCALE): a quarter of float32's bytes.
CONF_SCALE = 255


def tile_row(tile: Tile, items: list[pystac.Item]) -> dict[str, Any]:
    """The pipeline's input row for a tile: the tile and its candidate items, as JSON text."""
    return {"tile": json.dumps(asdict(tile)), "items": json.dumps([item.to_dict() for item in items])}


def _standin_masks(
    engine: str, classifier: str | None
) -> Callable[[np.ndarray, np.ndarray | None], np.ndarray]:
    """The class mask a stand-in engine writes for a tile: (image, the read truth, engine truth only) ->
    (H, W) class ids."""
    if engine == "field":
        return lambda image, _: np.full(image.shape[1:], FIELD, np.uint8)
    if engine == "classifier":
        from magseg.evaluate.baselines import PixelClassifier  # the baseline, run where the model would

        fitted = PixelClassifier.load(str(classifier))
        return lambda image, _: fitted.predict(image)
    return lambda _, truth: np.asarray(truth)


def _objects(values: list[Any]) -> np.ndarray:
    """A 1-D object array of arbitrary values (ragged arrays stay whole; np.array would try to stack them)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def read_stage(
    row: dict[str, Any], gsd: float, asset: str, truth: tuple[str, int] | None = None
) -> dict[str, Any]:
    """Read a tile's window; a tile no scene covers comes out with status "no-imagery" instead of failing.

    ``truth`` (asset, band): also read the items' label raster there, for the stand-in engine.
    """
    t0 = time.perf_counter()
    tile = Tile(**json.loads(row["tile"]))
    items = [pystac.Item.from_dict(d) for d in json.loads(row["items"])]
    out: dict[str, Any] = {"tile": row["tile"], "tile_id": tile.id}
    try:
        img = read_tile(tile, items, gsd, asset=asset)
        if truth is not None:
            out["truth"] = read_tile(tile, items, gsd, asset=truth[0], indexes=(truth[1],)).image[0]
    except InputError as exc:
        empty = np.zeros((1, 1), dtype=bool)
        out.update(status="no-imagery", message=str(exc), image=np.zeros((3, 1, 1), np.uint8), valid=empty)
        if truth is not None:
            out["truth"] = np.zeros((1, 1), np.uint8)
        out.update(transform=json.dumps([]), epsg=tile.epsg, scenes="[]", datetime="", warnings="[]")
    else:
        out.update(status="ok", message="", image=img.image, valid=img.mask)
        out.update(transform=json.dumps(list(img.transform)[:6]), epsg=img.crs.to_epsg())
        out.update(scenes=json.dumps(img.scenes), warnings=json.dumps(img.warnings))
        out.update(datetime=img.datetime.isoformat() if img.datetime else "")
    out["read_s"] = time.perf_counter() - t0
    return out


class TileModel:
    """The model actor: holds a Predictor; the patches of the tiles it is given go to the engine together.

    The actor fills its generate batches from several tiles (``batch_size`` patches) and regroups the
    results per tile; greedy outputs are the ones a tile gets alone (prefix sharing and masked padding keep
    every request's tokens and positions), so a resumed run writes the same polygons. A tile's patches
    sharing one scene image also lets the engine prefill that prefix once (and vLLM's prefix cache reuse it).
    """

    def __init__(
        self,
        model: str,
        engine: str = "hf",
        batch_size: int = 16,
        threads: int = 1,
        max_new_tokens: int | None = None,
        dtype: str | None = None,
        rereads: float | None = None,
        classifier: str | None = None,
    ) -> None:
        from magseg.inference import Predictor, resolve_config
        from magseg.inference.standin import TruthPredictor

        self.standin: TruthPredictor | None = None
        if engine in STANDINS:  # the model folder only gives the format, nothing is loaded
            self.standin = TruthPredictor(resolve_config(model)[0], name=engine)
            self.mask_of = _standin_masks(engine, classifier)
            return
        import torch

        torch.set_num_threads(max(int(threads), 1))  # Ray sets OMP threads to the actor's CPUs; say it here
        self.predictor = Predictor.for_engine(
            model, engine, batch_size=batch_size, max_new_tokens=max_new_tokens, dtype=dtype, rereads=rereads
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A batch of tiles: the readable ones' patches go to the engine together, results regrouped per tile."""
        ok = [i for i, status in enumerate(batch["status"]) if status == "ok"]
        images = [np.asarray(batch["image"][i]) for i in ok]
        if self.standin is not None:
            preds = [
                self.standin.predict(img, self.mask_of(img, batch["truth"][i] if "truth" in batch else None))
                for img, i in zip(images, ok, strict=True)
            ]
        else:
            preds = self.predictor.predict_many(images) if images else []
        by_tile = dict(zip(ok, preds, strict=True))
        n = len(batch["status"])
        empty = np.zeros((1, 1), np.uint8)
        out = {k: v for k, v in batch.items() if k != "truth"}
        out.update(
            semantic=_objects([by_tile[i].semantic if i in by_tile else empty for i in range(n)]),
            confidence=_objects(
                [_quantised(by_tile[i].confidence) if i in by_tile else empty for i in range(n)]
            ),
            patches=np.array([by_tile[i].n_patches if i in by_tile else 0 for i in range(n)], np.int64),
            tokens=np.array([by_tile[i].output_tokens if i in by_tile else 0 for i in range(n)], np.int64),
            rereads=np.array(
                [len(by_tile[i].reread_origins) if i in by_tile else 0 for i in range(n)], np.int64
            ),
            valid_patches=np.array(
                [int(sum(r.valid for r in by_tile[i].reports)) if i in by_tile else 0 for i in range(n)],
                np.int64,
            ),
            model_s=np.array(
                [by_tile[i].timings["total_s"] if i in by_tile else 0.0 for i in range(n)], np.float64
            ),
        )
        return out


def _quantised(confidence: np.ndarray | None) -> np.ndarray:
    """Token probabilities (H, W) as uint8 for the trip to the finish stage; (1, 1) zeros when absent."""
    if confidence is None:
        return np.zeros((1, 1), np.uint8)
    return np.round(np.clip(confidence, 0.0, 1.0) * CONF_SCALE).astype(np.uint8)


@lru_cache(maxsize=4)
def _calibrator(model: str) -> Calibrator | None:
    """The model's confidence calibrator (MODEL/confidence.json), loaded once per worker process."""
    return load_calibrator(model) if model else None


@lru_cache(maxsize=4)
def _boundary(path: str, gsd: float, scale: float | None) -> BoundaryModel:
    """The boundary model, loaded once per worker process (the image fallback at the region's scale, alone
    or fused with the trained model)."""
    return scene_boundary(load_boundary_model(path) if path else None, gsd, scale)


def finish_tile(
    row: dict[str, Any],
    out: str,
    gsd: float,
    snap_px: int,
    settings: dict[str, Any],
    boundary: str,
    model: str = "",
) -> dict[str, Any]:
    """Refine, polygonize and save one tile to the run folder; returns the tile's small summary row.

    With the model's token probabilities in the row and a calibrator in the ``model`` folder, each
    polygon gets its calibrated confidence (magseg:confidence).
    """
    t0 = time.perf_counter()
    tile = Tile(**json.loads(row["tile"]))
    store = RunStore(out)
    record: dict[str, Any] = {
        "status": str(row["status"]),
        "message": str(row["message"]),
        "scenes": json.loads(row["scenes"]),
        "datetime": str(row["datetime"]) or None,
        "warnings": json.loads(row["warnings"]),
        "patches": int(row["patches"]),
        "tokens": int(row["tokens"]),
        "rereads": int(row["rereads"]),
        "valid_patches": int(row["valid_patches"]),
        "read_s": float(row["read_s"]),
        "model_s": float(row["model_s"]),
        "polygons": 0,
    }
    if row["status"] == "ok":
        knobs = RefineSettings(**settings)
        crs = CRS.from_epsg(int(row["epsg"]))
        transform = Affine(*json.loads(row["transform"]))
        image, valid = np.asarray(row["image"]), np.asarray(row["valid"])
        semantic = np.asarray(row["semantic"])
        conf = np.asarray(row.get("confidence", np.zeros((1, 1), np.uint8)))
        token_conf = conf.astype(np.float32) / CONF_SCALE if conf.shape == semantic.shape else None
        result = tile_pieces(
            tile,
            semantic,
            image,
            valid,
            transform,
            crs,
            gsd,
            settings=knobs,
            snap_px=snap_px,
            boundary=_boundary(boundary, gsd, knobs.boundary_scale),
            token_conf=token_conf,
            calibrator=_calibrator(model),
        )
        rows, cols = core_window(tile, gsd)
        thumb = {
            "semantic": result.semantic[::THUMB, ::THUMB],
            "image": image[:, rows, cols][:, ::THUMB, ::THUMB],
        }
        # the imagery's acquisition time, fiboa's determination:datetime (NaT where the scene has none)
        result.frame["determination:datetime"] = pd.to_datetime(
            pd.Series([record["datetime"]] * len(result.frame), dtype=object), utc=True
        )
        record["polygons"] = len(result.frame)
        record["refine_s"] = time.perf_counter() - t0
        store.save(tile.id, result.frame, thumb, record)
    else:
        record["refine_s"] = 0.0
        store.save(tile.id, None, {}, record)
    return {
        "tile_id": tile.id,
        "status": record["status"],
        "polygons": record["polygons"],
        "patches": record["patches"],
        "model_s": record["model_s"],
    }
