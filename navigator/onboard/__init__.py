"""The companion-computer runtime: flies an exported policy bundle on a real (or SITL) drone over MAVLink.

It installs alone (`pip install "liquid-navigator[onboard]"`) and imports only numpy, onnxruntime, opencv, pymavlink,
yaml, the standard library and the project's torch-free modules (`navigator.errors`, `policies.preprocessing`,
`navigator.onboard.*`): never torch, pybullet, gymnasium or `sim_envs`.

`bundle`: load and check an exported bundle (policy.onnx + policy.json) and step its policy through ONNX Runtime.
`config`: the runtime's settings (launch/onboard.yaml). `camera`: the newest frame of any OpenCV source, read on its
own thread. `link`: the MAVLink connection (companion identity, autopilot heartbeat, mode, telemetry, setpoints).
`autopilot`: PX4 and ArduPilot offboard conventions as data. `frames`: FLU <-> body NED, and the policy's state vector
from telemetry. `safety`: the state machine that decides what is sent. `runtime`: the control loop. `log`: the
per-step flight log; `plot` draws it (matplotlib, imported only there). `selftest`: the checks `navigator onboard
--self-test` runs (and `navigator deploy` runs on the target before it switches versions).
"""
