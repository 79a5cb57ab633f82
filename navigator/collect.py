"""Recording expert demonstrations into a dataset, in parallel worker processes.

Each episode is identified by (task, preset, seed) and is deterministic given that key, so any number of workers
produce the same dataset, and a resumed collection flies exactly the episodes still missing. Local workers write
episode files (atomically); Ray workers, which may run on machines that do not share the dataset folder, return each
file's bytes through Ray's object store and this process writes them (atomically, the same bytes). Only this parent
process touches the manifest.

Recovery data (DART): the executed action is the expert's label plus temporally correlated noise, so the vehicle
drifts off the expert's path and the labels show how to come back; the label stays the expert's clean action.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from navigator import __version__
from navigator.backends import LOCAL, Backend, Cluster, run_jobs
from navigator.config import (MAX_EPISODES, MAX_SEED, ConfigError, SettingError, check_seed_span, check_settings,
                              from_dict, setting, to_dict, without_yaml_advice)
from navigator.dataset import (ACTION_CONVENTION, DatasetWriter, DroppedEntry, Episode, EpisodeEntry, EpisodeKey,
                               Verification, write_episode)
from navigator.dataset.writer import pack_episode
from navigator.errors import UserError, counted
from navigator.resume import Continued, Difference, GivenAs, check_continuation, differences, nothing_to_continue
from navigator.workers import MAX_WORKERS, local_workers
from navigator.scenario import (CameraSettings, ScenarioConfig, canonical_airframe, canonical_pilot, canonical_preset,
                                canonical_task, check_time_limit, set_canonical, time_limit_setting)


@dataclass(frozen=True)
class CollectPart:
    task: str = "fly-to-target"
    preset: str = "summer"
    episodes: int = setting(10, ge=1, le=MAX_EPISODES)

    def __post_init__(self) -> None:
        check_settings(self)
        set_canonical(self, "task", canonical_task)
        set_canonical(self, "preset", canonical_preset)


@dataclass(frozen=True)
class CollectConfig:
    # The command's flags that no file sets (config.from_dict names them for a file that tries).
    COMMAND_LINE_ONLY: ClassVar[dict[str, str]] = {"out": "--out", "resume": "--resume", "extend": "--extend"}
    parts: tuple[CollectPart, ...] = (CollectPart(),)
    airframe: str = "x500"
    camera: CameraSettings = field(default_factory=CameraSettings)
    max_seconds: float | None = time_limit_setting()  # None: the task's own limit
    seed: int = setting(0, ge=0, le=MAX_SEED)  # episode i of each part uses seed + i
    # std of the noise on executed actions, in normalised action units: actions lie in [-1, 1], so a std above 1
    # would drown the expert's action (every executed action clipped to a bound) and teach nothing.
    dart_noise: float = setting(0.1, ge=0.0, le=1.0)
    dart_time_constant: float = setting(0.5, gt=0.0)  # seconds: the noise is an Ornstein-Uhlenbeck process
    # Share of the noise kept within CorrelatedNoise.FADE_END of the target, where the task asks the vehicle to hold
    # still. 0 fades it out over the last metres. Above 0, demonstrations also show the expert recovering from drift
    # at the target (into it, past it), the drift wind gives a policy there.
    dart_near_target: float = setting(0.0, ge=0.0, le=1.0)
    keep_failed: bool = True  # False: failed episodes are not stored, only marked in the manifest
    workers: int = setting(0, ge=0, le=MAX_WORKERS)  # 0: one per CPU core (of this machine, or of the Ray cluster)
    backend: Backend = field(default_factory=Backend)  # where episodes fly: local processes or a Ray cluster
    # Who flies, as `--pilot` means everywhere: "expert" (demonstrations, with DART noise), or a trained policy (a
    # checkpoint path) that flies while the expert labels every frame it sees: DAgger's data. The expert always labels.
    pilot: str = "expert"

    def __post_init__(self) -> None:
        check_settings(self)
        check_time_limit(self.max_seconds, self.camera)
        if not self.parts:
            raise SettingError("parts", "must hold at least one part (task, preset, episodes)")
        pairs = [(part.task, part.preset) for part in self.parts]
        duplicates = sorted({pair for pair in pairs if pairs.count(pair) > 1})
        if duplicates:
            repeated = ", ".join(f"{task} in {preset}" for task, preset in duplicates)
            raise SettingError("parts", f"give {repeated} in more than one part: merge them into one")
        for index, part in enumerate(self.parts):
            check_seed_span(self.seed, part.episodes, "seed", f"parts[{index}].episodes")
        planned = sum(part.episodes for part in self.parts)
        if planned > MAX_EPISODES:
            raise SettingError("parts", f"plan {planned:,} episodes in all, past the {MAX_EPISODES:,} one collection "
                                        f"may plan; give fewer episodes, or collect the parts into datasets of their "
                                        f"own")
        set_canonical(self, "airframe", canonical_airframe)
        set_canonical(self, "pilot", canonical_pilot)

    def unread(self, given: set[str]) -> list[SettingError]:
        """Of the settings `given` (other than their defaults), the DART ones this collection does not read
        (config.unread_problems): a policy's roll-outs carry no noise (the expert only labels them; `dart_noise: 0`
        says as much), and without noise its shape is nothing."""
        shape = [name for name in ("dart_time_constant", "dart_near_target") if name in given]
        if self.pilot != "expert":
            noise = ["dart_noise"] if "dart_noise" in given and self.dart_noise else []
            return [SettingError(name, "is read only when the expert flies ({pilot}: expert): a policy's roll-outs "
                                       "carry no DART noise; drop it", ("pilot",)) for name in (*noise, *shape)]
        return [SettingError(name, "is read only with DART noise, and {dart_noise} is 0: give {dart_noise} above 0, "
                                   "or drop it", ("dart_noise",)) for name in shape] if not self.dart_noise else []

    def keys(self) -> list[EpisodeKey]:
        return [EpisodeKey(part.task, part.preset, self.seed + i) for part in self.parts for i in range(part.episodes)]

    def scenario(self, key: EpisodeKey) -> ScenarioConfig:
        return ScenarioConfig(task=key.task, preset=key.preset, airframe=self.airframe, camera=self.camera,
                              max_seconds=self.max_seconds)

    def recipe(self) -> dict[str, Any]:
        """What the manifest records: everything that decides the data (not how many workers made it, nor where)."""
        recipe = to_dict(self)
        recipe.pop("workers")
        recipe.pop("backend")
        return recipe


@dataclass(frozen=True)
class CollectedEpisode:
    """A worker's report: the stored episode, or the marker of a dropped one; `data` holds the episode file's bytes
    when the parent is to write it (the ray backend), and is None once written."""

    entry: EpisodeEntry | None
    dropped: DroppedEntry | None
    frames: int
    success: bool
    data: bytes | None = field(default=None, repr=False)


class CorrelatedNoise:
    """Ornstein-Uhlenbeck noise with stationary standard deviation `std` and time constant `tau`, faded over the
    last metres before the target to the share `near_target` of itself: there the task asks the vehicle to hold
    still, and full noise would only make the expert fail the hold, not teach a recovery."""

    FADE_START = 3.0  # metres from the target where the noise starts to fade
    FADE_END = 1.0  # metres from the target where it has faded to its share `near_target`

    def __init__(self, std: float, tau: float, task, rng: np.random.Generator, near_target: float = 0.0) -> None:
        self._decay = math.exp(-task.dt / tau)
        self._scale = std * math.sqrt(1 - self._decay**2)
        self._rng = rng
        self._task = task
        self._near_target = near_target
        self._value = rng.normal(0.0, std, 4) if std > 0 else np.zeros(4)

    def __call__(self, label: np.ndarray) -> np.ndarray:
        fade = (self._task.distance_to_target() - self.FADE_END) / (self.FADE_START - self.FADE_END)
        share = self._near_target + (1.0 - self._near_target) * min(1.0, max(0.0, fade))
        noisy = np.clip(label + share * self._value, -1.0, 1.0).astype(np.float32)
        self._value = self._decay * self._value + self._scale * self._rng.normal(0.0, 1.0, 4)
        return noisy


def record_episode(env, config: CollectConfig, key: EpisodeKey) -> Episode:
    """Fly one episode (the expert with DART noise, or a policy the expert labels) and return everything the dataset
    stores about it."""
    from navigator.pilots import ExpertPilot, make_pilot
    from navigator.rollout import run_episode

    task = env.unwrapped
    frames: dict[str, list] = {name: [] for name in ("images", "state", "action_label", "action_executed",
                                                     "timestamp", "position", "velocity", "yaw",
                                                     "target_position", "target_distance")}

    def on_step(observation, label, info) -> None:
        frames["images"].append(observation["image"])
        frames["state"].append(observation["state"])
        frames["action_label"].append(label)
        frames["action_executed"].append(info["executed_action"])
        frames["timestamp"].append(info["time"])
        frames["position"].append(info["position"])
        frames["velocity"].append(info["velocity"])
        frames["yaw"].append(info["yaw"])
        frames["target_position"].append(info["target_position"])
        frames["target_distance"].append(info["distance"])

    noise = CorrelatedNoise(config.dart_noise, config.dart_time_constant, task,
                            np.random.default_rng([key.seed, 0xDA27]), config.dart_near_target)
    expert = ExpertPilot(env)
    if config.pilot == "expert":
        result = run_episode(env, expert, key.seed, on_step=on_step, perturb=noise)
    else:
        pilot = make_pilot(config.pilot, env, camera_key="camera")  # collect's YAML sets `camera:`
        result = run_episode(env, pilot, key.seed, on_step=on_step, labeller=expert)
    steps = len(frames["images"])
    camera = task.camera
    return Episode(
        images=np.stack(frames["images"]),
        state=np.stack(frames["state"]).astype(np.float32),
        action_label=np.stack(frames["action_label"]).astype(np.float32),
        action_executed=np.stack(frames["action_executed"]).astype(np.float32),
        dt=np.full(steps, task.dt, np.float32),
        timestamp=np.asarray(frames["timestamp"], np.float64),
        privileged={name: np.asarray(frames[name], np.float64)
                    for name in ("position", "velocity", "yaw", "target_position", "target_distance")},
        metadata={
            "task": key.task, "preset": key.preset, "seed": key.seed, "airframe": task.airframe.name,
            "camera": camera.to_dict(), "physics_hz": task.world.physics_hz,
            "action_limits": task.airframe.limits.as_array().tolist(), "action_convention": ACTION_CONVENTION,
            "outcome": {"ending": result.ending, "success": result.success, "steps": result.steps,
                        "duration": result.time, "path_length": result.path_length},
            "pilot": config.pilot, "labeller": "expert",
            "dart_noise_std": config.dart_noise if config.pilot == "expert" else 0.0,
            "dart_time_constant": config.dart_time_constant,
            "dart_near_target": config.dart_near_target if config.pilot == "expert" else 0.0,
            "software_version": __version__,
        },
    )


# One environment per worker process and scenario, reused across its episodes (a reset rebuilds the world).
_worker_envs: dict[ScenarioConfig, Any] = {}


def _fly(config: CollectConfig, key: EpisodeKey) -> tuple[Episode, bool]:
    """A worker's episode `key`, in its environment for the scenario, and whether it succeeded."""
    from navigator.scenario import make_scenario_env

    scenario = config.scenario(key)
    if scenario not in _worker_envs:
        _worker_envs[scenario] = make_scenario_env(scenario)
    episode = record_episode(_worker_envs[scenario], config, key)
    return episode, bool(episode.metadata["outcome"]["success"])


