"""Deterministic stand-ins for the models, injected through `skyscript_db.models.Models`.

Texts become hashed bags of words, images their mean colours on a coarse grid: fast, seedless,
and still meaningful enough that an image's own vector is its nearest neighbour and texts that
share words are close.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from skyscript_db.models import ModelSpec, Models

DIM = 64


def _normalise(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms == 0, 1, norms)).astype(np.float32)


def text_vectors(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), DIM), np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().replace(",", " ").replace(";", " ").split():
            h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
            out[row, h % DIM] += 1.0 if (h >> 32) % 2 else -1.0
    out[:, 0] += 0.01  # no all-zero rows
    return _normalise(out)


@dataclass
class FakeEncoder:
    spec: ModelSpec
    dim: int = DIM
    input_px: int = 4

    def images(self, images: list) -> np.ndarray:
        rows = [np.asarray(image.convert("RGB").resize((4, 4)), np.float32).ravel()[:DIM]
                for image in images]
        padded = np.zeros((len(rows), DIM), np.float32)
        for i, row in enumerate(rows):
            padded[i, :len(row)] = row - row.mean() + 0.01
        return _normalise(padded)

    def texts(self, texts: list[str]) -> np.ndarray:
        return text_vectors(texts)


@dataclass
class FakeTextEncoder:
    encoder_id: str = f"fake/bag-of-words-{DIM}"

    def encode(self, texts: list[str]) -> np.ndarray:
        return text_vectors(texts)


FAKE_MODELS = Models(load_clip=lambda spec, device: FakeEncoder(spec),
                     load_text=lambda name, device: FakeTextEncoder())
