"""Search a STAC API through pystac-client: retries with backoff, filters mapped to the API, same sort order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pystac
from pystac_client import Client
from pystac_client.conformance import ConformanceClasses
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from urllib3.util.retry import Retry

from magseg.errors import InputError
from magseg.stac.query import SearchQuery

# Transient answers worth retrying; 4xx other than 429 are the request's fault and fail at once.
RETRY_STATUS = (429, 500, 502, 503, 504)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__


class APICatalog:
    """A STAC API (``/search``); results are fetched whole, re-checked and sorted client-side.

    Sorting client-side keeps the order identical to ``GeoParquetCatalog`` whatever the server's sort
    extension does (pgstac sorts eo:cloud_cover lexically unless it is a registered numeric queryable).
    """

    def __init__(
        self,
        url: str,
        *,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 30.0,
        max_fetch: int = 10_000,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.max_fetch = max_fetch
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=backoff,
            status_forcelist=RETRY_STATUS,
            allowed_methods=None,  # searches are POSTs but read-only: safe to retry
            raise_on_status=False,
        )
        stac_io = StacApiIO(headers=headers, timeout=timeout, max_retries=retry if retries > 0 else None)
        try:
            self.client = Client.open(url, stac_io=stac_io, timeout=timeout)
        except APIError as exc:
            raise InputError(
                f"cannot open the STAC API at {url} ({_one_line(exc)}): check the URL and the network, "
                "or search a local stac-geoparquet file instead"
            ) from None
        except (pystac.STACError, ValueError) as exc:
            raise InputError(
                f"{url} is not a STAC catalogue or API ({_one_line(exc)}): check the URL"
            ) from None
        if not self.client.conforms_to(ConformanceClasses.ITEM_SEARCH):
            raise InputError(
                f"{url} is not a STAC API with item search (no /search conformance): point at a STAC API, "
                "or convert a static catalogue to stac-geoparquet and search that"
            )

    def __repr__(self) -> str:
        return f"APICatalog({self.url!r})"

    def search_parameters(self, query: SearchQuery) -> dict[str, Any]:
        """The keyword arguments given to ``Client.search`` for ``query``."""
        params: dict[str, Any] = {"max_items": self.max_fetch + 1, "limit": 100}
        if query.bbox is not None:
            params["bbox"] = list(query.bbox)
        if query.interval is not None:
            params["datetime"] = query.datetime_text
        if query.collections is not None:
            params["collections"] = list(query.collections)
        if query.max_cloud is not None:
            # Prefer CQL2 (filter extension), else the older query extension; otherwise filter client-side.
            if self.client.conforms_to(ConformanceClasses.FILTER):
                params["filter"] = {"op": "<=", "args": [{"property": "eo:cloud_cover"}, query.max_cloud]}
                params["filter_lang"] = "cql2-json"
            elif self.client.conforms_to(ConformanceClasses.QUERY):
                params["query"] = {"eo:cloud_cover": {"lte": query.max_cloud}}
        return params

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
        try:
            found = list(self.client.search(**self.search_parameters(query)).items())
        except APIError as exc:
            raise InputError(
                f"STAC API search at {self.url} failed ({_one_line(exc)}): check the URL, the network and "
                "the filters, or search a local stac-geoparquet file instead"
            ) from None
        if len(found) > self.max_fetch:
            raise InputError(
                f"STAC API search at {self.url} matched over {self.max_fetch} items: narrow bbox/datetime/"
                "collections or raise max_fetch"
            )
        # Re-check every filter: servers differ (e.g. one without the query/filter extension ignores clouds).
        return query.finish(it for it in found if query.matches(it))
