"""Cost of the vehicle per physics tick: `Vehicle.pre_step` (flight controller, rotors, its PyBullet calls) against a
bare `stepSimulation` of the same world, measured in the same run.

    .venv/bin/python bench/bench_vehicle.py [--airframe x500] [--ticks 48000]

The world's budget: 8 ticks per camera frame at >= 400 frames/s with at most 25 % overhead over rendering, i.e.
about 20 µs per tick for pre_step.
"""

from __future__ import annotations

import argparse
import math
import time

import pybullet as p

from sim_envs.airframe import AIRFRAME_NAMES, load_airframe
from sim_envs.vehicle import Vehicle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--airframe", choices=AIRFRAME_NAMES, default="x500")
    parser.add_argument("--ticks", type=int, default=48000)
    args = parser.parse_args()

    client = p.connect(p.DIRECT)
    p.setPhysicsEngineParameter(fixedTimeStep=1.0 / 240, physicsClientId=client)
    p.setGravity(0, 0, -9.81, physicsClientId=client)
    p.createMultiBody(0, p.createCollisionShape(p.GEOM_PLANE, physicsClientId=client), physicsClientId=client)
    vehicle = Vehicle(client, load_airframe(args.airframe))
    vehicle.reset((0.0, 0.0, 0.3), 0.0)  # low: the ground-effect branch runs too
    air = (1.0, 0.5, 0.0)

    def setpoint(tick: int) -> tuple[float, float, float, float]:
        # A gently varying command, so that the controller is not sitting in a trivial steady state.
        phase = tick / 240.0
        return (0.5 * math.sin(phase), 0.5 * math.cos(0.7 * phase), 0.1 * math.sin(0.3 * phase), 0.3)

    setpoints = [setpoint(tick) for tick in range(args.ticks)]
    for tick in range(2400):  # warm-up
        vehicle.pre_step(setpoints[tick], air)
        p.stepSimulation(physicsClientId=client)

    pre_step = 0.0
    step = 0.0
    clock = time.perf_counter
    for tick in range(args.ticks):
        start = clock()
        vehicle.pre_step(setpoints[tick], air)
        middle = clock()
        p.stepSimulation(physicsClientId=client)
        pre_step += middle - start
        step += clock() - middle
    p.disconnect(client)

    pre_us = pre_step / args.ticks * 1e6
    step_us = step / args.ticks * 1e6
    print(f"airframe {args.airframe}, {args.ticks} ticks")
    print(f"pre_step          {pre_us:6.2f} µs/tick")
    print(f"stepSimulation    {step_us:6.2f} µs/tick (bare physics, same world)")
    print(f"pre_step / step   {pre_us / step_us:6.2f}")
    print(f"per camera frame  {8 * pre_us:6.1f} µs of pre_step (8 ticks)")


if __name__ == "__main__":
    main()
