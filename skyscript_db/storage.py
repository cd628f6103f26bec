"""Where image files and exports live: a folder on this machine, or any fsspec URL (`s3://`,
`gs://`, `file://`, ...). Every stage that writes or reads image bytes does it here.

`images.path` holds a path relative to the database's folder for local files (a database moves
with its folder) and the full URL otherwise. Credentials come from the usual environment of each
file system (AWS_* / boto, GOOGLE_APPLICATION_CREDENTIALS, ...), never from the database.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from PIL import Image

from skyscript_db.errors import ConfigError


def is_url(location: str | Path) -> bool:
    return "://" in str(location)


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system of `url` and the path within it; an unknown protocol or a missing
    driver package (s3fs, gcsfs) is a ConfigError naming the URL."""
    import fsspec

    try:
        # no listing cache: other processes (fetch workers, Ray nodes) add and remove files
        return fsspec.core.url_to_fs(url, use_listings_cache=False)
    except (ImportError, ValueError) as e:
        raise ConfigError(f"{url}: cannot open this storage: {e}") from e


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def read_bytes(where: str) -> bytes:
    """The bytes at a local path or URL; FileNotFoundError when there are none."""
    if not is_url(where):
        return Path(where).read_bytes()
    fs, path = filesystem(where)
    return fs.cat_file(path)


def open_rgb(where: str, at_least: int | None = None) -> Image.Image:
    """The image at `where` in RGB. With `at_least`, a JPEG is decoded at the smallest of its
    DCT scales (1/2, 1/4, 1/8) that keeps both sides at least that: a quarter of the pixels to
    decode and resize for a 224 px model reading 720 px crops."""
    with Image.open(io.BytesIO(read_bytes(where))) as image:
        if at_least:
            image.draft("RGB", (at_least, at_least))
        return image.convert("RGB")


def write_atomic(where: str, data: bytes) -> int:
    """Write `data` so that no reader ever sees part of it: locally (a path or a file:// URL) a
    temp file in the same folder, flushed, then renamed; on object storage one PUT (an object
    appears whole)."""
    if is_url(where):
        fs, path = filesystem(where)
        if "file" not in fs.protocol:
            fs.pipe_file(path, data)
            return len(data)
        where = path
    target = Path(where)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    with partial.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, target)
    return len(data)


def listing(url: str) -> tuple[list[str], list[int]]:
    """Every object under `url` (full URLs) with its size; none when `url` does not exist."""
    fs, path = filesystem(url)
    found = fs.find(path, detail=True) if fs.exists(path) else {}
    protocol = url.split("://", 1)[0]
    urls = [f"{protocol}://{name}" for name in found]
    return urls, [int(info.get("size") or 0) for info in found.values()]


def upload_folder(folder: Path, url: str) -> None:
    """Copy a finished local folder to `url`, replacing what was there."""
    fs, path = filesystem(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)
    fs.put(str(folder), path, recursive=True)
