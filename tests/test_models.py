"""The model factory: vectors come back to the CPU as unit float32 rows whichever device the model
sits on; the real open_clip path on the CPU here, on CUDA where there is one (marked `gpu`)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from skyscript_db.models import ClipEncoder, ModelSpec, load_encoder

IMAGES = [Image.new("RGB", (80, 60), colour) for colour in ("red", "navy", "olive")]
TEXTS = ["road of footway", "building yes", "natural water"]


def check(vectors: np.ndarray, rows: int) -> None:
    assert isinstance(vectors, np.ndarray) and vectors.dtype == np.float32
    assert vectors.shape == (rows, 64) and np.allclose(np.linalg.norm(vectors, axis=1), 1)


def test_tiny_model_on_the_cpu_is_seeded_and_returns_unit_numpy_rows():
    encoder = load_encoder(ModelSpec(seed=3))
    assert str(encoder.device) == "cpu" and encoder.dim == 64
    check(encoder.images(IMAGES), 3)
    check(encoder.texts(TEXTS), 3)
    again = load_encoder.__wrapped__(ModelSpec(seed=3))  # a fresh model from the same seed
    np.testing.assert_allclose(again.texts(TEXTS), encoder.texts(TEXTS), atol=1e-6)


@pytest.mark.gpu
def test_model_on_cuda_takes_cpu_inputs_and_gives_the_cpu_vectors():
    cpu = load_encoder.__wrapped__(ModelSpec(seed=1))
    cuda = ClipEncoder(cpu.spec, load_encoder.__wrapped__(ModelSpec(seed=1)).model.to("cuda"),
                       cpu.preprocess, cpu.tokenizer)
    assert cuda.device.type == "cuda"
    check(cuda.images(IMAGES), 3)
    np.testing.assert_allclose(cuda.texts(TEXTS), cpu.texts(TEXTS), atol=1e-4)
    np.testing.assert_allclose(cuda.images(IMAGES), cpu.images(IMAGES), atol=1e-4)
