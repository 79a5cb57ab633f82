import math

from sim_envs.planning import path_length, plan_path, point_at, progress_on_path
from sim_envs.layout import Bounds, Obstacle

BOUNDS = Bounds(-10, 20, -10, 10)


def tree(x, y, r=0.25):
    return Obstacle("tree", x, y, r, 3.0, 1.0, (0.1, 0.5, 0.1))


def clearance(path, obstacles):
    """Smallest distance from any point of the polyline to an obstacle's surface."""
    best = math.inf
    for a, b in zip(path, path[1:]):
        for i in range(51):
            t = i / 50
            x, y = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
            for o in obstacles:
                best = min(best, math.hypot(x - o.x, y - o.y) - o.radius)
    return best


def test_free_space_gives_the_straight_line():
    path = plan_path((0, 0), (10, 0), (), 0.6, BOUNDS)
    assert path == [(0, 0), (10, 0)]


def test_path_goes_around_a_tree_in_the_way_with_clearance():
    obstacles = (tree(5, 0), tree(5, 1.0), tree(5, -1.0))
    path = plan_path((0, 0), (10, 0), obstacles, 0.6, BOUNDS)
    assert path[0] == (0, 0) and path[-1] == (10, 0)
    assert clearance(path, obstacles) >= 0.6 - 0.2  # inflation minus one grid cell
    assert path_length(path) < 14


def test_progress_and_point_at_agree():
    path = [(0.0, 0.0), (4.0, 0.0), (4.0, 3.0)]
    assert path_length(path) == 7.0
    s, off_path = progress_on_path(path, (4.5, 1.0))
    assert math.isclose(s, 5.0) and math.isclose(off_path, 0.5)
    assert point_at(path, 5.0) == (4.0, 1.0)
    assert point_at(path, 99.0) == (4.0, 3.0)
