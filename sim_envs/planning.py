"""Privileged path planning for the experts: A* on an occupancy grid of the obstacles, then shortcutting.

Obstacles are vertical columns (trunks, pillars) in the band where the vehicle flies, so planning is 2-D. The grid
covers the rectangle around start and goal with a margin, inflated by the airframe's radius plus a safety margin.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from sim_envs.layout import Bounds, Obstacle

RESOLUTION = 0.2  # metres per cell
MARGIN = 5.0  # metres of grid around start and goal


class _Grid:
    def __init__(self, start: tuple[float, float], goal: tuple[float, float], obstacles: tuple[Obstacle, ...],
                 inflate: float, bounds: Bounds) -> None:
        self.x0 = max(bounds.x_min, min(start[0], goal[0]) - MARGIN)
        self.y0 = max(bounds.y_min, min(start[1], goal[1]) - MARGIN)
        x1 = min(bounds.x_max, max(start[0], goal[0]) + MARGIN)
        y1 = min(bounds.y_max, max(start[1], goal[1]) + MARGIN)
        self.nx = max(2, int(math.ceil((x1 - self.x0) / RESOLUTION)) + 1)
        self.ny = max(2, int(math.ceil((y1 - self.y0) / RESOLUTION)) + 1)
        xs = self.x0 + RESOLUTION * np.arange(self.nx)
        ys = self.y0 + RESOLUTION * np.arange(self.ny)
        self.blocked = np.zeros((self.nx, self.ny), bool)
        for o in obstacles:
            # Pillars are squares: their corner reaches radius·√2 from the centre.
            reach = o.radius * (math.sqrt(2) if o.kind == "pillar" else 1.0) + inflate
            if not (self.x0 - reach <= o.x <= x1 + reach and self.y0 - reach <= o.y <= y1 + reach):
                continue
            ix = slice(max(0, int((o.x - reach - self.x0) / RESOLUTION)),
                       min(self.nx, int((o.x + reach - self.x0) / RESOLUTION) + 2))
            iy = slice(max(0, int((o.y - reach - self.y0) / RESOLUTION)),
                       min(self.ny, int((o.y + reach - self.y0) / RESOLUTION) + 2))
            dx = xs[ix, None] - o.x
            dy = ys[None, iy] - o.y
            self.blocked[ix, iy] |= dx * dx + dy * dy <= reach * reach

    def cell(self, x: float, y: float) -> tuple[int, int]:
        return (min(self.nx - 1, max(0, int(round((x - self.x0) / RESOLUTION)))),
                min(self.ny - 1, max(0, int(round((y - self.y0) / RESOLUTION)))))

    def point(self, cell: tuple[int, int]) -> tuple[float, float]:
        return (self.x0 + cell[0] * RESOLUTION, self.y0 + cell[1] * RESOLUTION)

    def free_segment(self, a: tuple[float, float], b: tuple[float, float]) -> bool:
        steps = max(1, int(math.dist(a, b) / (RESOLUTION / 2)))
        for i in range(steps + 1):
            t = i / steps
            if self.blocked[self.cell(a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))]:
                return False
        return True


def plan_path(start: tuple[float, float], goal: tuple[float, float], obstacles: tuple[Obstacle, ...],
              inflate: float, bounds: Bounds) -> list[tuple[float, float]]:
    """A collision-free polyline from start to goal (both included). Falls back to the straight line when the goal
    cannot be reached on the grid (it then stays the task's problem, which the metrics will show)."""
    grid = _Grid(start, goal, obstacles, inflate, bounds)
    source, sink = grid.cell(*start), grid.cell(*goal)
    # Start and goal cells are free by construction (keep-clear zones); clear them anyway for robustness.
    grid.blocked[source] = False
    grid.blocked[sink] = False
    blocked = grid.blocked
    nx, ny = grid.nx, grid.ny
    moves = [(1, 0, 1.0), (-1, 0, 1.0), (0, 1, 1.0), (0, -1, 1.0),
             (1, 1, math.sqrt(2)), (1, -1, math.sqrt(2)), (-1, 1, math.sqrt(2)), (-1, -1, math.sqrt(2))]

    def heuristic(c: tuple[int, int]) -> float:
        dx, dy = abs(c[0] - sink[0]), abs(c[1] - sink[1])
        return max(dx, dy) + (math.sqrt(2) - 1) * min(dx, dy)

    cost = {source: 0.0}
    parent: dict[tuple[int, int], tuple[int, int]] = {}
    frontier = [(heuristic(source), 0.0, source)]
    while frontier:
        _, g, current = heapq.heappop(frontier)
        if current == sink:
            break
        if g > cost[current]:
            continue
        for dx, dy, step in moves:
            nxt = (current[0] + dx, current[1] + dy)
            if not (0 <= nxt[0] < nx and 0 <= nxt[1] < ny) or blocked[nxt]:
                continue
            new_cost = g + step
            if new_cost < cost.get(nxt, math.inf):
                cost[nxt] = new_cost
                parent[nxt] = current
                heapq.heappush(frontier, (new_cost + heuristic(nxt), new_cost, nxt))
    if sink not in cost:
        return [start, goal]
    cells = [sink]
    while cells[-1] != source:
        cells.append(parent[cells[-1]])
    points = [start] + [grid.point(c) for c in reversed(cells[1:-1])] + [goal]
    return _shortcut(points, grid)


def _shortcut(points: list[tuple[float, float]], grid: _Grid) -> list[tuple[float, float]]:
    """Greedy line-of-sight smoothing: from each kept point, jump to the farthest point still in sight."""
    kept = [points[0]]
    i = 0
    while i < len(points) - 1:
        j = len(points) - 1
        while j > i + 1 and not grid.free_segment(points[i], points[j]):
            j -= 1
        kept.append(points[j])
        i = j
    return kept


def path_length(path: list[tuple[float, float]]) -> float:
    return sum(math.dist(a, b) for a, b in zip(path, path[1:]))


def progress_on_path(path: list[tuple[float, float]], position: tuple[float, float]) -> tuple[float, float]:
    """(arc length of the closest point on the path to `position`, distance from `position` to that point)."""
    best, best_s, travelled = math.inf, 0.0, 0.0
    for a, b in zip(path, path[1:]):
        length = math.dist(a, b)
        if length < 1e-9:
            continue
        t = ((position[0] - a[0]) * (b[0] - a[0]) + (position[1] - a[1]) * (b[1] - a[1])) / (length * length)
        t = max(0.0, min(1.0, t))
        px, py = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
        d = math.hypot(position[0] - px, position[1] - py)
        if d < best:
            best, best_s = d, travelled + t * length
        travelled += length
    return best_s, best


def point_at(path: list[tuple[float, float]], s: float) -> tuple[float, float]:
    """The point at arc length `s` along the path (clamped to its ends)."""
    for a, b in zip(path, path[1:]):
        length = math.dist(a, b)
        if s <= length and length > 1e-9:
            t = max(0.0, s / length)
            return (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))
        s -= length
    return path[-1]
