"""Attention on target: the share against hand-made maps, the simulator's target mask for known poses, the bootstrap
of a mean, and `navigator eval --attention` end to end with its resume refusals."""

import json
import math
import shutil

import numpy as np
import pytest

from navigator.cli import main
from navigator.evaluation.episodes import EpisodeRecord
from navigator.evaluation.report import attention_interval
from navigator.evaluation.results import AttentionSummary, EvalResults, summarize_attention
from navigator.evaluation.stats import mean_bootstrap, seed_bootstrap
from navigator.explain.attention import attention_on_target
from sim_envs import make_env
from sim_envs.projection import target_mask
from sim_envs.scenery import TARGET_COLOR


def test_attention_on_a_hand_made_frame():
    saliency = np.array([[0.0, 1.0, 2.0, 0.0],
                         [0.0, 3.0, 4.0, 0.0],
                         [0.0, 0.0, 0.0, 10.0]])  # mass 20
    mask = np.zeros((3, 4), bool)
    mask[0:2, 1:3] = True  # holds 1 + 2 + 3 + 4 = 10
    assert attention_on_target(saliency, mask) == 0.5
    assert attention_on_target(saliency / 20.0, mask) == pytest.approx(0.5, abs=1e-12)  # any scale: a share
    mask[2, 3] = True
    assert attention_on_target(saliency, mask) == 1.0
    assert attention_on_target(saliency, np.zeros((3, 4), bool)) == 0.0
    # No mass at all: spread evenly, as saliency_maps does, so the mask's share of the pixels (3 of 12).
    assert attention_on_target(np.zeros((3, 4)), np.eye(3, 4, dtype=bool)) == 0.25


@pytest.mark.parametrize("saliency, mask, message", [
    (np.ones((3, 4)), np.ones((4, 3), bool), "one \\(H, W\\) shape"),
    (np.ones((3, 4)), np.ones((3, 4)), "must be boolean"),
    (-np.ones((3, 4)), np.ones((3, 4), bool), "non-negative"),
    (np.full((3, 4), np.nan), np.ones((3, 4), bool), "finite"),
])
def test_attention_refuses_what_is_no_saliency_map_and_mask(saliency, mask, message):
    with pytest.raises(ValueError, match=message):
        attention_on_target(saliency, mask)


def test_the_bootstrap_of_a_mean():
    assert mean_bootstrap([0.25] * 7) == (0.25, 0.25, 0.25)
    # The one-seed case of the hierarchical bootstrap: the same draws, so the same interval for 0/1 values.
    outcomes = [j % 3 == 0 for j in range(30)]
    assert mean_bootstrap([float(o) for o in outcomes]) == seed_bootstrap([outcomes])
    mean, low, high = mean_bootstrap([0.1, 0.2, 0.3, 0.4, 0.5])
    assert mean == pytest.approx(0.3) and 0.1 < low < 0.3 < high < 0.5
    with pytest.raises(ValueError):
        mean_bootstrap([])
    with pytest.raises(ValueError):
        mean_bootstrap([0.1, math.inf])


def test_one_episode_s_attention_has_no_interval():
    # A bootstrap over one episode resamples that episode only: an interval of zero width, which would read as
    # certainty. The summary keeps the figure and gives no interval; the report and console say why.
    def record(seed, attention):
        return EpisodeRecord(pilot="p", suite="summer", seed=seed, ending="success", success=True, steps=30,
                             time=1.0, path_length=2.0, final_distance=0.5, start=(0.0, 0.0, 1.0),
                             target=(4.0, 0.0, 1.0), path_xy=((0.0, 0.0),), attention=attention,
                             target_share=0.02, attention_steps=10)

    one = summarize_attention([record(0, 0.3)])
    assert (one.episodes, one.mean, one.interval) == (1, 0.3, None)
    assert attention_interval(one) == "one episode: no interval"
    assert AttentionSummary.from_dict(json.loads(json.dumps(one.to_dict()))) == one
    two = summarize_attention([record(0, 0.3), record(1, 0.5)])
    assert two.interval is not None and attention_interval(two) == f"{two.interval[0]:.3f}-{two.interval[1]:.3f}"


@pytest.fixture(scope="module")
def env():
    environment = make_env("fly-to-target", preset="summer")
    yield environment
    environment.close()


def _place_target(env, offset):
    """Reset, then put the target at `offset` (x forward, y left, z up, metres) from the onboard camera, which at
    reset looks along +x (yaw 0, level). Returns the observation rendered there and the target mask."""
    env.reset(seed=100_000)
    nav = env.unwrapped
    ox, oy, oz = nav.airframe.camera_offset
    x, y, z = nav.vehicle_state.position
    nav.world.place_target(0, (x + ox + offset[0], y + oy + offset[1], z + oz + offset[2]))
    image = nav.world.onboard_image(nav.vehicle_state)
    return image, target_mask(env)


