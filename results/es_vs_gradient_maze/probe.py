"""Probe: maze-ppo preset + overrides, one run; prints smoothed return at 100k/200k/300k.

The maze-ppo preset's policy is the plastic LSTM since stop 12; the probes of tuning.md's first three
rounds ran with the plastic RNN (the preset then): add policy='"rnn"' to repeat them.
"""
import csv, json, sys, time, os
import torch
torch.set_num_threads(1)

from plastic_rl.agents import ppo_train
from plastic_rl.agents.compare import _preset
name = sys.argv[1]
over = {}
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1)
    try:
        v = json.loads(v)
    except Exception:
        pass
    over[k] = v
data = _preset("maze-ppo")
data.update(progress=False, tensorboard=False, checkpoint_every=1000, total_timesteps=300000)
data.update(over)
cfg = ppo_train.Config(**data)
run = f"/tmp/maze_probes/{name}"
t = time.time()
s = ppo_train.train(cfg, run, resume=os.path.isfile(run + "/config.yaml"))
rows = list(csv.DictReader(open(run + "/metrics.csv")))
def at(step, w=12):
    r = [float(x["mean_return"]) for x in rows if int(x["env_steps"]) <= step][-w:]
    return sum(r) / len(r) if r else float("nan")
wall = float(rows[-1]["wall_time"])
line = f"| {name} | {' '.join(sys.argv[2:])} | {at(100000):.1f} | {at(200000):.1f} | {at(300000):.1f} | {wall:.0f} |"
print(line)
open("/tmp/maze_probes/log.md", "a").write(line + "\n")
