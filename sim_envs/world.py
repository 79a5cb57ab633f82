"""The simulated world: one PyBullet client for physics, one for the onboard camera, one for the chase view once
a flight is filmed, and a GUI window on request.

Physics (240 Hz by default) sees the ground, one static compound body with every obstacle, and the vehicle; the
render-only client holds the visual scenery and is never stepped. Splitting them keeps a physics step at a few
microseconds whatever the scenery holds (visual-only bodies in a stepped world cost ~0.4 µs each per step).

The chase view draws in a client of its own, with its own copy of the scenery and a model of the airframe. PyBullet's
TinyRenderer carries state from one image to the next (an onboard image can differ by a grey level with what the
renderer drew just before it), and the chase view moves bodies out of its way and back, whose poses do not round-trip
bit for bit: drawn in the onboard camera's client, filming a flight changed its observations, and a long flight
diverged from the same flight unfilmed (first at step 203 of a recorded flight in wind).

With `gui=True` a third client opens a window showing the same scenery with the vehicle always in view. The onboard
camera keeps rendering in its own headless client, so its images are the same with or without a window.

A World owns its clients and disconnects exactly those, once: PyBullet reuses the ids of disconnected clients, so
a second `close()` must not touch an id that now belongs to another world.
"""

from __future__ import annotations

import math
import weakref

import numpy as np
import pybullet as p

from sim_envs.airframe import Airframe
from sim_envs.bodies import TARGET_RADIUS, build_collision, build_visuals, sphere_body
from sim_envs.camera import CameraConfig, Renderer, body_camera_axes
from sim_envs.chase import ChaseCamera
from sim_envs.display import require_display
from sim_envs.errors import ClosedEnvironmentError
from sim_envs.layout import Layout
from sim_envs.scenery import TARGET_COLOR, Scenery
from sim_envs.vehicle import PhysicsSwitches, Vehicle, VehicleState

HIDDEN = (0.0, 0.0, -50.0)  # where bodies wait while they must not be seen


