"""`navigator explain`: neuron traces, the wiring diagram, command-neuron ablation, and the command end to end on the
shipped policy (one short flown episode) and on a recorded dataset episode; bad input refused before any work."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from navigator.cli import main
from navigator.dataset import DatasetWriter
from navigator.dataset.synthetic import synthetic_episode
from navigator.explain.ablation import action_changes
from navigator.explain.circuit import LAYER_NAMES, circuit_of, policy_wiring, silenced
from navigator.explain.traces import neuron_traces, replay
from navigator.explain.wiring import POLARITY_COLOURS, draw_wiring, plot_wiring
from policies.checkpoint import checkpoint_bytes
from policies.config import PolicyConfig
from policies.policy import build_policy
from policies.preprocessing import ImageSpec

EXPLAIN_FILES = {"saliency.mp4", "traces.png", "traces.npz", "wiring.png", "ablation.md", "ablation.png",
                 "ablation.json", "explain.json"}


def _inputs(steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random policy inputs: frames (T, 48, 64, 3) uint8, states (T, 7), dts (T,) at 30 Hz."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (steps, 48, 64, 3), dtype=np.uint8), rng.normal(0, 1, (steps, 7)).astype(np.float32),
            np.full(steps, 1 / 30, np.float32))


def _policy(model: str, units: int = 12, seed: int = 0):
    return build_policy(PolicyConfig(model=model, head_size=units, seed=seed)).eval()


@pytest.mark.parametrize("model", ["cfc-ncp", "ltc-ncp"])
def test_traces_have_one_row_per_neuron_one_column_per_step_grouped_by_the_wiring_layers(model: str) -> None:
    policy = _policy(model)
    circuit = circuit_of(policy)
    frames, states, dts = _inputs(9)
    result = replay(policy, frames, states, dts)
    traces = neuron_traces(result, circuit, np.arange(9) / 30)
    assert traces.rows.shape == (12, 9)
    wiring = policy_wiring(policy)
    for index, name in enumerate(LAYER_NAMES):
        assert traces.neuron_id[traces.layer == name].tolist() == wiring.get_neurons_of_layer(index)
    # The rows are the neurons they say they are: the motor rows, through the head's read-out and tanh, are the actions.
    motor = traces.rows[traces.layer == "motor"].T  # (T, 4), motor neurons 0..3 in order
    if model == "cfc-ncp":
        readout = policy.head.bias.detach().numpy() + motor * policy.head.scale.detach().numpy()
    else:
        cell = policy.head.cell
        readout = motor * cell.output_w.detach().numpy() + cell.output_b.detach().numpy()
    np.testing.assert_allclose(np.tanh(readout), result.actions, atol=1e-6)


@pytest.mark.parametrize(("model", "groups"), [("lstm", {"h": 10, "c": 10}), ("gru", {"h": 10}), ("cfc", {"h": 10}),
                                                ("mlp", {"tanh 1": 10, "tanh 2": 10})])
def test_heads_without_a_wiring_trace_their_hidden_units(model: str, groups: dict[str, int]) -> None:
    policy = _policy(model, units=10)
    circuit = circuit_of(policy)
    assert circuit.wiring is None and circuit.command_neurons == ()
    traces = neuron_traces(replay(policy, *_inputs(5)), circuit, np.arange(5) / 30)
    assert traces.rows.shape == (sum(groups.values()), 5)
    assert {name: int((traces.layer == name).sum()) for name in groups} == groups
    assert np.abs(traces.rows).max() > 0  # units that move, not a zero placeholder


def test_a_replay_is_what_the_policy_does_step_by_step() -> None:
    policy = _policy("cfc-ncp")
    frames, states, dts = _inputs(4, seed=3)
    hidden, actions = policy.initial_hidden(1), []
    with torch.inference_mode():
        for t in range(4):
            action, hidden = policy.step(torch.from_numpy(frames[t : t + 1]), torch.from_numpy(states[t : t + 1]),
                                         hidden, float(dts[t]))
            actions.append(action[0].numpy())
    result = replay(policy, frames, states, dts)
    np.testing.assert_array_equal(result.actions, np.asarray(actions))
    np.testing.assert_array_equal(result.activity[-1], hidden[0][0].numpy())


def test_the_wiring_plot_has_one_node_per_neuron_and_edges_coloured_by_polarity(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection, PathCollection
    from matplotlib.colors import to_rgba
    from matplotlib.patches import FancyArrowPatch

    wiring = policy_wiring(_policy("cfc-ncp", units=16))
    figure, axis = plt.subplots()
    counts = draw_wiring(axis, wiring, "test", learned_sign=True)
    nodes = sum(len(c.get_offsets()) for c in axis.collections if isinstance(c, PathCollection))
    assert nodes == wiring.units + wiring.input_dim == counts["neurons"] + counts["sensory"]
    layer_nodes = [len(c.get_offsets()) for c in axis.collections if isinstance(c, PathCollection)]
    assert layer_nodes == [wiring.input_dim] + [len(wiring.get_neurons_of_layer(i)) for i in range(3)]
    drawn = {1: 0, -1: 0}
    for collection in axis.collections:
        if isinstance(collection, LineCollection):
            polarity = next(p for p, c in POLARITY_COLOURS.items() if np.allclose(collection.get_colors()[0][:3],
                                                                                  to_rgba(c)[:3]))
            drawn[polarity] += len(collection.get_segments())
    for patch in axis.patches:
        if isinstance(patch, FancyArrowPatch):
            drawn[next(p for p, c in POLARITY_COLOURS.items()
                       if np.allclose(patch.get_edgecolor()[:3], to_rgba(c)[:3]))] += 1
    both = np.concatenate([wiring.sensory_adjacency_matrix.ravel(), wiring.adjacency_matrix.ravel()])
    assert drawn == {1: int((both == 1).sum()), -1: int((both == -1).sum())}
    assert drawn[1] > 0 and drawn[-1] > 0
    assert (counts["excitatory"], counts["inhibitory"]) == (drawn[1], drawn[-1])
    plt.close(figure)
    plot_wiring(wiring, tmp_path / "wiring.png", "test", learned_sign=True)
    assert (tmp_path / "wiring.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_policy_whose_masks_differ_from_its_wiring_is_refused() -> None:
    policy = _policy("cfc-ncp")
    with torch.no_grad():
        policy.head.cfc.layers[0].mask[0, :] = 1 - policy.head.cfc.layers[0].mask[0, :]
    with pytest.raises(ValueError, match="differ from the NCP wiring"):
        circuit_of(policy)


@pytest.mark.parametrize("model", ["cfc-ncp", "ltc-ncp"])
def test_silencing_a_command_neuron_changes_exactly_the_actions_it_is_wired_to(model: str) -> None:
    """On the first step (zero state) a command neuron reaches the actions only along the wiring's synapses: silencing
    it changes those channels and no other. A CfC layer reads the previous one once per step, so only direct synapses
    to motor neurons count; its time gates read every neuron of the previous layer whatever the wiring (as in ncps:
    only ff1/ff2 are masked), so there they are cut first. An LTC step unfolds its ODE 6 times, so paths through
    other command neurons count too."""
    policy = _policy(model, units=16, seed=2)
    circuit = circuit_of(policy)
    frames, states, dts = _inputs(1, seed=5)
    command = np.asarray(circuit.command_neurons)
    synapse = circuit.wiring.adjacency_matrix != 0
    reach = synapse.copy()
    if model == "ltc-ncp":
        for _ in range(policy.head.cell._ode_unfolds):
            reach |= (reach.astype(int) @ synapse.astype(int)) > 0
    wired = reach[command][:, :4]  # motor neurons are ids 0..3, the action channels
    assert wired.any(axis=1).all() and not wired.all()  # the case has both wired and unwired channels
    if model == "cfc-ncp":
        changes = action_changes(policy, circuit, frames, states, dts, command)
        assert (changes[~wired] > 1e-7).all()  # through the dense time gates
        motor = policy.head.cfc.layers[2]
        with torch.no_grad():
            motor.weight[2 * motor.units :, : motor.in_features] = 0.0  # time_a and time_b read no command neuron
    changes = action_changes(policy, circuit, frames, states, dts, command)
    assert ((changes > 1e-7) == wired).all(), (changes, wired)


def test_silencing_a_disconnected_neuron_changes_nothing_and_the_policy_comes_back_intact() -> None:
    policy = _policy("cfc-ncp", units=16, seed=2)
    circuit = circuit_of(policy)
    frames, states, dts = _inputs(6, seed=7)
    neuron = circuit.command_neurons[0]
    before = replay(policy, frames, states, dts).actions
    assert action_changes(policy, circuit, frames, states, dts, [neuron]).max() > 1e-4  # it matters while connected
    np.testing.assert_array_equal(replay(policy, frames, states, dts).actions, before)  # masks restored on exit
    # Disconnect it in the weights (not the masks silencing edits): every read of its state gets weight 0.
    command, motor = policy.head.cfc.layers[1], policy.head.cfc.layers[2]
    local = int(np.flatnonzero(circuit.group("command").ids == neuron)[0])
    with torch.no_grad():
        command.weight[:, command.in_features + local] = 0.0
        motor.weight[:, local] = 0.0
    assert action_changes(policy, circuit, frames, states, dts, [neuron]).max() == 0.0
    with pytest.raises(ValueError, match="not an inter or command neuron"), silenced(policy, circuit, [0]):
        pass  # motor neuron 0 is the vx channel itself: refused


def _video(path: Path) -> tuple[str, int, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        return stream.codec_context.name, stream.codec_context.width, stream.codec_context.height, frames


def test_explain_writes_every_file_for_one_short_flight_of_the_shipped_policy(tmp_path: Path, capsys) -> None:
    out = tmp_path / "explain"
    assert main(["explain", "--out", str(out), "--max-seconds", "1", "--ablation-episodes", "1"]) == 0
    assert {p.name for p in out.iterdir()} == EXPLAIN_FILES
    record = json.loads((out / "explain.json").read_text())
    steps = record["episode"]["steps"]
    assert steps == 30 and record["episode"]["ending"] == "timeout"
    assert record["config"]["pilot"] == "pretrained" and record["config"]["method"] == "visualbackprop"
    assert record["config"]["scenario"]["preset"] == "summer" and record["config"]["seed"] == 100000
    assert [e["label"] for e in record["events"]] == ["start", "timeout"]
    attention = record["attention_on_target"]
    assert attention["frames"] == steps and 0 < attention["frames_measured"] <= steps
    assert 0.0 <= attention["mean"] <= 1.0
    codec, width, height, frames = _video(out / "saliency.mp4")
    assert (codec, width, height, frames) == ("h264", 320 + 320, 240, steps)  # camera 64x48 x5, chase 320x240
    traces = np.load(out / "traces.npz")
    assert traces["activity"].shape == (70, steps) and traces["actions"].shape == (steps, 4)
    assert [int((traces["layer"] == name).sum()) for name in LAYER_NAMES] == [40, 26, 4]
    ablation = json.loads((out / "ablation.json").read_text())
    assert len(ablation["neurons"]) == 26 and ablation["intact"]["episodes"] == 1
    assert all(entry["closed_loop"]["seeds"] == [100000] for entry in ablation["neurons"])
    assert "| neuron |" in (out / "ablation.md").read_text()
    assert "attention on target" in capsys.readouterr().out


def _checkpoint(path: Path, model: str, camera: dict, airframe: str = "x500", seeds: list | None = None) -> Path:
    """A fresh policy of `model` whose metadata says it was trained on `camera` with `airframe` (and, given
    `seeds`, on those world seeds: training_seeds entries)."""
    spec = ImageSpec(input_hfov_deg=camera["fov_deg"], output_hfov_deg=camera["fov_deg"])
    metadata = {"camera": camera, "airframe": airframe, **({"training_seeds": seeds} if seeds is not None else {})}
    path.write_bytes(checkpoint_bytes(build_policy(PolicyConfig(model=model, image=spec, head_size=12)), metadata))
    return path


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, dict]:
    """A one-episode dataset: a synthetic flight in the simulator's terms (a 90° camera, the x500); and its camera."""
    episode = synthetic_episode(4, frames=10)
    episode.metadata.update(task="fly-to-target", airframe="x500")
    writer = DatasetWriter.create(tmp_path / "ds", image_size=(48, 64), recipe={})
    writer.write(episode)
    return writer.path, episode.metadata["camera"]