def _dropped(key: EpisodeKey, episode: Episode) -> CollectedEpisode:
    ending = episode.metadata["outcome"]["ending"]
    return CollectedEpisode(None, DroppedEntry(key.task, key.preset, key.seed, ending, episode.frames),
                            episode.frames, False)


def _collect_one(job: tuple[str, CollectConfig, EpisodeKey]) -> CollectedEpisode:
    """A local worker's job: fly the episode and write its file into the dataset `out`."""
    out, config, key = job
    episode, success = _fly(config, key)
    if success or config.keep_failed:
        return CollectedEpisode(write_episode(Path(out), episode), None, episode.frames, success)
    return _dropped(key, episode)


def _pack_one(job: tuple[CollectConfig, EpisodeKey]) -> CollectedEpisode:
    """A Ray worker's job: fly the episode and return its file's bytes, for the parent to write."""
    config, key = job
    episode, success = _fly(config, key)
    if success or config.keep_failed:
        entry, data = pack_episode(episode)
        return CollectedEpisode(entry, None, episode.frames, success, data)
    return _dropped(key, episode)


# The manifest recipe's record of explicit extensions: [{"parts[0].episodes": {"from": 6, "to": 8}}, ...].
EXTENSIONS_KEY = "extensions"


def recorded_recipe_problem(recipe: dict[str, Any]) -> str | None:
    """Why `navigator collect --resume` or `--extend` would refuse a manifest's recorded `recipe`, or None when it
    would read it. A recipe without `parts` was not written by `navigator collect` and is not checked."""
    if "parts" not in recipe:
        return None
    try:
        from_dict(CollectConfig, {name: value for name, value in recipe.items() if name != EXTENSIONS_KEY})
    except ConfigError as error:
        return without_yaml_advice(str(error))
    return None


