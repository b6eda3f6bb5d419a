"""Asset hrefs: relative ones resolve against the item's file, absolute paths and URLs never change."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pystac

from magseg.stac.hrefs import asset_href, portable_item


def make_item(href: str) -> pystac.Item:
    item = pystac.Item(
        "a", {"type": "Point", "coordinates": [0, 0]}, [0, 0, 0, 0], dt.datetime(2024, 1, 1), {}
    )
    item.add_asset("image", pystac.Asset(href))
    return item


def test_relative_href_resolves_against_the_item_file(tmp_path: Path) -> None:
    item = make_item("../scenes/a.tif")
    item.set_self_href(str(tmp_path / "items" / "a.json"))
    assert asset_href(item, "image") == str(tmp_path / "scenes" / "a.tif")


def test_absolute_path_stays_under_an_api_self_url() -> None:
    item = make_item("/data/scenes/a.tif")
    item.set_self_href("http://127.0.0.1:8080/collections/c/items/a")
    assert asset_href(item, "image") == "/data/scenes/a.tif"
    url = make_item("https://example.org/a.tif")
    url.set_self_href("http://127.0.0.1:8080/collections/c/items/a")
    assert asset_href(url, "image") == "https://example.org/a.tif"


def test_portable_item_drops_location_links(tmp_path: Path) -> None:
    item = make_item("a.tif")
    item.set_self_href(str(tmp_path / "a.json"))
    out = portable_item(item)
    assert out["assets"]["image"]["href"] == str(tmp_path / "a.tif")
    assert not {link["rel"] for link in out["links"]} & {"self", "root", "parent"}
    assert pystac.Item.from_dict(out).assets["image"].href == str(tmp_path / "a.tif")
