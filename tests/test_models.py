"""The model factory: vectors come back to the CPU as unit float32 rows whichever device the model
sits on; the real open_clip path on the CPU here, on CUDA where there is one (marked `gpu`);
device names and misplaced models are refused with one clear error."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from PIL import Image

from skyscript_db.errors import ConfigError, SkyscriptError
from skyscript_db.models import (ClipEncoder, Models, ModelSpec, autocast, load_encoder,
                                 load_text_encoder, torch_device)

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


def test_device_names_resolve_or_are_refused_before_any_model_loads():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert torch_device("auto").type == expected and torch_device("cpu").type == "cpu"
    assert isinstance(autocast(torch.device("cpu")), contextlib.nullcontext)
    for bad in ("gpu", "cuda:x", "CPU"):
        with pytest.raises(ConfigError, match=f"device '{bad}': use auto, cpu, cuda or cuda:N"):
            Models(bad)
        with pytest.raises(ConfigError, match="use auto, cpu"):
            load_text_encoder("minilm", bad)
    with pytest.raises(ConfigError, match=r"device 'cuda:99': torch sees \d+ CUDA"):
        load_encoder(ModelSpec(seed=3), "cuda:99")


def test_a_model_not_whole_on_one_real_device_is_refused_with_a_clear_error():
    encoder = load_encoder.__wrapped__(ModelSpec(seed=2), "cpu")
    split = ClipEncoder(encoder.spec, encoder.model, encoder.preprocess, encoder.tokenizer)
    split.model.visual.to("meta")  # the image tower without weights, the text tower on the CPU
    with pytest.raises(SkyscriptError, match=r"weights are on cpu, meta; a model must sit "
                                             r"whole on one real device"):
        split.texts(TEXTS)
    split.model.to("meta")
    with pytest.raises(SkyscriptError, match="weights are on meta;"):
        split.images(IMAGES)


@pytest.mark.gpu
def test_model_on_cuda_takes_cpu_inputs_and_gives_the_cpu_vectors():
    cpu = load_encoder.__wrapped__(ModelSpec(seed=1), "cpu")
    cuda = load_encoder.__wrapped__(ModelSpec(seed=1), "cuda")
    assert cuda.device.type == "cuda" and torch_device("auto").type == "cuda"
    check(cuda.images(IMAGES), 3)
    # half-precision autocast: the same directions, to a cosine of 0.999
    for ours, reference in ((cuda.texts(TEXTS), cpu.texts(TEXTS)),
                            (cuda.images(IMAGES), cpu.images(IMAGES))):
        assert (ours * reference).sum(axis=1).min() > 0.999
