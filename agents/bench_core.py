"""``plastic-rl bench core``: forward+backward time of the plastic cells over whole episodes.

The spiking cell (:class:`~plastic_rl.spiking.PlasticSpikingCell`, SpikePropamine)
against the plastic rate cell (:class:`~plastic_rl.cells.PlasticRNNCell`) at the
same sizes: batch 30, hidden 100, 200 steps, 15 inputs (the maze's observation),
as in full-episode BPTT. For each cell, plastic (simple modulation, Hebbian) and
non-plastic: the median seconds of one forward over the 200 steps plus the
backward of a scalar of every output, and the forward alone without a graph
(what evolution strategies run). One CPU thread unless ``threads`` says otherwise.
"""

from __future__ import annotations

import platform
import time
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import nn

from plastic_rl.cells import PlasticRNNCell
from plastic_rl.runs import atomic_write_json, platform_record
from plastic_rl.spiking import PlasticSpikingCell

VARIANTS: Dict[str, Callable[[int, int], nn.Module]] = {
    "spiking, plastic (simple)": lambda i, h: PlasticSpikingCell(i, h, modulation="simple"),
    "rate RNN, plastic (simple)": lambda i, h: PlasticRNNCell(i, h, modulation="simple"),
    "spiking, non-plastic": lambda i, h: PlasticSpikingCell(i, h, plastic=False),
    "rate RNN, non-plastic": lambda i, h: PlasticRNNCell(i, h, plastic=False),
}


def time_episode(cell: nn.Module, inputs: torch.Tensor, repeats: int, backward: bool) -> float:
    """Median seconds of one pass of ``cell`` over ``inputs`` ``(T, B, in)``, with the backward if ``backward``.

    :param cell: the module, functional about its state.
    :param inputs: the episode's inputs, time first.
    :param repeats: timed repetitions (after one untimed warm-up).
    :param backward: also backpropagate a scalar of every output through the whole episode.
    """
    times: List[float] = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        with torch.set_grad_enabled(backward):
            state, total = None, inputs.new_zeros(())
            for x in inputs:
                out, state = cell(x, state)
                total = total + out.sum()
            if backward:
                cell.zero_grad(set_to_none=True)
                total.backward()
        if inputs.is_cuda:
            torch.cuda.synchronize()
        if i > 0:
            times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def main(quick: bool = False, output: Optional[str] = None, threads: int = 1, device: str = "cpu",
         batch: int = 30, hidden: int = 100, steps: int = 200, inputs: int = 15) -> Dict[str, Any]:
    """Run the benchmark, print the table, optionally write JSON to ``output``.

    :param quick: two timed repetitions instead of seven (seconds).
    :param output: a JSON file for the figures.
    :param threads: torch intra-op threads.
    :param device: torch device.
    :param batch: episodes run together.
    :param hidden: neurons of the cell.
    :param steps: steps per episode.
    :param inputs: input features.
    """
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    repeats = 2 if quick else 7
    # Inputs strong enough that the spiking cell fires (about a quarter of its neurons per step).
    xs = (torch.rand(steps, batch, inputs, device=device) < 0.3).float()
    print(f"Plastic cells over one episode: batch {batch}, hidden {hidden}, {steps} steps, {inputs} inputs, "
          f"{threads} thread(s), device {device}, median of {repeats}")
    print(f"{'cell':28s} {'fwd+bwd s':>10} {'fwd (no grad) s':>16}")
    rows = []
    for name, build in VARIANTS.items():
        cell = build(inputs, hidden).to(device)
        row = {"cell": name, "forward_backward_s": time_episode(cell, xs, repeats, backward=True),
               "forward_no_grad_s": time_episode(cell, xs, repeats, backward=False)}
        rows.append(row)
        print(f"{name:28s} {row['forward_backward_s']:>10.3f} {row['forward_no_grad_s']:>16.3f}")
    by_name = {r["cell"]: r for r in rows}
    ratio = by_name["spiking, plastic (simple)"]["forward_backward_s"] / by_name["rate RNN, plastic (simple)"]["forward_backward_s"]
    print(f"\nspiking / rate (plastic, fwd+bwd): {ratio:.2f}x")
    result = {
        "platform": platform_record(),  # CPU model and package versions: timings compare only within one platform
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "torch": torch.__version__,
                    "threads": threads, "device": device},
        "sizes": {"batch": batch, "hidden": hidden, "steps": steps, "inputs": inputs, "repeats": repeats},
        "cells": rows,
        "spiking_over_rate_forward_backward": ratio,
    }
    if output:
        atomic_write_json(output, result)
        print(f"wrote {output}")
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    main(args.quick, args.output, args.threads, args.device)
