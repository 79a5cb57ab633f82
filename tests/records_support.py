"""For tests that damage a JSON record navigator wrote (run.json, eval.json, policy.json) in a copy of its folder."""

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any


def edited_copy(folder: Path, to: Path, record: str, edit: Callable[[Any], None]) -> Path:
    """A copy of `folder` at `to` whose JSON file `record` was changed in place by `edit`."""
    shutil.copytree(folder, to)
    document = json.loads((to / record).read_text())
    edit(document)
    (to / record).write_text(json.dumps(document))
    return to
