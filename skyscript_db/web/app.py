"""The ASGI app behind `skyscript-db serve`: a JSON API over `Dataset`, the image files, and one
static page (skyscript_db/web/static: plain HTML, CSS and JS, nothing fetched from elsewhere).

Every error is a JSON message ({"error": ...}) with a status that says whose fault it was; a
traceback goes to the server log only.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
from collections.abc import Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import duckdb
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from skyscript_db.errors import ConfigError, NotFound, QueryTimeout, SkyscriptError
from skyscript_db.web.dataset import Dataset

log = logging.getLogger(__name__)

MAX_UPLOAD = 20 * 1024 * 1024
DB_VARIABLE = "SKYSCRIPT_SERVE_DB"
STATUS = {NotFound: 404, QueryTimeout: 408}


class Json(JSONResponse):
    """JSON that takes what DuckDB returns: dates, decimals and blobs as text, NaN as null."""

    def render(self, content: Any) -> bytes:
        return json.dumps(_finite(content), default=str, ensure_ascii=False,
                          allow_nan=False).encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def create_app(dataset: Dataset) -> Starlette:
    """The app serving `dataset`; it closes the dataset when the server stops."""

    async def call(fn: Callable[..., Any], *args: Any) -> Json:
        return Json(await run_in_threadpool(fn, *args))

    async def search(request: Request) -> Json:
        params = request.query_params
        return await call(lambda: {"results": dataset.search_text(
            params.get("q", ""), _int(params, "k", 20), params.get("where"))})

    async def search_image(request: Request) -> Json:
        params = request.query_params
        body = await request.body()
        if not body:
            raise ConfigError("send the image file as the request body")
        if len(body) > MAX_UPLOAD:
            raise ConfigError(f"the image is larger than {MAX_UPLOAD // 2**20} MiB")
        return await call(lambda: {"results": dataset.search_image(
            _image(body), _int(params, "k", 20), params.get("where"),
            params.get("against", "title"))})

    async def pair(request: Request) -> Json:
        return await call(dataset.pair, request.path_params["pair_id"])

    async def overview(request: Request) -> Json:
        return await call(dataset.overview)

    async def sql(request: Request) -> Json:
        try:
            query = (await request.json())["query"]
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError('send {"query": "..."} as JSON') from e
        return await call(dataset.sql, str(query))

    async def image(request: Request) -> FileResponse:
        path = await run_in_threadpool(dataset.image_file, request.path_params["path"])
        return FileResponse(path, media_type="image/jpeg")

    async def page(request: Request) -> Response:
        return Response(_static("index.html"), media_type="text/html")

    @asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        dataset.close()

    routes = [
        Route("/", page),
        Route("/api/search", search),
        Route("/api/search/image", search_image, methods=["POST"]),
        Route("/api/pairs/{pair_id:int}", pair),
        Route("/api/overview", overview),
        Route("/api/sql", sql, methods=["POST"]),
        Route("/images/{path:path}", image),
        Mount("/static", StaticFiles(packages=[("skyscript_db.web", "static")]), name="static"),
    ]
    handlers = {SkyscriptError: _our_error, duckdb.Error: _query_error,
                HTTPException: _http_error, Exception: _unexpected}
    return Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)


def from_environment() -> Starlette:
    """The app for the database named by SKYSCRIPT_SERVE_DB: how `skyscript-db serve` hands the
    database to each of its worker processes."""
    import torch

    # Many small requests at once: one torch thread each, not several fighting for the cores.
    torch.set_num_threads(1)
    return create_app(Dataset(os.environ[DB_VARIABLE]))


def _int(params: Any, name: str, default: int) -> int:
    try:
        return int(params.get(name, default))
    except ValueError as e:
        raise ConfigError(f"{name} must be a whole number, got {params[name]!r}") from e


def _image(body: bytes) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        picture = Image.open(io.BytesIO(body))
        picture.load()
    except (UnidentifiedImageError, OSError) as e:
        raise ConfigError("the uploaded file is not an image PIL can read") from e
    return picture


def _static(name: str) -> bytes:
    return resources.files("skyscript_db.web").joinpath("static", name).read_bytes()


async def _our_error(request: Request, exc: Exception) -> Json:
    return Json({"error": str(exc)}, status_code=STATUS.get(type(exc), 400))


async def _query_error(request: Request, exc: Exception) -> Json:
    return Json({"error": str(exc).strip().splitlines()[0]}, status_code=400)


async def _http_error(request: Request, exc: Exception) -> Json:
    assert isinstance(exc, HTTPException)
    return Json({"error": exc.detail}, status_code=exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> Json:
    log.exception("%s %s failed", request.method, request.url.path)
    return Json({"error": f"internal error ({type(exc).__name__}); the server log has the "
                          "details"}, status_code=500)
