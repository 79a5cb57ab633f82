"""Where the target lies in the onboard camera's image: privileged ground truth for judging where a policy looks.

`target_mask(env)` gives the pixels of the current camera image that show the active target: PyBullet's
segmentation buffer from the very camera pose, projection and scene the observation was rendered with, so a target
hidden behind a trunk or crown, outside the view, or behind the camera covers no pixel, and a partly hidden one only
its visible part. The black patches of the occlusion presets hide what lies under them too. Image effects that do not
hide (exposure, noise, blur) leave the mask alone: the target is still there to be seen, however dimly.
"""

from __future__ import annotations

import numpy as np


def target_mask(env) -> np.ndarray:
    """bool (height, width) of the camera: True where the current observation's image shows the active target (the
    one `info["target_position"]` gives: hike's current leg, follow's moving target).

    `env`: a task environment (sim_envs.tasks) or any gymnasium wrapper around one (it is read through
    `env.unwrapped`), after `reset` and before the next `step`, i.e. in step with the last observation. Costs one
    extra TinyRenderer pass (about as much as the camera image itself)."""
    nav = env.unwrapped
    world = nav.world
    world.require_open()
    mask = world.onboard_segmentation(nav.vehicle_state) == world.target_body(nav.active_target)
    for x0, y0, x1, y1 in nav.occluders:
        mask[y0:y1, x0:x1] = False
    return mask
