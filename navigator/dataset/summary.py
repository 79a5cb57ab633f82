"""What `navigator data info` reports: counts, durations and success per task and preset, and action statistics.

Reads only the small arrays (timestamps, actions); images are never decoded, so it is quick on large datasets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from navigator.dataset.completeness import completeness
from navigator.dataset.reader import Dataset
from navigator.dataset.schema import ACTION_NAMES


@dataclass
class GroupSummary:
    task: str
    preset: str
    episodes: int = 0
    frames: int = 0
    duration_s: float = 0.0
    successes: int = 0
    endings: dict[str, int] = field(default_factory=dict)
    dropped: int = 0  # flown, failed and not kept (collect --drop-failed)

    @property
    def success_rate(self) -> float | None:
        return success_of_flown(self.successes, self.episodes + self.dropped)


def success_of_flown(successes: int, flown: int) -> float | None:
    """The share of flown episodes that succeeded, the dropped failures counted (with --drop-failed every kept episode
    is a success, which says nothing of the expert); None when none was flown."""
    return successes / flown if flown else None


@dataclass
class ComponentStats:
    name: str
    mean: float
    std: float
    min: float
    max: float


@dataclass
class DatasetSummary:
    datasets: list[str]
    image_size: tuple[int, int]
    action_convention: str
    groups: list[GroupSummary]
    action_label: list[ComponentStats]
    action_executed: list[ComponentStats]
    # Episodes the datasets' recipes ask for, stored, dropped and still missing (a dataset whose recipe states no
    # expectation counts what it holds), and the warning for each incomplete dataset, by its path.
    expected_episodes: int = 0
    incomplete: dict[str, str] = field(default_factory=dict)

    @property
    def episodes(self) -> int:
        return sum(g.episodes for g in self.groups)

    @property
    def frames(self) -> int:
        return sum(g.frames for g in self.groups)

    @property
    def duration_s(self) -> float:
        return sum(g.duration_s for g in self.groups)

    @property
    def success_rate(self) -> float | None:
        return success_of_flown(sum(g.successes for g in self.groups),
                                self.episodes + sum(g.dropped for g in self.groups))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for group, source in zip(data["groups"], self.groups, strict=True):
            group["success_rate"] = source.success_rate
        data.update(episodes=self.episodes, frames=self.frames, duration_s=self.duration_s,
                    success_rate=self.success_rate)
        return data


def _component_stats(values: list[np.ndarray]) -> list[ComponentStats]:
    if not values:
        return []  # an empty dataset has no statistics (and JSON has no NaN)
    stacked = np.concatenate(values).astype(np.float64)
    return [ComponentStats(name, float(stacked[:, i].mean()), float(stacked[:, i].std()), float(stacked[:, i].min()),
                           float(stacked[:, i].max())) for i, name in enumerate(ACTION_NAMES)]


def summarize(datasets: list[Dataset]) -> DatasetSummary:
    groups: dict[tuple[str, str], GroupSummary] = {}
    labels: list[np.ndarray] = []
    executed: list[np.ndarray] = []
    for dataset in datasets:
        for entry in dataset.entries:
            arrays = dataset.read_arrays(entry, ("timestamp", "action_label", "action_executed"))
            group = groups.setdefault((entry.task, entry.preset), GroupSummary(entry.task, entry.preset))
            group.episodes += 1
            group.frames += entry.frames
            group.duration_s += float(arrays["timestamp"][-1] - arrays["timestamp"][0])
            group.successes += int(entry.success)
            group.endings[entry.ending] = group.endings.get(entry.ending, 0) + 1
            labels.append(arrays["action_label"])
            executed.append(arrays["action_executed"])
        for dropped in dataset.manifest.dropped:
            group = groups.setdefault((dropped.task, dropped.preset), GroupSummary(dropped.task, dropped.preset))
            group.dropped += 1
    states = [(dataset, completeness(dataset.manifest)) for dataset in datasets]
    first = datasets[0].manifest
    return DatasetSummary(
        datasets=[str(d.path) for d in datasets], image_size=first.image_size,
        action_convention=first.action_convention, groups=[groups[k] for k in sorted(groups)],
        action_label=_component_stats(labels), action_executed=_component_stats(executed),
        expected_episodes=sum(state.done + len(state.missing) for _, state in states),
        incomplete={str(dataset.path): state.message(dataset.path) for dataset, state in states if not state.complete})
