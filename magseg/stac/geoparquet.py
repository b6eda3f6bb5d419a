"""Search a stac-geoparquet file (or folder of them) in-process: pyarrow pushdown filters, shapely intersects."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pystac
import shapely
import stac_geoparquet.arrow

from magseg.errors import InputError
from magseg.stac.query import SearchQuery

# Columns every stac-geoparquet table has (the spec's required ones that searching relies on).
REQUIRED = ("id", "geometry")


class GeoParquetCatalog:
    """An embedded catalogue: one stac-geoparquet file (or a folder of them), searched without a server."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise InputError(
                f"STAC catalogue {self.path} does not exist: give a stac-geoparquet file or API URL"
            )
        try:
            self._dataset = ds.dataset(self.path, format="parquet")
            schema = self._dataset.schema
        except (pa.ArrowInvalid, OSError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(
                f"{self.path} is not a readable Parquet file ({first}): give a stac-geoparquet file "
                "(e.g. DIR/stac/items.parquet from `magseg synth`)"
            ) from None
        missing = [c for c in REQUIRED if c not in schema.names]
        meta = schema.metadata or {}
        if missing or (b"stac-geoparquet" not in meta and "stac_version" not in schema.names):
            raise InputError(
                f"{self.path} is Parquet but not stac-geoparquet (missing {', '.join(missing) or 'STAC metadata'}): "
                "convert the items with stac-geoparquet first"
            )
        self.schema = schema

    def __repr__(self) -> str:
        return f"GeoParquetCatalog({str(self.path)!r})"

    def search(
        self,
        bbox: Sequence[float] | None = None,
        datetime: str | None = None,
        collections: str | Iterable[str] | None = None,
        max_cloud: float | None = None,
        limit: int | None = None,
    ) -> list[pystac.Item]:
        """Items matching every filter, least cloudy first, then newest, then by id (see ``SearchQuery``)."""
        query = SearchQuery.build(bbox, datetime, collections, max_cloud, limit)
        expr = self._expression(query)
        if expr is False:
            return []
        table = self._dataset.to_table(filter=expr if expr is not True else None)
        if query.bbox is not None and table.num_rows:
            # The bbox columns only pre-select rows: the spec's test is geometry intersects the box.
            geoms = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
            keep = shapely.intersects(geoms, shapely.box(*query.bbox))
            table = table.filter(pa.array(np.asarray(keep, dtype=bool)))
        items = (pystac.Item.from_dict(d) for d in stac_geoparquet.arrow.stac_table_to_items(table))
        return query.finish(items)

    def _expression(self, query: SearchQuery) -> pc.Expression | bool:
        """The pushdown filter (True: no filter; False: nothing can match, e.g. a filtered column is absent)."""
        names = set(self.schema.names)
        parts: list[pc.Expression] = []
        if query.collections is not None:
            if "collection" not in names:
                return False
            parts.append(pc.field("collection").isin(list(query.collections)))
        if query.max_cloud is not None:
            if "eo:cloud_cover" not in names:
                return False  # like a STAC API: an item without the property fails the comparison
            parts.append(pc.field("eo:cloud_cover") <= query.max_cloud)
        if query.interval is not None:
            time_expr = self._time_expression(query.interval)
            if time_expr is None:
                return False
            parts.append(time_expr)
        if query.bbox is not None and "bbox" in names:
            w, s, e, n = query.bbox
            parts.append(
                (pc.field("bbox", "xmin") <= e)
                & (pc.field("bbox", "xmax") >= w)
                & (pc.field("bbox", "ymin") <= n)
                & (pc.field("bbox", "ymax") >= s)
            )
        if not parts:
            return True
        out = parts[0]
        for p in parts[1:]:
            out = out & p
        return out

    def _time_expression(self, interval: tuple[object, object]) -> pc.Expression | None:
        lo, hi = interval
        names = self.schema.names

        def within(start: str, end: str) -> pc.Expression:
            # [start, end] overlaps [lo, hi]; scalars take the column's own unit so the comparison is exact.
            cond = pc.field(start).is_valid() & pc.field(end).is_valid()
            if hi is not None:
                cond = cond & (pc.field(start) <= pa.scalar(hi, self.schema.field(start).type))
            if lo is not None:
                cond = cond & (pc.field(end) >= pa.scalar(lo, self.schema.field(end).type))
            return cond

        exprs = []
        if "datetime" in names:
            exprs.append(within("datetime", "datetime"))
        if "start_datetime" in names and "end_datetime" in names:
            period = within("start_datetime", "end_datetime")
            exprs.append(period & pc.field("datetime").is_null() if "datetime" in names else period)
        if not exprs:
            return None
        return exprs[0] if len(exprs) == 1 else exprs[0] | exprs[1]
