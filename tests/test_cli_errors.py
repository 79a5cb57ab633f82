"""Bad input to every command, from flags and from YAML files: exit code 2, one message naming the option as the user
gave it, no traceback, and nothing created or changed on disk. Every case fails before any work, so the table is
fast; a few real subprocesses prove the same for the installed entry point, and that `--json` keeps stdout to one
JSON document."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from navigator.cli import main
from navigator.config import MAX_SEED
from navigator.dataset import DatasetWriter
from navigator.dataset.synthetic import synthetic_episode

ROOT = Path(__file__).resolve().parents[1]
USER_TEXT = "the user's own notes\n"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    writer = DatasetWriter.create(tmp_path_factory.mktemp("errors") / "ds", image_size=(48, 64), recipe={})
    for seed in range(3):
        writer.write(synthetic_episode(seed, frames=12))
    return writer.path


def _user_files(root: Path) -> None:
    """What a user might have lying around where outputs go."""
    (root / "notes.txt").write_text(USER_TEXT)
    (root / "clip.mp4").write_text(USER_TEXT)
    (root / "demos.hdf5").write_text(USER_TEXT)
    (root / "full").mkdir()
    (root / "full" / "notes.txt").write_text(USER_TEXT)
    (root / "folder.mp4").mkdir()
    (root / "folder.pt").mkdir()


def _snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))}


# (command line, YAML text for {config} or None, what the message must say). {tmp}: a folder holding _user_files;
# {data}: a sound dataset; {config}: a YAML file with the given text.
CASES: list[tuple[str, str | None, str]] = [
    # fly: flags
    ("fly --seed -1", None, "--seed must be in [0, 2147483647], got -1"),
    ("fly --seed 9999999999", None, "--seed must be in [0, 2147483647], got 9999999999"),
    ("fly --seed x", None, "argument --seed: 'x' is not a whole number"),
    ("fly --episodes 0", None, "--episodes must be in [1, 1000000], got 0"),
    ("fly --max-seconds 0", None, "--max-seconds must be in (0, 3600], got 0.0"),
    ("fly --max-seconds -3", None, "--max-seconds must be in (0, 3600], got -3.0"),
    ("fly --max-seconds 1e300 --task follow", None, "--max-seconds must be in (0, 3600], got 1e+300"),
    ("fly --max-seconds nan --json", None, "--max-seconds must be a finite number, got nan"),
    ("fly --max-seconds inf", None, "--max-seconds must be a finite number, got inf"),
    # a limit under one camera step would end every episode before the policy acts; every flying command says so
    ("fly --max-seconds 0.001", None, "--max-seconds must be at least one camera step (0.03333 s at "),
    ("fly --config {config}", "scenario:\n  max_seconds: 0.04\n  camera: {rate_hz: 20}\n",
     "scenario.max_seconds in {config} must be at least one camera step (0.05 s at scenario.camera.rate_hz 20 Hz)"),
    ("eval --out {tmp}/e --pilot expert --max-seconds 0.01", None, "--max-seconds must be at least one camera step"),
    ("collect --out {tmp}/ds --max-seconds 0.01", None, "--max-seconds must be at least one camera step"),
    ("sitl --max-seconds 0.01", None, "--max-seconds must be at least one camera step (0.03333 s at --camera-rate 30"),
    # and the same upper bound (no flight lasts an hour), before any worker starts
    ("eval --out {tmp}/e --pilot expert --max-seconds 5000", None, "--max-seconds must be in (0, 3600], got 5000.0"),
    ("collect --out {tmp}/ds --max-seconds 5000", None, "--max-seconds must be in (0, 3600], got 5000.0"),
    ("fly --preset winter+", None, "--preset: preset 'winter+' has an empty part"),
    ("fly --preset spring", None, "--preset: unknown preset 'spring'"),
    ("fly --task race", None, "--task: unknown task 'race'; valid tasks are: fly-to-target, hike, follow"),
    ("fly --airframe f450", None, "--airframe: unknown airframe 'f450'; valid airframes are: x500, cf2x"),
    ("fly --pilot robot", None, "--pilot: unknown pilot 'robot'"),
    ("fly --pilot=", None, "--pilot: empty value; give a value, or omit --pilot"),
    ("fly --pilot {tmp}/gone.pt", None, "gone.pt does not exist"),
    ("fly --video {tmp}/clip.avi", None, "clip.avi must end in .mp4"),
    ("fly --video {tmp}/clip.mp4", None, "clip.mp4 already exists; pass --overwrite"),
    ("fly --video {tmp}/folder.mp4 --overwrite", None, "folder.mp4 is a folder"),
    ("fly --video {tmp}/missing/clip.mp4", None, "missing does not exist"),
    ("fly --video /proc/clip.mp4", None, "cannot write in folder /proc: /proc does not take new files"),
    ("fly --gui --bogus", None, "navigator fly: error: unrecognized arguments: --bogus (see 'navigator fly --help')"),
    # a sub-command's usage errors point at its own help page, which lists its options
    ("data check {tmp} --bogus", None, "navigator data check: error: unrecognized arguments: --bogus (see 'navigator "
                                       "data check --help')"),
    ("data info {tmp} --json --json", None, "navigator data info: error: --json given 2 times; give it once"),
    # options as spelt in full only: an abbreviation slipped past the refusal of a repeated option
    ("fly --ep 1 --episodes 2", None, "navigator fly: error: unrecognized arguments: --ep 1 (see 'navigator fly "
                                      "--help')"),
    ("data check {tmp} --js", None, "navigator data check: error: unrecognized arguments: --js"),
    # a mistyped option before a value is the cause, not the value read as a sub-command after it
    ("onboard --bundl {tmp}", None, "navigator onboard: error: unrecognized arguments: --bundl (see 'navigator "
                                    "onboard --help')"),
    ("data --jsn chec {tmp}", None, "navigator data: error: unrecognized arguments: --jsn (see"),
    ("onboard plo {tmp}", None, "argument [ACTION]: invalid choice: 'plo' (choose from 'plot')"),
    # a command's option given before its name: where it belongs
    ("data --json info {tmp}", None, "navigator data info: error: --json is an option of 'navigator data info': give "
                                     "it after 'navigator data info'"),
    ("--episodes 1 fly", None, "give a command's options after its name (navigator COMMAND OPTIONS)"),
    # what follows `--` is an argument, not an option in the wrong place; a flag takes no value, negative or not
    ("fly -- --episodes 1", None, "navigator fly: error: unrecognized arguments: -- --episodes 1"),
    ("fly --gui -5", None, "navigator fly: error: unrecognized arguments: -5"),
    ("fly --max-seconds -inf", None, "--max-seconds must be a finite number, got -inf"),
    ("eval --suites summer --out {tmp}/e --sweep noise --sweep-levels 1_0,2", None,
     "argument --sweep-levels: give comma-separated numbers such as 0,4,8, not '1_0,2': '1_0' is not a number"),
    ("export --checkpont {tmp}/x.pt --out {tmp}/b", None, "navigator export: error: unrecognized arguments: "
                                                          "--checkpont (see"),
    ("export --out {tmp}/b", None, "the following arguments are required: --checkpoint (see"),
    # a flag's number is read as a file's is: no underscores, spaces or exponents in whole numbers
    ("fly --seed 1_000", None, "navigator fly: error: argument --seed: '1_000' is not a whole number (write it as "
                               "1000)"),
    ("fly --episodes 1e3", None, "argument --episodes: '1e3' is not a whole number (write it as 1000)"),
    ("fly --episodes 5.0", None, "argument --episodes: '5.0' is not a whole number (write it as 5)"),
    ("fly --seed 2.5", None, "argument --seed: '2.5' is not a whole number (see"),
    # the whole number meant, exactly (1e25 is not a float's 10000000000000000905969664); none past 30 digits
    ("fly --seed 1e25", None, "'1e25' is not a whole number (write it as 10000000000000000000000000)"),
    ("fly --seed 0b10", None, "argument --seed: '0b10' is not a whole number (write it as 2)"),
    ("fly --seed 0xzz", None, "argument --seed: '0xzz' is not a whole number (see 'navigator fly --help')"),
    # hexadecimal read as a file reads it: 0x7FFFFFFF is the largest seed
    ("fly --seed 0x7FFFFFFF --episodes 2", None, "with --episodes 2 the last episode's seed would be 2147483648"),
    ("fly --max-seconds 0x3F00", None, "--max-seconds must be in (0, 3600], got 16128.0"),  # a number flag too
    ("fly --seed 1e99", None, "argument --seed: '1e99' is not a whole number (see"),
    # an empty number is refused as empty, as any option's value is, not as text that is not a number
    ("fly --seed=", None, "navigator fly: error: --seed: empty value; give a value, or omit --seed (see"),
    ("eval --out {tmp}/e --max-seconds=", None, "--max-seconds: empty value; give a value, or omit --max-seconds"),
    ("eval --suites summer --out {tmp}/e --sweep noise --sweep-levels 1,nan", None,
     "--sweep-levels (value 2) must be a finite number, got nan"),
    ("fly --max-seconds 1_0.5", None, "argument --max-seconds: '1_0.5' is not a number (write it as 10.5)"),
    ("eval --suites summer --workers 1_0", None, "argument --workers: '1_0' is not a whole number (write it as 10)"),
    ("data export {tmp} --format robomimic --out {tmp}/x.hdf5 --val-fraction 0_.5", None,
     "argument --val-fraction: '0_.5' is not a number"),
    # an option adapt does not have, whose value the optional `curve` would otherwise take
    ("adapt --data {tmp} --patience 3", None, "navigator adapt: error: unrecognized arguments: --patience (see "
                                              "'navigator adapt --help')"),
    ("adapt curvee", None, "navigator adapt: error: argument curve: invalid choice: 'curvee' (choose from 'curve')"),
    # fly: YAML
    ("fly --config {config}", "episodes: 0\n", "episodes in {config} must be in [1, 1000000], got 0"),
    ("fly --config {config}", "scenario:\n  max_seconds: .nan\n",
     "scenario.max_seconds in {config} must be a finite number, got nan"),
    ("fly --config {config}", "scenario:\n  preset: 'winter + '\n", "scenario.preset in {config}: preset 'winter + '"),
    ("fly --config {config}", "scenario:\n  camera:\n    rate_hz: 7\n",
     "scenario.camera.rate_hz in {config}: 7 Hz does not divide the physics rate"),
    ("fly --config {config}", "scenario:\n  camera:\n    fov_deg: 0\n",
     "scenario.camera.fov_deg in {config} must be in [10, 170], got 0.0"),
    ("fly --config {config}", "seed: 1\nepisodes: 2\nseed: 3\n",
     "line 3: duplicate key 'seed' (first given on line 1)"),
    ("fly --config {config}", "scenario: 5\n", "scenario in {config} must be a mapping, got 5"),
    ("train --config {config}", "data: demos\n", "data in {config} must be a list, got \"demos\" (a list of one is "
                                                 "written in brackets: data: [demos])"),
    ("fly --config {config} --preset wind", "scenario: [1]\n", "scenario in {config} must be a mapping"),
    ("fly --config {config}", "pilots: expert\n", "unknown setting pilots"),
    ("fly --config {tmp}/none.yaml", None, "none.yaml does not exist"),
    ("fly --config {tmp}/full", None, "config file {tmp}/full is a folder, not a YAML file"),
    ("fly --pilot {tmp}/folder.pt", None, "pilot checkpoint {tmp}/folder.pt is a folder, not a checkpoint file"),
    # seeds run from --seed over --episodes: the last one must be a valid seed too
    ("fly --seed 2147483647 --episodes 2", None, "--seed: with --episodes 2 the last episode's seed would be "
                                                 "2147483648, past the largest seed 2147483647; give --seed at most "
                                                 "2147483646, or --episodes at most 1"),
    ("fly --seed 2147000000 --episodes 1000000", None, "--seed: with --episodes 1000000 the last episode's seed "
                                                         "would be 2147999999"),
    # a count no run could fly is a typo, refused before its plan fills the memory
    ("fly --episodes 1000001", None, "--episodes must be in [1, 1000000], got 1000001"),
    ("eval --out {tmp}/e --pilot expert --episodes 100000000", None, "--episodes must be in [1, 1000000], got "
                                                                      "100000000"),
    ("collect --out {tmp}/ds --episodes 99999999999", None, "--episodes must be in [1, 1000000], got 99999999999"),
    ("sitl --episodes 2147483647", None, "--episodes must be in [1, 1000000], got 2147483647"),
    # and so is the whole plan: suites, sweep levels and pilots multiply, parts add up
    ("eval --out {tmp}/e --pilot expert --episodes 300000", None, "--episodes: plans 1,200,000 episodes in all (4 "
                                                                 "suites and sweep levels x 1 pilots x 300,000)"),
    ("collect --out {tmp}/ds --config {config}", "parts:\n  - {task: hike, episodes: 600000}\n"
     "  - {task: follow, episodes: 600000}\n", "parts in {config}: plan 1,200,000 episodes in all, past the "
                                               "1,000,000 one collection may plan"),
    ("fly --config {config}", "seed: 2147483000\nepisodes: 1000\n",
     "seed in {config}: with episodes 1000 the last episode's seed would be 2147483999, past the largest seed "
     "2147483647; give seed at most 2147482648, or episodes at most 648"),
    ("collect --out {tmp}/ds --seed 2147483647 --episodes 2", None, "--seed: with --episodes 2 the last episode's"),
    # A setting the file gives is named by its key there, one it lacks by the flag that adds it.
    ("eval --out {tmp}/e --config {config}", "attention_every: 5\n", "attention_every in {config} must come with "
     "--attention: it sets how often attention is measured; add --attention, or drop attention_every"),
    ("eval --out {tmp}/e --config {config}", "attention: true\npilots: [expert]\n", "attention (true in the config "
     "file) measures where a policy checkpoint looks, and none of the pilots (expert) is one (the expert and exported "
     "bundles have no saliency): add to pilots in the config file (or give --pilot) one that is pretrained or a .pt "
     "checkpoint, or set attention: false there"),
    ("collect --out {tmp}/ds --config {config}", "seed: 2147483640\nparts:\n  - {task: hike, episodes: 3}\n"
     "  - {task: follow, episodes: 9}\n", "seed in {config}: with parts[1].episodes 9 the last episode's seed would "
                                           "be 2147483648"),
    ("eval --out {tmp}/ev --seed 2147483647 --episodes 2", None, "--seed: with --episodes 2 the last episode's"),
    ("eval --out {tmp}/ev --seed 2147483648", None, "--seed must be in [0, 2147483647], got 2147483648"),
    ("train --data {data} --out {tmp}/run --dagger 2148", None, "--dagger must be at most 2147, got 2148"),
    ("train --config {config} --out {tmp}/run", "data: [DATA]\ndagger:\n  episodes: 1000001\n",
     "dagger.episodes in {config} must be in [1, 1000000]"),
    # extreme values whose meaning has a limit
    ("train --data {data} --out {tmp}/run --lr 1e9", None, "--lr must be in (0, 1], got 1000000000.0"),
    ("train --config {config} --out {tmp}/run", "data: [DATA]\naugment:\n  noise_std: 1000\n",
     "augment.noise_std in {config} must be in [0, 255], got 1000.0"),
    ("train --config {config} --out {tmp}/run", "data: [DATA]\nwindow: 8\nstride: 9\n",
     "stride in {config} must be at most window (8), got 9"),
    ("fly --preset winter+autumn+night", None, "--preset: preset 'winter+autumn+night' names 2 seasons (winter, "
                                               "autumn)"),
    ("collect --out {tmp}/ds --preset Summer+WINTER", None, "at most one season (summer, autumn, winter)"),
    # names are normalised (the error comes from another flag), paths are not
    ("fly --task HIKE --airframe CF2X --pilot EXPERT --preset Winter+WIND --episodes 0", None,
     "--episodes must be in [1, 1000000], got 0"),
    ("train --data {data} --out {tmp}/run --model LSTM --epochs 0", None, "--epochs must be in [1, 100000], got 0"),
    ("train --data {data} --out {tmp}/run --model LSTMX", None, "--model: unknown model 'LSTMX'"),
    ("eval --out {tmp}/ev --pilot Expert --pilot expert", None, "--pilot: expert given more than once: give each once"),
    # --resume and --extend contradict each other
    ("collect --out {tmp}/ds --resume --extend", None, "argument --extend: not allowed with argument --resume"),
    ("train --data {data} --out {tmp}/run --resume --extend", None,
     "argument --extend: not allowed with argument --resume"),
    ("train --out {tmp}/full --resume", None, "--resume: {tmp}/full holds no training run to continue (no run.json)"),
    # a folder of files and no record: --resume has nothing to continue, so it is not suggested
    ("train --data {data} --out {tmp}/full", None, "--out {tmp}/full is not empty and holds no training run to "
                                                   "continue (no run.json): choose a new or empty folder"),
    # a folder of files: without the flag it is refused as not empty, so the way to start is another folder
    ("train --out {tmp}/full --resume", None, "or drop --resume and choose a new or empty --out to start one"),
    ("eval --out {tmp}/full --resume", None, "holds no evaluation to continue (no eval.json); give the evaluation's "
                                             "folder as --out, or drop --resume and choose a new or empty --out"),
    # a folder that does not exist is named as such: a misspelt name is the likelier mistake
    ("train --out {tmp}/nowhere --resume", None, "--resume: {tmp}/nowhere does not exist, so there is no training run "
                                                 "to continue; check the folder's name"),
    ("eval --out {tmp}/nowhere --extend --episodes 9", None, "--extend: {tmp}/nowhere does not exist, so there is no "
                                                             "evaluation to continue"),
    ("collect --out {tmp}/nowhere --resume", None, "--resume: {tmp}/nowhere does not exist, so there is no dataset"),
    ("adapt --out {tmp}/nowhere --resume", None, "--resume: {tmp}/nowhere does not exist, so there is no adaptation"),
    # collect
    ("collect --out {tmp}/ds --dart-noise nan", None, "--dart-noise must be a finite number, got nan"),
    ("collect --out {tmp}/ds --dart-noise -1", None, "--dart-noise must be in [0, 1], got -1.0"),
    ("collect --out {tmp}/ds --dart-noise 1e9", None, "--dart-noise must be in [0, 1], got 1000000000.0"),
    ("collect --out {tmp}/ds --episodes 0", None, "--episodes must be in [1, 1000000], got 0"),
    ("collect --out {tmp}/ds --workers -2", None, "--workers must be"),
    # one limit on worker processes for every command that starts them
    ("compare --out {tmp}/cmp --resume --workers 999", None, "--workers must be in [0, 256]"),
    ("adapt curve --out {tmp}/cmp --resume --workers 999", None, "--workers must be in [0, 256]"),
    ("adapt curve --out {tmp}/cmp --res", None, "unrecognized arguments: --res"),
    ("collect --out {tmp}/ds --seed -1", None, "--seed must be in [0, "),
    ("collect --out {tmp}/ds --max-seconds nan", None, "--max-seconds must be a finite number"),
    ("collect --out {tmp}/ds --preset winter+", None, "--preset: preset 'winter+' has an empty part"),
    ("collect --out {tmp}/ds --task race", None, "--task: unknown task 'race'"),
    ("collect --out {tmp}/ds --airframe f450", None, "--airframe: unknown airframe 'f450'"),
    ("collect --out {tmp}/notes.txt", None, "--out {tmp}/notes.txt is a file, not a folder"),
    ("collect --out {tmp}/full", None, "--out {tmp}/full is not empty"),
    ("collect --out /proc/ds", None, "cannot write in folder /proc"),
    ("collect --out {tmp}/ds --config {config}", "parts:\n  - {task: hike, episodes: 0}\n",
     "parts[0].episodes in {config} must be in [1, 1000000], got 0"),
    ("collect --out {tmp}/ds --config {config}", "dart_noise: .inf\n", "dart_noise in {config} must be a finite"),
    ("collect --out {tmp}/ds --config {config}", "parts:\n  - {task: hike, preset: winter+}\n",
     "parts[0].preset in {config}: preset 'winter+'"),
    ("collect --out {tmp}/ds --config {config}",
     "parts:\n  - {task: hike, preset: 'winter + wind'}\n  - {task: hike, preset: winter+wind}\n",
     "parts in {config}: give hike in winter+wind in more than one part: merge them into one"),
    ("collect --out {tmp}/ds --config {config}", "parts:\n  - {task: hike, task: follow}\n", "duplicate key 'task'"),
    ("collect --out {tmp}/ds --config {config}", "pilot: robot\n", "pilot in {config}: unknown pilot 'robot'"),
    # train
    ("train --data {data} --out {tmp}/run --lr nan", None, "--lr must be a finite number, got nan"),
    ("train --data {data} --out {tmp}/run --lr 0", None, "--lr must be in (0, 1], got 0.0"),
    ("train --data {data} --out {tmp}/run --epochs 0", None, "--epochs must be in [1, 100000], got 0"),
    ("train --data {data} --out {tmp}/run --batch-size -4", None, "--batch-size must be at least 1"),
    ("train --data {data} --out {tmp}/run --dagger -1", None, "--dagger must be >= 0, got -1"),
    ("train --data {data} --out {tmp}/run --model transformer", None, "--model: unknown model 'transformer'"),
    ("train --data {data} --out {tmp}/notes.txt", None, "--out {tmp}/notes.txt is a file, not a folder"),
    ("train --data {data} --out {tmp}/full", None, "--out {tmp}/full is not empty"),
    ("train --data {tmp}/nothing --out {tmp}/run", None, "--data: {tmp}/nothing: no such dataset folder"),
    ("train --config {config} --out {tmp}/run", "data: [{tmp}/nothing]\n",
     "data in {config}: {tmp}/nothing: no such dataset folder"),
    ("train --out {tmp}/run", None, "no training data"),
    ("train --config {config} --out {tmp}/run", "data: [DATA]\nlr: .nan\n", "lr in {config} must be a finite number"),
    ("train --config {config} --out {tmp}/run", "data: [DATA]\naugment:\n  noise_std: .inf\n",
     "augment.noise_std in {config} must be a finite number"),
    ("train --config {config} --out {tmp}/run", "data: [DATA]\nval_fraction: 1\n",
     "val_fraction in {config} must be in (0, 1), got 1.0"),
    ("train --config {config} --out {tmp}/run", "data: [DATA]\ncollect:\n  parts:\n    - {preset: x}\n",
     "collect.parts[0].preset in {config}: unknown preset 'x'"),
    ("train --config {config}", "data: [DATA]\nout: {tmp}/notes.txt\n", "out in {config}: {tmp}/notes.txt is a file"),
    # data
    ("data info {tmp}/nothing", None, "{tmp}/nothing: no such dataset folder"),
    ("data check {tmp}/nothing --json", None, "{tmp}/nothing: no such dataset folder"),
    ("data frobnicate {data}", None, "invalid choice: 'frobnicate'"),
    ("data preview {data} --out {tmp}/sheet.png --episodes 0", None, "--episodes must be in [1, 1000], got 0"),
    ("data preview {data} --out {tmp}/clip.mp4", None, "clip.mp4 already exists; pass --overwrite"),
    ("data preview {data} --out {tmp}/folder.mp4 --overwrite", None, "folder.mp4 is a folder"),
    ("data preview {data} --out {tmp}/missing/sheet.png", None, "missing does not exist"),
    ("data preview {data} --out {tmp}/sheet.gif", None, "--out {tmp}/sheet.gif must end in .png or .mp4"),
    ("data export {data} --format robomimic --out {tmp}/x.hdf5 --val-fraction 2", None,
     "--val-fraction must be in [0, 1), got 2.0"),
    ("data export {data} --format robomimic --out {tmp}/x.hdf5 --val-fraction nan", None,
     "--val-fraction must be a finite number, got nan"),
    ("data export {data} --format robomimic --out {tmp}/x.hdf5 --split-seed -1", None,
     "--split-seed must be in [0, 2147483647], got -1"),
    ("data export {data} --format robomimic --out {tmp}/notes.txt", None, "notes.txt must end in .hdf5 or .h5"),
    ("data export {data} --format robomimic --out {tmp}/demos.hdf5", None, "demos.hdf5 already exists"),
    ("data export {data} --format robomimic --out {tmp}/full --overwrite", None, "full is a folder"),
    ("data export {data} --format robomimic --out /proc/x.hdf5", None, "cannot write in folder /proc"),
    ("data export {data} --format hdf5 --out {tmp}/x.hdf5", None, "invalid choice: 'hdf5'"),
    # export: every option checked as fly checks its own, before the checkpoint is read or anything flies
    ("export --checkpoint pretrained --out {tmp}/b --seed -5 --verify-episodes 1", None,
     "--seed must be in [0, 2147483647], got -5"),
    ("export --checkpoint pretrained --out {tmp}/b --seed 99999999999", None,
     "--seed must be in [0, 2147483647], got 99999999999"),
    ("export --checkpoint pretrained --out {tmp}/b --seed 2147483647 --verify-episodes 2", None,
     "--seed: with --verify-episodes 2 the last episode's seed would be 2147483648, past the largest seed"),
    ("export --checkpoint pretrained --out {tmp}/b --verify-episodes 0", None,
     "--verify-episodes must be in [1, 100], got 0"),
    ("export --checkpoint pretrained --out {tmp}/b --verify-episodes 101", None,
     "--verify-episodes must be in [1, 100], got 101"),
    ("export --checkpoint pretrained --out {tmp}/b --task moonwalk", None, "--task: unknown task 'moonwalk'"),
    ("export --checkpoint pretrained --out=", None, "--out: empty value; give a value (see"),
    # an empty value is refused for every option and argument (a path would become the current folder)
    ("collect --out= --episodes 1", None, "--out: empty value; give a value (see"),  # required: no default to take
    ("train --data {data} --out=", None, "--out: empty value; give a value, or omit --out"),
    ("train --data {data} --out {tmp}/run --model=", None, "--model: empty value"),
    ("export --checkpoint pretrained --out .", None, "--out must name the bundle's own folder, e.g. bundles/NAME, got "
                                                     "'.' (the current folder"),
    ("export --checkpoint pretrained --out {tmp}/.. --overwrite", None, "got '{tmp}/..' (the current folder, one "
                                                                        "above it or the root"),
    ("export --checkpoint pretrained --out / --overwrite", None, "got '/'"),
    ("export --checkpoint pretrained --out {tmp}/full --overwrite", None,
     "--out {tmp}/full exists and is not a bundle (no policy.json written by navigator export;"),
    ("export --checkpoint pretrained --out {tmp}/notes.txt --overwrite", None,
     "--out {tmp}/notes.txt exists and is not a bundle folder"),
    # without --overwrite, what is there is said first: --overwrite would not help
    ("export --checkpoint pretrained --out {tmp}/full", None,
     "--out {tmp}/full exists and is not a bundle (no policy.json written by navigator export; --overwrite replaces "
     "only a bundle)"),
    ("export --checkpoint pretrained --out {tmp}/notes.txt", None, "--out {tmp}/notes.txt exists and is not a bundle "
                                                                   "folder (--overwrite replaces only a bundle)"),
    # sitl: messages name the option as typed, never the field behind it
    ("sitl --max-seconds -1", None, "--max-seconds must be in (0, 3600], got -1.0"),
    ("sitl --max-seconds 1e300", None, "--max-seconds must be in (0, 3600], got 1e+300"),
    ("sitl --episodes 0", None, "--episodes must be in [1, 1000000], got 0"),
    ("sitl --seed -5", None, "--seed must be in [0, 2147483647], got -5"),
    ("sitl --seed 2147483647 --episodes 2", None, "--seed: with --episodes 2 the last episode's seed would be"),
    ("sitl --camera-width 0", None, "--camera-width must be in [8, 1024], got 0"),
    ("sitl --camera-height 2000", None, "--camera-height must be in [8, 1024], got 2000"),
    ("sitl --camera-fov nan", None, "--camera-fov must be a finite number, got nan"),
    ("sitl --camera-rate 0", None, "--camera-rate must be in [1, 240], got 0"),
    ("sitl --camera-rate 7", None, "--camera-rate: 7 Hz does not divide the physics rate 240 Hz"),
    ("sitl --camera-tilt 1e9", None, "--camera-tilt must be in [-90, 90], got 1000000000.0"),
    ("sitl --camera-quality 0", None, "--camera-quality must be in [1, 100], got 0"),
    ("sitl --setpoint-timeout 0", None, "--setpoint-timeout must be in (0, 60], got 0.0"),
    ("sitl --task-fov 120", None, "--task-fov must be at most --camera-fov (100)"),
    ("sitl --autopilot ardupilot --mavlink-local-port 5000", None, "--mavlink-local-port applies to PX4 only"),
    ("collect --out {tmp}/d --dart-near-target 2", None, "--dart-near-target must be in [0, 1], got 2.0"),
    # the camera's view given alone is named too, with the task's (default) value and both ways out
    ("sitl --camera-fov 60", None, "--task-fov must be at most --camera-fov (60), got 80: the policy's view is a crop "
                                   "of the stream; give a wider --camera-fov or a narrower --task-fov"),
    ("sitl --gcs-port 70000", None, "--gcs-port must be in [0, 65535], got 70000"),
    ("sitl --task race", None, "--task: unknown task 'race'"),
    # sitl: settings that contradict each other, refused before a socket is bound
    ("sitl --mavlink-port 15000 --mavlink-local-port 15000", None,
     "--mavlink-port 15000 is the vehicle's own UDP port (--mavlink-local-port 15000): it would send its MAVLink to "
     "itself"),
    ("sitl --mavlink-local-port 14540", None, "the default --mavlink-port 14540 is the vehicle's own UDP port "
                                              "(--mavlink-local-port 14540)"),
    ("sitl --gcs-port 14580", None, "--gcs-port 14580 is the vehicle's own UDP port (the default --mavlink-local-port "
                                    "14580)"),
    ("sitl --gcs-port 15000 --mavlink-port 15000", None, "--mavlink-port 15000 and --gcs-port 15000 are one port"),
    ("sitl --autopilot ardupilot --camera-port 5760", None,
     "the default --mavlink-port 5760 and --camera-port 5760 are one TCP port"),
    ("sitl --fault camera-stall:5:2 --max-seconds 1", None,
     "--fault camera-stall:5:2 starts at 5 s, when every episode has ended (--max-seconds 1), so it would never act"),
    ("sitl --task hike --fault mode-change:80", None, "(the hike task's own limit, 75 s)"),
    (f"deploy --bundle {ROOT}/policies/pretrained/bundles/fly-to-target --target pi@h --wheelhouse {{tmp}}/notes.txt "
     f"--dry-run", None, "--wheelhouse {tmp}/notes.txt: a file, not a folder; give a folder of wheels"),
    # no command writes into a dataset folder but collect into its own: data check would call it damage
    ("train --data {data} --out {data}/run --epochs 1", None, "--out {data}/run is inside the dataset {data}"),
    ("data preview {data} --out {data}/episodes/x.png", None, "--out {data}/episodes/x.png is inside the dataset "
                                                              "{data}"),
    ("data export {data} --format robomimic --out {data}/a.hdf5", None, "--out {data}/a.hdf5 is inside the dataset"),
    ("eval --pilot expert --episodes 1 --out {data}/eval", None, "--out {data}/eval is inside the dataset {data}"),
    ("collect --out {data}/more --episodes 1", None, "--out {data}/more is inside the dataset {data}"),
    ("fly --pilot expert --video {data}/episodes/clip.mp4", None, "--video {data}/episodes/clip.mp4 is inside the "
                                                                  "dataset"),
    # a flag of the command written into its file: named as the flag, not as a setting of the same name elsewhere
    ("compare --config {config}", "recipe: launch/train/fly_to_target.yaml\nevaluation: {workers: 2}\n",
     "evaluation: unknown setting workers; valid settings are airframe, attention"),
    ("compare --config {config}", "recipe: launch/train/fly_to_target.yaml\nevaluation: {workers: 2}\n",
     "(workers is not set in the file: give --workers on the command line)"),
    ("eval --config {config} --out {tmp}/e", "videos: 2\n", "(videos is not set in the file: give --videos on the "),
    ("train --config {config}", "data: [DATA]\nresume: true\n", "(resume is not set in the file: give --resume on "),
    ("collect --out {tmp}/ds --config {config}", "extend: true\n", "(extend is not set in the file: give --extend "),
    ("fly --config {config}", "gui: true\n", "(gui is not set in the file: give --gui on the command line)"),
    ("collect --out {tmp}/ds --config {config}", "out: {tmp}/other\n", "(out is not set in the file: give --out on "),
    ("adapt curve --config {config} --out {tmp}/c", "workers: 2\n", "(workers is not set in the file: give --workers"),
    ("sitl --host nonexistent.invalid", None,
     "cannot resolve host 'nonexistent.invalid' (Name or service not known): give --host an address of this machine"),
]


@pytest.mark.parametrize("command, yaml_text, message", CASES, ids=[f"{c} {y or ''}".strip() for c, y, _ in CASES])
def test_bad_input_exits_2_naming_the_option_and_leaves_nothing(command, yaml_text, message, dataset, tmp_path,
                                                                 capsys):
    user = tmp_path / "user"
    user.mkdir()
    _user_files(user)
    config = tmp_path / "recipe.yaml"
    names = {"tmp": str(user), "data": str(dataset), "config": str(config)}
    if yaml_text is not None:
        config.write_text(yaml_text.replace("DATA", str(dataset)).replace("{tmp}", str(user)))
    before = _snapshot(tmp_path)
    argv = [word.format(**names) for word in command.split()]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message.format(**names) in captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("argv, message", [
    (["collect", "--out", "", "--episodes", "1"], "--out: empty value; give a value (see"),
    (["data", "check", ""], "an empty argument was given; give a value"),
    (["data", "preview", "--out", "", "x"], "--out: empty value"),
])
def test_an_empty_value_is_refused_not_taken_as_the_current_folder(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err and not any(tmp_path.iterdir())


def _navigator(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "navigator.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          **kwargs)


@pytest.mark.parametrize("args, message", [
    (("fly", "--seed", "-1", "--json"), "--seed must be in [0, 2147483647], got -1"),
    (("data", "export", "nowhere", "--format", "robomimic", "--out", "x.hdf5", "--val-fraction", "2"),
     "--val-fraction must be in [0, 1)"),
    (("collect", "--out", "nowhere", "--dart-noise", "nan"), "--dart-noise must be a finite number"),
])
def test_the_installed_command_prints_one_line_and_exits_2(args, message):
    result = _navigator(*args)
    assert result.returncode == 2 and result.stdout == "" and message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_json_stdout_is_exactly_one_document_even_when_c_code_prints(tmp_path):
    """What pybullet does under --gui, done on purpose: printf from C, a raw write to fd 1 and a Python print."""
    script = (
        "import ctypes, os\n"
        "from navigator.commands.common import json_stdout, print_json\n"
        "with json_stdout(True):\n"
        "    ctypes.CDLL(None).printf(b'C chatter\\n')\n"
        "    os.write(1, b'raw chatter\\n')\n"
        "    print('python chatter')\n"
        "    print_json({'ok': True, 'distance': None})\n"
        "    ctypes.CDLL(None).printf(b'more C chatter\\n')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True, "distance": None}
    assert all(text in result.stderr for text in ("C chatter", "raw chatter", "python chatter", "more C chatter"))


def test_fly_json_is_one_document_without_the_pybullet_banner():
    result = _navigator("fly", "--json", "--pilot", "expert", "--episodes", "1", "--max-seconds", "0.5")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["episodes"] == 1
    assert "pybullet build time" not in result.stdout + result.stderr


# CI installs Xvfb (.ci/run), so there this always runs.
@pytest.mark.skipif(shutil.which("xvfb-run") is None and not os.environ.get("CI"), reason="needs xvfb-run")
def test_fly_gui_json_is_one_document_whatever_pybullets_window_prints():
    result = subprocess.run(["xvfb-run", "-a", sys.executable, "-m", "navigator.cli", "fly", "--gui", "--json",
                             "--pilot", "expert", "--episodes", "1", "--max-seconds", "0.5"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["summary"]["episodes"] == 1


def test_non_finite_numbers_never_reach_json(capsys):
    from navigator.commands.common import print_json

    with pytest.raises(ValueError):
        print_json({"distance": float("nan")})
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("command, defaults", [
    (["fly"], ["(default: 5)", "(default: the task's own limit)", "(default: summer)", "(default: pretrained)"]),
    (["collect"], ["(default: 0.1)", "(default: 10)", "(default: x500)"]),
    (["data", "export"], ["(default: 0.1)", "(default: 0)"]),
    (["export"], ["(default: 3)", "(default: 100000)", "(default: float32, no quantization)"]),
    (["sitl"], ["(default: 320)", "(default: 240)", "(default: 100)", "(default: 30)", "(default: 14550)",
                "(default: 100000)", "(default: the task's own limit)"]),
])
def test_help_shows_each_options_default(command, defaults, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere
    assert all(default in text for default in defaults)


def _recorded_dataset(out: Path) -> None:
    """A dataset whose manifest records a non-default recipe (hike in autumn, seeds 3 and 4) and holds both of its
    episodes: resuming it has nothing left to fly."""
    from navigator.collect import CollectConfig, CollectPart

    recipe = CollectConfig(parts=(CollectPart(task="hike", preset="autumn", episodes=2),), seed=3).recipe()
    writer = DatasetWriter.create(out, image_size=(48, 64), recipe=recipe)
    for seed in (3, 4):
        episode = synthetic_episode(seed, frames=12, task="hike", preset="autumn")
        # As if flown with the recipe: collect refuses to add episodes flown otherwise than a dataset's.
        episode.metadata.update(airframe=recipe["airframe"], camera=recipe["camera"])
        writer.write(episode)


def test_collect_resume_takes_the_recorded_recipe_so_no_flag_needs_retyping(tmp_path, capsys):
    out = tmp_path / ("a-long-folder-name-" * 4) / "ds"  # the summary passes 80 columns, where rich would wrap it
    _recorded_dataset(out)
    assert main(["collect", "--out", str(out), "--resume"]) == 0
    # Not a terminal: one line per line of output, whatever its length (logs and greps read it whole).
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"{out}: 2 episodes stored")
            and line.endswith(")")]
    # Flags given on top still must match: only the one that differs is named.
    assert main(["collect", "--out", str(out), "--resume", "--seed", "5"]) == 2
    error = capsys.readouterr().err
    assert "seed: dataset has 3, you gave 5" in error and "episodes" not in error and "task" not in error
    # A flag that sets a yes/no setting is named with it, since the values shown are the setting's.
    assert main(["collect", "--out", str(out), "--resume", "--drop-failed"]) == 2
    assert "--drop-failed (setting keep_failed): dataset has true, you gave false" in capsys.readouterr().err
    assert main(["collect", "--out", str(out), "--resume", "--keep-failed"]) == 0


def test_of_two_flags_of_one_setting_the_one_given_is_named(tmp_path, capsys):
    """--keep-failed and --drop-failed set one setting: a refusal names the one typed, not the other."""
    out = tmp_path / "dropping"
    assert main(["collect", "--out", str(out), "--episodes", "1", "--max-seconds", "1", "--drop-failed",
                 "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["collect", "--out", str(out), "--resume", "--keep-failed"]) == 2
    error = capsys.readouterr().err
    assert "--keep-failed: dataset has false, you gave true" in error and "--drop-failed" not in error


@pytest.mark.parametrize("flags, message", [
    (["--extend", "--episodes", "1"], "--extend only raises episodes: the dataset has 2, you gave 1"),
    (["--extend"], "--extend needs more episodes than {out} is set to (2); give a larger --episodes "
                   "than 2 to extend it, or pass --resume in place of --extend to resume it"),
])
def test_collect_extend_builds_on_the_recorded_recipe(flags, message, tmp_path, capsys):
    out = tmp_path / "ds"
    _recorded_dataset(out)
    before = _snapshot(tmp_path)
    assert main(["collect", "--out", str(out), *flags]) == 2
    assert message.format(out=out) in capsys.readouterr().err
    assert _snapshot(tmp_path) == before


def _recorded_run(out: Path, data: Path) -> None:
    """A finished 2-epoch training run's folder, as far as resuming reads it (run.json, progress.json)."""
    from navigator.config import to_dict
    from navigator.json_fields import with_checksum
    from navigator.training.config import TrainConfig
    from navigator.training.pipeline import RUN_FORMAT, RUN_RECORD, RUN_VERSION

    out.mkdir()
    config = TrainConfig(data=(str(data),), out=str(out), epochs=2, model="lstm", window=8, stride=4)
    (out / RUN_RECORD).write_text(json.dumps(with_checksum({"format": RUN_FORMAT, "version": RUN_VERSION,
                                                            "config": to_dict(config), "extensions": []})))
    (out / "progress.json").write_text(json.dumps({"completed": ["train"]}))