def _is_episode_count(difference: Difference) -> bool:
    return re.fullmatch(r"parts\[\d+\]\.episodes", difference.name) is not None


def _grow_hint(recorded: dict[str, Any], given_as: GivenAs) -> str:
    """How to extend a dataset of several parts, which --episodes cannot: it would replace them all by one. Given
    a --config, the user's file is where to raise them."""
    parts = recorded.get("parts")
    if not isinstance(parts, list) or len(parts) < 2:
        return ""
    if given_as.config:
        return (f"it has {len(parts)} parts: in your --config, keep its parts in their order and raise "
                f"parts[i].episodes for each part to grow (none may shrink, none be added or removed)")
    return (f"it has {len(parts)} parts and --episodes would replace them all by one: copy its manifest's 'recipe' "
            f"(without '{EXTENSIONS_KEY}') into a --config YAML, raise parts[i].episodes there for each part to grow, "
            f"and pass that --config with --extend")


def _episodes(recorded: dict[str, Any]) -> str:
    """The episode count of a dataset of one part, as a recipe records it; "" for several parts."""
    parts = recorded.get("parts")
    one = isinstance(parts, list) and len(parts) == 1 and isinstance(parts[0], dict)
    return str(parts[0].get("episodes", "")) if one else ""


def _refuse_other_settings_than_flown(out: Path, writer: DatasetWriter, recipe: dict[str, Any], flag: str) -> None:
    """Refuse to add episodes flown with other settings than the dataset's first episode was (airframe, camera,
    recovery noise): a recipe that does not record one (older, or edited) is completed with the default, which may
    not be what its episodes were flown with."""
    from navigator.dataset.episode_file import load_episode
    from navigator.dataset.errors import DatasetError
    from navigator.dataset.manifest import EPISODES_FOLDER, show
    from navigator.dataset.reader import recipe_mismatches

    for entry in writer.manifest.episodes:
        try:
            episode = load_episode(out / EPISODES_FOLDER / entry.file, entry.sha256)
        except DatasetError:
            continue  # damaged or missing: the resume sets it aside and flies it again
        break
    else:
        return
    found = recipe_mismatches(recipe, episode)
    if found:
        said = "; ".join(f"{setting} {show(flown)}, and this collection would fly {show(given)}"
                         for setting, given, flown in found)
        raise UserError(f"{flag}: {out}'s episodes were flown with {said} (its manifest's recipe was edited, or "
                        f"lacks the setting and was completed with the default), so the dataset would mix the two; "
                        f"collect the new episodes into a new --out")


