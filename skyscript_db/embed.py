"""The one model factory: any open_clip model, loaded the standard ways, plus a tiny seeded one.

`ModelSpec.name` is an open_clip model name (`ViT-L-14`), an `hf-hub:org/repo` id or a
`local-dir:PATH` holding `open_clip_config.json` (and weights); `pretrained` is a pretrained tag
(`openai`) or a local checkpoint file. Without weights the model is randomly initialised from
`seed`, and everything made with it is marked untrained. `skyscript-tiny` (model_configs/) is the
tiny architecture the tests and the offline default build use; nothing is ever downloaded unless
the spec asks for a hub or a pretrained tag.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pyarrow as pa

log = logging.getLogger(__name__)

TINY = "skyscript-tiny"


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


@dataclass
class Encoder:
    """A loaded model: L2-normalised float32 embeddings of images and texts."""

    spec: ModelSpec
    model: Any
    preprocess: Any
    tokenizer: Any

    def images(self, images: list) -> np.ndarray:
        import torch

        batch = torch.stack([self.preprocess(image) for image in images])
        with torch.inference_mode():
            return _normalise(self.model.encode_image(batch))

    def texts(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return _normalise(self.model.encode_text(self.tokenizer(texts)))

    @property
    def dim(self) -> int:
        return int(self.texts(["x"]).shape[1])


def vector_lists(vectors: np.ndarray) -> pa.Array:
    """Rows of a float matrix as an Arrow list<float32> column (DuckDB FLOAT[])."""
    flat = pa.array(vectors.astype(np.float32).ravel(), pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]).cast(pa.list_(pa.float32()))


def _normalise(tensor: Any) -> np.ndarray:
    array = tensor.float().numpy()
    return (array / np.linalg.norm(array, axis=1, keepdims=True)).astype(np.float32)


@cache
def load_encoder(spec: ModelSpec) -> Encoder:
    """Build the model on the CPU with all cores (or the GPU when CUDA is there), in eval mode."""
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
    return Encoder(spec, model, preprocess, open_clip.get_tokenizer(spec.name))