@pytest.mark.parametrize("flags, message", [
    (["--resume"], "is finished (all 2 epochs trained): nothing to resume"),  # every setting came from run.json
    # Named as typed (--seed), and without --config to drop, since none was given.
    (["--resume", "--seed", "1"], "was started with other settings: --seed: run has 0, you gave 1; drop the flags "
                                  "that differ (the run's settings are then taken from"),
    # A finished run: dropping --extend would resume nothing, so that is not offered.
    (["--extend", "--epochs", "1"], "--extend only raises epochs: the run has 2, you gave 1; give a larger --epochs "
                                    "than {out} has (the run is finished: nothing is left to resume)"),
    (["--extend", "--epochs", "2"], "--extend needs more epochs than {out} is set to (2); give a "
                                    "larger --epochs than 2 to extend it (the run is finished: nothing is left to "
                                    "resume)"),
])
def test_train_continues_with_the_settings_its_run_recorded(flags, message, dataset, tmp_path, capsys):
    out = tmp_path / "run"
    _recorded_run(out, dataset)
    before = _snapshot(tmp_path)
    assert main(["train", "--out", str(out), *flags]) == 2
    assert message.format(out=out) in capsys.readouterr().err
    assert _snapshot(tmp_path) == before


def test_eval_resume_takes_the_settings_eval_json_recorded(tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    (out / "eval.json").write_text(json.dumps({"format": "liquid-navigator/eval", "version": 1, "pilots": [],
                                               "settings": {"suites": ["spring"]}}))
    assert main(["eval", "--out", str(out), "--resume"]) == 2
    assert f"suites in {out / 'eval.json'}'s 'settings': unknown preset 'spring'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, last_line", [
    (["collect", "--out", "ds"], "navigator collect: interrupted; rerun the same command with --resume to continue"),
    (["train", "--out", "extended", "--extend"],
     "navigator train: interrupted; rerun the same command with --resume in place of --extend to continue"),
    # Stopped before its record said it was extended: --resume would refuse the larger count, --extend takes it.
    (["train", "--out", "run", "--extend"],
     "navigator train: interrupted before the extension was recorded; rerun the same command to extend it"),
    (["eval", "--out", "report", "--resume"], "navigator eval: interrupted; rerun the same command to continue"),
    (["collect", "--out", "nothing-saved"],
     "navigator collect: interrupted before anything was saved; rerun the same command to start again"),
    # A folder holding no record yet (the lock of a study just started, say) holds nothing to continue.
    (["compare", "--out", "locked"],
     "navigator compare: interrupted before anything was saved; rerun the same command to start again"),
    # A training run not yet recorded may have collected its recipe's demonstrations, which the rerun continues.
    (["train", "--out", "new-run"], "navigator train: interrupted before the run recorded itself; rerun the same "
                                    "command to start it again (any demonstrations its recipe collected are kept, "
                                    "and their collection continued)"),
    (["fly"], "navigator fly: interrupted"),
])
def test_ctrl_c_says_how_to_continue(argv, last_line, monkeypatch, capsys, tmp_path):
    import importlib

    def interrupt(args):
        if str(getattr(args, "out", "")) == "extended":  # the command recorded its extension, then was stopped
            Path("extended", "manifest.json").write_text('{"extended": true}')
        raise KeyboardInterrupt

    (tmp_path / "extended").mkdir()
    (tmp_path / "extended" / "manifest.json").write_text("{}")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / ".lock").write_text("")

    monkeypatch.chdir(tmp_path)
    for saved in ("ds", "run", "report"):  # what the interrupted command had written
        (tmp_path / saved).mkdir()
        (tmp_path / saved / "manifest.json").write_text("{}")
    monkeypatch.setattr(importlib.import_module(f"navigator.commands.{argv[0]}"), "run", interrupt)
    assert main(argv) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == last_line


