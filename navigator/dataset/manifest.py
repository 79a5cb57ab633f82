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
from navigator.dataset.errors import (DatasetNotFoundError, EditedManifestError, ManifestError,
                                      SchemaVersionError)
from navigator.dataset.schema import ACTION_CONVENTION, ENDINGS, FORMAT_NAME, SCHEMA_VERSION
from navigator.errors import refuse_if_denied
from navigator.json_fields import CHECKSUM_KEY, read_problem, with_checksum, without_checksum

MANIFEST_NAME = "manifest.json"
EPISODES_FOLDER = "episodes"
# What to do with a manifest that cannot be trusted: navigator writes it atomically, so it was edited or damaged.
RESTORE = "restore it from a copy of the dataset, or collect again into a new folder"


def show(value: Any) -> str:
    """A manifest value as its JSON text (`true`, `"yes"`, `-3`), the way the user sees it in the file, never as a
    Python repr."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)


# The manifest's field kinds (the annotations of the entry dataclasses, which are strings under `annotations`), in
# the user's words, with the Python type a JSON value of that kind parses to.
_KINDS: dict[str, tuple[str, type]] = {"str": ("a string", str), "int": ("an integer", int),
                                       "bool": ("true or false", bool)}


def fits(value: Any, kind: str) -> bool:
    """Whether a parsed JSON value is of the manifest field kind `kind` (true and false are not integers here)."""
    python_type = _KINDS[kind][1]
    return isinstance(value, python_type) and not (python_type is int and isinstance(value, bool))


def plain_file_name(value: Any) -> bool:
    """Whether a manifest's `file` names an .npz file directly inside the episodes folder (no path that could
    reach elsewhere)."""
    return isinstance(value, str) and "/" not in value and "\\" not in value and value.endswith(".npz")


def _field_problems(data: dict[str, Any], cls: type) -> list[str]:
    """Every problem of a manifest entry for dataclass `cls`: missing, mistyped or unknown fields, negative seeds,
    frame counts below one, an ending that is not one of ENDINGS, and a file that is not a plain .npz name."""
    problems = []
    for name, kind in cls.__annotations__.items():
        value = data.get(name)
        if name not in data:
            problems.append(f"{name} is missing")
        elif not fits(value, kind):
            problems.append(f"{name} must be {_KINDS[kind][0]} (got {show(value)})")
        elif name == "seed" and value < 0:
            problems.append(f"seed must be 0 or more (got {value})")
        elif name == "frames" and value < 1:
            problems.append(f"frames must be 1 or more (got {value})")
        elif name == "ending" and value not in ENDINGS:
            problems.append(f"ending {show(value)} is not one of {', '.join(ENDINGS)}")
        elif name == "file" and not plain_file_name(value):
            problems.append(f"file {show(value)} must be a plain .npz file name inside {EPISODES_FOLDER}/")
    problems += [f"unknown field {name}" for name in sorted(set(data) - set(cls.__annotations__))]
    return problems


def _entry_label(data: Any, index: int, section: str) -> str:
    """How a message names a manifest entry: by its file or key when they can be read, else by its position."""
    if isinstance(data, dict) and isinstance(data.get("file"), str):
        return f"episode entry {data['file']}"
    if isinstance(data, dict) and all(fits(data.get(k), kind) for k, kind in (("task", "str"), ("preset", "str"),
                                                                              ("seed", "int"))):
        word = "episode" if section == "episodes" else "dropped"
        return f"{word} entry {EpisodeKey(data['task'], data['preset'], data['seed'])}"
    return f"{section}[{index}]"


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
    # Written with its checksum (and `manifest_version` 2, which says it carries one). A manifest read without one,
    # written before checksums, is written back without: a checksum added then would vouch for edits made since.
    checksummed: bool = True

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
        """The manifest as JSON data, without its checksum (`write_manifest` adds it)."""
        return {"format": FORMAT_NAME, "schema_version": SCHEMA_VERSION,
                **({MANIFEST_VERSION_KEY: CHECKSUMMED_MANIFEST} if self.checksummed else {}),
                "image_height": self.image_height,
                "image_width": self.image_width, "action_convention": self.action_convention,
                "recipe": self.recipe, "episodes": [asdict(entry) for entry in self.episodes],
                "dropped": [asdict(entry) for entry in self.dropped]}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Manifest:
        """The manifest in `data` (parsed JSON), refusing another format or schema version, and any field-level
        problem: the error lists every one of them, not only the first."""
        require_format(data, where)
        problems = manifest_problems(data)
        if problems:
            raise ManifestError(f"{where}: " + "; ".join(problems))
        entries = (EpisodeEntry(**item) for item in data["episodes"])
        dropped = (DroppedEntry(**item) for item in data.get("dropped", []))
        return cls(data["image_height"], data["image_width"], data["action_convention"], data["recipe"],
                   tuple(sorted(entries, key=lambda e: e.key)), tuple(sorted(dropped, key=lambda e: e.key)),
                   checksummed=data.get(MANIFEST_VERSION_KEY) == CHECKSUMMED_MANIFEST)


# The manifest's own version beside the dataset's schema_version (which its episode files share): 2 says it carries
# its checksum, so one without was edited; manifests written before checksums have no such key.
MANIFEST_VERSION_KEY = "manifest_version"
CHECKSUMMED_MANIFEST = 2


def require_format(data: Any, where: str) -> None:
    """Refuse parsed JSON that is not a manifest of this format and schema version: nothing else in it can be
    judged then."""
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        found = show(data.get("format")) if isinstance(data, dict) else f"a JSON {type(data).__name__}"
        raise ManifestError(f"{where}: not a {FORMAT_NAME} manifest (its format is {found})")
    schema = data.get("schema_version")
    if not fits(schema, "int"):
        raise ManifestError(f"{where}: its schema_version must be a whole number, got {show(schema)}; restore the "
                            f"manifest from a copy of the dataset")
    if schema != SCHEMA_VERSION:
        raise SchemaVersionError(f"{where}: dataset schema version {show(schema)}, but this "
                                 f"software reads version {SCHEMA_VERSION}; use the software that wrote it, "
                                 f"or re-collect")
    version = data.get(MANIFEST_VERSION_KEY, 1)
    if not fits(version, "int"):
        raise ManifestError(f"{where}: its {MANIFEST_VERSION_KEY} must be a whole number, got {show(version)}; "
                            f"restore the manifest from a copy of the dataset")
    if version not in (1, CHECKSUMMED_MANIFEST):
        advice = ("a newer release wrote it; read it with that release" if version > CHECKSUMMED_MANIFEST
                  else "restore the manifest from a copy of the dataset")
        raise ManifestError(f"{where}: its {MANIFEST_VERSION_KEY} is {version}, and this software reads 1 or "
                            f"{CHECKSUMMED_MANIFEST}: {advice}")


def image_size_of(data: dict[str, Any]) -> tuple[int, int] | None:
    """The (height, width) a manifest states, or None when either is not a positive integer (reported by
    `manifest_problems`), so that episodes are not compared with a size that means nothing."""
    height, width = data.get("image_height"), data.get("image_width")
    if fits(height, "int") and fits(width, "int") and height > 0 and width > 0:
        return height, width
    return None


def manifest_problems(data: dict[str, Any]) -> list[str]:
    """Every field-level problem of a manifest whose format and schema version are right (`require_format`): the
    top-level fields, each episode and dropped entry, and keys or files listed twice. `data check` lists them all
    in one run; an empty list means `Manifest.from_dict` accepts it."""
    problems = []
    for name in ("image_height", "image_width"):
        value = data.get(name)
        if not fits(value, "int") or value < 1:
            what = "height" if name == "image_height" else "width"
            problems.append(f"{name} must be a positive integer, the camera image {what} in pixels (got "
                            f"{show(value)})")
    if not isinstance(data.get("action_convention"), str) or not data.get("action_convention"):
        problems.append(f"action_convention must be a non-empty string (got {show(data.get('action_convention'))})")
    if not isinstance(data.get("recipe"), dict):
        problems.append(f"recipe must be a mapping (got {show(data.get('recipe'))})")
    listed: dict[Any, str] = {}  # key or file -> the first entry that claimed it
    for section, cls in (("episodes", EpisodeEntry), ("dropped", DroppedEntry)):
        items = data.get(section, [] if section == "dropped" else None)
        if not isinstance(items, list):
            problems.append(f"{section} must be a list (got {show(items)})")
            continue
        for index, item in enumerate(items):
            label = _entry_label(item, index, section)
            if not isinstance(item, dict):
                problems.append(f"{label} must be a mapping (got {show(item)})")
                continue
            field_problems = _field_problems(item, cls)
            problems += [f"{label}: {problem}" for problem in field_problems]
            if field_problems:
                continue
            key = EpisodeKey(item["task"], item["preset"], item["seed"])
            for identity, shown in ((key, str(key)), (item.get("file"), f"file {item.get('file')}")):
                if identity is None:
                    continue
                if identity in listed:
                    problems.append(f"{listed[identity]} and {label} are both listed as {shown}; keep one")
                else:
                    listed[identity] = label
    return problems


def manifest_path(dataset: Path) -> Path:
    return Path(dataset) / MANIFEST_NAME


def require_dataset_folder(dataset: Path) -> None:
    """Refuse a path that is not a folder, saying whether it is missing or a file."""
    if dataset.is_dir():
        return
    if dataset.exists():
        hint = f" ({dataset.parent})" if dataset.name == MANIFEST_NAME else ""
        raise DatasetNotFoundError(f"{dataset}: is a file, not a dataset folder; give the folder that holds "
                                   f"{MANIFEST_NAME}{hint}")
    raise DatasetNotFoundError(f"{dataset}: no such dataset folder")


def load_manifest_data(dataset: Path, verify: bool = True) -> dict[str, Any]:
    """The parsed manifest.json of the dataset folder `dataset` (without its checksum), refusing a missing folder, a
    missing or unreadable manifest, and another format or schema version, each with a message naming the path. Its
    fields are not judged here (`manifest_problems`), so that `data check` can list every problem of a manifest that
    parses. One edited since navigator wrote it (it no longer matches its checksum) is refused unless `verify` is
    False (`data check`, which compares what it lists with the episode files): a policy trained on it would record
    seeds, presets and a recipe the episodes may not have, and a collection continued from it would follow a recipe
    the dataset was not collected with."""
    dataset = Path(dataset)
    require_dataset_folder(dataset)
    path = manifest_path(dataset)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: manifest is missing; {dataset} is not a dataset folder (or its collection "
                            f"never added an episode)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        refuse_if_denied(error)
        # navigator writes manifests atomically, so a damaged one was edited or hit by a disk fault.
        raise ManifestError(f"{path}: cannot be read ({read_problem(error)}); {RESTORE}") from None
    require_format(data, str(path))
    try:
        return without_checksum(data, required=data.get(MANIFEST_VERSION_KEY) == CHECKSUMMED_MANIFEST)
    except ValueError as error:  # its recipe or entries are no longer what the collection wrote
        if verify:
            raise EditedManifestError(f"{path}: {error}; {RESTORE} (`navigator data check {dataset}` lists what it "
                                      f"says that the episode files do not)", str(error)) from None
        return {key: value for key, value in data.items() if key != CHECKSUM_KEY}


def read_manifest(dataset: Path, verify: bool = True) -> Manifest:
    """The manifest of the dataset folder `dataset`; any problem with it is refused with a message naming the path
    and listing every problem found (`verify`: as `load_manifest_data`)."""
    return Manifest.from_dict(load_manifest_data(Path(dataset), verify), str(manifest_path(Path(dataset))))


def write_manifest(dataset: Path, manifest: Manifest) -> None:
    fields = manifest.to_dict()
    text = json.dumps(with_checksum(fields) if manifest.checksummed else fields, indent=1, sort_keys=True,
                      allow_nan=False) + "\n"
    atomic_write_bytes(manifest_path(dataset), text.encode("utf-8"))
