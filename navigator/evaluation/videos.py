"""Videos of failed episodes: which failures are filmed and where their videos go.

After an evaluation, `--videos K` flies the first K failed episodes (by seed) of each named suite and pilot again,
deterministically, filming the onboard camera beside a chase view into OUT/videos/SUITE/PILOT-SEED.mp4. Sweep levels
are not filmed. A video already there is kept, so a resumed evaluation films only what is missing.
"""

from __future__ import annotations

import re
from pathlib import Path

from navigator.evaluation.episodes import EpisodeRecord
from navigator.evaluation.settings import EpisodeKey, EvalSettings


def pilot_file_name(settings: EvalSettings, pilot: int) -> str:
    """A file-name-safe name of pilot number `pilot`: "expert", "pretrained", or for a checkpoint its index and
    its last two path parts ("p2-run-a-best" for runs/run-a/best.pt; the index keeps two checkpoints apart)."""
    spec = settings.pilots[pilot]
    if spec in ("expert", "pretrained"):
        return spec
    parts = [re.sub(r"[^A-Za-z0-9._-]+", "_", part) for part in Path(spec).with_suffix("").parts[-2:]]
    return "-".join([f"p{pilot}", *parts])


VIDEOS = "videos"  # OUT's folder of videos


def video_path(out: Path, settings: EvalSettings, key: EpisodeKey) -> Path:
    """OUT/videos/SUITE/PILOT-SEED.mp4."""
    suite = settings.flown_suites[key.suite]
    return out / VIDEOS / suite / f"{pilot_file_name(settings, key.pilot)}-{key.seed}.mp4"


def failures_to_film(settings: EvalSettings, records: dict[EpisodeKey, EpisodeRecord],
                     per_pair: int) -> list[EpisodeKey]:
    """The first `per_pair` failed episodes (lowest seeds) of every named suite and pilot, in report order."""
    chosen = []
    for suite in range(len(settings.suites)):
        for pilot in range(len(settings.pilots)):
            failed = [EpisodeKey(suite, pilot, seed) for seed in settings.seeds
                      if not records[EpisodeKey(suite, pilot, seed)].success]
            chosen += failed[:per_pair]
    return chosen


def filmed(out: Path, settings: EvalSettings, records: dict[EpisodeKey, EpisodeRecord]) -> list[EpisodeKey]:
    """Every failed episode of a named suite whose video is in `out` (whichever run filmed it), in report order."""
    return [key for key in failures_to_film(settings, records, settings.episodes)
            if video_path(out, settings, key).is_file()]
