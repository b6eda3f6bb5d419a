"""Map a region on Ray Data: plan -> block slots -> search + tiles -> read -> model actors -> refine -> layer.

Nothing on the driver grows with the region: the plan is per-row runs, the tiles come from a range over
the plan's block slots (magseg.mapping.source), each block's scenes from its own STAC search, and the
layer is finished by Ray tasks (magseg.mapping.finalize).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from typing import Any

import numpy as np

from magseg.bundled import boundary_choice
from magseg.errors import EmptyInputError, InputError
from magseg.inference.meta import resolve_config
from magseg.logs import library_logs
from magseg.mapping.blocks import leaf_count
from magseg.mapping.config import STANDINS, MapConfig, check_model_dir
from magseg.mapping.finalize import finalize_run
from magseg.mapping.read import read_tile
from magseg.mapping.source import SceneQuery, block_rows, search_tiles
from magseg.mapping.stages import TileModel, finish_tile, read_stage
from magseg.mapping.store import RunStore, write_json
from magseg.mapping.zones import ZonedPlan, plan_zones
from magseg.refine.boundary import OrientedBoundary

__all__ = ["run_region"]

Log = Callable[[str], None]

#: Tiles read to estimate the region's boundary scale (and searched to check the catalogue covers the bbox).
BOUNDARY_SAMPLE = 8
#: Tasks that expand block slots into tile rows (each streams its rows as it goes).
SOURCE_TASKS = 64


class _TileBar:
    """One progress display on the console: tiles done of those planned, the model's patches/s, an ETA.

    In a terminal a bar redraws in place (tqdm); elsewhere (CI logs) a plain line every 30 s, and one at the end.
    """

    EVERY_S = 30.0

    def __init__(self, total: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.total, self.enabled, self.tty = total, enabled, sys.stderr.isatty()
        self.bar = tqdm(
            total=total, unit="tile", desc="mapping", file=sys.stderr, disable=not (enabled and self.tty)
        )
        self.done, self.patches, self.model_s = 0, 0, 0.0
        self.t0 = self.shown = time.perf_counter()

    @property
    def rate(self) -> float:
        return self.patches / self.model_s if self.model_s > 0 else 0.0

    def add(self, summary: dict[str, Any]) -> None:
        self.done += 1
        self.patches += int(summary["patches"])
        self.model_s += float(summary["model_s"])
        self.bar.set_postfix_str(f"{self.rate:.1f} patches/s", refresh=False)
        self.bar.update(1)
        if self.enabled and not self.tty and time.perf_counter() - self.shown >= self.EVERY_S:
            self._line()

    def _line(self) -> None:
        self.shown = now = time.perf_counter()
        left = (self.total - self.done) * (now - self.t0) / max(self.done, 1)
        print(
            f"mapping: {self.done}/{self.total} tiles, {self.rate:.1f} patches/s, "
            f"{now - self.t0:.0f} s, about {left:.0f} s left",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        self.bar.close()
        if self.enabled and not self.tty and self.done:
            self._line()


def _init_ray(address: str | None, log: Log) -> None:
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_ENABLE_AUTO_CONNECT", "0")
    if address or os.environ.get("RAY_ADDRESS"):  # a given cluster, or the one `ray job submit` runs us on
        log(f"connecting to Ray at {address or os.environ['RAY_ADDRESS']}")
        ray.init(address=address, log_to_driver=False)
    else:
        # "local" starts a fresh cluster even where a stale `ray start` left its address file behind
        ray.init(address="local", include_dashboard=False, log_to_driver=False, configure_logging=False)


def _check_resources(config: MapConfig) -> None:
    """Fail now, in one line, where Ray would leave an actor pending forever (see cluster/README.md)."""
    import ray

    have = ray.cluster_resources()
    cpus, gpus = float(have.get("CPU", 0)), float(have.get("GPU", 0))
    if config.gpus_per_actor > 0 and gpus < config.gpus_per_actor:
        raise InputError(
            f"the config asks {config.gpus_per_actor:g} GPU per model actor but the Ray cluster has {gpus:g}: "
            "set gpus_per_actor: 0 (and engine: hf) or connect to a GPU cluster with --address"
        )
    if config.cpus_per_actor > cpus:
        raise InputError(
            f"a model actor asks {config.cpus_per_actor:g} CPUs but the Ray cluster has {cpus:g}: lower cpus_per_actor"
        )
    if config.gpus_per_actor == 0 and config.actors * config.cpus_per_actor > cpus - 0.5:
        raise InputError(
            f"{config.actors} actor(s) x {config.cpus_per_actor:g} CPUs leave no CPU for reading tiles on a "
            f"{cpus:g}-CPU cluster: lower actors or cpus_per_actor"
        )


def _execute(
    plan: ZonedPlan, query: SceneQuery, config: MapConfig, patch: int, grid: int, log: Log
) -> Iterator[dict]:
    """Stream the unfinished tiles through Ray Data; yields each finished tile's summary as it lands."""
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    _init_ray(config.address, log)
    _check_resources(config)
    ctx = DataContext.get_current()
    ctx.op_resource_reservation_enabled = False  # measured faster on small clusters (../notes: ray.md)
    ctx.execution_no_progress_timeout_s = config.no_progress_timeout_s
    ctx.enable_progress_bars = False  # the job shows one bar of its own (_TileBar)
    ctx.print_on_execution_start = config.verbose
    ctx.execution_options.verbose_progress = False
    # one tile per Ray block, so tiles stream through the stages one by one (flat memory, early results)
    ctx.target_max_block_size = 1
    slots = leaf_count(plan)
    ds: Any = ray.data.range(slots, override_num_blocks=min(slots, SOURCE_TASKS))
    out = os.path.abspath(config.out)
    ds = ds.flat_map(block_rows, fn_kwargs={"plan": plan, "query": query, "out": out}, num_cpus=0.25)
    truth = (config.truth_asset, config.truth_band) if config.engine == "truth" else None
    read = {"gsd": config.gsd, "asset": config.asset, "truth": truth}
    ds = ds.map(read_stage, fn_kwargs=read, num_cpus=0.5)
    ds = ds.map_batches(
        TileModel,
        fn_constructor_kwargs={
            "model": config.model,
            "engine": config.engine,
            "batch_size": config.batch_size,
            "threads": config.threads_per_actor,
            "max_new_tokens": config.max_new_tokens,
            "dtype": config.dtype,
            "rereads": config.rereads,
            "classifier": config.classifier,
        },
        batch_size=_tiles_per_call(config, patch),
        batch_format="numpy",
        compute=ActorPoolStrategy(size=config.actors),
        num_cpus=config.cpus_per_actor,
        num_gpus=config.gpus_per_actor or None,
    )
    finish = {
        "out": out,
        "gsd": config.gsd,
        "snap_px": patch // grid,
        "settings": asdict(config.refine),
        "boundary": os.path.abspath(config.boundary) if config.boundary else "",
        "model": os.path.abspath(config.model) if config.engine not in STANDINS else "",
    }
    ds = ds.map(finish_tile, fn_kwargs=finish, num_cpus=0.5)
    yield from ds.iter_rows()


