"""Attention on target: the share of a policy's saliency mass that falls on the target's image region.

A number where the liquid-network papers showed pictures: 1 means the action depends only on the target's pixels, the
target's share of the image (often under 1%) is what a policy looking everywhere alike would score. `AttentionMeter`
measures it in flight, every few steps, for `navigator eval --attention`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from navigator.pilots import CheckpointPilot


def attention_on_target(saliency_map: np.ndarray, target_mask: np.ndarray) -> float:
    """The share of `saliency_map`'s mass inside `target_mask`, in [0, 1]. saliency_map (H, W) >= 0 (a
    `saliency_maps` frame, or any non-negative relevance: it need not sum to 1); target_mask (H, W) bool. An
    all-zero map has no mass to share: its relevance is taken as uniform, as `saliency_maps` does, so the result is
    the mask's share of the pixels. ValueError for shapes that differ, a mask that is not boolean, or a negative or
    non-finite map."""
    saliency_map = np.asarray(saliency_map, np.float64)
    target_mask = np.asarray(target_mask)
    if saliency_map.ndim != 2 or saliency_map.shape != target_mask.shape:
        raise ValueError(f"expected a saliency map and a target mask of one (H, W) shape, got {saliency_map.shape} "
                         f"and {target_mask.shape}")
    if target_mask.dtype != np.bool_:
        raise ValueError(f"the target mask must be boolean, got {target_mask.dtype}")
    if not np.isfinite(saliency_map).all() or (saliency_map < 0).any():
        raise ValueError("a saliency map must be finite and non-negative")
    total = saliency_map.sum()
    if total <= 0:
        return float(target_mask.mean())
    return float(min(1.0, saliency_map[target_mask].sum() / total))


class AttentionMeter:
    """A checkpoint pilot (navigator.pilots.CheckpointPilot) that flies as usual and, every `every`-th camera step
    (the first included) at which the target is in view, measures its attention on target with saliency method
    `method`, from the recurrent state the step starts from. `env` is the environment it flies (its target mask,
    `sim_envs.projection.target_mask`, is read before the step, in step with the observation).

    After an episode `figure()` gives the mean attention over the measured steps, the mean share of the image the
    target covered at them (what a saliency spread evenly would score), and their number; (None, None, 0) when the
    target was never in view at a measured step."""

    def __init__(self, pilot: CheckpointPilot, env, method: str, every: int) -> None:
        from navigator.explain.methods import check_method
        from sim_envs.projection import target_mask

        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.pilot = pilot
        self.name = pilot.name
        self._env = env
        self._method = check_method(method)
        self._every = every
        self._target_mask = target_mask
        self._dts = np.array([env.unwrapped.description().dt], np.float32)
        self.reset()

    def reset(self) -> None:
        self.pilot.reset()
        self._steps = 0
        self._values: list[tuple[float, float]] = []  # (attention on target, the target's share of the image)

    def act(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        if self._steps % self._every == 0:
            mask = self._target_mask(self._env)
            if mask.any():
                self._values.append((self._measure(observation, mask), float(mask.mean())))
        self._steps += 1
        return self.pilot.act(observation, info)

    def _measure(self, observation: dict[str, np.ndarray], mask: np.ndarray) -> float:
        from navigator.explain.saliency import saliency_maps

        maps = saliency_maps(self.pilot.policy, observation["image"][None], observation["state"][None], self._dts,
                             self._method, hidden=self.pilot.hidden)
        return attention_on_target(maps[0], mask)

    def figure(self) -> tuple[float | None, float | None, int]:
        """(mean attention on target over this episode's measured steps, the target's mean share of the image at
        them, how many steps), means rounded to 6 digits."""
        if not self._values:
            return None, None, 0
        attention, share = np.mean(self._values, axis=0)
        return round(float(attention), 6), round(float(share), 6), len(self._values)
