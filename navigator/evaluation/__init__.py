"""Closed-loop evaluation: pilots fly the same held-out worlds in every suite (preset), and the outcomes become a
report with confidence intervals.

`settings` says what is flown (pilots, task, suites, seeds); `seeds` keeps evaluation worlds apart from the ones a
checkpoint was trained on; `episodes` flies one (pilot, suite, seed) and records it; `results` holds every record and
the per-suite, per-pilot summary (`stats` gives the Wilson interval); `folder` owns the output folder (settings,
one file per finished episode, resume); `report` and `plots` write report.md and the figures; `pipeline` joins them.
"""
