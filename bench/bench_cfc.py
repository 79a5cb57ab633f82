"""Speed of our CfC against ncps's, and of a whole training step of the default policy against an LSTM baseline.

Prints figures only, each as a ratio against its baseline measured in the same run (never pass/fail on time:
timings depend on the machine and its load). The contenders of each comparison run interleaved, round by round,
and the median per round is reported, so that load from other processes hits both sides alike.

    .venv/bin/python bench/bench_cfc.py           # at most about 55 s (less on an idle machine)
    .venv/bin/python bench/bench_cfc.py --quick   # a few seconds
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from ncps.torch import CfC
from ncps.wirings import AutoNCP
from torch import nn

from policies import PolicyConfig, build_policy
from policies.fast_cfc import FastCfC, FastWiredCfC, state_dict_from_ncps

BATCH, STEPS = 16, 32  # training windows per batch, frames per window
HEAD_INPUTS = 39  # 32 CNN features + 7 state


def interleaved_medians(
    contenders: dict[str, Callable[[], None]], rounds: int, budget_s: float
) -> tuple[dict[str, float], int]:
    """(median seconds per call of each contender, rounds run), alternating between the contenders every round
    (after one warm-up call each), for `rounds` rounds or until `budget_s` is spent (at least 3 rounds), so that a
    loaded machine cannot stretch the run."""
    for run in contenders.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    deadline = time.perf_counter() + budget_s
    for index in range(rounds):
        if index >= 3 and time.perf_counter() > deadline:
            break
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    rounds_run = len(next(iter(times.values())))
    return {name: statistics.median(values) for name, values in times.items()}, rounds_run


def head_step(module: nn.Module, call: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
    """Forward + backward of a recurrent head over one batch of windows."""
    x = torch.randn(BATCH, STEPS, HEAD_INPUTS, requires_grad=True)

    def run() -> None:
        module.zero_grad(set_to_none=True)
        call(x).square().mean().backward()

    return run


def bench_heads(rounds: int, budget_s: float) -> None:
    print(f"head forward + backward, batch {BATCH} x {STEPS} steps, {HEAD_INPUTS} inputs (median ms per batch):")
    torch.manual_seed(0)
    # ncps runs with its default time span of 1 (its batched time spans are broken); ours gets the same as data.
    dt = torch.ones(BATCH, STEPS)
    pairs = {
        "CfC, AutoNCP(70, 4) wiring (cfc-ncp head)": (
            CfC(HEAD_INPUTS, AutoNCP(70, 4)),
            FastWiredCfC(HEAD_INPUTS, AutoNCP(70, 4)),
        ),
        "CfC, 53 units, backbone 64 (cfc head)": (
            CfC(HEAD_INPUTS, 53, backbone_units=64),
            FastCfC(HEAD_INPUTS, 53, 64),
        ),
    }
    for title, (reference, fast) in pairs.items():
        fast.load_state_dict(state_dict_from_ncps(reference.state_dict()))
        state = fast.state_size
        medians, rounds_run = interleaved_medians(
            {
                "ncps": head_step(reference, lambda x, m=reference: m(x)[0]),
                "ours": head_step(fast, lambda x, m=fast, n=state: m(x, torch.zeros(BATCH, n), dt)[0]),
            },
            rounds,
            budget_s,
        )
        ratio = medians["ncps"] / medians["ours"]
        print(f"  {title}, {rounds_run} rounds")
        print(f"    ncps 1.0.1 CfC    {medians['ncps'] * 1e3:8.2f} ms   1.00x (baseline)")
        print(f"    policies.fast_cfc {medians['ours'] * 1e3:8.2f} ms   {ratio:.2f}x faster")


def bench_head_vs_lstm(rounds: int, budget_s: float) -> None:
    """The policy heads alone (cfc-ncp's and lstm's, as `build_policy` makes them), forward + backward."""
    torch.manual_seed(0)
    dt = torch.full((BATCH, STEPS), 1.0)
    contenders = {}
    for model in ("lstm", "cfc-ncp"):
        head = build_policy(PolicyConfig(model=model)).head
        hidden = tuple(torch.zeros(BATCH, size) for size in head.hidden_sizes())
        contenders[model] = head_step(head, lambda x, m=head, h=hidden: m(x, dt, h)[0])
    medians, rounds_run = interleaved_medians(contenders, rounds, budget_s)
    print(f"policy head alone, forward + backward, {rounds_run} rounds (median ms per batch):")
    for model, median in medians.items():
        note = "1.00x (baseline)" if model == "lstm" else f"{medians['lstm'] / median:.2f}x the LSTM head's rate"
        print(f"  {model:8s} {median * 1e3:8.2f} ms   {note}")


def training_step(model: str) -> tuple[Callable[[], None], int]:
    """One optimiser step of a whole policy (normalisation, CNN, head, tanh, MSE, Adam) on a batch of windows."""
    policy = build_policy(PolicyConfig(model=model))
    optimiser = torch.optim.Adam(policy.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (BATCH, STEPS, 48, 64, 3), dtype=torch.uint8, generator=generator)
    states = torch.randn(BATCH, STEPS, 7, generator=generator)
    dt = torch.full((BATCH, STEPS), 1.0 / 30.0)
    targets = torch.rand(BATCH, STEPS, 4, generator=generator) * 2 - 1

    def run() -> None:
        actions, _ = policy(images, states, dt)
        loss = nn.functional.mse_loss(actions, targets)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    return run, policy.parameter_counts()["head"]


def bench_training(rounds: int, budget_s: float) -> None:
    frames = BATCH * STEPS
    steps = {model: training_step(model) for model in ("lstm", "cfc-ncp")}
    medians, rounds_run = interleaved_medians({model: run for model, (run, _) in steps.items()}, rounds, budget_s)
    print(f"whole training step, batch {BATCH} windows x {STEPS} frames of 48x64, {rounds_run} rounds (median):")
    baseline = frames / medians["lstm"]
    for model, (_, head_parameters) in steps.items():
        rate = frames / medians[model]
        note = "1.00x (baseline)" if model == "lstm" else f"{rate / baseline:.2f}x the LSTM's rate"
        print(f"  {model:8s} ({head_parameters:,} head parameters) {rate:8,.0f} frames/s   {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few rounds only: a smoke run of a few seconds")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads{', quick' if args.quick else ''}")
    bench_heads(rounds=5 if args.quick else 100, budget_s=1.0 if args.quick else 12.0)
    bench_head_vs_lstm(rounds=5 if args.quick else 100, budget_s=1.0 if args.quick else 8.0)
    bench_training(rounds=4 if args.quick else 60, budget_s=1.0 if args.quick else 15.0)


if __name__ == "__main__":
    main()
