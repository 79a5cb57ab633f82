"""The output folder of an evaluation: eval.json (the settings and pilots it was started with), one small JSON per
finished episode under episodes/ (written atomically as each episode ends, so an interrupted evaluation loses at most
the episodes in flight) and, at the end, results.json.

An existing non-empty folder is only touched with --resume, and only if its settings are the ones given.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from navigator.config import to_dict
from navigator.dataset.atomic import atomic_write_bytes
from navigator.errors import UserError, refuse_if_denied
from navigator.folder_lock import refuse_if_in_use
from navigator.evaluation.episodes import EpisodeRecord
from navigator.evaluation.results import EvalResults, PilotInfo
from navigator.evaluation.seeds import recorded_training_fields
from navigator.evaluation.settings import EpisodeKey, EvalSettings
from navigator.explain.methods import DEFAULT_EVERY
from navigator.json_fields import read_problem, with_checksum, without_checksum
from navigator.resume import (Continued, GivenAs, check_continuation, continuable_record, differences,
                              nothing_to_continue, recorded_paths, require_record_format)

FORMAT = "liquid-navigator/eval"
VERSION = 2  # 2: eval.json and its episode records carry checksums; 1, written before them, is still read
# Settings that folders written before them lack (their defaults are what such a folder flew).
ADDED_SETTINGS = ("sweeps", "sweep_levels", "sweep_base", "attention", "attention_method", "attention_every")


def write_json(path: Path, document: Any) -> None:
    """Write `document` atomically as indented JSON (the same data, in the same order, gives the same bytes)."""
    atomic_write_bytes(path, (json.dumps(document, indent=1, allow_nan=False) + "\n").encode())


def check_folder(out: Path, resume: bool, flag: str = "--resume") -> dict[str, Any] | None:
    """Refuse, cheaply and before any pilot is loaded, a folder that cannot be started in (not empty, without
    `resume`) or continued (with `resume`, given as `flag`: no readable eval.json of this format). Returns the
    recorded eval.json document when resuming (its fields sound, RECORD_FIELDS, and its checksum matching them),
    else None."""
    recorded_path = out / "eval.json"
    if not resume:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            refuse_if_in_use(out, "evaluation")
            raise UserError(f"{out} already exists and is not empty: pass --resume to continue the evaluation "
                            f"recorded there, or choose another --out")
        return None
    if not recorded_path.is_file():
        raise nothing_to_continue(out, flag, "evaluation", "eval.json")
    try:
        recorded = json.loads(recorded_path.read_text())
    except (OSError, ValueError) as error:
        refuse_if_denied(error)
        raise UserError(f"{flag}: cannot read {recorded_path} ({read_problem(error)}); start again in another "
                        f"--out") from None
    start_over = "start again in another --out"
    version = require_record_format(recorded, recorded_path, FORMAT, (1, VERSION), start_over, "file", flag)
    if not isinstance(recorded.get("settings"), dict) or not isinstance(recorded.get("pilots", []), list):
        raise UserError(f"{flag}: {recorded_path} records no settings (it is damaged); {start_over}")
    return continuable_record(recorded, RECORD_FIELDS, recorded_path, "evaluation",
                              "start the evaluation again in another --out", checksummed=version >= 2)


def with_added_settings(recorded: Any) -> Any:
    """Evaluation settings recorded before some settings existed, with those settings' defaults filled in (a
    folder from before sweeps or attention flew none; one from before the attention interval was recorded flew the
    method's default), so that resuming it compares like with like."""
    if not isinstance(recorded, dict):
        return recorded
    filled = {**{name: value for name, value in to_dict(EvalSettings()).items() if name in ADDED_SETTINGS}, **recorded}
    if filled.get("attention") is True and filled.get("attention_every") is None:  # recorded before the interval
        filled["attention_every"] = DEFAULT_EVERY.get(filled.get("attention_method"))  # was: the method's default
    return filled


def in_recorded_spelling(recorded: dict[str, Any], settings: EvalSettings) -> EvalSettings:
    """`settings` with the pilots the evaluation `recorded` was started with, where the user named the same files
    another way ("./r3/best.pt" for "r3/best.pt", "b/" for "b"): those are the same pilots, and the recorded
    spelling keys its episode records."""
    pilots = recorded_paths(recorded.get("settings", {}).get("pilots"), settings.pilots)
    return settings if pilots is None else replace(settings, pilots=pilots)


