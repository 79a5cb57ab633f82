"""liquid-navigator: the CLI and the pipelines that join the simulated world, the policies and the onboard runtime."""

__version__ = "0.1.0"
