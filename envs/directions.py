"""The quadruped rewarded for running in a chosen direction: ``plastic_rl/AntDirection-v0``.

Ant-v5 (here :class:`~plastic_rl.envs.quadruped.AntLegFailureEnv`, so leg failures
combine with it) rewards the torso's velocity along +x. :class:`DirectionReward`
replaces that term by the velocity along one of four directions, ``+x``, ``-x``,
``+y`` or ``-y``; the alive bonus and the control and contact costs are Ant's.
The observation does not say which direction pays, so a policy trained on one
direction and then on the opposite one meets the strongest interference the
quadruped offers (the ``ant-directions`` task sequence).
"""

from __future__ import annotations

from typing import Any, Final

import gymnasium as gym

from plastic_rl.envs.quadruped import AntLegFailureEnv

__all__ = ["DIRECTIONS", "DirectionReward", "make_directional_ant"]

DIRECTIONS: Final[dict[str, tuple[float, float]]] = {"+x": (1.0, 0.0), "-x": (-1.0, 0.0), "+y": (0.0, 1.0), "-y": (0.0, -1.0)}
"""Direction name -> unit vector in the world's (x, y) plane."""


class DirectionReward(gym.Wrapper):
    """Reward velocity along ``direction`` instead of along +x.

    ``reward = Ant's reward − Ant's forward term + weight · (d · v_xy)``. The info
    dict's ``reward_forward`` holds the new directional term (so the ``reward_*``
    entries still add up to the reward), and ``direction_velocity`` the torso's
    velocity along ``direction``.

    :param env: an Ant-v5 env (or one built on it) whose info has ``x_velocity``,
        ``y_velocity`` and ``reward_forward``.
    :param direction: ``"+x"``, ``"-x"``, ``"+y"`` or ``"-y"``.
    :param forward_reward_weight: the weight of the velocity term (Ant's ``forward_reward_weight``).
    """

    def __init__(self, env: gym.Env, direction: str = "+x", forward_reward_weight: float = 1.0) -> None:
        super().__init__(env)
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(map(repr, DIRECTIONS))}; got {direction!r}.")
        self.direction = direction
        self._unit = DIRECTIONS[direction]
        self._weight = float(forward_reward_weight)

    def step(self, action: Any):
        """Ant's step with the forward term replaced by the directional one."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        velocity = self._unit[0] * info["x_velocity"] + self._unit[1] * info["y_velocity"]
        directional = self._weight * velocity
        reward = float(reward) - float(info["reward_forward"]) + directional
        info = {**info, "reward_forward": directional, "direction_velocity": velocity, "direction": self.direction}
        return obs, reward, terminated, truncated, info


def make_directional_ant(direction: str = "+x", forward_reward_weight: float = 1.0, **kwargs: Any) -> gym.Env:
    """The entry point of ``plastic_rl/AntDirection-v0``: the leg-failure Ant rewarded along ``direction``.

    :param direction: ``"+x"``, ``"-x"``, ``"+y"`` or ``"-y"``.
    :param forward_reward_weight: weight of the velocity term.
    :param kwargs: passed to :class:`~plastic_rl.envs.quadruped.AntLegFailureEnv` (leg failures,
        every Ant-v5 keyword argument).
    """
    if direction not in DIRECTIONS:  # before building MuJoCo
        raise ValueError(f"direction must be one of {', '.join(map(repr, DIRECTIONS))}; got {direction!r}.")
    env = AntLegFailureEnv(forward_reward_weight=forward_reward_weight, **kwargs)
    return DirectionReward(env, direction, forward_reward_weight)