def check_continued(out: Path, recorded: dict[str, Any], settings: EvalSettings, extend: bool = False,
                    given_as: GivenAs | None = None) -> bool:
    """Refuse continuing the evaluation whose eval.json document is `recorded` with other pilots or settings than
    it was started with, before the pilots are loaded (loading them checks seeds against their training, which would
    otherwise be blamed for the user's real mistake); with `extend` only more `episodes` may differ, and must.
    A refusal names the settings as `given_as` says the user gave them. Returns whether the episodes grow."""
    flag = "--extend" if extend else "--resume"
    recorded_settings = with_added_settings(recorded.get("settings"))
    pilots = recorded_settings.get("pilots") if isinstance(recorded_settings, dict) else None
    if isinstance(pilots, list) and pilots != list(settings.pilots):
        # given_as None: the evaluation of a comparison or learning curve, whose pilots are its runs' checkpoints
        fix = ("the study was moved or copied while unfinished (its evaluation names the checkpoints where they "
               "were); continue it where it was started, or start it over in another --out" if given_as is None else
               "continue it with the pilots it was started with (give no --pilot), or choose another --out")
        raise UserError(f"{flag}: {out} was started with pilots {', '.join(map(str, pilots))}, not "
                        f"{', '.join(settings.pilots)}; {fix}")
    found = differences(recorded_settings, to_dict(settings))
    if any(d.name == "attention" for d in found) and "attention_every" not in (given_as or GivenAs()).flags:
        # an interval the user did not give is the method's own, filled in because attention is asked for now
        found = [d for d in found if d.name != "attention_every"]
    if not (extend or found):
        return False
    # Only more worlds may be added: the recorded ones keep their seeds, so what was flown stays valid.
    holds = str(recorded_settings.get("episodes", "")) if isinstance(recorded_settings, dict) else ""
    return bool(check_continuation(found, lambda difference: difference.name == "episodes", extend, Continued(
        out, "evaluation", "eval.json", "worlds per suite", "--episodes", given_as=given_as or GivenAs(),
        holds=holds)))


# The fields of eval.json that continuing an evaluation reads (navigator.json_fields; PilotInfo.to_dict writes them).
RECORD_FIELDS = (("pilots", "list"), ("pilots[]", "mapping"), ("pilots[].spec", "text"),
                 ("pilots[].checkpoint_sha256", "text or null"), ("pilots[].training_seeds", "mapping or null"),
                 *recorded_training_fields("pilots[]"), ("videos", "optional non-negative integer"))


def open_folder(out: Path, settings: EvalSettings, pilots: tuple[PilotInfo, ...], recorded: dict[str, Any] | None,
                grown: bool = False, videos: int = 0) -> None:
    """Start a new evaluation in `out` (`recorded` None), or continue the one whose eval.json document is
    `recorded` (read by `check_folder`, its settings checked by `check_continued`) with the same pilot checkpoints,
    byte for byte; `grown`: record the settings' larger `episodes` in eval.json. `videos` (failures filmed per suite
    and pilot, not a setting of the results) is recorded too, so that a resumed evaluation films what the interrupted
    one would."""
    document = {"format": FORMAT, "version": VERSION, "settings": to_dict(settings),
                "pilots": [p.to_dict() for p in pilots], "videos": videos}
    if recorded is None:
        (out / "episodes").mkdir(parents=True, exist_ok=True)
        write_json(out / "eval.json", with_checksum(document))
        return
    was = recorded["pilots"]
    if [p["spec"] for p in was] != list(settings.pilots):
        raise UserError(f"{out / 'eval.json'} lists other pilots in 'pilots' than in 'settings': it was edited or "
                        f"damaged; start again in another --out")
    for before, now in zip(was, pilots):
        if before.get("checkpoint_sha256") != now.checkpoint_sha256:
            raise UserError(f"pilot {now.spec} changed since the evaluation in {out} started (its checkpoint's sha256 "
                            f"differs): restore it, or evaluate it in another --out")
    if grown or recorded.get("videos", 0) != videos:
        # A folder of version 1 (before checksums) stays one: a checksum added now would vouch for edits made since.
        write_json(out / "eval.json", with_checksum(document) if recorded["version"] >= 2 else {**document,
                                                                                                  "version": 1})
    (out / "episodes").mkdir(exist_ok=True)


def episode_path(out: Path, settings: EvalSettings, key: EpisodeKey) -> Path:
    """out/episodes/SUITE/pPILOT-SEED.json (PILOT: the pilot's index in the settings, which eval.json fixes; SUITE a
    sweep level's too, e.g. summer@noise=8)."""
    return out / "episodes" / settings.flown_suites[key.suite] / f"p{key.pilot}-{key.seed}.json"


