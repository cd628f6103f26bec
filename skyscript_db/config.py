"""Options, typed and validated in one place: the SQL stages' knobs (BuildConfig), fetch, embed,
index and export, and `Options`, everything one pipeline run is asked to do."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from skyscript_db import storage
from skyscript_db.captions import check_caption
from skyscript_db.errors import ConfigError, ExportError
from skyscript_db.models import ModelSpec


@dataclass(frozen=True)
class BuildConfig:
    """Parameters of the SQL stages and the tag classifier.

    seed: the build seed; each stage draws from its own seed derived from it and the stage name,
        so changing one stage's parameters does not reshuffle another's draws.
    n_cells: grid cells to draw; None draws ceil(fraction * occupied cells).
    fraction: share of occupied cells to draw when n_cells is None.
    rare_threshold: a visible tag with fewer selected objects than this is targeted.
    rare_cap: at most this many objects are added per targeted tag.
    max_surrounding: surrounding objects named in a multi-object caption.
    caption_language: the language of the natural captions (any of the iD tagging schema's,
        e.g. 'de', 'pt-BR'). caption_max_chars: their multi-object caption's length cap (CLIP
        reads 77 tokens, about 300 characters of English).
    imagery: 'render' (SYNTHETIC stand-ins drawn from OSM: the default, so that a build with no
        options runs offline) or 'catalog' (the Earth Engine collections of the method, which
        need an account); registered local and STAC imagery is used either way.
    benchmark_classes: classes of the held-out benchmark set (0: none).
    benchmark_per_class: objects drawn per benchmark class (a class needs at least this many).
    tag_encoder: the text encoder of the tag classifier: 'minilm' (offline, the default) or
        'open_clip:MODEL[:PRETRAINED]' (a CLIP text tower, as in the paper).
    tag_cache: reuse text vectors and fitted classifiers from the user cache (etl/tag_cache.py)
        and add to it; False forces a fit.
    collections: the only collection codes image requests may use (None: all);
        exclude_collections: codes they may not. prefer: 'random' (one candidate drawn at
        random, the paper's rule) or 'finest' (the finest GSD; the draw breaks ties).
    """

    seed: int = 0
    n_cells: int | None = None
    fraction: float = 0.25
    rare_threshold: int = 20
    rare_cap: int = 200
    max_surrounding: int = 10
    caption_language: str = "en"
    caption_max_chars: int = 300
    imagery: str = "render"
    tag_encoder: str = "minilm"
    tag_cache: bool = True
    benchmark_classes: int = 0
    benchmark_per_class: int = 100
    collections: tuple[str, ...] | None = None
    exclude_collections: tuple[str, ...] = ()
    prefer: str = "random"

    def __post_init__(self) -> None:
        problems = []
        if self.n_cells is not None and self.n_cells < 1:
            problems.append(f"n_cells must be at least 1, got {self.n_cells}")
        if not 0 < self.fraction <= 1:
            problems.append(f"fraction must be in (0, 1], got {self.fraction}")
        if self.benchmark_per_class < 1:
            problems.append(f"benchmark_per_class must be at least 1, got "
                            f"{self.benchmark_per_class}")
        for name in ("rare_threshold", "rare_cap", "max_surrounding", "benchmark_classes"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must not be negative, got {getattr(self, name)}")
        if self.caption_max_chars < 20:
            problems.append(f"caption_max_chars must be at least 20, got {self.caption_max_chars}")
        if self.prefer not in ("random", "finest"):
            problems.append(f"prefer must be 'random' or 'finest', got {self.prefer!r}")
        if self.imagery not in ("catalog", "render"):
            problems.append(f"imagery must be 'catalog' or 'render', got {self.imagery!r}")
        if self.tag_encoder != "minilm" and not self.tag_encoder.startswith("open_clip:"):
            problems.append("tag_encoder must be 'minilm' or 'open_clip:MODEL[:PRETRAINED]', "
                            f"got {self.tag_encoder!r}")
        if problems:
            raise ConfigError("; ".join(problems))

    def stage_seed(self, stage: str) -> int:
        """A 62-bit seed for one stage, from the build seed and the stage's name."""
        digest = hashlib.sha256(f"{self.seed}:{stage}".encode()).digest()
        return int.from_bytes(digest[:8], "big") >> 2


@dataclass(frozen=True)
class FetchConfig:
    """workers: parallel fetches. batch: requests per committed batch. attempts: tries per image
    for network errors. processes: None picks processes when a CPU-bound source has work.
    images_url: where image files go, an fsspec URL (s3://bucket/images, gs://…, file://…) or a
    folder (taken as its file:// URL); None: the folder beside the database.
    max_nodata: the largest share of a crop without imagery that is still `ok`; a crop with more
    is `partial_coverage` (never a pair), its file kept only with keep_partial."""

    workers: int = os.cpu_count() or 2
    batch: int = 256
    attempts: int = 4
    jpeg_quality: int = 90
    processes: bool | None = None
    gee_project: str | None = None
    images_url: str | None = None
    max_nodata: float = 0.05
    keep_partial: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.max_nodata <= 1:
            raise ConfigError(f"max_nodata is a share in 0..1, got {self.max_nodata}")
        if self.workers < 1 or self.batch < 1 or self.attempts < 1:
            raise ConfigError("fetch workers, batch and attempts must be at least 1")
        if self.images_url is not None and not storage.is_url(self.images_url):
            # a folder as an absolute URL: every worker, on every node, writes where meant
            object.__setattr__(self, "images_url", Path(self.images_url).resolve().as_uri())
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")


@dataclass(frozen=True)
class EmbedConfig:
    """model: the CLIP model. batch: pairs per batch. score_caption: the caption the pairs view
    scores: a column of captions or rewrite:MODEL (embedded too when it is not one of the
    paper's two). actors, gpus_per_actor: on Ray, the model copies (one per actor) and the GPUs
    each one takes (0: CPU actors)."""

    model: ModelSpec = ModelSpec()
    batch: int = 64
    score_caption: str = "title"
    actors: int = 1
    gpus_per_actor: float = 0.0

    def __post_init__(self) -> None:
        check_caption(self.score_caption, "score_caption")
        if self.batch < 1 or self.actors < 1:
            raise ConfigError(f"embed batch and actors must be at least 1, got {self.batch} "
                              f"and {self.actors}")
        if self.gpus_per_actor < 0:
            raise ConfigError(f"gpus_per_actor must not be negative, got {self.gpus_per_actor}")


@dataclass(frozen=True)
class ClusterConfig:
    """Where fetch and embed run: executor 'local' (a pool on this machine) or 'ray'.
    ray_address: 'auto' or 'HOST:PORT' joins a running cluster; None joins $RAY_ADDRESS when
    set, else starts a Ray instance on this machine. The database stays with this process (the
    driver) either way."""

    executor: str = "local"
    ray_address: str | None = None

    def __post_init__(self) -> None:
        if self.executor not in ("local", "ray"):
            raise ConfigError(f"executor must be 'local' or 'ray', got {self.executor!r}")
        if self.ray_address is not None and self.executor != "ray":
            raise ConfigError("ray_address needs executor 'ray'")


@dataclass(frozen=True)
class IndexConfig:
    """Exact search below `exact_below` vectors; above, IVF with nprobe tuned to `target_recall`."""

    exact_below: int = 50_000
    target_recall: float = 0.95
    seed: int = 0


@dataclass(frozen=True)
class ExportConfig:
    """out: the output folder. top_pct: keep the top this many percent by similarity (100: all).
    collection: only this collection code. where: a read-only SQL predicate over `pairs`.
    fractions: train, validation, test shares of the pairs. block_cells: a split block's side in
    0.01° cells (None: the largest of 10, 5, 2, 1 whose fullest block holds at most
    max_block_share of the pairs). shard_size: samples per tar shard. seed: the split draw.
    caption: each sample's .txt and the CSV's `caption` (a caption column or rewrite:MODEL;
    pairs without it are left out). layout: openclip ({split}.csv, paths to the database's
    images) or skyscript (the released SkyScript CSV names, images copied into images2 …
    images7: TorchGeo's SkyScript dataset loads it)."""

    out: str | Path | None = None  # a folder, or an fsspec URL (s3://bucket/export)
    top_pct: float = 100.0
    collection: str | None = None
    where: str | None = None
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    block_cells: int | None = None
    max_block_share: float = 0.02
    shard_size: int = 1000
    seed: int = 0
    webdataset: bool = True
    caption: str = "title"
    layout: str = "openclip"

    def __post_init__(self) -> None:
        check_caption(self.caption, "caption")
        if not 0 < self.top_pct <= 100:
            raise ExportError(f"top_pct must be in (0, 100], got {self.top_pct}")
        shares = self.fractions
        if len(shares) != 3 or min(shares) < 0 or abs(sum(shares) - 1) > 1e-9:
            raise ExportError(f"split fractions must be three shares summing to 1, got "
                              f"{self.fractions}")
        if (self.block_cells is not None and self.block_cells < 1) or self.shard_size < 1:
            raise ExportError("block_cells and shard_size must be at least 1")
        if self.layout not in ("openclip", "skyscript"):
            raise ExportError(f"layout must be openclip or skyscript, got {self.layout!r}")


@dataclass(frozen=True)
class IngestConfig:
    """Which part of the extracts to keep (QuackOSM's rules).

    clip: keep the objects whose geometry intersects this area, whole (a way crossing the edge
        keeps all its nodes): 'W,S,E,N' in degrees, WKT, GeoJSON (a geometry, Feature or
        FeatureCollection) or a file holding WKT or GeoJSON.
    tags_filter: QuackOSM's tag filter as JSON text, e.g. '{"building": true, "amenity":
        ["parking", "school"], "highway": false}': an object is kept when one of its tags matches
        a positive entry (true: any value; a value or a list of values) and none matches a
        negative one (false: the key with any value); '*' is a wildcard in keys and values.
        Kept objects keep all their tags.
    """

    clip: str | None = None
    tags_filter: str | None = None


DEFAULT_REWRITE_PROMPT = """\
Write one caption for an aerial image, the way a person describing the image would: one \
sentence, plain words, at most 40 words. Use only the facts below; do not invent names, \
colours, counts or sizes that are not given. Answer with the caption only.

Ground sample distance: {gsd} m per pixel.
Main object's OpenStreetMap tags: {tags}
What the image shows, by common names: {names}"""
REWRITE_PLACEHOLDERS = ("{tags}", "{names}", "{caption}", "{gsd}")


@dataclass(frozen=True)
class RewriteConfig:
    """endpoint: an OpenAI-compatible API's base URL (…/v1). model: the model to ask, also the
    name its rewrites are stored under. prompt: the template (placeholders {tags}, {names},
    {caption}, {gsd}). concurrency: requests in flight. limit: at most this many pairs this run.
    token_budget: stop sending once this many tokens were used (answers in flight are kept).
    max_tokens: per answer. attempts, backoff_s, timeout_s: per request. api_key_env: the
    environment variable holding the key (none needed for local servers)."""

    endpoint: str = ""
    model: str = ""
    prompt: str = DEFAULT_REWRITE_PROMPT
    concurrency: int = 4
    limit: int | None = None
    token_budget: int | None = None
    max_tokens: int = 120
    attempts: int = 5
    backoff_s: float = 1.0
    timeout_s: float = 60.0
    api_key_env: str = "OPENAI_API_KEY"

    def __post_init__(self) -> None:
        problems = []
        if not self.endpoint.startswith(("http://", "https://")):
            problems.append(f"endpoint must be an http(s) URL, got {self.endpoint!r}")
        if not self.model:
            problems.append("model must be named")
        if not any(p in self.prompt for p in REWRITE_PLACEHOLDERS):
            problems.append("the prompt has none of the placeholders "
                            + ", ".join(REWRITE_PLACEHOLDERS))
        if self.concurrency < 1 or self.attempts < 1 or self.max_tokens < 1:
            problems.append("concurrency, attempts and max_tokens must be at least 1")
        if self.limit is not None and self.limit < 0 or (self.token_budget or 0) < 0:
            problems.append("limit and token_budget must not be negative")
        if problems:
            raise ConfigError("rewrite: " + "; ".join(problems))


@dataclass(frozen=True)
class Options:
    """Everything one pipeline run is asked to do; each stage reads its own part.

    pbf: the extracts, paths or http(s) URLs (empty: the ones the database was built from, else
        the default extract); objects in several keep their newest version.
    ingest, fetch, embed, index, export, rewrite: the options of those stages.
    cluster: where fetch and embed run (here, or on Ray).
    benchmark_out: where the make_benchmark stage writes the benchmark folder.
    memory_limit: DuckDB's memory limit for the run (e.g. '512MB'); above it DuckDB spills to
        disk beside the database. None: DuckDB's default, 80 % of the machine's memory.
    """

    pbf: tuple[str, ...] = ()
    ingest: IngestConfig = IngestConfig()
    build: BuildConfig = BuildConfig()
    fetch: FetchConfig = FetchConfig()
    embed: EmbedConfig = EmbedConfig()
    cluster: ClusterConfig = ClusterConfig()
    index: IndexConfig = IndexConfig()
    export: ExportConfig = field(default_factory=ExportConfig)
    benchmark_out: Path | None = None
    rewrite: RewriteConfig | None = None
    memory_limit: str | None = None
