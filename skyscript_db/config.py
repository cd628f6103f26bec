"""Build parameters: one typed, validated place for every knob of the SQL stages."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from skyscript_db.errors import SkyscriptError


class ConfigError(SkyscriptError):
    """A build parameter is out of range."""


@dataclass(frozen=True)
class BuildConfig:
    """Parameters of the stages after ingest.

    seed: the build seed; each stage draws from its own seed derived from it and the stage name,
        so changing one stage's parameters does not reshuffle another's draws.
    n_cells: grid cells to draw; None draws ceil(fraction * occupied cells).
    fraction: share of occupied cells to draw when n_cells is None.
    rare_threshold: a visible tag with fewer selected objects than this is targeted.
    rare_cap: at most this many objects are added per targeted tag.
    max_surrounding: surrounding objects named in a multi-object caption.
    imagery: 'catalog' (the Earth Engine collections of the method) or 'render' (SYNTHETIC
        stand-ins drawn from OSM, for offline builds); registered local and STAC imagery is
        used either way.
    benchmark_classes: classes of the held-out benchmark set (0: none).
    benchmark_per_class: objects drawn per benchmark class (a class needs at least this many).
    tag_encoder: the text encoder of the tag classifier: 'minilm' (offline, the default) or
        'open_clip:MODEL[:PRETRAINED]' (a CLIP text tower, as in the paper).
    """

    seed: int = 0
    n_cells: int | None = None
    fraction: float = 0.25
    rare_threshold: int = 20
    rare_cap: int = 200
    max_surrounding: int = 10
    imagery: str = "catalog"
    tag_encoder: str = "minilm"
    benchmark_classes: int = 0
    benchmark_per_class: int = 100

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

    def as_dict(self) -> dict:
        return asdict(self)
