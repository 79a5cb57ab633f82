"""The record of a training run, OUT/run.json: its name, format and reader. Torch-free, so that a command continuing
a run reads (and refuses) it before the training pipeline, and torch, are imported.

run.json holds the full recipe the run started with (`config`), the version of the augmentation its windows were
drawn with (`augment_version`, navigator.training.augment; 1 when missing), the extensions asked for since
(`extensions`), a fingerprint of every dataset a stage trained on (`datasets`) and how many processes each start and
continuation trained with (`world_sizes`); navigator.training.pipeline writes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from navigator.errors import UserError, refuse_if_denied
from navigator.json_fields import read_problem
from navigator.output_folders import refuse_wrong_kinds
from navigator.resume import continuable_record, require_record_format

RUN_RECORD = "run.json"
RUN_FORMAT = "liquid-navigator/training-run"
RUN_VERSION = 2  # 2: with its checksum (navigator.json_fields); 1, written before checksums, is still read

# The fields of run.json this module reads (navigator.json_fields), checked before any is used or rewritten. Records
# written before dataset fingerprints, world sizes and augmentation versions existed lack those.
RUN_FIELDS = (("config", "mapping"), ("augment_version", "optional positive integer"), ("extensions", "list"),
              ("datasets", "optional mapping"),
              *((f"datasets.{section}", "optional mapping") for section in ("data", "dagger")),
              *((f"datasets.{section}{{}}", "mapping") for section in ("data", "dagger")),
              *((f"datasets.{section}{{}}.episodes", "non-negative integer") for section in ("data", "dagger")),
              *((f"datasets.{section}{{}}.sha256", "text") for section in ("data", "dagger")),
              ("world_sizes", "optional list"), ("world_sizes[]", "positive integer"))


def read_record(out: Path) -> dict[str, Any]:
    """The run record (run.json) of the training run in `out`, without its checksum; UserError saying what is wrong
    with a damaged one (or one edited since it was written: it no longer matches its checksum)."""
    path = out / RUN_RECORD
    refuse_wrong_kinds(out, "training run")
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        refuse_if_denied(error)
        raise UserError(f"{path} cannot be read ({read_problem(error)}): the run's record is damaged, so it cannot be "
                        f"continued; start the run over in another --out") from None
    start_over = "start the run over in another --out"
    version = require_record_format(record, path, RUN_FORMAT, (1, RUN_VERSION), start_over, "training run record")
    return continuable_record(record, RUN_FIELDS, path, "run", start_over, checksummed=version >= 2)


def finished(out: Path, dagger_rounds: int) -> bool:
    """Whether the training run in `out` finished: its progress.json lists its training and its `dagger_rounds`
    DAgger rounds (the pipeline's stages "train", "dagger-1", ...) as completed."""
    try:
        progress = json.loads((out / "progress.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        refuse_if_denied(error)
        return False
    stages = {"train", *(f"dagger-{r}" for r in range(1, dagger_rounds + 1))}
    return isinstance(progress, dict) and stages <= set(progress.get("completed") or [])
