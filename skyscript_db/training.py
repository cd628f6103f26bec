"""SkyCLIP-style continual pre-training: OpenCLIP's own trainer (open_clip_train) on an export.

We only translate options and add the paper's augmentation: a random 90° rotation (0, 90, 180 or
270°, uniformly, drawn from torch's seeded generator) before the model's training transform.
Everything else (data loading, loss, schedule, checkpoints, logs) is open_clip_train's.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

from PIL import Image

from skyscript_db.errors import TrainError
from skyscript_db.models import TINY, torch_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """data: an export folder (its train.csv / validation.csv, or its WebDataset shards) or one
    CSV with `filepath` and caption columns. model/pretrained: as for `embed` (a pretrained tag
    or checkpoint continues training, SkyCLIP style; none trains from scratch)."""

    data: Path
    out: Path
    model: str = TINY
    pretrained: str | None = None
    caption: str = "title"
    epochs: int = 20
    batch_size: int = 64
    lr: float = 5e-4
    warmup: int = 100
    workers: int = 2
    seed: int = 0
    webdataset: bool = False
    rotate: bool = True
    device: str = "auto"


class Rotate90:
    """Rotate a PIL image by a uniformly drawn multiple of 90° (SkyScript's augmentation)."""

    TURNS = (None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180,
             Image.Transpose.ROTATE_270)

    def __call__(self, image: Image.Image) -> Image.Image:
        import torch

        turn = self.TURNS[int(torch.randint(4, ()).item())]
        return image if turn is None else image.transpose(turn)


def open_clip_args(config: TrainConfig) -> list[str]:
    """The open_clip_train command line for this config."""
    device = torch_device(config.device)
    args = ["--model", config.model, "--epochs", str(config.epochs),
            "--batch-size", str(config.batch_size), "--lr", str(config.lr),
            "--warmup", str(config.warmup), "--workers", str(config.workers),
            "--seed", str(config.seed), "--device", str(device),
            "--precision", "amp" if device.type == "cuda" else "fp32",
            "--logs", str(config.out.parent), "--name", config.out.name,
            "--save-frequency", "1", "--log-every-n-steps", "10", "--report-to", ""]
    if config.pretrained:
        args += ["--pretrained", config.pretrained]
    return args + _data_args(config)


def _data_args(config: TrainConfig) -> list[str]:
    data = config.data
    if config.webdataset:
        shards = sorted((data / "webdataset" / "train").glob("train-*.tar"))
        if not shards:
            raise TrainError(f"{data}: no WebDataset shards under webdataset/train; run "
                             "`skyscript-db export` with WebDataset output")
        n = sum(1 for _ in _csv_rows(data / "train.csv"))
        pattern = str(shards[0].parent / f"train-{{000000..{len(shards) - 1:06d}}}.tar")
        return ["--dataset-type", "webdataset", "--train-data", pattern,
                "--train-num-samples", str(n)]
    train = data / "train.csv" if data.is_dir() else data
    if not train.exists():
        raise TrainError(f"{data}: no train.csv; give an export folder or a CSV file")
    if sum(1 for _ in _csv_rows(train)) < config.batch_size:
        raise TrainError(f"{train}: fewer training pairs than one batch ({config.batch_size}); "
                         "lower --batch-size")
    args = ["--dataset-type", "csv", "--csv-separator", ",", "--csv-img-key", "filepath",
            "--csv-caption-key", config.caption, "--train-data", str(train)]
    validation = train.with_name("validation.csv")
    if data.is_dir() and validation.exists() and any(_csv_rows(validation)):
        args += ["--val-data", str(validation)]
    return args


def _csv_rows(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as f:
        next(f, None)
        yield from (line for line in f if line.strip())


def train(config: TrainConfig) -> Path:
    """Run open_clip_train; returns the last epoch's checkpoint."""
    import open_clip
    from open_clip_train import main as open_clip_main

    if config.out.exists():
        raise TrainError(f"{config.out} exists: choose a new --out for a new run")
    open_clip.add_model_config(str(resources.files("skyscript_db").joinpath("model_configs")))
    args = open_clip_args(config)
    log.info("open_clip_train %s", " ".join(args))
    with _rotations(open_clip_main, config.rotate):
        status = open_clip_main.main(args)
    checkpoint = config.out / "checkpoints" / f"epoch_{config.epochs}.pt"
    if status not in (None, 0) or not checkpoint.exists():
        raise TrainError(f"open_clip_train stopped (status {status}); see {config.out}/out.log")
    return checkpoint


@contextmanager
def _rotations(open_clip_main: Any, rotate: bool) -> Iterator[None]:
    """Put Rotate90 in front of the training transform that open_clip_train builds."""
    if not rotate:
        yield
        return
    from torchvision.transforms import Compose

    create = open_clip_main.create_model_and_transforms

    def with_rotations(*args: Any, **kwargs: Any) -> tuple:
        model, preprocess_train, preprocess_val = create(*args, **kwargs)
        return model, Compose([Rotate90(), preprocess_train]), preprocess_val

    with mock.patch.object(open_clip_main, "create_model_and_transforms", with_rotations):
        yield

