"""A dataset of the first episodes of another: what lets a learning curve train on 5, 10, 20 demonstrations that are
the start of one collection, so that each larger set contains every smaller one.

The prefix is a dataset of its own (a manifest, episode files), so that training, its fingerprint on resume and the
checkpoint's training seeds treat it as any other. Its episode files are hard links to the source's (a copy, written
atomically, where the file system cannot link); each is added through the dataset writer, which checks its sha256
against the source's manifest entry. Making a prefix again continues it: episodes already in it are kept.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from navigator.dataset import Dataset
from navigator.dataset.atomic import atomic_write_bytes
from navigator.dataset.manifest import EPISODES_FOLDER, manifest_path
from navigator.dataset.writer import DatasetWriter
from navigator.errors import UserError


def first_episodes(source: Dataset, count: int) -> list:
    """The `count` episodes of `source` with the lowest world seeds (every task and preset), in seed order."""
    entries = sorted(source.entries, key=lambda entry: (entry.seed, entry.task, entry.preset))
    if len(entries) < count:
        raise UserError(f"{source.path} holds {len(entries)} episodes, fewer than the {count} asked for; collect "
                        f"more into it (navigator collect --out {shlex.quote(str(source.path))} --resume)")
    return entries[:count]


def make_prefix(source: Path, count: int, out: Path) -> Path:
    """The dataset `out` of the first `count` episodes of the dataset `source` (made, or completed); returns `out`."""
    dataset = Dataset.open(source)
    wanted = first_episodes(dataset, count)
    recipe = dict(dataset.manifest.recipe)
    parts = recipe.get("parts")
    if isinstance(parts, list) and len(parts) == 1 and isinstance(parts[0], dict):  # says how many it holds
        recipe["parts"] = [{**parts[0], "episodes": count}]
    recipe["prefix_of"] = {"dataset": str(source), "episodes": count}
    if manifest_path(out).exists():
        writer = DatasetWriter.open(out)
    else:
        writer = DatasetWriter.create(out, image_size=dataset.manifest.image_size, recipe=recipe,
                                      action_convention=dataset.manifest.action_convention)
    done = writer.completed()
    for entry in wanted:
        if entry.key in done:
            continue
        target = out / EPISODES_FOLDER / entry.file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)  # a link or copy left by an interrupted run: made again, then checked
        try:
            os.link(dataset.episode_path(entry), target)
        except OSError:  # another file system, or one without hard links
            atomic_write_bytes(target, dataset.episode_path(entry).read_bytes())
        writer.add(entry)
    return out
