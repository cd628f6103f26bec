"""What every imagery source shares: the request, the result, errors, 8-bit scaling, retries."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from skyscript_db.errors import TransientError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ImageRequest:
    """One row of image_requests: the exact UTM rectangle and the pixel grid to fill."""

    pair_id: int
    osm_type: str
    osm_id: int
    collection_code: str
    width_px: int
    height_px: int
    gsd_m: float
    utm_epsg: int
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    west: float
    south: float
    east: float
    north: float


@dataclass
class Fetched:
    """RGB pixels (height, width, 3) uint8, with when they were acquired and how."""

    pixels: np.ndarray
    source: str
    acquired: str | None = None  # ISO date of the imagery, when the source knows it
    meta: dict[str, Any] = field(default_factory=dict)
    collection: str | None = None  # a fallback collection's code, when it gave the pixels


class Source(Protocol):
    name: str

    def check(self) -> None:
        """Raise SourceUnavailable, saying what fixes it, when this source cannot work at all;
        asked once before a fetch sends it any request."""

    def fetch(self, request: ImageRequest, payload: Any = None) -> Fetched: ...


def to_uint8(bands: np.ndarray, valid: np.ndarray,
             stretch: tuple[float, float] | None = None) -> np.ndarray:
    """(3, H, W) of any dtype -> (H, W, 3) uint8.

    The documented scaling rule: uint8 data is kept as it is. Any other type is stretched
    linearly to 0-255 and clipped: from `stretch` (low, high) when given, the same for every
    image of a collection, as Earth Engine's visualisation does; else per image and band from
    the 2nd to the 98th percentile of the valid pixels. Pixels that are not valid (nodata,
    outside the raster) are black.
    """
    if bands.dtype == np.uint8:
        out = bands.copy()
    else:
        out = np.zeros(bands.shape, dtype=np.uint8)
        for i, band in enumerate(bands.astype(np.float64)):
            values = band[valid & np.isfinite(band)]
            if values.size == 0:
                continue
            low, high = stretch if stretch else np.percentile(values, [2, 98])
            scale = 255.0 / (high - low) if high > low else 0.0
            out[i] = np.clip((band - low) * scale, 0, 255).astype(np.uint8)
    out[:, ~valid] = 0
    return np.ascontiguousarray(out.transpose(1, 2, 0))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: try `attempts` times, waiting up to
    base_s * 2**n (capped at max_s) before try n+1. Only TransientError is retried."""

    attempts: int = 4
    base_s: float = 0.5
    max_s: float = 30.0

    def delays(self, seed: int = 0) -> list[float]:
        rng = random.Random(seed)
        return [rng.uniform(0, min(self.max_s, self.base_s * 2**n))
                for n in range(self.attempts - 1)]

    def call(self, fn: Callable[[], T], seed: int = 0,
             sleep: Callable[[float], None] = time.sleep) -> T:
        delays = self.delays(seed)
        for attempt in range(self.attempts):
            try:
                return fn()
            except TransientError as e:
                if attempt == self.attempts - 1:
                    raise
                log.debug("retry %d after %s", attempt + 1, e)
                sleep(delays[attempt])
        raise AssertionError("unreachable")
