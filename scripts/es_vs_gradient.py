"""Evolution vs gradient descent on the same plastic networks: the quadruped and the maze.

Schmidgall (2020) evolved plastic networks with ES and trained the same networks with
PPO on a quadruped that loses a leg: ES adapted better, and took less wall time
(214.8 min against 968.8 min on 6 cores). This script measures the same question here
with ``plastic-rl compare`` (see :mod:`plastic_rl.agents.compare`):

- ``quadruped``: ES (the ant-es settings: PGPE + ClipUp, popsize 40, 500-step episodes)
  against PlasticPPO (the ant-ppo settings), the plastic MLP 64-64 (optionally its
  static twin too), random leg failures in training, then the limb-failure evaluation
  of every final policy;
- ``maze``: PlasticPPO with a plastic LSTM 100 (maze-ppo settings) against
  sb3-contrib's RecurrentPPO (LSTM 100, the issue's anchor settings) and, with
  ``--with-a2c``, the full-episode A2C.

Every run folder is resumable: run the same command again (or with a larger
``--budget-steps``) to continue.

    python scripts/es_vs_gradient.py quadruped --budget-steps 300000 --seeds 0 1 --out results/es_vs_gradient/quadruped
    python scripts/es_vs_gradient.py maze --budget-steps 200000 --seeds 0 --out results/es_vs_gradient/maze
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from plastic_rl.agents.compare import Spec, compare


def main(argv=None) -> int:
    """Parse the arguments and run the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiment", choices=["quadruped", "maze"])
    parser.add_argument("--budget-steps", type=int, required=True, help="env steps per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", required=True, help="output folder (run folders under OUT/runs)")
    parser.add_argument("--policy", default=None, help="quadruped: plastic-mlp (default) or plastic-lstm; maze: plastic-lstm (default) or plastic-rnn (Backpropamine's plastic Elman cell)")
    parser.add_argument("--static-twin", action="store_true", help="also train the parameter-matched static networks")
    parser.add_argument("--with-a2c", action="store_true", help="maze: also the full-episode A2C")
    parser.add_argument("--episodes", type=int, default=5, help="quadruped: limb-failure episodes per condition")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.experiment == "quadruped":
        env_id, methods = "plastic_rl/AntLegFailure-v0", ("es", "ppo")
    else:
        env_id, methods = "plastic_rl/Maze-v0", ("ppo", "rppo") + (("a2c",) if args.with_a2c else ())
    spec = Spec(env_id=env_id, budget_steps=args.budget_steps, out=args.out, seeds=tuple(args.seeds), methods=methods,
                policy=args.policy, static_twin=args.static_twin, episodes=args.episodes)
    started = time.perf_counter()
    result = compare(spec)
    print(f"{args.experiment}: {time.perf_counter() - started:.0f} s in this call; per-run wall times are in {result['csv']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
