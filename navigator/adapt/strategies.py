"""How the training loop continues a trained policy: `Strategy`, the loop's TrainingExtras for an adaptation.

- every strategy starts from the starting checkpoint's weights (and keeps its state normalisation: the inputs of a
  trained network keep their scale), after checking that the file is still the one the run started from;
- freeze-cnn hands the optimiser only the head's parameters (the CNN's are also set not to require gradients), so
  the CNN's weights stay bit-identical;
- replay adds to each batch of new windows round(n * f / (1 - f)) windows drawn from the old datasets' training
  windows (f = replay_fraction), so that f of the batch's windows are old ones while the new data is trained for as
  many steps as by fine-tuning; the old windows come from a permutation drawn from (seed, epoch), cycled if needed;
- l2-anchor adds anchor * mean over the weights of (w - w_start)^2 to the loss (the starting weights are read again
  from the checkpoint, so a resumed run anchors to the same ones);
- with a weight_mix (below 1; any strategy), each best.pt holds w_start + weight_mix * (w - w_start), WiSE-FT's
  interpolation of the trained weights with the starting ones (its val_loss stays the trained weights'); the training
  itself (and last.pt, which resumes it) goes on from the trained weights, and a DAgger stage from its round's
  best.pt, the policy that flew the round;
- every DAgger stage (the pipeline's, after the training on the new data) continues from the current weights with
  the same extras: freeze-cnn freezes the CNN again, replay mixes old windows into its batches, l2-anchor still
  anchors to the starting checkpoint's weights;
- the checkpoint records its lineage (`adapted_from`: starting checkpoint and sha256, strategy, the new, DAgger and
  replayed datasets with their world seeds, the DAgger settings, and the start's own lineage) and, in
  `training_seeds`, the seeds of every world any of them trained on, the start's included, so that `navigator eval`
  refuses them all.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from navigator.adapt.config import CNN_PREFIX, AdaptTrainConfig
from navigator.config import to_dict
from navigator.dataset import Batch, WindowLoader, file_sha256
from navigator.errors import UserError
from navigator.training.loop import TrainingExtras, make_loader
from navigator.training.pipeline import load_trained
from policies.policy import Policy

# Mixed into the replay permutation's seed, so that the old windows' order is not the new windows' order.
_REPLAY_STREAM = 0x5EED


def replay_count(new_windows: int, fraction: float) -> int:
    """Old windows to add to a batch of `new_windows` new ones so that `fraction` of the batch is old."""
    return round(new_windows * fraction / (1.0 - fraction))


def concatenate(batches: list[Batch]) -> Batch:
    """One batch of the windows of `batches`, in order."""
    return Batch(*(np.concatenate([getattr(b, name) for b in batches]) for name in
                   ("images", "state", "action", "dt", "mask")))


class Strategy(TrainingExtras):
    """The training extras of `config.adapt` (see the module's docstring)."""

    def __init__(self, config: AdaptTrainConfig) -> None:
        self.config = config
        self.settings = config.adapt
        self._start, self.start_metadata = self._load_start()
        # The starting weights, kept apart from the policy that trains from them: what l2-anchor pulls towards and
        # what the weight mix interpolates with.
        self._start_weights = ({name: weight.detach().clone() for name, weight in self._start.named_parameters()}
                               if self.settings.strategy == "l2-anchor" or self.settings.weight_mix else {})
        self._replay: WindowLoader | None = None

    def _load_start(self) -> tuple[Policy, dict[str, Any]]:
        path = Path(self.settings.start)
        if not path.is_file():
            raise UserError(f"the starting checkpoint {path} is missing: this adaptation started from it (sha256 "
                            f"{self.settings.start_sha256[:12]}); restore it, or adapt again in another --out")
        if file_sha256(path) != self.settings.start_sha256:
            raise UserError(f"the starting checkpoint {path} changed since this adaptation started (its sha256 was "
                            f"{self.settings.start_sha256[:12]}): resuming would continue another policy; restore "
                            f"it, or adapt again in another --out")
        return load_trained(path)

    def policy(self, config, loader, camera) -> Policy:
        return self._start

    def parameters(self, policy: Policy) -> Iterator[torch.nn.Parameter]:
        frozen = self.settings.strategy == "freeze-cnn"
        trained = []
        for name, weight in policy.named_parameters():
            if frozen and name.startswith(CNN_PREFIX):
                weight.requires_grad_(False)
            else:
                trained.append(weight)
        return iter(trained)

    def replay_loader(self) -> WindowLoader:
        """The old datasets' windows, cut and split as the new data's are."""
        if self._replay is None:
            self._replay = make_loader(self.config, tuple(self.settings.replay))
        return self._replay

    def batches(self, loader: WindowLoader, config, epoch: int) -> Iterator[Batch]:
        new = super().batches(loader, config, epoch)
        if self.settings.strategy != "replay":
            yield from new
            return
        replay = self.replay_loader()
        # Single-window batches of the old data's training windows, reshuffled each time they run out.
        old = itertools.chain.from_iterable(
            replay.batches("train", 1, shuffle=True, seed=config.seed * _REPLAY_STREAM + cycle, epoch=epoch)
            for cycle in itertools.count())
        for batch in new:
            extra = list(itertools.islice(old, replay_count(len(batch), self.settings.replay_fraction)))
            yield concatenate([batch, *extra])

    def loss(self, policy: Policy, imitation: torch.Tensor) -> torch.Tensor:
        if self.settings.strategy != "l2-anchor":
            return imitation
        squared, count = imitation.new_zeros(()), 0
        if next(iter(self._start_weights.values())).device != imitation.device:  # once, when training on a GPU
            self._start_weights = {name: weight.to(imitation.device) for name, weight in self._start_weights.items()}
        for name, weight in policy.named_parameters():
            squared = squared + ((weight - self._start_weights[name]) ** 2).sum()
            count += weight.numel()
        return imitation + self.settings.anchor * squared / count

    def saved(self, policy: Policy) -> Policy:
        mix = self.settings.weight_mix
        if mix is None:  # the trained weights, whole
            return policy
        mixed = copy.deepcopy(policy).cpu()
        with torch.no_grad():
            for name, weight in mixed.named_parameters():
                start = self._start_weights[name].to(weight.device)
                weight.copy_(start + mix * (weight - start))
        return mixed

    def metadata(self, metadata: dict[str, Any]) -> dict[str, Any]:
        replayed = ([{**seeds, "source": str(dataset.path)} for dataset in self.replay_loader().datasets
                     for seeds in dataset.manifest.seed_ranges()] if self.settings.replay else [])
        inherited = list(self.start_metadata.get("training_seeds") or [])
        given = {Path(path) for path in self.config.data}  # the new demonstrations; the others are DAgger roll-outs
        new = [entry for entry in metadata["training_seeds"] if Path(entry["source"]) in given]
        rollouts = [entry for entry in metadata["training_seeds"] if Path(entry["source"]) not in given]
        seeds = []
        for entry in [*metadata["training_seeds"], *replayed, *inherited]:
            if entry not in seeds:
                seeds.append(entry)
        lineage = {"checkpoint": self.settings.start, "sha256": self.settings.start_sha256,
                   "strategy": self.settings.strategy, "new_data": new, "dagger": to_dict(self.config.dagger),
                   "dagger_data": rollouts, "replayed_data": replayed, "replay_fraction": self.settings.replay_fraction,
                   "anchor": self.settings.anchor, "weight_mix": self.settings.weight_mix or 1.0,
                   "start_training_seeds": inherited,
                   "start_adapted_from": self.start_metadata.get("adapted_from")}
        # The weights' state normalisation is the start's (kept, not recomputed from the new data).
        return {**metadata, "data": [*metadata["data"], *self.settings.replay], "training_seeds": seeds,
                "normalisation": self.start_metadata.get("normalisation", metadata["normalisation"]),
                "adapted_from": lineage}
