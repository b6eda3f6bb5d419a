"""Where synthetic scenes sit on Earth: district presets, LON,LAT parsing and the UTM grid of a mosaic."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyproj import Transformer

from magseg.errors import InputError


@dataclass(frozen=True)
class Location:
    """A point on Earth and the UTM zone that holds it."""

    name: str
    lon: float
    lat: float

    @property
    def epsg(self) -> int:
        """EPSG code of the WGS 84 / UTM zone of the point (326zz north, 327zz south)."""
        zone = min(int((self.lon + 180.0) // 6.0) + 1, 60)
        return (32600 if self.lat >= 0 else 32700) + zone

    @property
    def crs(self) -> str:
        return f"EPSG:{self.epsg}"


#: Indian agricultural districts (centres of their farmland, not of their towns), spread over three UTM zones.
PRESETS: dict[str, Location] = {
    "karnal": Location("karnal", 76.98, 29.69),  # Haryana: rice-wheat belt, rectangular murabba fields
    "guntur": Location("guntur", 80.45, 16.30),  # Andhra Pradesh: chilli, cotton, paddy
    "nashik": Location("nashik", 73.79, 19.99),  # Maharashtra: onion, grapes, small irregular plots
    "nalanda": Location("nalanda", 85.44, 25.13),  # Bihar: tiny paddy/wheat plots, dense villages
}


def resolve_location(spec: str) -> Location:
    """A preset name (case-insensitive) or "LON,LAT" in degrees; anything else is an InputError."""
    key = spec.strip().lower()
    if key in PRESETS:
        return PRESETS[key]
    parts = key.split(",")
    if len(parts) == 2:
        try:
            lon, lat = float(parts[0]), float(parts[1])
        except ValueError:
            lon = lat = math.nan
        if math.isfinite(lon) and math.isfinite(lat):
            # UTM is defined from 80°S to 84°N; beyond that a polar grid (UPS) would be needed
            if not (-180.0 <= lon <= 180.0 and -80.0 <= lat <= 84.0):
                raise InputError(
                    f"location {spec!r}: LON,LAT must lie within -180..180, -80..84 (UTM's range)"
                )
            return Location(f"{lon:.5f},{lat:.5f}", lon, lat)
    names = ", ".join(PRESETS)
    raise InputError(
        f"unknown location {spec!r}: give one of {names} or LON,LAT in degrees (e.g. 76.98,29.69)"
    )


def mosaic_origins(location: Location, scenes: int, size: int, gsd: float) -> list[tuple[float, float]]:
    """Top-left UTM corners of ``scenes`` adjacent tiles in a near-square grid centred on the location.

    The centre is snapped to a whole multiple of the pixel size so that every run at a location shares one
    pixel grid (scenes of different runs can be mosaicked without resampling).
    """
    to_utm = Transformer.from_crs("EPSG:4326", location.crs, always_xy=True)
    cx, cy = to_utm.transform(location.lon, location.lat)
    cols = math.ceil(math.sqrt(scenes))
    rows = math.ceil(scenes / cols)
    extent = size * gsd
    x0 = round((cx - cols * extent / 2) / gsd) * gsd
    y0 = round((cy + rows * extent / 2) / gsd) * gsd
    return [(x0 + (i % cols) * extent, y0 - (i // cols) * extent) for i in range(scenes)]
