"""Trainers of plastic-rl (installed as ``plastic_rl.agents``).

``PlasticPPO`` is imported lazily, so that ``import plastic_rl.agents.cli`` (and the
other trainers) do not load stable-baselines3.
"""


def __getattr__(name: str):
    if name in ("PlasticPPO", "PlasticLstmPolicy", "PlasticRnnPolicy", "PlasticSpikingPolicy", "PlasticMlpPolicy"):
        from plastic_rl.agents import ppo

        return getattr(ppo, name)
    raise AttributeError(f"module 'plastic_rl.agents' has no attribute {name!r}")
