"""GeoParquetCatalog: each filter against a by-hand filter of the item JSON, sort order, limit, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import shape

from magseg.errors import InputError
from magseg.stac import GeoParquetCatalog, open_catalog, sort_key
from magseg.synth import collection_id
from tests.stac.conftest import SEEDS, _when, by_hand, item_dicts


def ids(items: list) -> set[str]:
    return {it.id for it in items}


def test_open_catalog_finds_the_parquet_of_a_synth_folder(synth_root: Path) -> None:
    for target in (synth_root, synth_root / "stac", synth_root / "stac" / "items.parquet"):
        cat = open_catalog(target)
        assert isinstance(cat, GeoParquetCatalog)
        assert cat.path == synth_root / "stac" / "items.parquet"


def test_no_filter_returns_every_item_in_sort_order(synth_root: Path) -> None:
    dicts = item_dicts(synth_root)
    found = open_catalog(synth_root).search()
    assert ids(found) == {d["id"] for d in dicts}
    assert [sort_key(it) for it in found] == sorted(sort_key(it) for it in found)
    clouds = [it.properties["eo:cloud_cover"] for it in found]
    assert clouds == sorted(clouds)
    # Items come back whole: assets keep their absolute hrefs.
    assert all(Path(it.assets["image"].href).is_file() for it in found)


def test_bbox_returns_items_whose_footprint_intersects(synth_root: Path) -> None:
    dicts = item_dicts(synth_root)
    cat = open_catalog(synth_root)
    for d in dicts:
        c = shape(d["geometry"]).centroid
        tiny = (c.x - 1e-5, c.y - 1e-5, c.x + 1e-5, c.y + 1e-5)
        got = ids(cat.search(bbox=tiny))
        assert d["id"] in got
        assert got == by_hand(dicts, bbox=tiny)
    assert cat.search(bbox=(0.0, 0.0, 1.0, 1.0)) == []
    w, s, e, n = np.array([d["bbox"] for d in dicts]).T
    whole = (w.min(), s.min(), e.max(), n.max())
    assert ids(cat.search(bbox=whole)) == {d["id"] for d in dicts}


def test_datetime_ranges_and_open_ends(synth_root: Path, merged: Path) -> None:
    dicts = item_dicts(synth_root)
    times = sorted(_when(d["properties"]["datetime"]) for d in dicts)
    assert len(set(times)) == len(times) > 2  # scenes are shot seconds apart
    cat = open_catalog(synth_root)
    second = times[1].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(cat.search(datetime=f"{second}/..")) == by_hand(dicts, start=times[1])
    assert ids(cat.search(datetime=f"../{second}")) == by_hand(dicts, end=times[1])
    assert ids(cat.search(datetime=second)) == by_hand(dicts, start=times[1], end=times[1])
    assert len(cat.search(datetime=second)) == 1
    # A whole day written as a date, and a day with nothing on it.
    day = times[0].date()
    assert ids(cat.search(datetime=f"{day}/{day}")) == {d["id"] for d in dicts}
    assert cat.search(datetime=f"{day + timedelta(days=1)}/..") == []
    # Two runs on different days: the range picks one run only.
    mcat = GeoParquetCatalog(merged)
    all_ids = ids(mcat.search())
    got = ids(mcat.search(datetime=f"{day}/{day}"))
    assert got == {d["id"] for d in dicts} and got < all_ids


def test_collections_filter(merged: Path, synth_root: Path, other_root: Path) -> None:
    cat = GeoParquetCatalog(merged)
    first, second = (collection_id(s) for s in SEEDS)
    assert ids(cat.search(collections=first)) == {d["id"] for d in item_dicts(synth_root)}
    assert ids(cat.search(collections=[second])) == {d["id"] for d in item_dicts(other_root)}
    assert len(cat.search(collections=[first, second])) == len(
        item_dicts(synth_root) + item_dicts(other_root)
    )
    assert cat.search(collections="no-such-collection") == []


def test_max_cloud_keeps_cover_at_or_below(synth_root: Path) -> None:
    dicts = item_dicts(synth_root)
    clouds = sorted(d["properties"]["eo:cloud_cover"] for d in dicts)
    assert clouds[0] < clouds[-1]  # the fixture has a spread of cloud cover
    cat = open_catalog(synth_root)
    for limit in clouds:
        got = ids(cat.search(max_cloud=limit))
        assert got == by_hand(dicts, max_cloud=limit)
        assert limit in [it.properties["eo:cloud_cover"] for it in cat.search(max_cloud=limit)]
    assert cat.search(max_cloud=clouds[0] - 1e-3) == []


def test_limit_takes_the_head_of_the_sorted_result(merged: Path) -> None:
    cat = GeoParquetCatalog(merged)
    full = cat.search()
    for n in (1, 2, len(full) + 5):
        assert [it.id for it in cat.search(limit=n)] == [it.id for it in full[:n]]


@pytest.mark.parametrize("seed_of_box", [0, 1])
def test_geoparquet_matches_static_json_filtering(
    merged: Path, synth_root: Path, other_root: Path, seed_of_box: int
) -> None:
    """Combined filters: the embedded search agrees with filtering items/*.json by hand."""
    dicts = item_dicts(synth_root) + item_dicts(other_root)
    cat = GeoParquetCatalog(merged)
    geom = shape(dicts[seed_of_box]["geometry"])
    w, s, e, n = geom.bounds
    boxes = [None, (w, s, (w + e) / 2, (s + n) / 2), (w - 0.01, s - 0.01, e + 0.01, n + 0.01)]
    clouds = sorted({d["properties"]["eo:cloud_cover"] for d in dicts})
    day = _when(dicts[0]["properties"]["datetime"]).date()
    intervals: list[tuple[str | None, datetime | None, datetime | None]] = [
        (None, None, None),
        (f"{day}/..", datetime(day.year, day.month, day.day, tzinfo=UTC), None),
        (f"../{day}", None, datetime(day.year, day.month, day.day, 23, 59, 59, 999999, tzinfo=UTC)),
    ]
    for bbox in boxes:
        for text, start, end in intervals:
            for max_cloud in (None, clouds[len(clouds) // 2]):
                for colls in (None, (collection_id(SEEDS[0]),)):
                    want = by_hand(dicts, bbox, start, end, colls, max_cloud)
                    got = cat.search(bbox=bbox, datetime=text, collections=colls, max_cloud=max_cloud)
                    assert ids(got) == want, (bbox, text, max_cloud, colls)
                    assert len(got) == len(want)


def test_missing_and_wrong_files_are_input_errors(tmp_path: Path, synth_root: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        open_catalog(tmp_path / "nope.parquet")
    text = tmp_path / "items.parquet"
    text.write_text("not parquet\n")
    with pytest.raises(InputError, match="not a readable Parquet"):
        open_catalog(text)
    fields = next((synth_root / "fields").glob("*.parquet"))  # GeoParquet, but polygons, not STAC items
    with pytest.raises(InputError, match="not stac-geoparquet"):
        open_catalog(fields)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bbox": (0, 0, 1)}, "not four numbers"),
        ({"bbox": (0, float("nan"), 1, 1)}, "NaN"),
        ({"bbox": (0, 0, 200, 1)}, "outside WGS 84"),
        ({"bbox": (0, -95, 1, 1)}, "outside WGS 84"),
        ({"bbox": (10, 0, 5, 1)}, "inverted"),
        ({"bbox": (0, 5, 1, 1)}, "inverted"),
        ({"datetime": "yesterday"}, "not RFC 3339"),
        ({"datetime": "2024-02-30"}, "not a valid date"),
        ({"datetime": "../.."}, "open at both ends"),
        ({"datetime": "2024-12-31/2024-01-01"}, "ends before it starts"),
        ({"datetime": "2024/2025/2026"}, "more than one"),
        ({"max_cloud": float("nan")}, "max_cloud"),
        ({"limit": 0}, "limit"),
        ({"collections": []}, "collections"),
    ],
)
def test_bad_arguments_are_one_line_input_errors(synth_root: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        open_catalog(synth_root).search(**kwargs)
    assert "\n" not in str(info.value)


def test_period_items_match_by_overlap(synth_root: Path, tmp_path: Path) -> None:
    """Items with start/end_datetime instead of datetime match when their period overlaps the range."""
    import stac_geoparquet.arrow

    dicts = item_dicts(synth_root)[:2]
    periods = [
        ("2024-03-01T00:00:00Z", "2024-03-31T00:00:00Z"),
        ("2024-06-01T00:00:00Z", "2024-06-30T00:00:00Z"),
    ]
    for d, (start, end) in zip(dicts, periods, strict=True):
        d["properties"].update(datetime=None, start_datetime=start, end_datetime=end)
    path = tmp_path / "periods.parquet"
    stac_geoparquet.arrow.to_parquet(stac_geoparquet.arrow.parse_stac_items_to_arrow(dicts), path)
    cat = GeoParquetCatalog(path)
    assert ids(cat.search(datetime="2024-03-15")) == {dicts[0]["id"]}
    assert ids(cat.search(datetime="2024-03-20/2024-06-05")) == {d["id"] for d in dicts}
    assert ids(cat.search(datetime="2024-06")) == {dicts[1]["id"]}
    assert cat.search(datetime="2024-04-01/2024-05-31") == []
