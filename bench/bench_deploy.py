"""What a deploy's steps cost: SSH steps on a connection each against steps sharing one connection, and the target's
pip install with byte-compilation against without it (navigator/deploy/ssh.py, navigator/deploy/pipeline.py).

    .venv/bin/python bench/bench_deploy.py                  # a loopback sshd, 20 steps each way, one install each
    .venv/bin/python bench/bench_deploy.py --steps 50 --installs 2

The target is a real OpenSSH server started on 127.0.0.1 (tests/sshd_support.py, the deploy tests' target): the
per-step figure is the floor of a real link, where every new connection's key exchange costs a Wi-Fi round trip
more. The install is the deploy's own command (`pip install --no-index --find-links WHEELHOUSE` of the onboard
dependencies into a fresh venv) run on this machine, once with pip's default byte-compilation and once with
`--no-compile`, as deploy now runs it. Printed: milliseconds per step and seconds per install, and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from navigator.deploy.ssh import SshClient, run_step, shared_connection  # noqa: E402
from navigator.deploy.target import parse_target  # noqa: E402
from tests.sshd_support import download_wheelhouse, running_sshd  # noqa: E402


def seconds_per_step(ssh: SshClient, steps: int) -> float:
    """Median wall time of one `true` step run as deploy runs its steps."""
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        run_step(ssh.ssh("bench", ["true"]))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def seconds_to_install(wheelhouse: Path, folder: Path, compile_modules: bool) -> float:
    """Wall time of a fresh venv's pip install of the onboard dependencies from `wheelhouse` (the venv's own
    creation not counted: it is the same either way)."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    packages = sorted({path.name.split("-")[0] for path in wheelhouse.glob("*.whl")})
    start = time.perf_counter()
    subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    *([] if compile_modules else ["--no-compile"]), "--no-index", "--find-links", str(wheelhouse),
                    *packages], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="SSH steps timed each way (default 20)")
    parser.add_argument("--installs", type=int, default=1, help="installs timed each way (default 1; 0: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        (scratch / "sshd").mkdir()
        with running_sshd(scratch / "sshd") as sshd:
            own = SshClient(parse_target("127.0.0.1", sshd.port), sshd.key, sshd.known_hosts)
            per_connection = seconds_per_step(own, args.steps)
            with shared_connection(own) as shared:
                run_step(shared.ssh("open the shared connection", ["true"]))
                per_shared = seconds_per_step(shared, args.steps)
        print(f"SSH step ({args.steps} each, median): a connection each {per_connection * 1e3:.0f} ms, "
              f"one shared connection {per_shared * 1e3:.0f} ms: {per_connection / per_shared:.1f}x faster")
        if args.installs <= 0:
            return
        wheelhouse = download_wheelhouse(scratch / "wheelhouse")
        compiled = [seconds_to_install(wheelhouse, scratch / f"compiled-{i}", True) for i in range(args.installs)]
        plain = [seconds_to_install(wheelhouse, scratch / f"plain-{i}", False) for i in range(args.installs)]
        print(f"pip install of the onboard dependencies into a fresh venv ({args.installs} each, median): "
              f"byte-compiled {statistics.median(compiled):.1f} s, --no-compile {statistics.median(plain):.1f} s: "
              f"{statistics.median(compiled) / statistics.median(plain):.1f}x faster")


if __name__ == "__main__":
    main()