class World:
    def __init__(self, airframe: Airframe, camera: CameraConfig, physics_hz: int = 240,
                 switches: PhysicsSwitches = PhysicsSwitches(), gui: bool = False) -> None:
        if physics_hz % camera.rate_hz != 0:
            valid = [r for r in range(1, physics_hz + 1) if physics_hz % r == 0]
            raise ValueError(f"camera rate {camera.rate_hz} Hz does not divide the physics rate {physics_hz} Hz; "
                             f"valid rates are {', '.join(map(str, valid))}")
        self.airframe = airframe
        self.camera = camera
        self.physics_hz = physics_hz
        self.substeps = physics_hz // camera.rate_hz
        self.switches = switches
        self.gui = gui
        if gui:
            require_display()  # before any client exists: PyBullet aborts the process when no display answers
        clients: list[int] = []  # filled as they connect, so that a failed connect releases the earlier ones
        self._release = weakref.finalize(self, _disconnect, clients)  # also when a world is dropped unclosed
        self.physics = _connect(p.DIRECT, clients)
        self.render_client = _connect(p.DIRECT, clients)
        self._clients = clients
        self.gui_client: int | None = _connect(p.GUI, clients) if gui else None
        self.chase_client: int | None = None  # connected by the first chase view (see the module's docstring)
        if self.gui_client is not None:
            p.configureDebugVisualizer(p.COV_ENABLE_GUI, 0, physicsClientId=self.gui_client)
        self.onboard = Renderer(self.render_client, camera.width, camera.height, camera.fov_deg, camera.near,
                                camera.far)
        self._chase: ChaseCamera | None = None
        self._tilt = math.radians(camera.tilt_deg)
        self.vehicle: Vehicle | None = None
        self._targets: list[int] = []
        self._gui_targets: list[int] = []
        self._chase_targets: list[int] = []
        self._target_positions: list[tuple[float, float, float] | None] = []
        self._chase_drone: int | None = None
        # A segmentation (attention on target) has to be drawn in the onboard camera's client, where the target's
        # body ids mean something; since TinyRenderer carries state from one image to the next, the last onboard
        # pose is drawn again before the next onboard image whenever a segmentation was drawn, which restores the
        # state an unmeasured flight has (checked against a flight whose images first differed at step 203).
        self._last_onboard: tuple[tuple[float, float, float], ...] | None = None
        self._drew_other = False
        self._gui_drone: int | None = None
        self._scenery: Scenery | None = None
        self._layout: Layout | None = None

    def build(self, layout: Layout, scenery: Scenery, start: tuple[float, float, float], yaw: float,
              target_count: int) -> None:
        """Rebuild both worlds for a new episode: a fresh, deterministic state."""
        p.resetSimulation(physicsClientId=self.physics)
        p.setPhysicsEngineParameter(fixedTimeStep=1.0 / self.physics_hz, deterministicOverlappingPairs=1,
                                    physicsClientId=self.physics)
        p.setGravity(0, 0, -9.81, physicsClientId=self.physics)
        build_collision(self.physics, layout)
        self.vehicle = Vehicle(self.physics, self.airframe, self.physics_hz, self.switches)
        self.vehicle.reset(start, yaw)

        self._targets = self._build_scene(self.render_client, layout, scenery, target_count)
        self._target_positions = [None] * target_count
        if self.gui_client is not None:
            p.configureDebugVisualizer(p.COV_ENABLE_RENDERING, 0, physicsClientId=self.gui_client)
            self._gui_targets = self._build_scene(self.gui_client, layout, scenery, target_count)
            self._gui_drone = self._make_drone_visual(self.gui_client)
            p.configureDebugVisualizer(p.COV_ENABLE_RENDERING, 1, physicsClientId=self.gui_client)
        self._scenery = scenery
        self._layout = layout
        self.onboard.set_environment(scenery.sky_top, scenery.sky_horizon, layout.lighting)
        if self.chase_client is not None:
            self._build_chase_scene()

    def _build_chase_scene(self) -> None:
        """The chase view's copy of the scenery, its targets where they are now, and the airframe's model."""
        client, scenery = self.chase_client, self._scenery
        self._chase_targets = self._build_scene(client, self._layout, scenery, len(self._targets))
        for body, position in zip(self._chase_targets, self._target_positions):
            p.resetBasePositionAndOrientation(body, position or HIDDEN, (0, 0, 0, 1), physicsClientId=client)
        self._chase_drone = self._make_drone_visual(client)
        if self._chase is not None:
            self._chase.set_environment(scenery.sky_top, scenery.sky_horizon, self._layout.lighting)

    @staticmethod
    def _build_scene(client: int, layout: Layout, scenery: Scenery, target_count: int) -> list[int]:
        """A fresh visual world in `client`; returns its target bodies, hidden until placed."""
        p.resetSimulation(physicsClientId=client)
        build_visuals(client, layout, scenery)
        return [sphere_body(client, TARGET_RADIUS, TARGET_COLOR, HIDDEN) for _ in range(target_count)]

    def _make_drone_visual(self, client: int) -> int:
        """A dark body with four rotor discs, red at the front: what the chase view and the GUI window show."""
        arm = self.airframe.arm_length
        body = p.createVisualShape(p.GEOM_BOX, halfExtents=[arm * 0.35, arm * 0.25, arm * 0.08],
                                   rgbaColor=[0.12, 0.12, 0.12, 1], physicsClientId=client)
        rotors, positions = [], []
        for front, side in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            color = [0.9, 0.15, 0.1, 1] if front > 0 else [0.35, 0.35, 0.35, 1]
            rotors.append(p.createVisualShape(p.GEOM_CYLINDER, radius=arm * 0.45, length=arm * 0.04,
                                              rgbaColor=color, physicsClientId=client))
            positions.append([front * arm * 0.7071, side * arm * 0.7071, arm * 0.1])
        return p.createMultiBody(
            0, -1, body, basePosition=HIDDEN, linkMasses=[0] * 4, linkCollisionShapeIndices=[-1] * 4,
            linkVisualShapeIndices=rotors, linkPositions=positions, linkOrientations=[[0, 0, 0, 1]] * 4,
            linkInertialFramePositions=[[0, 0, 0]] * 4, linkInertialFrameOrientations=[[0, 0, 0, 1]] * 4,
            linkParentIndices=[0] * 4, linkJointTypes=[p.JOINT_FIXED] * 4, linkJointAxis=[[0, 0, 1]] * 4,
            physicsClientId=client)

    def advance(self, setpoint: tuple[float, float, float, float],
                air_velocity: tuple[float, float, float]) -> bool:
        """One camera period of physics. Returns True when the vehicle touched anything (ground or obstacle)."""
        vehicle = self.vehicle
        assert vehicle is not None, "World.build must run before advance"
        body, client = vehicle.body_id, self.physics
        for _ in range(self.substeps):
            vehicle.pre_step(setpoint, air_velocity)
            p.stepSimulation(physicsClientId=client)
            if p.getContactPoints(bodyA=body, physicsClientId=client):
                return True
        return False

    def place_target(self, index: int, position: tuple[float, float, float] | None) -> None:
        """Show target `index` at `position`, or hide it (None)."""
        self._target_positions[index] = position
        for client, targets in ((self.render_client, self._targets), (self.gui_client, self._gui_targets),
                                (self.chase_client, self._chase_targets)):
            if client is not None:
                p.resetBasePositionAndOrientation(targets[index], position or HIDDEN, (0, 0, 0, 1),
                                                  physicsClientId=client)

    def onboard_image(self, state: VehicleState) -> np.ndarray:
        if self._drew_other and self._last_onboard is not None:
            self.onboard.render(*self._last_onboard)  # see _last_onboard
        self._drew_other = False
        self._last_onboard = self.onboard_pose(state)
        return self.onboard.render(*self._last_onboard)

    def onboard_segmentation(self, state: VehicleState) -> np.ndarray:
        """int32 (height, width): the render-client body each pixel of the onboard image from `state` shows (-1:
        sky); compare with `target_body`. Drawing it does not change the next onboard image."""
        self._drew_other = True
        return self.onboard.segmentation(*self.onboard_pose(state))

    def target_body(self, index: int) -> int:
        """The render-client body id of target `index` (what `onboard_segmentation` reports where it is seen)."""
        return self._targets[index]

    def onboard_pose(self, state: VehicleState) -> tuple[tuple[float, float, float], ...]:
        """(eye, forward, up) of the onboard camera in the world."""
        rotation = p.getMatrixFromQuaternion(state.quaternion)
        forward, up = body_camera_axes(rotation, self._tilt)
        ox, oy, oz = self.airframe.camera_offset
        x, y, z = state.position
        eye = (x + rotation[0] * ox + rotation[1] * oy + rotation[2] * oz,
               y + rotation[3] * ox + rotation[4] * oy + rotation[5] * oz,
               z + rotation[6] * ox + rotation[7] * oy + rotation[8] * oz)
        return eye, forward, up

    def chase_image(self, state: VehicleState, width: int, height: int) -> np.ndarray:
        """A third-person view from behind and above the vehicle, along its heading. Its near plane lies just short
        of the vehicle, so trunks between the chase camera and the vehicle are clipped instead of hiding it."""
        distance = max(1.5, 12 * self.airframe.arm_length)
        if self.chase_client is None:
            self.chase_client = _connect(p.DIRECT, self._clients)
            self._build_chase_scene()
        if self._chase is None or (self._chase.width, self._chase.height) != (width, height):
            self._chase = ChaseCamera(self.chase_client, width, height, 70.0, 0.7 * distance, self.camera.far)
            self._chase.set_environment(self._scenery.sky_top, self._scenery.sky_horizon, self._layout.lighting)
        self.show_vehicle(state)
        x, y, z = state.position
        cy, sy = math.cos(state.yaw), math.sin(state.yaw)
        eye = (x - distance * cy, y - distance * sy, z + 0.45 * distance)
        return self._chase.render(eye, (x, y, z))

    def show_vehicle(self, state: VehicleState) -> None:
        """Move the vehicle's visuals (chase view, GUI window) to its physical pose; the GUI camera follows it."""
        if self._chase_drone is not None:
            p.resetBasePositionAndOrientation(self._chase_drone, state.position, state.quaternion,
                                              physicsClientId=self.chase_client)
        if self._gui_drone is not None:
            p.resetBasePositionAndOrientation(self._gui_drone, state.position, state.quaternion,
                                              physicsClientId=self.gui_client)
            p.resetDebugVisualizerCamera(2.5, math.degrees(state.yaw) - 90, -25, state.position,
                                         physicsClientId=self.gui_client)

    @property
    def closed(self) -> bool:
        return not self._release.alive

    def require_open(self) -> None:
        """Raise ClosedEnvironmentError after close(): the ids of the released clients may belong to another
        world by now, and using them would rebuild or step that world."""
        if self.closed:
            raise ClosedEnvironmentError("this environment is closed; make a new one to keep flying")

    def close(self) -> None:
        """Disconnect this world's clients; idempotent (later calls do nothing)."""
        self._release()


def _connect(method: int, clients: list[int]) -> int:
    """Connect a client and record it in `clients` (the ones this world must disconnect)."""
    client = p.connect(method)
    if client < 0:
        raise RuntimeError("PyBullet refused a new client (too many connected, or a GUI window is already open "
                           "in this process): close environments that are no longer needed")
    clients.append(client)
    return client


def _disconnect(clients: list[int]) -> None:
    """Disconnect the clients one world connected. Runs once per world (weakref.finalize), so an id PyBullet has
    since given to another world is never touched."""
    for client in clients:
        if p.isConnected(client):
            p.disconnect(client)