def comparable_recipe(recorded: dict[str, Any]) -> dict[str, Any]:
    """A manifest's recipe, its extensions apart, as this version writes one: names as navigator spells them (a
    "Fly to target" edited in is fly-to-target) and settings added since filled with their defaults (what such a
    collection flew), so that comparing it with a recipe names only real changes. As recorded where it is no valid
    recipe: each difference is then named."""
    recipe = {name: value for name, value in recorded.items() if name != EXTENSIONS_KEY}
    try:
        return from_dict(CollectConfig, recipe).recipe()
    except ConfigError:
        return recipe


def open_for_collection(out: Path, config: CollectConfig, resume: bool, extend: bool = False,
                        given_as: GivenAs | None = None) -> tuple[DatasetWriter, list[str]]:
    """A writer for `out`: new, or (resume) the interrupted one after recovering finished files. Also returns
    what recovery did, in words.

    Resuming requires exactly the recipe the dataset was started with, and a refusal names every setting that
    differs (named as `given_as` says the user gave it). `extend` (implies resume) also allows larger episode counts,
    and only those: the manifest's recipe then records the new counts, and its `extensions` list what was raised
    from what."""
    from navigator.dataset.manifest import load_manifest_data, manifest_path
    from navigator.folder_lock import refuse_if_in_use

    if not (resume or extend):
        if manifest_path(out).exists():
            refuse_if_in_use(out, "dataset")
            raise UserError(f"{out} already holds a dataset: pass --resume to continue it, or choose another --out")
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out} is a file, not a dataset folder; choose a new or empty folder")
        return DatasetWriter.create(out, image_size=(config.camera.height, config.camera.width),
                                    recipe=config.recipe()), []
    flag = "--extend" if extend else "--resume"
    if not manifest_path(out).exists():
        if out.is_dir() and any(out.iterdir()):  # files without a manifest: its recipe is lost, nothing to go on
            raise UserError(f"{flag}: {out} holds files but no manifest.json, which records the dataset's recipe "
                            f"and episodes, so it cannot be continued; collect into a new --out (and remove {out} "
                            f"when you no longer need it)")
        raise nothing_to_continue(out, flag, "dataset", "manifest.json")
    load_manifest_data(out)  # refuses one edited since it was written: its recipe is not what was collected
    writer = DatasetWriter.open(out)
    extensions = writer.manifest.recipe.get(EXTENSIONS_KEY, [])
    recorded = comparable_recipe(writer.manifest.recipe)
    given = config.recipe()
    found = differences(recorded, given)
    grown = check_continuation(found, _is_episode_count, extend,
                               Continued(out, "dataset", "its manifest's 'recipe'", "episodes", "--episodes",
                                         _grow_hint(recorded, given_as or GivenAs()), given_as or GivenAs(),
                                         _episodes(recorded)))
    _refuse_other_settings_than_flown(out, writer, given, flag)
    if extend:
        writer.set_recipe({**given, EXTENSIONS_KEY: [*extensions, {d.name: {"from": d.recorded, "to": d.given}
                                                                   for d in grown}]})
    verification = writer.verify_listed()
    notes = _refly_notes(verification)
    recovery = writer.recover()
    notes += [f"adopted {counted(len(recovery.adopted), 'finished episode file')} missing from the manifest"] * bool(
        recovery.adopted)
    notes += [f"set aside {file} as {aside}: {why}" for file, why, aside in recovery.rejected]
    removed = recovery.removed_temporaries
    notes += [f"removed {counted(len(removed), 'partial file')}"] * bool(removed)
    return writer, notes


