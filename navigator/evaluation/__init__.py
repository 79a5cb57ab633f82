"""Closed-loop evaluation: pilots fly the same held-out worlds in every suite (preset), and the outcomes become a
report with confidence intervals.

`settings` says what is flown (pilots, task, suites, stress sweeps, seeds); `sweeps` turns one knob of a suite's
scenery level by level; `seeds` keeps evaluation worlds apart from the ones a checkpoint was trained on; `episodes`
flies one (pilot, suite, seed) and records it (filmed, when asked); `results` holds every record, the per-suite,
per-pilot summary (`stats` gives the Wilson interval and the bootstrap across training seeds), the sweep curves and
the groups of training seeds (`groups`) and, with `attention`, each policy pilot's attention on target (measured in
flight by navigator.explain.attention); `distance` bins success by start distance; `videos` picks the failures to
film; `folder` owns the output folder (settings, one file per finished episode, resume); `report` and `plots` write
report.md and the figures; `pipeline` joins them.
"""
