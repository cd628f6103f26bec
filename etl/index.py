"""Stage index: FAISS indexes over the image and caption (title) embeddings of one model.

Exact inner-product search (IndexFlatIP) below `exact_below` vectors; above, an IVF index with
about 4·√n lists whose nprobe is tuned on a sample of the vectors themselves until recall@10
against exact search reaches `target_recall`. Saved in `<db stem>_index/` beside the database
with manifest.json (model id, kind, nprobe, and the checksum of the embeddings it was built from);
readers (skyscript_db/vector_index.py) refuse an index whose manifest does not match the database.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from skyscript_db import queries
from skyscript_db.config import IndexConfig, Options
from skyscript_db.db import has_table
from skyscript_db.errors import DatabaseError
from skyscript_db.etl.stage import Context, StageResult, fingerprint
from skyscript_db.vector_index import KINDS, MANIFEST, SQL, checksum, current_model, read_manifest

log = logging.getLogger(__name__)
STAGE = "index"


@dataclass(frozen=True)
class IndexStage:
    """Writes files, not tables; the manifest goes last, so a half-written index is never seen
    as complete."""

    name: str = STAGE
    upstream: tuple[str, ...] = ("embed",)
    transactional: bool = False

    def fingerprint(self, ctx: Context, options: Options) -> str:
        """The options, the vectors it indexes now, and what the manifest on disk says it was
        built from (a deleted or replaced index folder makes the stage stale)."""
        manifest = read_manifest(ctx.paths) or {}
        model_id = current_model(ctx.con)["model_id"] if has_table(ctx.con, "pair_settings") \
            else None
        vectors = checksum(ctx.con, model_id) if model_id else None
        return fingerprint(asdict(options.index), vectors, manifest.get("model_id"),
                           manifest.get("checksum"))

    def run(self, ctx: Context, options: Options) -> StageResult:
        """Build both indexes for the current model and write them with their manifest."""
        con, config, out = ctx.con, options.index, ctx.paths.index
        model_id = current_model(con)["model_id"]
        started = time.perf_counter()
        rows = queries.load(SQL)["vectors"].run(con, model_id=model_id).fetchall()
        if not rows:
            raise DatabaseError(f"{ctx.paths.db}: no embeddings for {model_id}: run "
                                "`skyscript-db embed`")
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        out.mkdir(parents=True, exist_ok=True)
        manifest: dict[str, Any] = {"model_id": model_id, "checksum": checksum(con, model_id),
                                    "n": len(ids), "config": asdict(config), "indexes": {}}
        import faiss  # here, not at the top: 0.03 s that every command would pay

        for column, kind in enumerate(KINDS, start=1):
            vectors = np.array([r[column] for r in rows], dtype=np.float32)
            index, nprobe = make_index(vectors, ids, config)
            faiss.write_index(index, str(out / f"{kind}.faiss.partial"))
            os.replace(out / f"{kind}.faiss.partial", out / f"{kind}.faiss")
            manifest["indexes"][kind] = {"file": f"{kind}.faiss", "type": type(index).__name__,
                                         "dim": int(vectors.shape[1]), "nprobe": nprobe}
        manifest["seconds"] = round(time.perf_counter() - started, 3)
        (out / f"{MANIFEST}.partial").write_text(json.dumps(manifest, indent=2))
        os.replace(out / f"{MANIFEST}.partial", out / MANIFEST)  # last: marks it complete
        log.info("index %s: %d vectors, %s, %.1f s", model_id, len(ids),
                 {k: v["type"] for k, v in manifest["indexes"].items()}, manifest["seconds"])
        return StageResult(len(ids), len(ids), info=manifest)


def make_index(vectors: np.ndarray, ids: np.ndarray, config: IndexConfig) -> tuple[Any, int]:
    """Exact for small collections; IVF with nprobe tuned to the recall target above that."""
    import faiss

    n, dim = vectors.shape
    if n < config.exact_below:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        index.add_with_ids(vectors, ids)
        return index, 0
    nlist = int(min(65536, max(16, 2 ** round(math.log2(4 * math.sqrt(n))))))
    rng = np.random.default_rng(config.seed)
    train = vectors[rng.choice(n, size=min(n, 64 * nlist), replace=False)]
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = config.seed
    index.train(train)
    for start in range(0, n, 100_000):
        index.add_with_ids(vectors[start:start + 100_000], ids[start:start + 100_000])
    index.nprobe = tune_nprobe(index, vectors, ids, config)
    return index, index.nprobe


def tune_nprobe(index: Any, vectors: np.ndarray, ids: np.ndarray, config: IndexConfig,
                k: int = 10, sample: int = 200) -> int:
    """The smallest power-of-two nprobe whose recall@k on `sample` data vectors (as queries)
    against exact search reaches the target."""
    import faiss

    rng = np.random.default_rng(config.seed + 1)
    queries_ = vectors[rng.choice(len(vectors), size=min(sample, len(vectors)), replace=False)]
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, rows = exact.search(queries_, k)
    truth = ids[rows]
    nprobe = 1
    while nprobe < index.nlist:
        index.nprobe = nprobe
        _, found = index.search(queries_, k)
        if recall(found, truth) >= config.target_recall:
            break
        nprobe *= 2
    return min(nprobe, index.nlist)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the true top-k found, averaged over queries (ids or row numbers alike)."""
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))