def test_explain_reads_a_recorded_episode_instead_of_flying(recorded: tuple[Path, dict], tmp_path: Path) -> None:
    dataset, camera = recorded
    checkpoint = _checkpoint(tmp_path / "cfc-ncp.pt", "cfc-ncp", camera)
    out = tmp_path / "explain"
    command = ["explain", "--pilot", str(checkpoint), "--from-dataset", str(dataset), "--ablation-episodes", "0",
               "--out", str(out)]
    assert main([*command, "--episode", "0"]) == 0
    assert {p.name for p in out.iterdir()} == EXPLAIN_FILES
    record = json.loads((out / "explain.json").read_text())
    assert record["episode"]["kind"] == "dataset" and record["episode"]["steps"] == 10
    assert record["attention_on_target"]["mean"] is None  # a dataset records no target mask
    assert _video(out / "saliency.mp4") == ("h264", 320, 240, 10)  # no chase view: the camera alone
    assert np.load(out / "traces.npz")["activity"].shape == (12, 10)
    ablation = json.loads((out / "ablation.json").read_text())
    assert ablation["intact"] is None and "closed_loop" not in ablation["neurons"][0]
    assert main(command) == 2  # the folder holds an explanation now: refused without --overwrite
    # An LSTM has no wiring and no command neurons: --overwrite leaves none of the NCP explanation's files behind.
    assert main([*command[:2], str(_checkpoint(tmp_path / "lstm.pt", "lstm", camera)), *command[3:],
                 "--overwrite"]) == 0
    assert {p.name for p in out.iterdir()} == {"saliency.mp4", "traces.png", "traces.npz", "explain.json"}
    record = json.loads((out / "explain.json").read_text())
    assert record["model"] == "lstm" and record["wiring"] is None and record["ablation"] is None
    assert record["neurons"] == {"h": 12, "c": 12}


