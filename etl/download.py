"""Extracts given as http(s) URLs: downloaded once into a cache folder, then read like a file.

A download goes to `<name>.part` and resumes from its size with an HTTP Range request after a
dropped connection (or in a later run); the finished file is checked against the `.md5` the
server publishes beside it (as Geofabrik does), when there is one, and only then takes its
final name, so the cache never holds a partial or corrupt extract under a name a rerun reuses.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from skyscript_db.db import cache_folder
from skyscript_db.errors import InputError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
ATTEMPTS = 5
TIMEOUT_S = 60
_MD5 = re.compile(r"^([0-9a-fA-F]{32})\b")


def is_url(source: str) -> bool:
    return urlparse(str(source)).scheme in ("http", "https")


def cached_path(url: str) -> Path:
    """Where `url` is cached: host and path, so two extracts of the same name do not collide."""
    parts = urlparse(url)
    return cache_folder("extracts") / parts.netloc.replace(":", "_") / parts.path.lstrip("/")


def fetch(url: str, on_progress: Callable[[int, int | None], None] | None = None) -> Path:
    """The local copy of `url`, downloaded unless the cache holds it already."""
    target = cached_path(url)
    if target.is_file():
        log.info("%s: cached at %s", url, target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _download(url, partial, on_progress)
            break
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            if isinstance(e, urllib.error.HTTPError) and e.code < 500:
                raise InputError(f"{url}: HTTP {e.code} {e.reason}") from e
            if attempt == ATTEMPTS:
                raise InputError(f"{url}: download failed after {ATTEMPTS} attempts "
                                 f"({e})") from e
            log.warning("%s: %s; resuming (attempt %d of %d)", url, e, attempt + 1, ATTEMPTS)
            time.sleep(min(2 ** attempt * 0.1, 5))
    _check_md5(url, partial)
    partial.replace(target)
    return target


def _download(url: str, partial: Path,
              on_progress: Callable[[int, int | None], None] | None) -> None:
    """Append to `partial` from where it stops; an error unless the whole body arrived."""
    done = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
        if done and answer.status != 206:  # the server ignored the range: start over
            done = 0
        length = answer.headers.get("Content-Length")
        total = done + int(length) if length is not None else None
        with partial.open("ab" if done else "wb") as out:
            while chunk := answer.read(CHUNK):
                out.write(chunk)
                done += len(chunk)
                if on_progress:
                    on_progress(done, total)
    if total is not None and done < total:
        raise ConnectionError(f"connection closed after {done:,} of {total:,} bytes")


def _check_md5(url: str, partial: Path) -> None:
    """Compare with `<url>.md5` where the server has one; a mismatch deletes the download."""
    try:
        with urllib.request.urlopen(url + ".md5", timeout=TIMEOUT_S) as answer:
            published = answer.read(4096).decode("ascii", "replace")
    except (urllib.error.URLError, http.client.HTTPException, OSError):
        log.info("%s: no .md5 published beside it; not checked", url)
        return
    match = _MD5.match(published.strip())
    if not match:
        log.warning("%s.md5 holds no md5 sum; not checked", url)
        return
    digest = hashlib.md5()
    with partial.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    if digest.hexdigest() != match.group(1).lower():
        partial.unlink()
        raise InputError(f"{url}: md5 {digest.hexdigest()} does not match the published "
                         f"{match.group(1).lower()}; the download was deleted")
