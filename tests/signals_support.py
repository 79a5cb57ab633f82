"""For tests that stop a command with Ctrl-C: its subprocess must take SIGINT's default action even where the test
runner itself was started with SIGINT ignored (a `&` job of a script ignores it, and children inherit that)."""

import signal


def default_sigint() -> None:
    """A `preexec_fn` for subprocess.Popen: SIGINT back to its default, so Python installs its Ctrl-C handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
