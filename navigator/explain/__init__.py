"""Explaining a policy: where it looks (saliency maps, attention on the target), what its neurons do, how it is wired.

`saliency` turns camera frames into per-pixel saliency distributions (VisualBackProp, integrated gradients);
`attention` measures the share of that mass on the target's image region, per frame and per evaluation episode.
"""
