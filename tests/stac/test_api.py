"""APICatalog: argument mapping to /search (a loopback stub serving the item JSON), same result as GeoParquet."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from magseg.errors import InputError
from magseg.stac import APICatalog, GeoParquetCatalog, open_catalog
from magseg.synth import collection_id
from tests.stac.conftest import SEEDS, item_dicts

CORE = "https://api.stacspec.org/v1.0.0/core"
SEARCH = "https://api.stacspec.org/v1.0.0/item-search"
QUERY = "https://api.stacspec.org/v1.0.0/item-search#query"
FILTER = "https://api.stacspec.org/v1.0.0/item-search#filter"


class Stub:
    """A stub STAC API: records each /search body and answers with every item (the client must filter)."""

    def __init__(self, items: list[dict[str, Any]], conforms: list[str]) -> None:
        self.items, self.conforms = items, conforms
        self.bodies: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def _send(self, obj: dict[str, Any]) -> None:
                data = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.split("?")[0] in ("/", ""):
                    self._send(stub.landing())
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", 0))
                stub.bodies.append(json.loads(self.rfile.read(size) or b"{}"))
                self._send({"type": "FeatureCollection", "features": stub.items, "links": []})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def landing(self) -> dict[str, Any]:
        return {
            "type": "Catalog",
            "id": "stub",
            "description": "stub STAC API",
            "stac_version": "1.1.0",
            "conformsTo": self.conforms,
            "links": [
                {"rel": "self", "href": self.url, "type": "application/json"},
                {"rel": "root", "href": self.url, "type": "application/json"},
                {
                    "rel": "search",
                    "href": self.url + "search",
                    "type": "application/geo+json",
                    "method": "POST",
                },
            ],
        }


@pytest.fixture
def items(synth_root: Path, other_root: Path) -> list[dict[str, Any]]:
    return item_dicts(synth_root) + item_dicts(other_root)


@pytest.fixture
def query_stub(items: list[dict[str, Any]]) -> Iterator[Stub]:
    stub = Stub(items, [CORE, SEARCH, QUERY])
    yield stub
    stub.server.shutdown()
    stub.server.server_close()


def test_arguments_reach_search_and_results_match_geoparquet(query_stub: Stub, merged: Path) -> None:
    cat = open_catalog(query_stub.url)
    assert isinstance(cat, APICatalog)
    dicts = query_stub.items
    w, s, e, n = dicts[0]["bbox"]
    clouds = sorted(d["properties"]["eo:cloud_cover"] for d in dicts)
    kwargs: dict[str, Any] = {
        "bbox": (w - 0.001, s - 0.001, e + 0.001, n + 0.001),
        "datetime": "2024-01-01/..",
        "collections": collection_id(SEEDS[0]),
        "max_cloud": clouds[len(clouds) // 2],
    }
    got = cat.search(**kwargs)
    body = query_stub.bodies[-1]
    assert body["bbox"] == pytest.approx(list(kwargs["bbox"]))
    assert body["datetime"].startswith("2024-01-01T00:00:00") and body["datetime"].endswith("/..")
    assert body["collections"] == [collection_id(SEEDS[0])]
    assert body["query"] == {"eo:cloud_cover": {"lte": kwargs["max_cloud"]}}
    # The stub ignores the filters; the client-side check makes the answer identical to the embedded search.
    want = GeoParquetCatalog(merged).search(**kwargs)
    assert [it.id for it in got] == [it.id for it in want]
    assert 0 < len(got) < len(dicts)
    assert [it.id for it in cat.search(limit=2)] == [
        it.id for it in GeoParquetCatalog(merged).search(limit=2)
    ]


def test_cloud_filter_uses_cql2_when_the_api_has_the_filter_extension(items: list[dict[str, Any]]) -> None:
    stub = Stub(items, [CORE, SEARCH, FILTER, QUERY])
    try:
        APICatalog(stub.url).search(max_cloud=10.0)
        body = stub.bodies[-1]
        assert body["filter"] == {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 10.0]}
        assert body["filter-lang"] == "cql2-json"
        assert "query" not in body
    finally:
        stub.server.shutdown()
        stub.server.server_close()


def test_unreachable_api_is_one_line_input_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    with pytest.raises(InputError, match=f"cannot open the STAC API at {url}") as info:
        APICatalog(url, retries=1, backoff=0.0)
    assert "\n" not in str(info.value)


def test_api_without_item_search_is_input_error(items: list[dict[str, Any]]) -> None:
    stub = Stub(items, [CORE])
    try:
        with pytest.raises(InputError, match="not a STAC API with item search"):
            APICatalog(stub.url)
    finally:
        stub.server.shutdown()
        stub.server.server_close()
