"""Files the system will not let the user read: every command says which file and what to do, exits 2, and shows no
traceback (a permission problem is not damage, and is not a bug). The commands run in a child process without the
capabilities that let root read any file, so the refusal is the real one a user meets."""

import os
import shutil
import subprocess
import sys

import pytest

from navigator.cli import main
from navigator.dataset import Dataset

# Root reads any file: drop that for the child (setpriv is util-linux's, on every Debian system).
WITHOUT_OVERRIDE = (["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                     "--inh-caps=-dac_override,-dac_read_search"] if os.geteuid() == 0 else [])


def navigator(*args, cwd):
    result = subprocess.run([*WITHOUT_OVERRIDE, sys.executable, "-m", "navigator", *map(str, args)], cwd=cwd,
                            capture_output=True, text=True, env={**os.environ, "COLUMNS": "1000"}, timeout=300)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("access")
    assert main(["collect", "--out", str(root / "demos"), "--episodes", "3", "--max-seconds", "2",
                 "--workers", "1"]) == 0
    assert main(["train", "--data", str(root / "demos"), "--out", str(root / "run"), "--epochs", "1",
                 "--batch-size", "2"]) == 0
    assert main(["eval", "--pilot", "expert", "--suites", "summer", "--episodes", "1", "--max-seconds", "1",
                 "--out", str(root / "eval")]) == 0
    assert main(["export", "--checkpoint", "pretrained", "--out", str(root / "bundle"), "--verify-episodes", "1"]) == 0
    return root


@pytest.mark.parametrize("command", ["collect-resume", "data-check", "train", "train-extend", "fly",
                                     "extend-best", "resume-record", "eval-record", "bundle", "config", "manifest"])
def test_an_unreadable_file_is_named_with_the_way_out(trained, tmp_path, command):
    for name in ("demos", "run", "eval", "bundle"):
        shutil.copytree(trained / name, tmp_path / name)
    (tmp_path / "recipe.yaml").write_text("data: [demos]\nout: new\nepochs: 1\n")
    episode = Dataset.open(tmp_path / "demos").episode_path(Dataset.open(tmp_path / "demos").entries[1])
    args, path = {  # the one file made unreadable for each command
        "collect-resume": (["collect", "--out", "demos", "--resume", "--workers", "1"], episode),
        "data-check": (["data", "check", "demos"], episode),
        "train": (["train", "--data", "demos", "--out", "new", "--epochs", "1"], episode),
        "train-extend": (["train", "--out", "run", "--extend", "--epochs", "2"],
                         tmp_path / "run" / "last.pt"),
        "fly": (["fly", "--pilot", "run/best.pt", "--episodes", "1"], tmp_path / "run" / "best.pt"),
        # read again only after training: refused before it
        "extend-best": (["train", "--out", "run", "--extend", "--epochs", "2"], tmp_path / "run" / "best.pt"),
        # records: what the system refused, not "damaged, start over"
        "resume-record": (["train", "--out", "run", "--resume"], tmp_path / "run" / "run.json"),
        "eval-record": (["eval", "--out", "eval", "--resume"], tmp_path / "eval" / "eval.json"),
        "bundle": (["fly", "--pilot", "bundle", "--episodes", "1"], tmp_path / "bundle" / "policy.json"),
        "config": (["train", "--config", "recipe.yaml"], tmp_path / "recipe.yaml"),
        "manifest": (["collect", "--out", "demos", "--resume"], tmp_path / "demos" / "manifest.json"),
    }[command]
    path.chmod(0)
    code, said = navigator(*args, cwd=tmp_path)
    named = str(path.relative_to(tmp_path))
    assert code == (1 if command == "data-check" else 2), said  # check's verdict is its own exit status
    assert "Traceback" not in said and "damaged" not in said and named in said
    assert "permission denied" in said.lower() and ("give this user" in said or "read access" in said)
    path.chmod(0o644)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("saved", [False, True])
def test_a_full_disk_names_the_folder_and_how_to_go_on(tmp_path, capsys, monkeypatch, saved):
    """Out of space part-way, a command that saved some of its work continues it with --resume (running it again
    as it was would be refused: the folder is not empty); one that saved nothing runs again. The system's refusal
    is raised where the dataset writer lists the second episode (or, unsaved, where it creates the dataset)."""
    import errno

    from navigator.dataset import DatasetWriter

    add = DatasetWriter.add  # where the parent lists an episode its worker wrote
    stored = []

    def full_after_one(writer, entry):
        if stored:
            raise OSError(errno.ENOSPC, "No space left on device")
        stored.append(entry)
        add(writer, entry)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setenv("COLUMNS", "1000")
    if saved:
        monkeypatch.setattr(DatasetWriter, "add", full_after_one)
    else:
        monkeypatch.setattr(DatasetWriter, "create", full)
    out = tmp_path / "ds"
    assert main(["collect", "--out", str(out), "--episodes", "2", "--max-seconds", "0.5", "--workers", "1"]) == 2
    error = capsys.readouterr().err.strip()
    again = "rerun the same command with --resume to continue" if saved else "run it again"
    assert error == (f"navigator collect: error: {out}: no space left on device: free some space there (or choose an "
                     f"output folder on another disk) and {again}"), error
