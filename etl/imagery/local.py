"""The local source: registered GeoTIFF/COG files (skyscript-db add-imagery), any CRS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import rasterio
from rasterio.enums import Resampling

from skyscript_db.errors import SourceUnavailable
from skyscript_db.etl.imagery.base import Fetched, ImageRequest, to_uint8
from skyscript_db.etl.imagery.raster import read_request


@dataclass(frozen=True)
class LocalSource:
    path: str
    rgb_bands: Sequence[int]
    resampling: Resampling = Resampling.bilinear
    name: str = "local"

    def check(self) -> None:
        try:
            with rasterio.open(self.path) as src:
                missing = [b for b in self.rgb_bands if not 1 <= b <= src.count]
        except rasterio.errors.RasterioError as e:
            raise SourceUnavailable(f"{self.path} cannot be read ({e}): register it again with "
                                    "`add-imagery`") from e
        if missing:
            raise SourceUnavailable(f"{self.path} has no band {missing}: register it again with "
                                    "`add-imagery --bands`")

    def fetch(self, request: ImageRequest, payload: Any = None) -> Fetched:
        with rasterio.open(self.path) as src:
            data, valid = read_request(src, request, self.rgb_bands, self.resampling)
            dtype = src.dtypes[0]
        return Fetched(to_uint8(data, valid), source=self.name,
                       meta={"file": self.path, "bands": list(self.rgb_bands), "dtype": dtype,
                             "coverage": round(float(valid.mean()), 4)})