def _centroid(mask):
    rows, cols = np.nonzero(mask)
    return rows.mean(), cols.mean()


def test_a_target_straight_ahead_is_in_the_image_centre(env):
    # 1.2 m ahead, inside the start's keep-clear circle (no trunk between); 0.3 m radius: about 22 pixels across.
    image, mask = _place_target(env, (1.2, 0.0, 0.0))
    assert mask.shape == (48, 64) and mask.dtype == np.bool_
    assert 250 < mask.sum() < 600
    row, col = _centroid(mask)
    assert abs(row - 23.5) < 1.0 and abs(col - 31.5) < 1.0  # pixel centres: the optical axis is at (23.5, 31.5)
    # The mask is the target as the camera shows it: its own (shaded) red, and no such pixel outside.
    red = (image[..., 0] > 2 * image[..., 1]) & (image[..., 0] > 2 * image[..., 2])
    assert TARGET_COLOR[0] > 2 * TARGET_COLOR[1] and TARGET_COLOR[0] > 2 * TARGET_COLOR[2]
    assert red[mask].mean() > 0.95 and not red[~mask].any()


def test_a_target_off_axis_projects_where_a_pinhole_camera_puts_it(env):
    _, mask = _place_target(env, (2.0, 0.6, 0.3))  # ahead, left and up
    focal = 32.0 / math.tan(math.radians(40.0))  # pixels: half the width over tan(half the horizontal view)
    row, col = _centroid(mask)
    assert abs(col - (31.5 - focal * 0.6 / 2.0)) < 1.0  # left of centre: smaller columns
    assert abs(row - (23.5 - focal * 0.3 / 2.0)) < 1.0  # above centre: smaller rows


def test_a_target_behind_or_covered_shows_no_pixel(env):
    _, mask = _place_target(env, (-1.2, 0.0, 0.0))
    assert not mask.any()
    _, mask = _place_target(env, (1.2, 0.0, 0.0))
    env.unwrapped.occluders = [(0, 0, 32, 48)]  # a black patch over the left half (occlusion presets)
    covered = target_mask(env)
    assert covered.any() and not covered[:, :32].any() and (covered[:, 32:] == mask[:, 32:]).all()


def test_the_mask_follows_hike_to_its_active_target():
    with make_env("hike", preset="summer") as hike:
        hike.reset(seed=100_000)
        nav = hike.unwrapped
        ahead = tuple(np.add(nav.vehicle_state.position, (1.2, 0.0, 0.0)))
        nav.world.place_target(1, ahead)  # the second target, hidden until the first is reached
        assert not target_mask(hike)[20:28, 28:36].any()
        nav.active_target = 1
        assert target_mask(hike)[20:28, 28:36].all()


ATTENTION = ["--pilot", "pretrained", "--pilot", "expert", "--suites", "summer", "--episodes", "2",
             "--max-seconds", "1", "--attention", "--attention-every", "3"]


@pytest.fixture(scope="module")
def attention_run(tmp_path_factory):
    """The shipped policy and the expert, two 1-second episodes each, attention measured every third step."""
    out = tmp_path_factory.mktemp("attention") / "one-worker"
    assert main(["eval", *ATTENTION, "--workers", "1", "--out", str(out)]) == 0
    return out


def test_eval_reports_attention_on_target(attention_run):
    document = json.loads((attention_run / "results.json").read_text())
    results = EvalResults.from_dict(document)
    assert results.to_dict() == document
    policy = results.summary("summer", "pretrained").attention
    assert results.summary("summer", "expert").attention is None  # no saliency: not measured
    records = [r for r in results.episodes if r.pilot == "pretrained"]
    # 30 steps at 30 Hz, measured at steps 0, 3, ..., 27; the target starts in view and stays in view for 1 s.
    assert all(r.attention_steps == 10 and 0.0 < r.attention <= 1.0 and 0.0 < r.target_share < 0.05
               for r in records)
    assert policy.episodes == 2 and policy.mean == pytest.approx(np.mean([r.attention for r in records]), abs=1e-6)
    assert policy.interval[0] <= policy.mean <= policy.interval[1]
    assert policy.mean > 3 * policy.target_share  # it looks at the target more than an even spread would
    expert = [r for r in results.episodes if r.pilot == "expert"]
    assert all(r.attention is None and r.attention_steps is None for r in expert)
    episode = json.loads((attention_run / "episodes" / "summer" / "p0-100000.json").read_text())
    assert episode["attention"] == records[0].attention and episode["attention_steps"] == 10
    report = (attention_run / "report.md").read_text()
    assert "## Attention on target" in report and "visualbackprop" in report and "every 3 camera steps" in report
    assert f"| summer | {policy.mean:.3f} ({policy.interval[0]:.3f}-{policy.interval[1]:.3f})" in report
    assert "no saliency (not measured)" in report
    settings = json.loads((attention_run / "eval.json").read_text())["settings"]
    assert (settings["attention"], settings["attention_method"], settings["attention_every"]) == (
        True, "visualbackprop", 3)