@pytest.mark.parametrize(("arguments", "message"), [
    (["--pilot", "expert"], "the expert reads the world, not the camera"),
    (["--pilot", "{bundle}"], "is an exported ONNX bundle"),
    (["--preset", "springtime"], "--preset"),
    (["--method", "gradcam"], "unknown saliency method 'gradcam'"),
    (["--seed", "7"], "pilot pretrained was trained on fly-to-target seeds 0-599"),  # eval refuses it too
    (["--seed", "598"], "would fly seeds 598-599 of them"),  # the ablation's worlds 598..602 as well
    (["--from-dataset", "{existing}", "--max-seconds", "1"], "--max-seconds must be left out with --from-dataset"),
    (["--episode", "2"], "--episode must come with --from-dataset"),
    (["--ablation-episodes", "-1"], "--ablation-episodes must be in [0, 1000]"),
    (["--out", "{existing}"], "already exists and is not empty; pass --overwrite"),
    (["--out", "{existing}", "--overwrite"], "holds files that are not an explanation's (notes.txt)"),
])
def test_bad_input_exits_2_before_any_work(arguments: list[str], message: str, tmp_path: Path, capsys) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "policy.json").write_text("{}")
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    out = tmp_path / "out"
    arguments = [a.format(bundle=bundle, existing=existing) for a in arguments]
    command = ["explain", *(["--out", str(out)] if "--out" not in arguments else []), *arguments]
    assert main(command) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and "Traceback" not in error
    assert not out.exists() and [p.name for p in existing.iterdir()] == ["notes.txt"]


