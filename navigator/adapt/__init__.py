"""`navigator adapt`: continue training a trained policy on a few demonstrations from new surroundings, and measure
what it gains there and forgets elsewhere.

config: what one adaptation is (the user's settings, and the training recipe they become); strategies: how the
training loop continues the starting policy (fine-tuning, replay of old data, a frozen CNN, an L2 anchor);
run: one adaptation from settings to checkpoint, resumable; curve: the learning-curve study (collect, adapt many,
evaluate all together); curve_report: its document, table and figure.
"""