def test_attention_does_not_depend_on_the_number_of_workers(attention_run, tmp_path):
    out = tmp_path / "two-workers"
    assert main(["eval", *ATTENTION, "--workers", "2", "--out", str(out)]) == 0
    one, two = (json.loads((folder / "results.json").read_text()) for folder in (attention_run, out))
    assert one == two


@pytest.mark.parametrize("changed, setting", [
    (["--attention-every", "4"], "--attention-every: evaluation has"),
    (["--attention-method", "integrated-gradients"], "--attention-method: evaluation has"),
])
def test_resume_with_other_attention_settings_is_refused(attention_run, tmp_path, capsys, changed, setting):
    out = tmp_path / "copy"
    shutil.copytree(attention_run, out)
    (out / "episodes" / "summer" / "p0-100001.json").unlink()  # one episode left to fly
    args = ATTENTION[:-2] + changed if changed[0] == "--attention-every" else ATTENTION + changed
    assert main(["eval", *args, "--workers", "1", "--out", str(out), "--resume"]) == 2
    error = capsys.readouterr().err
    assert "started with other settings" in error and setting in error
    assert not (out / "episodes" / "summer" / "p0-100001.json").exists()


def test_attention_needs_a_policy_pilot(tmp_path, capsys):
    out = tmp_path / "expert"
    assert main(["eval", "--pilot", "expert", "--attention", "--out", str(out)]) == 2
    assert "none of the pilots (expert) is one (the expert and exported bundles have no saliency)" in (
        capsys.readouterr().err)
    assert not out.exists()


def test_resume_with_other_pilots_names_the_pilots_not_attention(attention_run, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(attention_run, out)
    assert main(["eval", "--pilot", "expert", "--out", str(out), "--resume"]) == 2
    error = capsys.readouterr().err
    assert "was started with pilots pretrained, expert, not expert" in error and "--attention" not in error


@pytest.mark.parametrize("flags, flag", [(["--attention-every", "5"], "--attention-every"),
                                         (["--attention-method", "integrated-gradients"], "--attention-method")])
def test_attention_flags_without_attention_are_refused(tmp_path, capsys, flags, flag):
    out = tmp_path / "out"
    assert main(["eval", "--pilot", "pretrained", *flags, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert f"{flag} must come with --attention" in error and "add --attention" in error
    assert error.count("\n") == 1 and not out.exists()


def test_the_interval_flown_is_recorded_and_method_names_are_normalised():
    from navigator.evaluation.settings import EvalSettings

    assert EvalSettings(attention=True).attention_every == 5
    ig = EvalSettings(attention=True, attention_method=" Integrated Gradients")
    assert (ig.attention_method, ig.attention_every) == ("integrated-gradients", 30)
    assert EvalSettings(attention=True, attention_method="INTEGRATED_GRADIENTS", attention_every=7).attention_every == 7
    assert EvalSettings().attention_every is None  # no attention: no interval


def test_resume_accepts_the_default_interval_typed_and_old_folders_that_left_it_unset(tmp_path, capsys):
    out = tmp_path / "default"
    command = ["eval", "--pilot", "pretrained", "--suites", "summer", "--episodes", "1", "--max-seconds", "0.2",
               "--attention", "--workers", "1", "--out", str(out)]
    assert main(command) == 0
    recorded = json.loads((out / "eval.json").read_text())
    assert recorded["settings"]["attention_every"] == 5  # the interval flown, not None
    assert main(["eval", "--out", str(out), "--resume", "--attention-every", "5"]) == 0
    assert main(["eval", "--out", str(out), "--resume", "--attention-every", "4"]) == 2
    assert "--attention-every: evaluation has" in capsys.readouterr().err
    recorded["settings"]["attention_every"] = None  # as eval.json recorded it before the interval was filled in
    del recorded["sha256"]  # (and before checksums: version 1)
    recorded["version"] = 1
    (out / "eval.json").write_text(json.dumps(recorded))
    assert main(["eval", "--out", str(out), "--resume"]) == 0
    assert main(["eval", "--out", str(out), "--resume", "--attention-every", "5"]) == 0