def test_the_example_launch_file_is_the_defaults() -> None:
    from navigator.config import load_config, to_dict
    from navigator.explain.settings import ExplainConfig

    launch = Path(__file__).resolve().parents[1] / "launch" / "explain.yaml"
    assert to_dict(load_config(ExplainConfig, launch)) == to_dict(ExplainConfig())


def test_method_names_are_read_in_any_spelling() -> None:
    from navigator.explain.settings import ExplainConfig

    for spelling in ("Integrated Gradients", " INTEGRATED-GRADIENTS", "integrated_gradients"):
        assert ExplainConfig(method=spelling).method == "integrated-gradients"
    assert ExplainConfig(method="VisualBackProp").method == "visualbackprop"


def test_a_recorded_episode_is_not_checked_against_training_seeds_but_the_ablation_worlds_are(
        recorded: tuple[Path, dict], tmp_path: Path, capsys) -> None:
    dataset, camera = recorded
    trained = [{"task": "fly-to-target", "first": 0, "count": 10, "source": "datasets/d"}]
    checkpoint = _checkpoint(tmp_path / "seen.pt", "lstm", camera, seeds=trained)
    command = ["explain", "--pilot", str(checkpoint), "--from-dataset", str(dataset)]
    out = tmp_path / "flies"
    # No NCP: a check before any work.
    assert main([*command, "--seed", "5", "--ablation-episodes", "1", "--out", str(out)]) == 2
    assert "and this explanation would fly seed 5 of them" in capsys.readouterr().err and not out.exists()
    assert main([*command, "--ablation-episodes", "0", "--out", str(tmp_path / "reads")]) == 0


