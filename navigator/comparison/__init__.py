"""`navigator compare`: train every model of a list on the same data with the same recipe, for several training
seeds each, evaluate all the checkpoints together on the same worlds, and tabulate and plot each model's mean
success per suite with a hierarchical bootstrap interval over its seeds.

config: what a comparison is (recipe, models, seeds, evaluation); runner: the trainings and the evaluation, resumable;
summary: the comparison document from the evaluation's results; table: its markdown; plot: its figure.
"""