def test_ctrl_c_of_a_recipe_whose_out_its_file_gives_says_to_resume_once_it_saved(dataset, tmp_path, monkeypatch,
                                                                                     capsys):
    """The run folder came from the recipe, not --out: a run stopped in a DAgger round (run.json, best.pt and last.pt
    written) was told "before anything was saved; rerun the same command", which refuses the non-empty folder."""
    import navigator.training.pipeline

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"data: [{dataset}]\nout: {tmp_path / 'run'}\nwindow: 8\nstride: 4\n")

    def stopped_after_saving(config, *args, **kwargs):
        Path(config.out).mkdir()
        (Path(config.out) / "run.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(navigator.training.pipeline, "run_recipe", stopped_after_saving)
    assert main(["train", "--config", str(recipe)]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "navigator train: interrupted; rerun the same command with --resume to continue")


class _InterruptedImport:
    """A module finder that raises KeyboardInterrupt when `name` is imported, as a Ctrl-C during its import would."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname, path=None, target=None):
        if fullname == self.name:
            raise KeyboardInterrupt
        return None


def test_ctrl_c_while_the_command_line_is_imported_ends_in_one_line(monkeypatch, capsys):
    import navigator.console

    monkeypatch.delitem(sys.modules, "navigator.cli")
    monkeypatch.setattr(sys, "meta_path", [_InterruptedImport("navigator.cli"), *sys.meta_path])
    assert navigator.console.main() == 130
    assert capsys.readouterr().err == navigator.console.INTERRUPTED_BEFORE_START + "\n"


def test_ctrl_c_while_the_command_line_is_read_ends_in_one_line(monkeypatch, capsys):
    import navigator.cli
    from navigator.console import INTERRUPTED_BEFORE_START

    def interrupt():
        raise KeyboardInterrupt

    monkeypatch.setattr(navigator.cli, "build_parser", interrupt)
    assert main(["fly", "--episodes", "1"]) == 130
    assert capsys.readouterr().err == INTERRUPTED_BEFORE_START + "\n"


# The console script, then SIGTERM and Ctrl-C as the process exits, once the command has finished.
STOPPED_WHILE_EXITING = """
import os, signal, sys
sys.argv = ["navigator", "data", "info", sys.argv[1]]
from navigator.console import main
status = main()
os.kill(os.getpid(), signal.SIGTERM)
os.kill(os.getpid(), signal.SIGINT)
sys.exit(status)
"""


def test_a_stop_after_the_command_finished_leaves_its_exit_status(tmp_path):
    """A SIGTERM or Ctrl-C in the instant after a command finished (its work saved, its last line printed) ended the
    process with -15, or -2 and a traceback, instead of the command's status."""
    from navigator.dataset import DatasetWriter
    from navigator.dataset.synthetic import synthetic_episode

    writer = DatasetWriter.create(tmp_path / "ds", image_size=(48, 64), recipe={})
    writer.write(synthetic_episode(0, frames=12))
    del writer
    done = subprocess.run([sys.executable, "-c", STOPPED_WHILE_EXITING, str(tmp_path / "ds")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, (done.returncode, done.stderr)
    assert "1 episode" in done.stdout


def test_a_stop_while_an_error_is_being_said_ends_the_command_without_a_traceback(monkeypatch, capsys):
    """torchrun stops every rank as soon as one ends: a rank saying why it ended (a UserError's line) was stopped
    mid-sentence, and the stop escaped as a KeyboardInterrupt traceback."""
    import builtins

    said = builtins.print

    def stopped_while_saying(*args, **kwargs):
        if kwargs.get("file") is sys.stderr and "error:" in " ".join(map(str, args)):
            raise KeyboardInterrupt
        said(*args, **kwargs)

    monkeypatch.setattr(builtins, "print", stopped_while_saying)
    try:
        status = main(["data", "info", "/nonexistent/dataset"])
    except KeyboardInterrupt:
        pytest.fail("the stop escaped the command as a KeyboardInterrupt")
    assert status == 130 and "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("command", ["collect", "train"])
def test_help_says_resume_and_extend_exclude_each_other_and_take_the_record(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "[--resume | --extend]" in text and "no flag needs retyping" in text


@pytest.mark.parametrize("argv, record, message", [
    (["train", "--data", "{d}", "--out", "{d}"], "manifest.json",
     "holds a dataset (manifest.json), not a training run"),
    (["collect", "--out", "{d}", "--resume"], "run.json", "holds a training run (run.json), not a dataset"),
    (["eval", "--pilot", "expert", "--out", "{d}", "--resume"], "manifest.json",
     "holds a dataset (manifest.json), not an evaluation"),
    # Continued from the record alone: the folder given holds another command's record, not none.
    (["train", "--out", "{d}", "--resume"], "adapt-curve.json",
     "--resume: {d} holds a learning curve (adapt-curve.json), not a training run to continue; give the training "
     "run's folder as --out"),
    (["adapt", "--out", "{d}", "--resume"], "eval.json",
     "--resume: {d} holds an evaluation (eval.json), not an adaptation to continue"),
    (["compare", "--out", "{d}", "--resume"], "eval.json",
     "--resume: {d} holds an evaluation (eval.json), not a comparison to continue; give the comparison's folder"),
    (["adapt", "curve", "--out", "{d}", "--resume"], "manifest.json",
     "--resume: {d} holds a dataset (manifest.json), not a learning curve to continue"),
    (["eval", "--out", "{d}", "--resume"], "compare.json", "holds a comparison (compare.json), not an evaluation"),
])
def test_one_commands_output_folder_is_never_taken_for_anothers(tmp_path, capsys, argv, record, message):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / record).write_text("{}")
    before = _snapshot(tmp_path)
    assert main([arg.format(d=folder) for arg in argv]) == 2
    assert message.format(d=folder) in capsys.readouterr().err
    assert _snapshot(tmp_path) == before


def test_adapt_curve_help_shows_the_curves_own_options(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["adapt", "curve", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith("usage: navigator adapt curve") and "--config" in text and "--workers" in text
    assert "--strategy" not in text and "--pilot" not in text  # the single adaptation's options are not the curve's
    with pytest.raises(SystemExit):
        main(["adapt", "--help"])
    assert "--strategy" in capsys.readouterr().out


@pytest.mark.parametrize("record, command, message", [
    ("run.json", "collect --out {f}/dagger/round-9 --episodes 1",
     "--out {f}/dagger/round-9 is inside {f}/dagger, which the training run in {f} fills itself (its DAgger "
     "roll-outs)"),
    ("eval.json", "fly --pilot expert --video {f}/videos/summer/clip.mp4",
     "--video {f}/videos/summer/clip.mp4 is inside {f}/videos, which the evaluation in {f} fills itself"),
    ("compare.json", "eval --pilot expert --episodes 1 --out {f}/eval/mine",
     "--out {f}/eval/mine is inside {f}/eval, which the comparison in {f} fills itself (its evaluations)"),
    ("adapt-curve.json", "train --data {data} --out {f}/runs/x --epochs 1",
     "--out {f}/runs/x is inside {f}/runs, which the learning curve in {f} fills itself (its adaptations)"),
    ("adapt-curve.json", "train --data {data} --out {f} --epochs 1",
     "--out {f} holds a learning curve (adapt-curve.json), not a training run"),
])
def test_no_output_lands_where_another_commands_folder_writes_itself(record, command, message, dataset, tmp_path,
                                                                     capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    folder = tmp_path / "theirs"
    folder.mkdir()
    (folder / record).write_text("{}")
    before = _snapshot(tmp_path)
    assert main([word.format(f=folder, data=dataset) for word in command.split()]) == 2
    assert message.format(f=folder) in capsys.readouterr().err
    assert _snapshot(tmp_path) == before


def test_the_rest_of_a_runs_folder_is_the_users(tmp_path):
    from navigator.commands.common import check_output_file, check_output_folder

    (tmp_path / "run.json").write_text("{}")
    assert check_output_folder(tmp_path / "eval-night", "--out", continuing=False, kind="evaluation")
    assert check_output_file(tmp_path / "clip.mp4", "--video", overwrite=False)


def test_deploy_help_says_a_dry_run_still_reads_the_target(capsys):
    """A dry run plans from what the target has, so it needs the target: --help must not let a user expect an
    offline rehearsal."""
    with pytest.raises(SystemExit):
        main(["deploy", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "the target is still read over SSH" in text and "must be reachable" in text


@pytest.mark.parametrize("command, kind, name, swap", [
    ("eval", "evaluation", "episodes", "file"), ("eval", "evaluation", "results.json", "folder"),
    ("collect", "dataset", "episodes", "file"), ("train", "training run", "tensorboard", "file"),
])
def test_a_file_where_a_continued_command_keeps_a_folder_or_the_reverse_is_refused_first(
        tmp_path, capsys, monkeypatch, command, kind, name, swap):
    """Put there by hand, it would make the command fail part-way, after it rewrote its records."""
    monkeypatch.setenv("COLUMNS", "1000")
    out = tmp_path / "out"
    made = {"eval": ["eval", "--pilot", "expert", "--episodes", "1", "--suites", "summer", "--max-seconds", "0.3",
                     "--workers", "1", "--out", str(out)],
            "collect": ["collect", "--out", str(out), "--episodes", "1", "--max-seconds", "0.3", "--workers", "1"]}
    if command == "train":
        data = tmp_path / "data"
        assert main(made["collect"][:2] + [str(data)] + made["collect"][3:]) == 0
        made["train"] = ["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--batch-size", "2"]
    assert main(made[command]) == 0
    shutil.rmtree(out / name) if (out / name).is_dir() else (out / name).unlink()
    (out / name).mkdir() if swap == "folder" else (out / name).write_text("mine")
    before = _snapshot(tmp_path)
    capsys.readouterr()
    continued = {"eval": ["--extend", "--episodes", "2"], "collect": ["--resume"], "train": ["--extend", "--epochs",
                                                                                                "2"]}[command]
    assert main([command, "--out", str(out), *continued]) == 2
    error = capsys.readouterr().err
    assert f"{out / name} is a {'file' if swap == 'file' else 'folder'} where the {kind} in {out} keeps" in error
    assert _snapshot(tmp_path) == before


# One bad setting per command that trains or flies a network, given alone: refused without importing torch (seconds
# of imports, before the message came; the pipelines are imported only after the checks).
@pytest.mark.parametrize("argv, message", [
    (["eval", "--pilot", "pretrained", "--episodes", "0", "--out", "OUT"], "--episodes must be in"),
    (["eval", "--pilot", "pretrained", "--suites", "spring", "--out", "OUT"], "unknown preset 'spring'"),
    (["train", "--epochs", "0", "--out", "OUT"], "--epochs must be in"),
    (["train", "--data", "NOWHERE", "--out", "OUT"], "no such dataset folder"),
    (["adapt", "--pilot", "pretrained", "--data", "NOWHERE", "--epochs", "0", "--out", "OUT"], "--epochs must be in"),
    (["adapt", "curve", "--out", "OUT"], "needs --config FILE"),
    (["compare", "--out", "OUT"], "give --config"),
    (["explain", "--seed", "-1", "--out", "OUT"], "--seed must be in"),
    # Continuing what is not there: the defaults that stand in for the missing record would import torch.
    (["eval", "--out", "OUT", "--resume"], "does not exist, so there is no evaluation to continue"),
    (["eval", "--out", "OUT", "--extend", "--episodes", "9"], "does not exist, so there is no evaluation to continue"),
    (["train", "--out", "OUT", "--resume"], "does not exist, so there is no training run to continue"),
    (["adapt", "--out", "OUT", "--resume"], "does not exist, so there is no adaptation to continue"),
    (["adapt", "curve", "--out", "OUT", "--resume"], "holds no learning curve to continue"),
    (["compare", "--out", "OUT", "--resume"], "holds no readable comparison record"),
])
def test_a_bad_setting_is_refused_before_torch_is_imported(tmp_path, argv, message):
    argv = [str(tmp_path / "out") if a == "OUT" else str(tmp_path / "nowhere") if a == "NOWHERE" else a for a in argv]
    probe = ("import sys\nfrom navigator.cli import main\ncode = main(sys.argv[1:])\n"
             "print('torch imported' if 'torch' in sys.modules else 'torch not imported')\nsys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stdout.strip() == "torch not imported"
    assert not (tmp_path / "out").exists()


def test_a_dataset_with_no_episodes_is_refused_before_anything_is_shown(tmp_path, capsys):
    empty = DatasetWriter.create(tmp_path / "empty", image_size=(48, 64), recipe={}).path
    recipe = tmp_path / "compare.yaml"
    recipe.write_text(f"models: [cfc-ncp]\nseeds: [0, 1]\nout: {tmp_path / 'cmp'}\ntrain:\n  data: [{empty}]\n"
                      f"evaluation: {{suites: [summer], episodes: 1}}\n")
    for argv, given in [(["train", "--data", str(empty), "--out", str(tmp_path / "run")], "--data:"),
                        (["adapt", "--pilot", "pretrained", "--data", str(empty), "--out", str(tmp_path / "run")],
                         "--data"),
                        (["compare", "--config", str(recipe)], f"data in {recipe}:")]:
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert captured.out == "", captured.out  # not even the first stage's line
        assert captured.err.strip().endswith(f"{given} {empty} holds no episodes; record some with navigator collect")
    assert not (tmp_path / "run").exists() and not (tmp_path / "cmp").exists()


@pytest.mark.parametrize("command", ["collect", "eval"])
def test_extending_past_the_largest_seed_blames_the_flag_not_the_record(tmp_path, capsys, monkeypatch, command):
    """The record holds what navigator accepted; the last seed passes MAX_SEED only with the larger --episodes."""
    monkeypatch.setenv("COLUMNS", "1000")
    out = tmp_path / "out"
    first = {"collect": ["collect", "--out", str(out)], "eval": ["eval", "--pilot", "expert", "--suites", "summer",
                                                                "--out", str(out)]}[command]
    assert main([*first, "--seed", str(MAX_SEED - 2), "--episodes", "2", "--max-seconds", "0.3",
                 "--workers", "1"]) == 0
    before = _snapshot(tmp_path)
    capsys.readouterr()
    assert main([command, "--out", str(out), "--extend", "--episodes", "10"]) == 2
    error = capsys.readouterr().err
    assert f"with --episodes 10 the last episode's seed would be {MAX_SEED + 7}" in error
    assert "--episodes at most 3" in error and "damaged" not in error and "never writes" not in error
    # With --seed changed too: the record is intact all the same (the change is what a continuation refuses).
    assert main([command, "--out", str(out), "--extend", "--episodes", "10", "--seed", str(MAX_SEED - 3)]) == 2
    error = capsys.readouterr().err
    assert "damaged" not in error and "never writes" not in error and "Traceback" not in error
    assert _snapshot(tmp_path) == before


def test_a_path_given_from_home_is_read_from_home_as_the_shell_would(dataset, tmp_path, monkeypatch, capsys):
    """The shell expands `~/x` but not `--out=~/x` or a quoted '~/x': navigator does, rather than making a folder
    named `~` in the current one."""
    monkeypatch.setenv("HOME", str(dataset.parent))
    monkeypatch.chdir(tmp_path)
    assert main(["data", "info", f"~/{dataset.name}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 3
    assert main(["data", "preview", f"~/{dataset.name}", "--episodes", "1", "--out=~/preview.png"]) == 0
    assert (dataset.parent / "preview.png").is_file() and not (tmp_path / "~").exists()


def test_no_sub_command_option_resets_the_same_option_given_before_it():
    """argparse lets a sub-command's default overwrite its parent's value of an option both have (`onboard --json
    plot` printed text): such an option sets its value only when given (default SUPPRESS)."""
    import argparse

    from navigator.cli import build_parser

    def shared(parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    ours = {a.dest for a in parser._actions if a.option_strings and a.dest != "help"}
                    yield from ((sub.prog, a.dest) for a in sub._actions
                                if a.option_strings and a.dest in ours and a.default is not argparse.SUPPRESS)
                    yield from shared(sub)

    assert list(shared(build_parser())) == []
