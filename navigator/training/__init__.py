"""Behaviour cloning of liquid (and baseline) policies from recorded demonstrations, with DAgger rounds."""