@pytest.mark.parametrize(("airframe", "camera_change", "seeds", "found"), [
    ("cf2x", {}, None, "trained on the cf2x airframe, not x500"),
    ("x500", {"fov_deg": 80.0}, None, "trained with another camera: fov_deg 80.0 (the episode has 90.0)"),
    ("x500", {}, [{"task": "hike", "first": 0, "count": 3, "source": "d"}], "trained on hike demonstrations"),
])
def test_a_dataset_of_another_scenario_is_refused_with_a_fix_that_applies(
        recorded: tuple[Path, dict], tmp_path: Path, capsys, airframe, camera_change, seeds, found) -> None:
    dataset, camera = recorded
    checkpoint = _checkpoint(tmp_path / "other.pt", "lstm", {**camera, **camera_change}, airframe, seeds)
    out = tmp_path / "out"
    assert main(["explain", "--pilot", str(checkpoint), "--from-dataset", str(dataset), "--ablation-episodes", "0",
                 "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert found in error and error.count("\n") == 1 and not out.exists()
    # No flag flies a recorded episode otherwise.
    assert "fly it with" not in error and "use it with" not in error and "--config" not in error
    assert "explain an episode of a dataset recorded with the policy's task, airframe and camera" in error


@pytest.mark.parametrize(("given", "found"), [
    (["--airframe", "cf2x"], "recorded with airframe x500 and is explained as recorded: --airframe (scenario.airframe)"
                             " cf2x would be ignored"),
    (["--config", "{yaml}"], "recorded with camera fov_deg 90.0 and is explained as recorded: "
                             "scenario.camera.fov_deg 70.0 would be ignored"),
    (["--preset", "winter"], "recorded with preset summer and is explained as recorded: --preset (scenario.preset) "
                             "winter would be ignored"),
    (["--config", "{task_yaml}"], "recorded with task fly-to-target and is explained as recorded: --task "
                                  "(scenario.task) hike would be ignored"),
    (["--seed", "5"], "--seed picks the worlds flown, and a recorded episode explained with --ablation-episodes 0 "
                      "flies none"),
])
def test_a_scenario_setting_a_recorded_episode_overrides_is_refused_not_ignored(
        recorded: tuple[Path, dict], tmp_path: Path, capsys, given, found) -> None:
    dataset, camera = recorded
    (tmp_path / "camera.yaml").write_text("scenario:\n  camera:\n    fov_deg: 70.0\n")
    (tmp_path / "task.yaml").write_text("scenario:\n  task: hike\n")
    checkpoint = _checkpoint(tmp_path / "ncp.pt", "cfc-ncp", camera)
    out = tmp_path / "out"
    given = [part.format(yaml=tmp_path / "camera.yaml", task_yaml=tmp_path / "task.yaml") for part in given]
    assert main(["explain", "--pilot", str(checkpoint), "--from-dataset", str(dataset), "--ablation-episodes", "0",
                 "--out", str(out), *given]) == 2
    error = capsys.readouterr().err
    assert found in error and error.count("\n") == 1 and not out.exists()


class _Interrupt(Exception):
    """Stands for Ctrl-C (KeyboardInterrupt, which pytest would take as the user's own) at a chosen stage."""


class _InterruptAt:
    def __init__(self, stage: str) -> None:
        self.at = stage

    def stage(self, text: str, total: int | None = None) -> None:
        if text.startswith(self.at):
            raise _Interrupt(text)

    def advance(self, status: str = "") -> None:
        pass


@pytest.mark.parametrize("stage", ["saliency", "ablation, open loop"])
def test_an_interrupted_explanation_leaves_nothing_behind(recorded: tuple[Path, dict], tmp_path: Path,
                                                          stage: str) -> None:
    from navigator.explain.pipeline import explain
    from navigator.explain.settings import ExplainConfig

    dataset, camera = recorded
    config = ExplainConfig(pilot=str(_checkpoint(tmp_path / "ncp.pt", "cfc-ncp", camera)), from_dataset=str(dataset),
                           ablation_episodes=0)
    out = tmp_path / "new" / "explain"
    with pytest.raises(_Interrupt):  # after traces.* (and saliency.mp4, wiring.png) were written
        explain(config, out, _InterruptAt(stage))
    assert not (tmp_path / "new").exists()  # neither the folder nor the one above it that the run created
    earlier = tmp_path / "earlier"
    explain(config, earlier, _InterruptAt("never"))
    before = {path.name: path.read_bytes() for path in earlier.iterdir()}
    assert set(before) == EXPLAIN_FILES
    lstm = dataclasses.replace(config, pilot=str(_checkpoint(tmp_path / "lstm.pt", "lstm", camera)))
    with pytest.raises(_Interrupt):  # --overwrite, interrupted after traces.*: the earlier explanation stays whole
        explain(lstm, earlier, _InterruptAt("saliency"))
    assert {path.name: path.read_bytes() for path in earlier.iterdir()} == before
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []  # no temporary folder


def test_overwrite_names_every_foreign_file_or_how_many_more(tmp_path: Path, capsys) -> None:
    existing = tmp_path / "existing"
    existing.mkdir()
    for index in range(8):
        (existing / f"mine-{index}.txt").write_text("mine")
    assert main(["explain", "--out", str(existing), "--overwrite"]) == 2
    error = capsys.readouterr().err
    assert "(mine-0.txt, mine-1.txt, mine-2.txt, mine-3.txt, mine-4.txt and 3 more)" in error
    assert len(list(existing.iterdir())) == 8
