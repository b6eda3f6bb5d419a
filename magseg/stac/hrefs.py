"""Asset hrefs that work wherever an item travels: absolute paths and URLs kept, relative ones resolved."""

from __future__ import annotations

import os
from typing import Any

import pystac

__all__ = ["asset_href", "portable_item"]


def asset_href(item: pystac.Item, key: str) -> str:
    """The absolute href of asset ``key``.

    An absolute path or URL is returned as it is: pystac would join a local path onto the self URL of
    an item fetched from an API. A relative href is resolved against the item's own location.
    """
    href = item.assets[key].href
    if "://" in href or os.path.isabs(href):
        return href
    return item.assets[key].get_absolute_href() or href


def portable_item(item: pystac.Item) -> dict[str, Any]:
    """The item as a dict with absolute asset hrefs and no self/root/parent links: readable anywhere."""
    out = item.to_dict(include_self_link=False, transform_hrefs=False)
    for key, asset in out["assets"].items():
        asset["href"] = asset_href(item, key)
    out["links"] = [
        link for link in out.get("links", []) if link.get("rel") not in ("self", "root", "parent")
    ]
    return out
