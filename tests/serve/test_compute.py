"""TileComputer without Serve: grid tiles computed once, shared by concurrent requests, kept on disk."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import shapely

from magseg.codec import encode
from magseg.confidence import FEATURES, Calibrator
from magseg.inference.meta import ModelFormat
from magseg.mapping.tile import RefineSettings
from magseg.model.generate import Request, RowLimited, Scored
from magseg.refine.boundary import OrientedBoundary
from magseg.serve.compute import TileComputer
from magseg.stac import open_catalog

FIELD_EVERYWHERE = encode(np.ones((8, 8), dtype=np.uint8))


def computer(
    root: Path,
    cache_dir: Path | None,
    calls: list[int],
    settings: dict | None = None,
    calibrator: Calibrator | None = None,
    neighbours: float = 0.0,
    prompts: list[str] | None = None,
    rereads: float = 0.0,
    answer: Callable[[str], str] | None = None,
    limits: list[int] | None = None,
) -> TileComputer:
    async def generate(item: Request | RowLimited) -> Scored:
        calls.append(1)
        request = item.request if isinstance(item, RowLimited) else item
        if limits is not None:
            limits.append(item.rows if isinstance(item, RowLimited) else 0)
        text = request[1][0]["content"][1]["text"]
        if prompts is not None:
            prompts.append(text)
        rrle = FIELD_EVERYWHERE if answer is None else answer(text)
        # with a calibrator, the engine reports token probabilities: the whole text at 0.9
        probs = ((len(rrle), 0.9),) if calibrator is not None else None
        return Scored(rrle, 9, probs)

    return TileComputer(
        open_catalog(root),
        generate,
        ModelFormat(patch=64, grid=8, context_size=64, neighbours=neighbours),
        epsg=32643,
        gsd=0.5,
        tile_px=128,
        margin_px=64,
        refine=RefineSettings(boundary_scale=20.0),
        boundary=OrientedBoundary(gsd=0.5, scale=20.0),
        search={},
        cache_dir=str(cache_dir) if cache_dir else None,
        cache_settings=settings if settings is not None else {"model": "field-everywhere"},
        calibrator=calibrator,
        rereads=rereads,
    )


def test_grid_tiles_are_computed_once_and_reused_from_disk(
    region: tuple[Path, list[float]], tmp_path: Path
) -> None:
    root, bbox = region
    w, s, e, n = bbox
    box = (w, s, w + (e - w) / 3, s + (n - s) / 3)
    calls: list[int] = []
    first = computer(root, tmp_path / "cache", calls)

    async def twice() -> list:
        return await asyncio.gather(first.layer(box), first.layer(box))  # concurrent: one computation

    a, b = asyncio.run(twice())
    assert first.computed >= len(first.grid_tiles(box)) and len(calls) == first.computed * 16
    assert len(a) > 0 and a["id"].tolist() == b["id"].tolist() and a["id"].is_unique
    again = computer(root, tmp_path / "cache", calls)
    before = len(calls)
    c = asyncio.run(again.layer(box))
    assert again.computed == 0 and len(calls) == before  # everything came from the disk cache
    assert sorted(c["id"]) == sorted(a["id"])
    # another model (or any other setting) never gets those tiles: its own fresh sub-folder
    other = computer(root, tmp_path / "cache", calls, settings={"model": "another"})
    asyncio.run(other.layer(box))
    assert other.computed == first.computed and len(list((tmp_path / "cache").iterdir())) == 2
    assert shapely.equals(shapely.union_all(c.geometry.to_numpy()), shapely.union_all(a.geometry.to_numpy()))


def test_pieces_carry_the_calibrated_confidence(region: tuple[Path, list[float]]) -> None:
    root, bbox = region
    w, s, e, n = bbox
    box = (w, s, w + (e - w) / 3, s + (n - s) / 3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, len(FEATURES)))
    calibrator = Calibrator.fit(x, x[:, 0] + rng.normal(size=200) > 0)
    layer = asyncio.run(computer(root, None, [], calibrator=calibrator).layer(box))
    plain = asyncio.run(computer(root, None, []).layer(box))
    assert len(layer) > 0 and sorted(layer["id"]) == sorted(plain["id"])  # the same polygons
    conf = layer["magseg:confidence"].to_numpy()
    assert ((conf > 0) & (conf < 1)).all() and "magseg:confidence" not in plain.columns


def test_a_neighbours_model_is_served_as_a_checkerboard(region: tuple[Path, list[float]]) -> None:
    root, bbox = region
    w, s, e, n = bbox
    box = (w, s, w + (e - w) / 4, s + (n - s) / 4)
    calls: list[int] = []
    prompts: list[str] = []
    served = computer(root, None, calls, neighbours=0.5, prompts=prompts)
    layer = asyncio.run(served.layer(box))
    told = [p for p in prompts if "Cells outside it" in p]
    assert len(layer) > 0 and len(calls) == served.computed * 16  # the same patches, no more tokens
    assert len(told) == len(prompts) // 2 and all("field *8" in p for p in told)  # neighbours wrote field


def test_seams_are_re_read_when_the_model_asks(region: tuple[Path, list[float]]) -> None:
    """Patches left of the tile's middle write trees, the others field, any offset patch (a re-read) trees:
    the seam between them is re-read and the trees reach over it, in the tile's own engine calls."""
    root, bbox = region
    w, s, e, n = bbox
    box = (w, s, w + (e - w) / 4, s + (n - s) / 4)

    def answer(text: str) -> str:
        found = re.search(r"<box>(\d+),(\d+),", text)
        assert found is not None
        x0, y0 = (round(int(v) * 256 / 1000) for v in found.groups())  # 128 px core + 2 x 64 px margin
        label = 2 if x0 % 64 or y0 % 64 or x0 < 128 else 1
        return encode(np.full((8, 8), label, dtype=np.uint8))

    calls: list[int] = []
    prompts: list[str] = []
    limits: list[int] = []
    served = computer(root, None, calls, prompts=prompts, rereads=0.5, answer=answer, limits=limits)
    layer = asyncio.run(served.layer(box))
    assert len(calls) == served.computed * (16 + 4)  # the four patches along x = 128 re-read
    # the grid's patches ask for every row; each re-read only for the rows its merge reads (all 8 here:
    # the patches either side of the vertical seam disagree down its whole length)
    assert limits.count(0) == served.computed * 16 and sorted(set(limits) - {0}) == [8]
    assert {"tree", "field"} <= set(layer["class"])
    plain = asyncio.run(computer(root, None, [], answer=answer).layer(box))

    def trees(frame: object) -> float:
        return float(frame[frame["class"] == "tree"].to_crs(3857).area.sum())  # type: ignore[index]

    assert trees(layer) > 1.05 * trees(plain)  # a quarter patch of trees past the seam
