"""Where the training windows of an episode start.

Windows of `length` frames start every `stride` frames; when the last regular window stops short of the episode's
end, one more window is aligned to the end, so no frame is left out (it overlaps its neighbour by more than usual).
An episode shorter than `length` gives one window starting at 0 that the loader pads and masks: short episodes are
the crashes and quick successes, which a policy must learn from too.
"""

from __future__ import annotations


def window_starts(frames: int, length: int, stride: int) -> list[int]:
    if length < 1 or stride < 1:
        raise ValueError(f"window length and stride must be positive, got {length} and {stride}")
    if frames <= length:
        return [0] if frames > 0 else []
    starts = list(range(0, frames - length + 1, stride))
    if starts[-1] != frames - length:
        starts.append(frames - length)
    return starts