def spread(n: int) -> list[int]:
    """BOUNDARY_SAMPLE indices spread evenly over ``n`` tiles (all of them when fewer)."""
    return sorted({round(i * (n - 1) / max(BOUNDARY_SAMPLE - 1, 1)) for i in range(min(BOUNDARY_SAMPLE, n))})


def sample_tiles(plan: ZonedPlan, query: SceneQuery) -> list[tuple[Any, list[Any]]]:
    """BOUNDARY_SAMPLE tiles spread evenly over the plan, each with its scenes (a pure function of the plan
    and the catalogue, so a resumed run samples the same ones)."""
    return [hit for i in spread(plan.n_tiles) for hit in search_tiles([plan.tile_at(i)], query)]


def _tiles_per_call(config: MapConfig, patch: int) -> int:
    """Tiles handed to the model actor at once: enough for ``batch_size`` patches (a tile's read window has
    ((tile_px + 2 margin_px) / patch)^2 of them)."""
    per_tile = -((-(config.tile_px + 2 * config.margin_px) // patch) ** 2)
    return max(1, -(-config.batch_size // per_tile))


def estimate_boundary_scale(tiles: list[tuple[Any, list[Any]]], gsd: float, asset: str = "image") -> float:
    """One boundary scale for the region: the median of the image fallback's own scale on sampled tiles.

    Tiles without imagery are passed over; on a tile hanging over the imagery's edge only its pixels
    count (the empty part once lowered the scale: 12.7 instead of 18.1 on the demo's scenes with 448 m
    tiles, and the truth's own layer lost 0.045 fields mIoU).
    """
    fallback = OrientedBoundary(gsd=gsd)
    scales = []
    for tile, hits in tiles:
        try:
            img = read_tile(tile, hits, gsd, asset=asset)
        except InputError:
            continue
        scale = fallback.image_scale(img.image, img.mask)  # the imagery's pixels only
        if scale > 0:
            scales.append(scale)
    if not scales:
        raise EmptyInputError(
            "no sampled tile holds imagery: the found scenes do not cover the bbox; check --bbox and --stac"
        )
    return round(float(np.median(scales)), 4)


def run_region(config: MapConfig, log: Log = print) -> dict[str, Any]:
    """Map ``config.bbox`` into ``config.out``; resumes a run killed earlier. Returns the run summary."""
    t0 = time.perf_counter()
    config.model = str(check_model_dir(config.model))
    config.boundary = boundary_choice(config.boundary)
    if config.boundary is not None and not os.path.isdir(config.boundary):
        raise InputError(
            f"--boundary {config.boundary}: no such model folder; train one with magseg train boundary"
        )
    inference, _ = resolve_config(config.model)
    plan = plan_zones(
        config.bbox, gsd=config.gsd, tile_px=config.tile_px, margin_px=config.margin_px, patch=inference.patch
    )
    if plan.n_tiles > config.max_tiles and not config.allow_large:
        raise InputError(
            f"the bbox covers {plan.n_tiles:,} tiles ({plan.area_km2:,.1f} km², {plan.n_patches:,} patches), "
            f"more than max_tiles {config.max_tiles:,}: add --yes to map it, or run `magseg plan` first"
        )
    query = SceneQuery(
        config.stac,
        config.datetime,
        tuple(config.collections) if config.collections else None,
        config.max_cloud,
    )
    sampled = sample_tiles(plan, query)
    if not any(hits for _, hits in sampled):
        raise EmptyInputError(
            f"no STAC items in {config.stac} match bbox {list(config.bbox)}, datetime {config.datetime}, "
            f"collections {config.collections}, max cloud {config.max_cloud} on {len(sampled)} tiles "
            "sampled across it: widen the search"
        )
    if config.refine.boundary_scale is None:  # the image fallback's scale (alone or fused with a model)
        scale = estimate_boundary_scale(sampled, config.gsd, config.asset)
        config.refine = replace(config.refine, boundary_scale=scale)
        log(f"boundary scale {scale:.2f} (CIELAB step) from {len(sampled)} sampled tiles")
    store = RunStore(config.out)
    resumed = store.open(config.result_settings())
    log(
        f"plan: {plan.n_tiles} tiles of {plan.tile_m:g} m ({plan.area_km2:.2f} km², {plan.n_patches} patches) "
        f"in {plan.crs}; " + ("resuming: finished tiles are skipped" if resumed else "new run")
    )
    t1 = time.perf_counter()
    finished = 0
    import ray.data  # noqa: F401 - imported before library_logs, so Ray's log handlers bind to the log file

    with library_logs(store.root / "logs" / "libraries.log", verbose=config.verbose) as logfile:
        if logfile is not None:
            log(f"library logs (Ray, GDAL): {logfile}")
        bar = _TileBar(plan.n_tiles, enabled=config.progress and not config.verbose)
        for summary in _execute(plan, query, config, inference.patch, inference.grid, log):
            finished += 1
            bar.add(summary)
            if config.verbose:
                log(
                    f"tile {finished} {summary['tile_id']}: {summary['status']}, {summary['polygons']} polygon(s)"
                )
        bar.close()
        t2 = time.perf_counter()
        summary = finalize_run(store, plan, config, log=log)
    summary["timings"] = {
        "plan_search_s": t1 - t0,
        "tiles_s": t2 - t1,
        "finalize_s": time.perf_counter() - t2,
        "total_s": time.perf_counter() - t0,
        "tiles_run_now": finished,
    }
    write_json(store.root / "run.json", summary)
    return summary
