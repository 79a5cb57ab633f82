"""`navigator explain`: one episode of a policy, explained, into one folder.

The episode is flown (a seed in a scenario, recording the camera, the target's image region and the chase view at
every step) or read from a dataset. Then, from the same inputs: the saliency video (`saliency.mp4`), the neuron
traces (`traces.png`, `traces.npz`), the wiring diagram (`wiring.png`, NCP heads), the command-neuron ablation
(`ablation.md|png|json`, NCP heads) and the record of what was run (`explain.json`, written last). The files are
built in a temporary folder beside the output folder and moved into place once complete: a run that fails or is
interrupted leaves nothing behind, and --overwrite keeps the earlier explanation intact until the new one replaces it
whole (never anything else: `check_out` refuses a folder holding other files). A flown episode and the ablation's
worlds are refused, as `navigator eval` refuses them, if the policy trained on them.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from navigator.config import to_dict
from navigator.dataset.atomic import atomic_write_bytes, commit, temporary_name
from navigator.errors import UserError
from navigator.evaluation.folder import write_json
from navigator.explain.settings import ExplainConfig
from navigator.explain.traces import Event
from navigator.pilots import ScenarioMismatch, one_math_thread

FORMAT = "liquid-navigator/explain"
VERSION = 1
CHASE_SIZE = (320, 240)  # (width, height) of the chase view, as `navigator fly --video` records it
# The replay of a flight runs the same operations on the same inputs, so it equals the flight bit for bit (as
# measured); the tolerance only leaves room for float rounding, far below any change a wrong input would make.
REPLAY_TOLERANCE = 1e-5


class Hooks:
    """What the command shows while the pipeline works (the pipeline itself prints nothing)."""

    def stage(self, text: str, total: int | None = None) -> None:
        """A new stage begins; `total` steps of it will be reported by `advance`."""

    def advance(self, status: str = "") -> None:
        """One step of the current stage is done."""


@dataclass
class Recording:
    """One episode's inputs and what happened in it, T steps: camera images (T, H, W, 3) uint8, states (T, 7), dts (T,)
    seconds since the previous step, times (T,) seconds from the start; target masks (T, H, W) bool (None: not known,
    a dataset episode); chase views PNG-encoded (None: a dataset episode has none); actions flown by the explained
    policy (None for a dataset episode) and those recorded in the dataset (its expert's; None when flown)."""

    images: np.ndarray
    states: np.ndarray
    dts: np.ndarray
    times: np.ndarray
    masks: np.ndarray | None
    chase: list[bytes] | None
    flown_actions: np.ndarray | None
    recorded_actions: np.ndarray | None
    events: list[Event]
    ending: str
    success: bool
    duration: float
    source: dict[str, Any]


def fly_recording(env, pilot, seed: int, hooks: Hooks) -> Recording:
    """Fly one episode from `seed` with `pilot`, recording per step the observation, the target's mask (in step with
    the observation), the chase view and the flown action; hike's reached targets become events."""
    from navigator.rollout import run_episode
    from sim_envs.projection import target_mask

    images, states, times, masks, chase, flown, events = [], [], [], [], [], [], [Event(0.0, "start")]
    reached = 0

    def record(observation, _label, info) -> None:
        nonlocal reached
        images.append(observation["image"])
        states.append(observation["state"])
        times.append(float(info["time"]))
        masks.append(target_mask(env))
        frame = env.unwrapped.side_by_side_frame(CHASE_SIZE)
        chase.append(cv2.imencode(".png", frame[:, frame.shape[1] - CHASE_SIZE[0]:],
                                  [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes())
        flown.append(info["executed_action"])
        if info.get("target_index", 0) > reached:
            reached = int(info["target_index"])
            events.append(Event(float(info["time"]), f"target {reached} reached"))
        hooks.advance(f"t {info['time']:.1f} s")

    result = run_episode(env, pilot, seed, on_step=record)
    events.append(Event(result.time, result.ending))
    description = env.unwrapped.description()
    return Recording(
        images=np.asarray(images, np.uint8), states=np.asarray(states, np.float32),
        dts=np.full(len(images), description.dt, np.float32), times=np.asarray(times), masks=np.asarray(masks, bool),
        chase=chase, flown_actions=np.asarray(flown, np.float32), recorded_actions=None, events=events,
        ending=result.ending, success=result.success, duration=result.time,
        source={"kind": "flown", "task": description.task, "preset": description.preset, "seed": seed})


def read_recording(dataset: str, index: int) -> tuple[Recording, dict[str, Any]]:
    """Episode `index` (manifest order) of `dataset`, checksum verified, and its metadata."""
    from navigator.dataset.reader import Dataset

    opened = Dataset.open(dataset)
    if not 0 <= index < len(opened):
        raise UserError(f"--episode {index} is not in {dataset}, which holds {len(opened)} episodes: give 0 to "
                        f"{len(opened) - 1} (`navigator data info {shlex.quote(str(dataset))}` lists them)")
    episode = opened.read(opened.entries[index])
    outcome = episode.metadata["outcome"]
    times = np.asarray(episode.timestamp - episode.timestamp[0], np.float64)
    duration = float(outcome.get("duration", times[-1] + float(episode.dt[-1])))
    events = [Event(0.0, "start")]
    if "target_index" in episode.privileged:  # hike: the leg changes when a target is reached
        legs = np.asarray(episode.privileged["target_index"]).astype(int)
        events += [Event(float(times[t]), f"target {legs[t]} reached") for t in np.flatnonzero(np.diff(legs) > 0) + 1]
    events.append(Event(duration, outcome["ending"]))
    recording = Recording(
        images=episode.images, states=episode.state, dts=episode.dt, times=times, masks=None, chase=None,
        flown_actions=None, recorded_actions=episode.action_executed, events=events, ending=outcome["ending"],
        success=bool(outcome["success"]), duration=duration,
        source={"kind": "dataset", "dataset": str(dataset), "episode": index, "task": episode.metadata["task"],
                "preset": episode.metadata["preset"], "seed": int(episode.metadata["seed"])})
    return recording, episode.metadata


def dataset_scenario(metadata: dict[str, Any], scenario) -> Any:
    """The scenario a dataset episode was recorded in (task, preset, airframe, camera), for the pilot's checks and the
    ablation's closed-loop flights; `scenario` gives what the episode does not record (airframe, max_seconds)."""
    from navigator.config import SettingError
    from navigator.scenario import CameraSettings

    camera = {key: metadata["camera"][key] for key in ("width", "height", "fov_deg", "tilt_deg", "rate_hz")
              if key in metadata.get("camera", {})}
    try:
        recorded = dataclasses.replace(scenario, task=metadata["task"], preset=metadata["preset"],
                                       airframe=metadata.get("airframe", scenario.airframe),
                                       camera=CameraSettings(**camera))
    except SettingError as error:
        raise UserError(f"the dataset episode records a scenario no simulator world has ({error}); explain it with a "
                        f"dataset recorded by navigator collect") from None
    _refuse_overridden(scenario, recorded)
    return recorded


def _refuse_overridden(asked, recorded) -> None:
    """A UserError for a task, preset, airframe or camera setting given (differing from the default) that the
    recorded episode overrides: it would be ignored silently. One that the episode has too is no conflict."""
    from navigator.scenario import ScenarioConfig

    default = ScenarioConfig()
    settings = [(name, f"--{name} (scenario.{name})", getattr(asked, name), getattr(default, name),
                 getattr(recorded, name)) for name in ("task", "preset", "airframe")]
    settings += [(f"camera {key}", f"scenario.camera.{key}", getattr(asked.camera, key), getattr(default.camera, key),
                  getattr(recorded.camera, key)) for key in ("width", "height", "fov_deg", "tilt_deg", "rate_hz")]
    for name, where, given, default_value, episode in settings:
        if given != default_value and given != episode:
            raise UserError(f"the dataset episode was recorded with {name} {episode} and is explained as recorded: "
                            f"{where} {given} would be ignored; drop it, or fly an episode instead of --from-dataset")


def explain(config: ExplainConfig, out: Path, hooks: Hooks) -> dict[str, Any]:
    """Write the explanation of `config`'s episode into `out` (checked with `check_out` by the caller) and return the
    explain.json document. UserErrors: a pilot that cannot fly the scenario or was trained on its worlds, a dataset
    or episode that cannot be read. On any error or interruption nothing is left behind: not the temporary folder,
    not the folders above `out` it created, and `out` as it was."""
    import torch  # noqa: F401  (loaded now, so that one_math_thread sets its threads)

    started = time.monotonic()
    created = [folder for folder in out.parents if not folder.exists()]  # deepest first
    out.parent.mkdir(parents=True, exist_ok=True)
    building = temporary_name(out)
    building.mkdir()
    try:
        with one_math_thread():
            document = _explain(config, building, hooks)
        document["wall_seconds"] = round(time.monotonic() - started, 1)
        write_json(building / "explain.json", document)
        _move_into_place(building, out)
    except BaseException:  # KeyboardInterrupt too: an interrupted run leaves nothing to --overwrite
        shutil.rmtree(building, ignore_errors=True)
        for folder in created:
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    return document


def _move_into_place(building: Path, out: Path) -> None:
    """Replace `out` (absent, empty, or an earlier explanation `check_out` let --overwrite replace) by the complete
    folder `building` beside it."""
    if out.is_dir() and any(out.iterdir()):
        earlier = temporary_name(out)
        os.replace(out, earlier)
        commit(building, out)
        shutil.rmtree(earlier)
    else:
        commit(building, out)  # a rename onto an empty folder replaces it


def _explain(config: ExplainConfig, out: Path, hooks: Hooks) -> dict[str, Any]:
    """Every file but explain.json into the existing folder `out`; returns its document."""
    from navigator.pilots import make_pilot
    from navigator.scenario import make_scenario_env
    from navigator.training.loop import git_commit

    scenario, metadata, recording = config.scenario, None, None
    if config.from_dataset is not None:
        hooks.stage("reading the dataset episode")
        recording, metadata = read_recording(config.from_dataset, config.dataset_episode)
        scenario = dataset_scenario(metadata, config.scenario)
    env = make_scenario_env(scenario)
    try:
        try:
            pilot = make_pilot(config.pilot, env)
        except UserError as error:
            raise (_recorded_elsewhere(config, error) if recording is not None and isinstance(error, ScenarioMismatch)
                   else error) from None
        # The explained world when flown, and the ablation's: none that training flew (as `navigator eval`).
        _refuse_training_worlds(config, pilot, scenario.task, flying=recording is None)
        if recording is None:
            hooks.stage(f"flying seed {config.seed}")
            recording = fly_recording(env, pilot, config.seed, hooks)
        document = _explain_recording(config, recording, pilot, env, out, hooks)
    finally:
        env.close()
    return {"format": FORMAT, "version": VERSION, "config": to_dict(config), "scenario": to_dict(scenario),
            "checkpoint": pilot.name, "commit": git_commit(), **document}


def _refuse_training_worlds(config: ExplainConfig, pilot, task: str, flying: bool) -> None:
    """UserError if the checkpoint pilot's training flew the explained world (seed `config.seed`, when `flying`) or
    one of the ablation's closed-loop worlds (seed, seed+1, ...): a recorded episode is what it is, unchecked."""
    from navigator.evaluation.seeds import check_no_overlap, training_seeds

    worlds = range(config.seed, config.seed + max(config.ablation_episodes, int(flying)))
    check_no_overlap(f"pilot {config.pilot}", training_seeds(pilot.metadata), task, worlds,
                     flights="this explanation")


def _recorded_elsewhere(config: ExplainConfig, refusal: ScenarioMismatch) -> UserError:
    """The pilot's refusal of a dataset episode's scenario restated for a recorded episode, which no flag flies
    otherwise: each difference, then to pick another dataset or another policy."""
    found = "; ".join(problem.replace("this scenario has", "the episode has") for problem in refusal.differences)
    return UserError(f"episode {config.dataset_episode} of {config.from_dataset} was recorded in a scenario the "
                     f"policy was not trained for ({found}): explain an episode of a dataset recorded with the "
                     f"policy's task, airframe and camera, or a policy trained on the dataset's")


def _explain_recording(config: ExplainConfig, recording: Recording, pilot, env, out: Path,
                       hooks: Hooks) -> dict[str, Any]:
    """Every file but explain.json, from `recording`; returns explain.json's account of them."""
    from navigator.explain.attention import attention_on_target
    from navigator.explain.circuit import circuit_of
    from navigator.explain.saliency import saliency_maps
    from navigator.explain.traces import neuron_traces, plot_traces, replay, write_traces_npz
    from policies.preprocessing import crop_and_resize

    policy = pilot.policy
    circuit = circuit_of(policy)
    source = recording.source
    title = (f"{Path(pilot.name).name} ({policy.config.model}) · {source['task']} · {source['preset']} · seed "
             f"{source['seed']} · {recording.ending}")
    frames = np.stack([crop_and_resize(image, policy.config.image) for image in recording.images])

    hooks.stage("neuron traces")
    result = replay(policy, frames, recording.states, recording.dts)
    if recording.flown_actions is not None:
        gap = float(np.abs(result.actions - recording.flown_actions).max())
        if gap > REPLAY_TOLERANCE:
            raise RuntimeError(f"the replay of the flight differs from it by {gap:.3g} in action: the traces would not "
                               f"be the flight's")
    traces = neuron_traces(result, circuit, recording.times)
    write_traces_npz(traces, recording.events, out / "traces.npz")
    plot_traces(traces, recording.events, out / "traces.png", title, recording.recorded_actions)
    files = ["traces.png", "traces.npz"]

    hooks.stage(f"saliency ({config.method})")
    maps = saliency_maps(policy, recording.images, recording.states, recording.dts, config.method)
    attention = _attention(maps, recording.masks, attention_on_target)
    _write_video(out / "saliency.mp4", recording, maps, attention, config.method,
                 1.0 / float(np.median(recording.dts)) if len(recording.dts) else 30.0)
    files.append("saliency.mp4")

    wiring = None
    ablation = None
    if circuit.wiring is not None:
        from navigator.explain.wiring import plot_wiring

        wiring = plot_wiring(circuit.wiring, out / "wiring.png", f"{Path(pilot.name).name}: NCP wiring "
                             f"({policy.config.model})", learned_sign=policy.config.model == "cfc-ncp")
        files.append("wiring.png")
        ablation = _ablate(config, circuit, pilot, env, frames, recording, out, title, hooks)
        files += ["ablation.md", "ablation.png", "ablation.json"]
    visible = [value for value in attention if value is not None]
    return {
        "model": policy.config.model,
        "episode": {**source, "ending": recording.ending, "success": recording.success, "steps": len(recording.images),
                    "duration_s": round(recording.duration, 6)},
        "events": [dataclasses.asdict(event) for event in recording.events],
        "attention_on_target": {
            "method": config.method,
            "mean": round(float(np.mean(visible)), 6) if visible else None,
            "frames_measured": len(visible),
            "frames": len(attention),
            "note": ("mean over the frames in which the target is visible" if recording.masks is not None
                     else "a dataset episode records no target mask: only flown episodes measure it")},
        "neurons": {group.name: len(group.ids) for group in circuit.groups},
        "wiring": wiring,
        "ablation": ablation,
        "files": files,
    }


def _attention(maps: np.ndarray, masks: np.ndarray | None, measure) -> list[float | None]:
    """Per frame: the share of saliency on the target, None where it is not visible (or not known)."""
    if masks is None:
        return [None] * len(maps)
    return [measure(saliency, mask) if mask.any() else None for saliency, mask in zip(maps, masks)]


def _write_video(path: Path, recording: Recording, maps: np.ndarray, attention: list[float | None], method: str,
                 rate_hz: float) -> None:
    """The camera with its saliency beside the chase view (flown) or alone (dataset), one frame per step."""
    from navigator.explain.overlay import compose, heat_overlay
    from navigator.video import VideoWriter

    with VideoWriter(path, rate_hz, overwrite=True) as video:
        for t in range(len(maps)):
            mask = recording.masks[t] if recording.masks is not None else None
            chase = (cv2.imdecode(np.frombuffer(recording.chase[t], np.uint8), cv2.IMREAD_UNCHANGED)
                     if recording.chase is not None else None)
            on_target = f"  on target {attention[t]:.2f}" if attention[t] is not None else ""
            video.write(compose(heat_overlay(recording.images[t], maps[t], mask), chase),
                        f"t {recording.times[t]:5.1f}s  {method}{on_target}")


def _ablate(config: ExplainConfig, circuit, pilot, env, frames: np.ndarray, recording: Recording, out: Path,
            title: str, hooks: Hooks) -> dict[str, Any]:
    """ablation.json, .md and .png; returns explain.json's summary of them."""
    from navigator.explain.ablation import (ablation_document, ablation_markdown, action_changes,
                                            closed_loop_ablation, plot_ablation)

    neurons = circuit.command_neurons
    hooks.stage(f"ablation, open loop ({len(neurons)} command neurons)")
    changes = action_changes(pilot.policy, circuit, frames, recording.states, recording.dts, neurons)
    intact = ablated = None
    if config.ablation_episodes:
        seeds = range(config.seed, config.seed + config.ablation_episodes)
        hooks.stage("ablation, closed loop", total=(len(neurons) + 1) * len(seeds))
        intact, ablated = closed_loop_ablation(env, pilot, circuit, seeds, neurons,
                                               lambda success: hooks.advance("success" if success else "failure"))
    document = ablation_document(neurons, changes, intact, ablated, len(frames))
    write_json(out / "ablation.json", document)
    atomic_write_bytes(out / "ablation.md", ablation_markdown(document, title).encode())
    plot_ablation(document, out / "ablation.png", title)
    strongest = int(np.argmax(changes.mean(axis=1))) if len(neurons) else None
    return {"command_neurons": len(neurons), "closed_loop_episodes": config.ablation_episodes,
            "largest_action_change": None if strongest is None else {
                "neuron": int(neurons[strongest]),
                "mean_abs_action_change": round(float(changes[strongest].mean()), 6)}}