def _refly_notes(verification: Verification) -> list[str]:
    """The resume notes for episodes the manifest listed but whose files are missing or damaged: "re-flying 1 episode
    whose file is missing: fly-to-target/summer seed 4"."""
    def episodes(entries: list[EpisodeEntry], state: str) -> str:
        many = len(entries) != 1
        listed = ", ".join(f"{e.task}/{e.preset} seed {e.seed}" for e in entries)
        return (f"re-flying {len(entries)} episode{'s' * many} whose file{'s' * many} {'are' if many else 'is'} "
                f"{state}: {listed}")

    notes = [episodes(verification.missing, "missing")] * bool(verification.missing)
    if verification.damaged:
        aside = ", ".join(name for _, name in verification.damaged)
        notes.append(f"{episodes([entry for entry, _ in verification.damaged], 'damaged')} (sha256 differs from the "
                     f"manifest's; set aside as {aside})")
    return notes


def collect(out: Path, config: CollectConfig, writer: DatasetWriter,
            on_episode: Callable[[CollectedEpisode], None] | None = None,
            on_ready: Callable[[Cluster], None] | None = None) -> list[CollectedEpisode]:
    """Fly every episode of `config` still missing from `writer`'s dataset, on `config.backend`; returns what was
    flown. `on_ready` gets the workers' Cluster once they are up (not called when one in-process worker flies).

    A collection that fails or is interrupted before it records any episode removes the dataset it had just created
    (`DatasetWriter.discard_if_empty`), so no empty dataset folder is left behind; anything recorded stays, to
    resume."""
    todo = writer.missing(config.keys())
    done = []
    try:
        with closing(_run_jobs(out, config, todo, on_ready)) as results:
            for collected in results:
                if collected.data is not None:
                    writer.store(collected.entry, collected.data)
                    collected = replace(collected, data=None)  # written: the bytes need not stay in memory
                elif collected.entry is not None:
                    writer.add(collected.entry)
                else:
                    writer.drop(collected.dropped)
                done.append(collected)
                if on_episode is not None:
                    on_episode(collected)
    except BaseException:
        writer.discard_if_empty()
        raise
    return done


def _run_jobs(out: Path, config: CollectConfig, todo: list[EpisodeKey],
              on_ready: Callable[[Cluster], None] | None) -> Iterator[CollectedEpisode]:
    if config.backend.kind == "ray":
        yield from run_jobs(_pack_one, [(config, key) for key in todo], config.workers, config.backend,
                            on_ready=on_ready)
        return
    jobs = [(str(out), config, key) for key in todo]
    workers = min(local_workers(config.workers), max(1, len(todo)))
    if workers <= 1:
        try:
            yield from map(_collect_one, jobs)
        finally:
            for env in _worker_envs.values():
                env.close()
            _worker_envs.clear()
        return
    yield from run_jobs(_collect_one, jobs, workers, LOCAL, on_ready=on_ready)