def read_finished(out: Path, settings: EvalSettings
                  ) -> tuple[dict[EpisodeKey, EpisodeRecord], list[Path], list[EpisodeKey]]:
    """The episodes already recorded in `out`; the episode files that are damaged: unreadable, or recording another
    pilot, suite or seed than their name says (those episodes are flown again, and the caller says so); and the
    finished episodes whose file is damaged (to write again from their record). An episode whose file is missing or
    damaged but which `out`'s results.json holds counts as finished: a report kept without its episodes/ folder (a
    committed one, say) can still be extended."""
    finished, damaged = {}, {}
    checksummed = _version(out) >= 2  # its episode records carry checksums: one without was edited
    for key in settings.keys():
        path = episode_path(out, settings, key)
        try:
            record = _checked_record(json.loads(path.read_text()), checksummed)
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError) as error:
            refuse_if_denied(error)
            damaged[key] = path
            continue
        if (record.pilot, record.suite, record.seed) != (settings.pilots[key.pilot], settings.flown_suites[key.suite],
                                                         key.seed):
            damaged[key] = path
            continue
        finished[key] = record
    missing = [key for key in settings.keys() if key not in finished]
    unreadable = []
    if missing and (out / "results.json").is_file():
        reported = _reported_episodes(out / "results.json")
        if reported is None:  # said, as a damaged episode record is: the episodes it held are flown again
            unreadable.append(out / "results.json")
        for key in missing:
            record = (reported or {}).get((settings.flown_suites[key.suite], settings.pilots[key.pilot], key.seed))
            if record is not None:
                finished[key] = record
    return (finished, [path for key, path in damaged.items() if key not in finished] + unreadable,
            [key for key in damaged if key in finished])


def damaged_note(out: Path, damaged: list[Path], remedy: str = "flying again") -> str:
    """What to tell the user about the damaged episode files (and results.json) `read_finished` found in `out`, and
    what is done about them (`remedy`)."""
    first = damaged[0].relative_to(out).as_posix()
    which = first if len(damaged) == 1 else f"{len(damaged)} records, the first {first},"
    return (f"{out}: {which} could not be read, does not match its sha256, or records another episode than its name "
            f"says; {remedy}")


def _reported_episodes(path: Path) -> dict[tuple[str, str, int], EpisodeRecord] | None:
    """The episodes of a results.json by (suite, pilot, seed); None if it cannot be read (they are flown again)."""
    try:
        episodes = json.loads(path.read_text())["episodes"]
        records = [EpisodeRecord.from_dict(episode) for episode in episodes]
    except (OSError, ValueError, KeyError, TypeError) as error:
        refuse_if_denied(error)
        return None
    return {(record.suite, record.pilot, record.seed): record for record in records}


def finished_results(out: Path, settings: EvalSettings) -> EvalResults | None:
    """The results.json in `out` when it is the finished evaluation of `settings`, read without the pilots'
    checkpoints (they may be gone: a report kept without its runs); None when it is missing, unreadable, of other
    settings or pilots (as `settings` names them) or short of an episode."""
    try:
        results = EvalResults.from_dict(json.loads((out / "results.json").read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        refuse_if_denied(error)
        return None
    flown = {(record.suite, record.pilot, record.seed) for record in results.episodes}
    wanted = {(settings.flown_suites[key.suite], settings.pilots[key.pilot], key.seed) for key in settings.keys()}
    return results if results.settings == settings and wanted <= flown else None


def write_episode(out: Path, settings: EvalSettings, key: EpisodeKey, record: EpisodeRecord) -> None:
    """OUT/episodes/...json: the record, with its checksum (`_checked_record` compares it on reading)."""
    path = episode_path(out, settings, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, with_checksum(record.to_dict()))


def _checked_record(document: Any, checksummed: bool) -> EpisodeRecord:
    """The record in an episode file's `document`; ValueError when its checksum does not match its fields, or is
    missing where the folder's version (`checksummed`) writes one (a record edited by hand, or damaged, in a way
    that still parses is not reported as flown)."""
    return EpisodeRecord.from_dict(without_checksum(document, required=checksummed))


def _version(out: Path) -> int:
    """The version of the evaluation in `out` as its eval.json records it (read and checked by `check_folder`)."""
    return json.loads((out / "eval.json").read_text())["version"]
