"""manifest.json: what a dataset is (format, schema version, image size, action convention, the recipe that made it)
and which episodes are complete, each with its checksum. Only one process ever writes it (see writer.py), always by
atomic replacement, so a reader sees either the previous or the next consistent manifest."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from navigator.dataset.atomic import atomic_write_bytes
from navigator.dataset.episode import EpisodeKey
from navigator.dataset.errors import DatasetNotFoundError, ManifestError, SchemaVersionError
from navigator.dataset.schema import ACTION_CONVENTION, ENDINGS, FORMAT_NAME, SCHEMA_VERSION

MANIFEST_NAME = "manifest.json"
EPISODES_FOLDER = "episodes"


def _field_problems(data: dict[str, Any], cls: type) -> list[str]:
    """What is wrong with a manifest entry for dataclass `cls`: field types (bool is not an int here), unknown
    fields, and an ending that is not one of ENDINGS."""
    expected = {name: kind for name, kind in cls.__annotations__.items()}
    types = {"str": str, "int": int, "bool": bool}
    problems = [f"{name} must be {kind} (got {data.get(name)!r})" for name, kind in expected.items()
                if not isinstance(data.get(name), types[kind]) or (kind == "int" and isinstance(data.get(name), bool))]
    problems += [f"unknown field {name}" for name in sorted(set(data) - set(expected))]
    if not problems and data["ending"] not in ENDINGS:
        problems.append(f"ending {data['ending']!r} is not one of {', '.join(ENDINGS)}")
    return problems


@dataclass(frozen=True)
class EpisodeEntry:
    """The manifest's record of one complete episode file (paths are relative to the episodes folder)."""

    file: str
    sha256: str
    frames: int
    task: str
    preset: str
    seed: int
    success: bool
    ending: str

    @property
    def key(self) -> EpisodeKey:
        return EpisodeKey(self.task, self.preset, self.seed)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> EpisodeEntry:
        if not isinstance(data, dict):
            raise ManifestError(f"{where}: an episode entry must be a mapping, got {data!r}")
        problems = _field_problems(data, cls)
        if not problems and ("/" in data["file"] or "\\" in data["file"] or not data["file"].endswith(".npz")):
            problems.append(f"file {data['file']!r} must be a plain .npz file name inside {EPISODES_FOLDER}/")
        if problems:
            raise ManifestError(f"{where}: episode entry {data.get('file', '?')}: " + "; ".join(problems))
        return cls(**data)


@dataclass(frozen=True)
class DroppedEntry:
    """An episode that was flown but not kept (collection with failed episodes dropped): recorded so that the
    dataset's success rate stays honest and a resumed collection does not fly it again."""

    task: str
    preset: str
    seed: int
    ending: str
    frames: int

    @property
    def key(self) -> EpisodeKey:
        return EpisodeKey(self.task, self.preset, self.seed)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> DroppedEntry:
        if not isinstance(data, dict):
            raise ManifestError(f"{where}: a dropped entry must be a mapping, got {data!r}")
        problems = _field_problems(data, cls)
        if problems:
            raise ManifestError(f"{where}: dropped entry {data.get('task', '?')} seed {data.get('seed', '?')}: "
                                + "; ".join(problems))
        return cls(**data)


