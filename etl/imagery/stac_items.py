"""Finding a STAC catalogue's items for a request: searching an API (page by page, sorted by the
server when it can) or reading a static catalog, signing them where the catalogue needs it,
filtering by window and cloud cover, and ordering them the same way whoever sorted."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import pystac

from skyscript_db.errors import ConfigError

PAGE_SIZE = 100  # items per page of a STAC API search
MAX_ITEMS = 500  # items read per request, over as many pages as that takes
DEFAULT_SORTBY = "eo:cloud_cover,-datetime"  # least cloudy, then newest
MODIFIERS = ("planetary-computer",)


def when(item: pystac.Item) -> dt.datetime | None:
    return item.datetime or item.common_metadata.start_datetime


def cloud_within(item: pystac.Item, limit: float) -> bool:
    cloud = item.properties.get("eo:cloud_cover")
    return cloud is not None and float(cloud) <= limit


def sort_fields(text: str) -> list[tuple[str, bool]]:
    """'eo:cloud_cover,-datetime' -> [('eo:cloud_cover', False), ('datetime', True)]
    (field, descending); a 'properties.' prefix is dropped. ValueError names a bad field."""
    fields = []
    for part in text.split(","):
        name = part.strip().lstrip("+")
        descending = name.startswith("-")
        name = name.lstrip("-").removeprefix("properties.")
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"sortby {text!r}: {part!r} is not a property name")
        fields.append((name, descending))
    return fields


def sort_items(items: list[pystac.Item], order: list[tuple[str, bool]]) -> list[pystac.Item]:
    """Items in `order`, an item without the property after those with it, then by id: the same
    order whether the server sorted or not."""
    def value(item: pystac.Item, name: str) -> Any:
        raw = when(item) if name == "datetime" else item.properties.get(name)
        return raw.isoformat() if isinstance(raw, dt.datetime) else raw

    ranked = sorted(items, key=lambda i: i.id)
    for name, descending in reversed(order):  # stable sorts, least significant field first
        present = [i for i in ranked if value(i, name) is not None]
        absent = [i for i in ranked if value(i, name) is None]
        ranked = sorted(present, key=lambda i: value(i, name), reverse=descending) + absent
    return ranked


def modifier_function(name: str | None) -> Callable[[Any], Any] | None:
    """The function that signs a catalogue's items in place, by name."""
    if name is None:
        return None
    if name != "planetary-computer":
        raise ConfigError(f"STAC modifier {name!r}: known ones are {', '.join(MODIFIERS)}")
    try:
        import planetary_computer
    except ImportError as e:
        raise ConfigError("--modifier planetary-computer needs the planetary-computer package: "
                          "pip install planetary-computer") from e
    return planetary_computer.sign_inplace


def window(text: str | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """'START/END' (dates or ISO times, UTC unless said; '..' leaves an end open; a date as END
    means the whole day) or one date; a ValueError names what is wrong."""
    if not text:
        return None, None
    start, _, end = text.partition("/")

    def parse(value: str, whole_day: bool) -> dt.datetime | None:
        if value in ("", ".."):
            return None
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError as e:
            raise ValueError(f"datetime {text!r}: {value!r} is not an ISO date or time") from e
        when = when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
        return when + dt.timedelta(days=1, microseconds=-1) if whole_day and len(value) == 10 \
            else when

    return parse(start, False), parse(end or start, True)


def in_window(item: pystac.Item, start: dt.datetime | None, end: dt.datetime | None) -> bool:
    at = when(item)
    if start is None and end is None:
        return True
    return at is not None and (start is None or at >= start) and (end is None or at <= end)


def search_items(url: str, collection: str | None, bbox: tuple, datetime: str | None = None,
                 order: list[tuple[str, bool]] | None = None, modifier: str | None = None,
                 timeout_s: float = 30) -> list[pystac.Item]:
    """Items near bbox: searched by a STAC API (in the window, sorted by the server when it can,
    page by page, up to MAX_ITEMS), or read from a static catalog (cached); signed by the
    modifier."""
    if not url.endswith(".json"):
        from pystac_client import ConformanceClasses

        client = _client(url, modifier, timeout_s, threading.get_ident())
        sortby = [{"field": f"properties.{name}", "direction": "desc" if descending else "asc"}
                  for name, descending in order or []]
        search = client.search(
            collections=[collection] if collection else None, bbox=bbox, datetime=datetime,
            limit=PAGE_SIZE, max_items=MAX_ITEMS,
            sortby=sortby if sortby and client.conforms_to(ConformanceClasses.SORT) else None)
        return list(search.items())
    items = [i for i in _static_items(url) if collection is None or i.collection_id == collection]
    sign = modifier_function(modifier)
    if sign:
        items = [i.clone() for i in items]
        for item in items:
            sign(item)
    return items


def open_catalogue(url: str, modifier: str | None, timeout_s: float) -> None:
    """Read the catalogue's root once (the API's landing page, or the static catalog)."""
    if url.endswith(".json"):
        _static_items(url)
    else:
        _client(url, modifier, timeout_s, threading.get_ident())


@cache
def _client(url: str, modifier: str | None, timeout_s: float, thread: int) -> Any:
    """One client per catalogue and thread (a requests session is not shared across threads)."""
    from pystac_client import Client

    return Client.open(url, modifier=modifier_function(modifier), timeout=timeout_s)


@cache
def _static_items(url: str) -> tuple[pystac.Item, ...]:
    root = pystac.read_file(url)
    if isinstance(root, pystac.Item):
        return (root,)
    return tuple(root.get_items(recursive=True))


def overlaps(a: Sequence[float] | None, b: Sequence[float]) -> bool:
    return a is not None and a[0] < b[2] and a[2] > b[0] and a[1] < b[3] and a[3] > b[1]
