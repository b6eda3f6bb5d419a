"""write_layer(): fiboa 0.3 GeoParquet that fiboa-cli validates offline; FlatGeobuf and GeoPackage."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from magseg.errors import CRSError, InputError
from magseg.labels import LabelRaster
from magseg.vector import (
    CONFIDENCE,
    FIBOA_SCHEMAS,
    MAGSEG_SCHEMA,
    MAGSEG_SCHEMA_FILE,
    polygonize,
    write_layer,
)

VALIDATOR = Path(__file__).parent / "fiboa_offline" / "fiboa_validate.py"


def test_fiboa_geoparquet_validates(utm_labels: LabelRaster, tmp_path: Path) -> None:
    out = tmp_path / "fields.parquet"
    write_layer(polygonize(utm_labels), out, collection="test-run", determination_datetime="2024-05-01")
    run = subprocess.run(
        [sys.executable, str(VALIDATOR), str(out), "-n", "-1"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "VALID" in run.stdout and "INVALID" not in run.stdout


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(VALIDATOR), str(path), "-n", "-1"], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("value", [0.75, 1.5])
def test_confidence_column_follows_magseg_extension(
    utm_labels: LabelRaster, tmp_path: Path, value: float
) -> None:
    out = tmp_path / "fields.parquet"
    layer = polygonize(utm_labels)
    layer[CONFIDENCE] = value
    write_layer(layer, out, collection="c1")
    schema = pq.read_schema(out)
    assert schema.field(CONFIDENCE).type == pa.float32()
    assert json.loads(schema.metadata[b"collection"]) == {"schemas": {"c1": [*FIBOA_SCHEMAS, MAGSEG_SCHEMA]}}
    assert MAGSEG_SCHEMA_FILE.is_file()  # shipped with the package, for `fiboa validate -s URL,FILE`
    run = _validate(out)
    if value <= 1:
        assert run.returncode == 0 and "INVALID" not in run.stdout, run.stdout + run.stderr
    else:  # the extension's schema is applied: a confidence above 1 is refused
        assert run.returncode != 0 and "INVALID" in run.stdout and "magseg:confidence" in run.stdout


def test_fiboa_schema_and_metadata(utm_labels: LabelRaster, tmp_path: Path) -> None:
    out = tmp_path / "fields.geoparquet"
    when = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    write_layer(polygonize(utm_labels), out, collection="c1", determination_datetime=when)
    schema = pq.read_schema(out)
    assert schema.field("id").type == pa.string() and not schema.field("id").nullable
    assert schema.field("collection").type == pa.string() and not schema.field("collection").nullable
    assert not schema.field("geometry").nullable
    assert schema.field("class").type == pa.string()
    assert schema.field("metrics:area").type == pa.float32()
    assert schema.field("metrics:perimeter").type == pa.float32()
    assert schema.field("determination:datetime").type == pa.timestamp("ms", tz="UTC")
    meta = schema.metadata
    assert json.loads(meta[b"collection"]) == {"schemas": {"c1": list(FIBOA_SCHEMAS)}}
    assert json.loads(meta[b"geo"])["version"] == "1.1.0"
    table = pq.read_table(out)
    assert set(table.column("determination:method").to_pylist()) == {"auto-imagery"}
    assert table.column("determination:datetime")[0].as_py() == when
    back = gpd.read_parquet(out)
    assert back.crs.equals("OGC:CRS84") or back.crs.to_epsg() == 4326
    lon, lat = back.geometry.iloc[0].centroid.coords[0]
    assert 14 < lon < 16 and 35 < lat < 37  # UTM 33N near x=500 km, y=4000 km: WGS84 in lon/lat order


@pytest.mark.parametrize("ext", [".fgb", ".gpkg"])
def test_ogr_formats_open_with_geopandas(utm_labels: LabelRaster, tmp_path: Path, ext: str) -> None:
    layer = polygonize(utm_labels)
    out = tmp_path / f"fields{ext}"
    write_layer(layer, out)
    back = gpd.read_file(out)
    assert back.crs.to_epsg() == 32633
    assert sorted(back["id"]) == sorted(layer["id"])
    assert back.set_index("id")["metrics:area"].to_dict() == pytest.approx(
        layer.set_index("id")["metrics:area"].to_dict()
    )
    assert set(back["determination:method"]) == {"auto-imagery"}
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # atomic: no temporary file left


def test_unknown_extension_and_missing_crs(utm_labels: LabelRaster, tmp_path: Path) -> None:
    layer = polygonize(utm_labels)
    with pytest.raises(InputError, match="unknown layer extension"):
        write_layer(layer, tmp_path / "fields.shp")
    with pytest.raises(CRSError):
        write_layer(layer.set_crs(None, allow_override=True), tmp_path / "fields.fgb")
    with pytest.raises(InputError, match="ISO"):
        write_layer(layer, tmp_path / "fields.fgb", determination_datetime="May 1st")
    assert not any(tmp_path.iterdir())