@dataclass(frozen=True)
class Manifest:
    """A dataset's manifest. Episodes are kept sorted by key, so the file does not depend on which parallel worker
    finished first."""

    image_height: int
    image_width: int
    action_convention: str = ACTION_CONVENTION
    recipe: dict[str, Any] = field(default_factory=dict)
    episodes: tuple[EpisodeEntry, ...] = ()
    dropped: tuple[DroppedEntry, ...] = ()

    @property
    def image_size(self) -> tuple[int, int]:
        return self.image_height, self.image_width

    def with_entry(self, entry: EpisodeEntry) -> Manifest:
        """This manifest with `entry` added (replacing an entry with the same key)."""
        kept = [e for e in self.episodes if e.key != entry.key]
        return replace(self, episodes=tuple(sorted([*kept, entry], key=lambda e: e.key)))

    def with_dropped(self, entry: DroppedEntry) -> Manifest:
        kept = [e for e in self.dropped if e.key != entry.key]
        return replace(self, dropped=tuple(sorted([*kept, entry], key=lambda e: e.key)))

    def seed_ranges(self) -> list[dict[str, Any]]:
        """The world seeds this dataset's episodes (stored and dropped) were flown on, per task, as runs of
        consecutive seeds: `[{"task", "first", "count"}]`. Checkpoints record them, so that an evaluation can refuse
        the worlds a policy was trained on."""
        by_task: dict[str, set[int]] = {}
        for entry in (*self.episodes, *self.dropped):
            by_task.setdefault(entry.task, set()).add(entry.seed)
        ranges = []
        for task, seeds in sorted(by_task.items()):
            ordered = sorted(seeds)
            firsts = [s for i, s in enumerate(ordered) if i == 0 or ordered[i - 1] != s - 1]
            lasts = [s for i, s in enumerate(ordered) if i == len(ordered) - 1 or ordered[i + 1] != s + 1]
            ranges += [{"task": task, "first": first, "count": last - first + 1} for first, last in zip(firsts, lasts)]
        return ranges

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT_NAME, "schema_version": SCHEMA_VERSION, "image_height": self.image_height,
                "image_width": self.image_width, "action_convention": self.action_convention,
                "recipe": self.recipe, "episodes": [asdict(entry) for entry in self.episodes],
                "dropped": [asdict(entry) for entry in self.dropped]}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Manifest:
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ManifestError(f"{where}: not a {FORMAT_NAME} manifest (format is {found!r})")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise SchemaVersionError(f"{where}: dataset schema version {data.get('schema_version')!r}, but this "
                                     f"software reads version {SCHEMA_VERSION}; use the software that wrote it, "
                                     f"or re-collect")
        for name, kind in (("image_height", int), ("image_width", int), ("action_convention", str),
                           ("recipe", dict), ("episodes", list)):
            if not isinstance(data.get(name), kind):
                raise ManifestError(f"{where}: {name} must be {kind.__name__} (got {data.get(name)!r})")
        entries = tuple(EpisodeEntry.from_dict(item, where) for item in data["episodes"])
        seen: dict[Any, str] = {}
        for entry in entries:
            for identity in (entry.key, entry.file):
                if identity in seen:
                    raise ManifestError(f"{where}: episodes {seen[identity]} and {entry.file} are both listed as "
                                        f"{identity}")
                seen[identity] = entry.file
        if not isinstance(data.get("dropped", []), list):
            raise ManifestError(f"{where}: dropped must be list (got {data.get('dropped')!r})")
        dropped = tuple(DroppedEntry.from_dict(item, where) for item in data.get("dropped", []))
        return cls(data["image_height"], data["image_width"], data["action_convention"], data["recipe"],
                   tuple(sorted(entries, key=lambda e: e.key)), tuple(sorted(dropped, key=lambda e: e.key)))


def manifest_path(dataset: Path) -> Path:
    return Path(dataset) / MANIFEST_NAME


def read_manifest(dataset: Path) -> Manifest:
    """The manifest of the dataset folder `dataset`, refusing a missing folder, a missing or damaged manifest and
    another schema version, each with a message naming the path."""
    dataset = Path(dataset)
    if not dataset.is_dir():
        raise DatasetNotFoundError(f"{dataset}: no such dataset folder")
    path = manifest_path(dataset)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{path}: manifest is missing; {dataset} is not a dataset folder (or its collection "
                            f"never added an episode)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError(f"{path}: cannot be read ({error})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ManifestError(f"{path}: not valid JSON ({error})") from None
    return Manifest.from_dict(data, str(path))


def write_manifest(dataset: Path, manifest: Manifest) -> None:
    text = json.dumps(manifest.to_dict(), indent=1, sort_keys=True, allow_nan=False) + "\n"
    atomic_write_bytes(manifest_path(dataset), text.encode("utf-8"))
