"""One STAC search request, validated once and shared by every catalogue backend (filters + sort order)."""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pystac
import shapely
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from magseg.errors import InputError

# RFC 3339 date-time, or a year / year-month / date standing for the whole period (as pystac-client reads them).
_PARTIAL = re.compile(r"^(?P<year>\d{4})(-(?P<month>\d{2})(-(?P<day>\d{2}))?)?$")

Bbox = tuple[float, float, float, float]


def parse_bbox(bbox: Sequence[float] | None) -> Bbox | None:
    """A (west, south, east, north) WGS 84 box, checked: four finite numbers, in range, not inverted."""
    if bbox is None:
        return None
    try:
        w, s, e, n = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise InputError(
            f"bbox {bbox!r} is not four numbers: give west,south,east,north in degrees"
        ) from None
    if not all(math.isfinite(v) for v in (w, s, e, n)):
        raise InputError(f"bbox {bbox!r} holds NaN or infinity: give finite west,south,east,north degrees")
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90):
        raise InputError(
            f"bbox {bbox!r} is outside WGS 84 (lon -180..180, lat -90..90): give west,south,east,north degrees"
        )
    # Antimeridian boxes (west > east) are legal STAC but unsupported here: ask for two searches instead.
    if w > e or s > n:
        raise InputError(
            f"bbox {bbox!r} is inverted: give west,south,east,north with west <= east and south <= north "
            "(split boxes crossing the antimeridian in two)"
        )
    return (w, s, e, n)


def _instant(text: str, end: bool) -> datetime:
    """A UTC datetime; a partial date is its first second (start) or its last microsecond (end)."""
    m = _PARTIAL.match(text)
    if m:
        year = int(m["year"])
        month = int(m["month"] or (12 if end else 1))
        day = int(m["day"] or (calendar.monthrange(year, month)[1] if end else 1))
        try:
            if end:
                return datetime(year, month, day, 23, 59, 59, 999999, tzinfo=UTC)
            return datetime(year, month, day, tzinfo=UTC)
        except ValueError as exc:
            raise InputError(f"datetime {text!r} is not a valid date ({exc}): use YYYY-MM-DD") from None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"datetime {text!r} is not RFC 3339: use e.g. 2024-01-01, 2024-01-01T00:00:00Z or a start/end range"
        ) from None
    # A date-time without an offset is taken as UTC, as STAC APIs do.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_datetime(text: str | None) -> tuple[datetime | None, datetime | None] | None:
    """``"start/end"`` (either end may be ``..`` or empty: open) or one instant/period -> (start, end) in UTC."""
    if text is None:
        return None
    parts = text.strip().split("/")
    if len(parts) == 1:
        if parts[0] in ("", ".."):
            raise InputError(f"datetime {text!r} is empty: give a date, a date-time or a start/end range")
        return _instant(parts[0], end=False), _instant(parts[0], end=True)
    if len(parts) != 2:
        raise InputError(f"datetime {text!r} has more than one '/': give start/end (use .. for an open end)")
    lo = None if parts[0] in ("", "..") else _instant(parts[0], end=False)
    hi = None if parts[1] in ("", "..") else _instant(parts[1], end=True)
    if lo is None and hi is None:
        raise InputError(f"datetime {text!r} is open at both ends: drop it to search all times")
    if lo is not None and hi is not None and lo > hi:
        raise InputError(f"datetime {text!r} ends before it starts: give start/end in order")
    return lo, hi


def _iso(value: datetime | None) -> str:
    return ".." if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class SearchQuery:
    """Validated search filters; ``limit`` caps the result after the deterministic sort."""

    bbox: Bbox | None = None
    interval: tuple[datetime | None, datetime | None] | None = None
    collections: tuple[str, ...] | None = None
    max_cloud: float | None = None
    limit: int | None = None

    @classmethod
    def build(
        cls,
        bbox: Sequence[float] | None = None,
        datetime: str | None = None,
        collections: str | Iterable[str] | None = None,
        max_cloud: float | None = None,
        limit: int | None = None,
    ) -> SearchQuery:
        """Check and normalise the arguments of ``Catalog.search`` (one-line InputError when bad)."""
        colls: tuple[str, ...] | None = None
        if collections is not None:
            colls = (collections,) if isinstance(collections, str) else tuple(collections)
            if not colls or not all(isinstance(c, str) and c for c in colls):
                raise InputError(f"collections {collections!r} must be one or more non-empty ids")
        if max_cloud is not None and not (isinstance(max_cloud, int | float) and math.isfinite(max_cloud)):
            raise InputError(
                f"max_cloud {max_cloud!r} is not a finite number: give eo:cloud_cover's upper bound"
            )
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InputError(f"limit {limit!r} must be a positive whole number (or None for all)")
        return cls(parse_bbox(bbox), parse_datetime(datetime), colls, max_cloud, limit)

    @property
    def datetime_text(self) -> str | None:
        """The interval as a STAC API ``datetime`` parameter."""
        if self.interval is None:
            return None
        return f"{_iso(self.interval[0])}/{_iso(self.interval[1])}"

    def matches(self, item: pystac.Item) -> bool:
        """Whether one item passes every filter (STAC API semantics; used on API answers as a safety net)."""
        if self.collections is not None and item.collection_id not in self.collections:
            return False
        if self.max_cloud is not None:
            cloud = item.properties.get("eo:cloud_cover")
            if not isinstance(cloud, int | float) or cloud > self.max_cloud:
                return False
        if self.interval is not None and not _in_interval(item, self.interval):
            return False
        if self.bbox is not None:
            geom = item_footprint(item)
            if geom is None or not shapely.intersects(geom, box(*self.bbox)):
                return False
        return True

    def finish(self, items: Iterable[pystac.Item]) -> list[pystac.Item]:
        """Sort deterministically and apply the limit."""
        ordered = sorted(items, key=sort_key)
        return ordered if self.limit is None else ordered[: self.limit]


def _in_interval(item: pystac.Item, interval: tuple[datetime | None, datetime | None]) -> bool:
    lo, hi = interval
    start: datetime | None = item.datetime
    end: datetime | None = item.datetime
    if start is None:  # a period item: it matches when [start_datetime, end_datetime] overlaps the interval
        start, end = item.common_metadata.start_datetime, item.common_metadata.end_datetime
    if start is None or end is None:
        return False
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    return (hi is None or start <= hi) and (lo is None or end >= lo)


def item_footprint(item: pystac.Item) -> BaseGeometry | None:
    """An item's footprint in WGS 84: its geometry, else its bbox, else None."""
    if item.geometry is not None:
        return shape(item.geometry)
    if item.bbox is not None:
        return box(*item.bbox[:2], *item.bbox[-2:])
    return None


def sort_key(item: pystac.Item) -> tuple[Any, ...]:
    """Least cloud first (unknown cover last), then newest, then id: same order whatever the backend."""
    cloud = item.properties.get("eo:cloud_cover")
    known = isinstance(cloud, int | float)
    when = item.datetime or item.common_metadata.start_datetime
    stamp = when.timestamp() if when is not None else -math.inf
    return (not known, cloud if known else 0.0, -stamp, item.id)
