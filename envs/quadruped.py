"""The quadruped with disabled legs: ``plastic_rl/AntLegFailure-v0``.

:class:`AntLegFailureEnv` is gymnasium's ``Ant-v5`` in which chosen legs stop
working: both actuators of a failed leg (hip and ankle) receive their control
scaled by the leg's strength, 0 (limp, the default) to 1 (intact). Which legs
fail is either fixed or drawn per episode from a distribution over named
outcomes (one leg, or several joined by ``+``), and the failure either exists
from the first step, happens at step ``k``, or happens at a step drawn per
episode. Everything else (dynamics, observation, reward terms, termination,
every ``Ant-v5`` keyword argument) is ``Ant-v5`` unchanged.

Leg names follow gymnasium's Ant documentation and the body names of its
``ant.xml`` (hip_1 "front_left_leg", hip_2 "front_right_leg", hip_3
"back_leg", hip_4 "right_back_leg"), as the project's design specifies. Note
that these names do not match the geometry relative to the rewarded +x
direction: at rest the legs sit at (+x,+y), (-x,+y), (-x,-y), (+x,-y), so
only front_left is where its name says. The names are labels of fixed legs;
the public API uses them, never actuator indices.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real
from typing import Any, Final, SupportsFloat

import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco.ant_v5 import AntEnv

__all__ = [
    "AntLegFailureEnv",
    "DEFAULT_FAILURE_PROBS",
    "DEFAULT_FAILURE_STEP_RANGE",
    "FAILURE_OUTCOMES",
    "LEG_ACTUATORS",
    "LEG_JOINTS",
    "LEG_NAMES",
    "parse_outcome",
]

LEG_NAMES: Final[tuple[str, ...]] = ("front_left", "front_right", "back_left", "back_right")
"""The four legs, in the canonical order used for ``failed_legs`` tuples."""

LEG_JOINTS: Final[dict[str, tuple[str, str]]] = {
    "front_left": ("hip_1", "ankle_1"),
    "front_right": ("hip_2", "ankle_2"),
    "back_left": ("hip_3", "ankle_3"),
    "back_right": ("hip_4", "ankle_4"),
}
"""Leg name -> (hip joint, ankle joint) in Ant-v5's ``ant.xml``."""

LEG_ACTUATORS: Final[dict[str, tuple[int, int]]] = {
    "front_left": (2, 3),
    "front_right": (4, 5),
    "back_left": (6, 7),
    "back_right": (0, 1),
}
"""Leg name -> (hip, ankle) actuator indices of the default Ant-v5 model.

The env itself resolves the indices from the loaded model's transmission
joints (see :class:`AntLegFailureEnv`), so a custom ``xml_file`` that orders
its actuators differently is still masked correctly; for the stock model the
result equals this table (checked in the tests).
"""

FAILURE_OUTCOMES: Final[tuple[str, ...]] = ("none", *LEG_NAMES)
"""The single-leg keys of ``failure_probs``: ``"none"`` (intact) or one failed leg.

Several legs failing together are one outcome too, named by joining leg names
with ``+`` (e.g. ``"front_left+back_right"``; see :func:`parse_outcome`)."""

DEFAULT_FAILURE_PROBS: Final[dict[str, float]] = {
    "none": 0.4,
    "front_left": 0.15,
    "front_right": 0.15,
    "back_left": 0.15,
    "back_right": 0.15,
}
"""Default distribution for ``failed_legs="random"``."""

DEFAULT_FAILURE_STEP_RANGE: Final[tuple[int, int]] = (250, 750)
"""Default ``failure_step_range`` for ``failure_step="random"``: steps 250..749,
the middle half of Ant-v5's 1000-step episode. Give your own range (e.g. the
middle half ``(L // 4, 3 * L // 4)``) when episodes are ``L`` steps long."""

_PROB_TOLERANCE: Final[float] = 1e-6
_OUTCOME_RULE: Final[str] = (
    f"'none' or leg names from {list(LEG_NAMES)} joined by '+' (e.g. 'front_left+back_right')"
)


def parse_outcome(key: str) -> tuple[str, ...] | None:
    """The canonical tuple of failed legs an outcome name stands for, or None if it is not one.

    ``"none"`` is ``()``; ``"back_right+front_left"`` is ``("front_left", "back_right")``.
    A name with an unknown or repeated leg is not an outcome.

    :param key: the outcome name.
    :return: the legs in :data:`LEG_NAMES` order, or None.
    """
    if not isinstance(key, str):
        return None
    if key == "none":
        return ()
    legs = [part.strip() for part in key.split("+")]
    if any(leg not in LEG_NAMES for leg in legs) or len(set(legs)) != len(legs):
        return None
    return tuple(leg for leg in LEG_NAMES if leg in legs)


def _validate_failed_legs(value: Any, argument: str) -> tuple[str, ...] | None:
    """Return the canonical tuple of failed legs, or None for ``"random"``.

    Args:
        value: What the user passed: a list/tuple/set of leg names, or "random".
        argument: The argument's name, quoted in error messages.

    Raises:
        ValueError: On a wrong type, an unknown leg name or a repeated leg.
    """
    if isinstance(value, str):
        if value == "random":
            return None
        raise ValueError(
            f"{argument} must be a list of leg names drawn from {list(LEG_NAMES)} "
            f"or the string 'random', got the string {value!r}."
        )
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise ValueError(
            f"{argument} must be a list of leg names drawn from {list(LEG_NAMES)} "
            f"or the string 'random', got {type(value).__name__}."
        )
    legs = list(value)
    unknown = [leg for leg in legs if not isinstance(leg, str) or leg not in LEG_NAMES]
    if unknown:
        raise ValueError(
            f"{argument} contains unknown leg name(s) {unknown}; allowed names are "
            f"{list(LEG_NAMES)}."
        )
    if len(set(legs)) != len(legs):
        raise ValueError(f"{argument} names a leg more than once: {legs}; list each leg at most once.")
    # Canonical order, so that results can be grouped by the tuple in info.
    return tuple(leg for leg in LEG_NAMES if leg in legs)


def _validate_failure_probs(value: Any) -> tuple[tuple[tuple[str, ...], ...], np.ndarray]:
    """Turn ``failure_probs`` into (outcomes as leg tuples, cumulative distribution).

    Args:
        value: Mapping from outcome names ("none", a leg name, or leg names
            joined by "+") to probabilities, or None for
            :data:`DEFAULT_FAILURE_PROBS`. Outcomes left out have probability 0.

    Raises:
        ValueError: On a wrong type, unknown or repeated outcomes, negative or
            non-finite probabilities, or a sum farther than 1e-6 from 1.
    """
    if value is None:
        value = DEFAULT_FAILURE_PROBS
    if not isinstance(value, Mapping):
        raise ValueError(
            f"failure_probs must be a dict mapping outcomes ({_OUTCOME_RULE}) to "
            f"probabilities, got {type(value).__name__}."
        )
    unknown = [key for key in value if parse_outcome(key) is None]
    if unknown:
        raise ValueError(f"failure_probs has unknown key(s) {unknown}; allowed keys are {_OUTCOME_RULE}.")
    by_legs: dict[tuple[str, ...], Any] = {}
    for key, p in value.items():
        legs = parse_outcome(key)
        if legs in by_legs:
            raise ValueError(f"failure_probs names the outcome {key!r} twice (leg order does not matter); give each outcome once.")
        by_legs[legs] = p
    outcomes: list[tuple[str, ...]] = []
    probs: list[float] = []
    # Fixed order (fewer legs first, then LEG_NAMES order): the draw for a seed must not
    # depend on dict order, and the single-leg outcomes keep the order they always had.
    order = lambda legs: (len(legs), [LEG_NAMES.index(leg) for leg in legs])  # noqa: E731
    for legs in sorted(by_legs, key=order):
        p = by_legs[legs]
        name = "+".join(legs) or "none"
        if isinstance(p, bool) or not isinstance(p, Real) or not math.isfinite(p) or p < 0:
            raise ValueError(f"failure_probs[{name!r}] must be a finite probability >= 0, got {p!r}.")
        if p > 0:
            outcomes.append(legs)
            probs.append(float(p))
    total = math.fsum(probs)
    if abs(total - 1.0) > _PROB_TOLERANCE:
        raise ValueError(
            f"failure_probs must sum to 1 (within {_PROB_TOLERANCE:g}) over outcomes ({_OUTCOME_RULE}), "
            f"got a sum of {total!r}."
        )
    cdf = np.cumsum(np.asarray(probs) / total)
    cdf[-1] = 1.0  # guard against round-off so that a draw in [0, 1) always lands
    return tuple(outcomes), cdf


def _validate_pre_failure_weight(value: Any) -> float:
    """``pre_failure_reward_weight``: a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"pre_failure_reward_weight must be a number from 0 to 1; got {value!r}.")
    return float(value)


def _validate_failure_step(value: Any, argument: str = "failure_step") -> int | None:
    """Return ``value`` as a non-negative int, or None for ``"random"``.

    Args:
        value: The step index at which the failure happens (0 = from the start),
            or "random" (drawn per episode from ``failure_step_range``).
        argument: The argument's name, quoted in error messages.

    Raises:
        ValueError: If ``value`` is neither "random" nor a non-negative integer.
    """
    if isinstance(value, str) and value == "random":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(
            f"{argument} must be a non-negative integer (0 = from the start) or 'random', "
            f"got {type(value).__name__} {value!r}."
        )
    return int(value)


def _validate_step_range(value: Any) -> tuple[int, int]:
    """Return ``failure_step_range`` as ``(low, high)`` with ``0 <= low < high``.

    Args:
        value: Two integers: random failure steps are drawn from ``low .. high - 1``.

    Raises:
        ValueError: On anything else.
    """
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
        and 0 <= value[0] < value[1]
    )
    if not ok:
        raise ValueError(
            "failure_step_range must be two integers (low, high) with 0 <= low < high "
            f"(random failure steps are drawn from low .. high - 1), got {value!r}."
        )
    return int(value[0]), int(value[1])


def _validate_leg_strength(value: Any, argument: str = "leg_strength") -> float | dict[str, float]:
    """Return ``leg_strength`` as a float or a dict leg -> float, every value in [0, 1].

    Args:
        value: A number (every failed leg) or a mapping from leg names to numbers.
        argument: The argument's name, quoted in error messages.

    Raises:
        ValueError: On an unknown leg, a value outside [0, 1] or a wrong type.
    """
    def check(x: Any, where: str) -> float:
        if isinstance(x, bool) or not isinstance(x, Real) or not (0.0 <= float(x) <= 1.0):
            raise ValueError(
                f"{where} must be a number in [0, 1] (the share of control a failed leg keeps: "
                f"0 = limp, 1 = intact), got {x!r}."
            )
        return float(x)

    if isinstance(value, Mapping):
        unknown = [leg for leg in value if leg not in LEG_NAMES]
        if unknown:
            raise ValueError(f"{argument} has unknown leg name(s) {unknown}; allowed names are {list(LEG_NAMES)}.")
        return {leg: check(value[leg], f"{argument}[{leg!r}]") for leg in LEG_NAMES if leg in value}
    if isinstance(value, Real) and not isinstance(value, bool):
        return check(value, argument)
    raise ValueError(
        f"{argument} must be a number in [0, 1] or a dict mapping leg names from {list(LEG_NAMES)} "
        f"to numbers in [0, 1], got {type(value).__name__}."
    )


def _check_strength_legs(
    strength: float | dict[str, float], legs: tuple[str, ...] | None, where: str
) -> None:
    """Refuse a ``leg_strength`` mapping that names a leg a fixed failure never fails.

    Args:
        strength: The validated ``leg_strength``.
        legs: The fixed failed legs, or None when they are drawn (any leg may come up).
        where: Names the arguments in the error message.
    """
    if legs is None or not isinstance(strength, dict):
        return
    extra = [leg for leg in strength if leg not in legs]
    if extra:
        raise ValueError(
            f"{where}: leg_strength names leg(s) {extra} that do not fail (failed legs: {list(legs)}); "
            "name only failed legs, or add them to failed_legs."
        )


class AntLegFailureEnv(AntEnv):
    """Ant-v5 in which some legs lose all or part of their control.

    A failed leg's hip and ankle controls are multiplied by the leg's strength
    (0 = limp, the default; 0.3 = weak; 1 = intact) before the action reaches
    MuJoCo *and* before Ant-v5 computes its control cost, so the cost is
    ``ctrl_cost_weight * ||scaled action||^2``. The scale is a float vector
    built once per outcome; a step costs one extra vector multiply.

    Failure timing (``failure_step = k``): steps are counted from 0 after each
    ``reset``. With ``k = 0`` the legs are failed from the start (already in
    the reset info). With ``k > 0`` the actions of steps 0 .. k-1 pass
    unchanged and the action of step index k (the (k+1)-th ``step`` call) is
    the first one scaled; the info returned by that call is the first with
    ``failure_active = True``. If the episode ends before step k, the failure
    never happens. With ``failure_step="random"`` each episode draws k
    uniformly from ``failure_step_range`` (default 250 .. 749, the middle half
    of Ant-v5's 1000 steps).

    ``info`` of ``reset`` and of every ``step`` carries:

    * ``failed_legs``: tuple of the leg names that fail (or will fail) in this
      episode, in :data:`LEG_NAMES` order; ``()`` for an intact episode.
    * ``leg_strength``: dict failed leg -> the share of control it keeps.
    * ``failure_step``: the step index of this episode's failure.
    * ``failure_active``: whether the failure is in effect for this step
      (always False when ``failed_legs`` is empty).

    ``pre_failure_reward_weight = w`` (default 1) scales the reward of the steps
    before the failure of an episode in which a leg will fail: Ant's forward
    reward and costs are multiplied by w, its alive bonus is kept, so a search
    that subtracts the alive bonus (ES's ``decrease_rewards_by``) sees w times
    Ant's motion reward there and all of it after the failure. With w < 1 the
    fitness pays more for what a policy does once the leg has gone than for
    the intact gait before it. Steps of episodes without a failure, the
    ``info`` reward terms and the motion itself are Ant-v5's unchanged.

    ``reset(options=...)`` may override, for that one episode only,
    ``"failed_legs"`` (a list of leg names or "random"), ``"failure_step"``
    (an int or "random") and ``"leg_strength"``. Other option keys are
    ignored, so that wrappers can use their own.

    Random draws use ``self.np_random`` after Ant-v5's own reset noise, so
    ``reset(seed=s)`` gives the same initial state as ``Ant-v5`` with seed s
    and a reproducible draw: first the outcome (with ``failed_legs="random"``),
    then the step (with ``failure_step="random"``, only when a leg fails). No
    random number is consumed when the legs are fixed and the step is fixed
    (or no leg fails), so an intact env reproduces ``Ant-v5`` exactly.
    """

    def __init__(
        self,
        *,
        failed_legs: list[str] | tuple[str, ...] | str | None = None,
        failure_probs: Mapping[str, float] | None = None,
        failure_step: int | str = 0,
        failure_step_range: tuple[int, int] = DEFAULT_FAILURE_STEP_RANGE,
        leg_strength: float | Mapping[str, float] = 0.0,
        pre_failure_reward_weight: float = 1.0,
        **kwargs: Any,
    ) -> None:
        """Create the env.

        Args:
            failed_legs: Legs that fail in every episode, as a list/tuple of
                names from :data:`LEG_NAMES` (empty = intact), or the string
                "random" to draw one outcome per episode from ``failure_probs``.
                None (the default) means the legs named by a ``leg_strength``
                mapping, or no leg, so ``leg_strength={"front_left": 0.3}``
                alone gives a weak front-left leg.
            failure_probs: Distribution used when ``failed_legs="random"``:
                a dict mapping outcomes to probabilities summing to 1 (within
                1e-6); an outcome is "none", a leg name, or leg names joined by
                "+" for legs failing together ("front_left+back_right").
                Missing outcomes mean 0. Default :data:`DEFAULT_FAILURE_PROBS`
                (none 0.4, each leg 0.15). Validated even when not used, so a
                typo never goes unnoticed.
            failure_step: Step index of the failure within each episode:
                0 = from the start; k > 0 = the action of step index k
                (counted from 0 after reset) is the first one scaled;
                "random" = drawn per episode from ``failure_step_range``.
            failure_step_range: ``(low, high)``: random failure steps are drawn
                uniformly from ``low .. high - 1``. Default (250, 750), the
                middle half of Ant-v5's 1000-step episode.
            leg_strength: The share of control a failed leg keeps, in [0, 1]:
                a number for every failed leg, or a dict leg -> number (legs
                left out keep 0). 0 (default) is a limp leg.
            pre_failure_reward_weight: In [0, 1]: the weight of Ant's forward
                reward and costs on the steps before this episode's failure
                (the alive bonus is kept); 1 (default) is Ant-v5's reward.
            **kwargs: Passed unchanged to ``gymnasium.envs.mujoco.ant_v5.AntEnv``
                (``ctrl_cost_weight``, ``healthy_z_range``, ``xml_file``, ...).

        Raises:
            ValueError: On an unknown leg name, a malformed ``failure_probs``,
                a bad ``failure_step`` or ``failure_step_range``, a strength
                outside [0, 1], a ``leg_strength`` leg that never fails, a
                wrong type, or an ``xml_file`` lacking the hip_i/ankle_i
                actuated joints.
        """
        # Validate our own arguments before the (slower) model load.
        self._default_strength = _validate_leg_strength(leg_strength)
        if failed_legs is None:
            failed_legs = tuple(self._default_strength) if isinstance(self._default_strength, dict) else ()
        self._fixed_failed_legs = _validate_failed_legs(failed_legs, "failed_legs")
        _check_strength_legs(self._default_strength, self._fixed_failed_legs, "AntLegFailureEnv")
        self._outcomes, self._outcome_cdf = _validate_failure_probs(failure_probs)
        self._default_failure_step = _validate_failure_step(failure_step)
        self._step_range = _validate_step_range(failure_step_range)
        self._pre_failure_weight = _validate_pre_failure_weight(pre_failure_reward_weight)

        super().__init__(**kwargs)
        # AntEnv registered its own positional args for pickling/copying;
        # re-register ours so that a copy is rebuilt with the failure settings.
        utils.EzPickle.__init__(
            self,
            failed_legs=failed_legs,
            failure_probs=failure_probs,
            failure_step=failure_step,
            failure_step_range=failure_step_range,
            leg_strength=leg_strength,
            pre_failure_reward_weight=pre_failure_reward_weight,
            **kwargs,
        )

        self._leg_actuators = self._resolve_leg_actuators(kwargs.get("xml_file", "ant.xml"))
        # One scale vector per (legs, strengths), built once: a reset only picks a prebuilt array.
        self._intact_mask = np.ones(self.model.nu, dtype=np.float64)
        self._mask_cache: dict[tuple[tuple[str, ...], tuple[float, ...]], np.ndarray] = {
            ((), ()): self._intact_mask
        }

        # Episode state; valid before the first reset too (stepping without
        # reset is allowed by MujocoEnv when the env is built directly).
        self._episode_failed_legs: tuple[str, ...] = ()
        self._episode_strength: dict[str, float] = {}
        self._failure_mask = self._intact_mask
        self._mask = self._intact_mask
        self._failure_step = 0
        self._failure_active = False
        self._t = 0
        first_step = self._step_range[0] if self._default_failure_step is None else self._default_failure_step
        self._begin_episode(self._fixed_failed_legs or (), self._default_strength, first_step)

    # ------------------------------------------------------------------ API
    @property
    def failed_legs(self) -> tuple[str, ...]:
        """Legs that fail (or will fail) in the current episode, in LEG_NAMES order."""
        return self._episode_failed_legs

    @property
    def leg_strength(self) -> dict[str, float]:
        """Failed leg -> the share of its control it keeps, for the current episode."""
        return dict(self._episode_strength)

    @property
    def failure_active(self) -> bool:
        """Whether the failure is in effect for the current step."""
        return self._failure_active

    @property
    def failure_step(self) -> int:
        """Step index at which the failure happens in the current episode."""
        return self._failure_step

    def reset(
        self,
        *,
        seed: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset Ant-v5, then choose this episode's failure.

        Args:
            seed: Seed for ``self.np_random`` (Ant's reset noise and the draws).
            options: Optional one-episode overrides: ``"failed_legs"`` (list of
                leg names or "random"), ``"failure_step"`` (int >= 0 or
                "random") and ``"leg_strength"`` (number or dict in [0, 1]).

        Returns:
            The observation and Ant-v5's reset info plus ``failed_legs``,
            ``leg_strength``, ``failure_step`` and ``failure_active``.
        """
        # Validate overrides before touching the simulation, so that bad
        # options leave the env as it was.
        legs_spec: tuple[str, ...] | None = self._fixed_failed_legs
        failure_step = self._default_failure_step
        strength = self._default_strength
        if options:
            if "leg_strength" in options:
                strength = _validate_leg_strength(options["leg_strength"], 'options["leg_strength"]')
            if "failed_legs" in options:
                legs_spec = _validate_failed_legs(options["failed_legs"], 'options["failed_legs"]')
            if "failure_step" in options:
                failure_step = _validate_failure_step(options["failure_step"], 'options["failure_step"]')
            if "leg_strength" in options or "failed_legs" in options:
                _check_strength_legs(strength, legs_spec, "reset options")

        obs, info = super().reset(seed=seed, options=options)
        # Drawn after Ant's reset noise: a seeded reset starts exactly where
        # Ant-v5 with the same seed starts.
        legs = self._draw_failed_legs() if legs_spec is None else legs_spec
        if failure_step is None:
            # Drawn only when a leg fails, so intact episodes consume no random number.
            failure_step = int(self.np_random.integers(*self._step_range)) if legs else self._step_range[0]
        self._begin_episode(legs, strength, failure_step)
        return obs, self._add_info(info)

    def step(
        self, action: np.ndarray
    ) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Scale the failed legs' controls, then step Ant-v5.

        Ant-v5 computes its control cost from the action it receives, so
        passing the scaled action makes the cost see the failure.

        Args:
            action: The 8 actuator controls, as for Ant-v5. Not modified.

        Returns:
            Ant-v5's step tuple; ``info`` also has ``failed_legs``,
            ``leg_strength``, ``failure_step`` and ``failure_active``.
        """
        if np.shape(action) != (self.model.nu,):
            raise ValueError(f"Action dimension mismatch. Expected {(self.model.nu,)}, found {np.shape(action)}")
        if self._t == self._failure_step and self._episode_failed_legs:
            self._mask = self._failure_mask
            self._failure_active = True
        self._t += 1
        # A new array, so the caller's action is never modified in place.
        obs, reward, terminated, truncated, info = self._ant_v5_step(np.multiply(action, self._mask))
        if self._pre_failure_weight != 1.0 and self._episode_failed_legs and not self._failure_active:
            survive = info["reward_survive"]
            reward = survive + self._pre_failure_weight * (reward - survive)
        return obs, reward, terminated, truncated, self._add_info(info)

    def _ant_v5_step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """``AntEnv.step`` of gymnasium 1.x, each quantity computed once (``step`` checked the shape).

        Ant-v5's step builds the state vector and the health check twice and clips
        the contact forces twice (reward and observation), through properties; at
        about 0.1 ms per step that is a third of what the env adds to ``mj_step``,
        and ES spends most of its time in the env. Here each of Ant-v5's own pieces
        (``_step_mujoco_simulation``, ``is_healthy``, ``contact_forces``,
        ``control_cost``) runs once, combined in Ant-v5's order, so the tuple is
        identical bit for bit (``tests/test_quadruped_env.py`` compares it with
        ``Ant-v5`` over whole episodes for each observation option).
        """
        data = self.data
        main_body = data.body(self._main_body).xpos
        xy_position_before = main_body[:2].copy()
        self._step_mujoco_simulation(action, self.frame_skip)
        xy_velocity = (main_body[:2].copy() - xy_position_before) / self.dt
        x_velocity, y_velocity = xy_velocity

        contact_forces = self.contact_forces
        position = data.qpos.flatten()
        if self._exclude_current_positions_from_observation:
            position = position[2:]
        if self._include_cfrc_ext_in_observation:  # Ant-v5's _get_obs, with the forces clipped above
            observation = np.concatenate((position, data.qvel.flatten(), contact_forces[1:].flatten()))
        else:
            observation = np.concatenate((position, data.qvel.flatten()))

        is_healthy = self.is_healthy
        forward_reward = x_velocity * self._forward_reward_weight
        healthy_reward = is_healthy * self._healthy_reward
        ctrl_cost = self.control_cost(action)
        contact_cost = self._contact_cost_weight * np.sum(np.square(contact_forces))
        reward = (forward_reward + healthy_reward) - (ctrl_cost + contact_cost)
        terminated = (not is_healthy) and self._terminate_when_unhealthy
        info = {
            "x_position": data.qpos[0],
            "y_position": data.qpos[1],
            "distance_from_origin": np.linalg.norm(data.qpos[0:2], ord=2),
            "x_velocity": x_velocity,
            "y_velocity": y_velocity,
            "reward_forward": forward_reward,
            "reward_ctrl": -ctrl_cost,
            "reward_contact": -contact_cost,
            "reward_survive": healthy_reward,
        }
        if self.render_mode == "human":
            self.render()
        return observation, reward, terminated, False, info

    # ------------------------------------------------------------- helpers
    def _add_info(self, info: dict[str, Any]) -> dict[str, Any]:
        info["failed_legs"] = self._episode_failed_legs
        info["leg_strength"] = dict(self._episode_strength)
        info["failure_step"] = self._failure_step
        info["failure_active"] = self._failure_active
        return info

    def _resolve_leg_actuators(self, xml_file: Any) -> dict[str, tuple[int, ...]]:
        """Map each leg to the actuators driving its hip and ankle joints.

        Ant-v5's actuators are unnamed, so legs are found through each
        actuator's transmission joint (``actuator_trnid`` -> joint name).

        Args:
            xml_file: The model file, only quoted in the error message.

        Raises:
            ValueError: If a leg joint has no actuator in the loaded model.
        """
        joint_to_actuators: dict[str, list[int]] = {}
        for i in range(self.model.nu):
            joint_id = int(self.model.actuator_trnid[i, 0])
            if 0 <= joint_id < self.model.njnt:
                joint_to_actuators.setdefault(self.model.joint(joint_id).name, []).append(i)
        result: dict[str, tuple[int, ...]] = {}
        for leg, joints in LEG_JOINTS.items():
            missing = [j for j in joints if j not in joint_to_actuators]
            if missing:
                raise ValueError(
                    f"xml_file {xml_file!r} has no actuator on joint(s) {missing}; "
                    f"AntLegFailure-v0 needs actuated joints {sorted(sum(LEG_JOINTS.values(), ()))}."
                )
            result[leg] = tuple(i for j in joints for i in joint_to_actuators[j])
        return result

    def _draw_failed_legs(self) -> tuple[str, ...]:
        """Draw one outcome from ``failure_probs`` with ``self.np_random``."""
        index = int(np.searchsorted(self._outcome_cdf, self.np_random.random(), side="right"))
        return self._outcomes[index]

    def _begin_episode(
        self, legs: tuple[str, ...], strength: float | dict[str, float], failure_step: int
    ) -> None:
        """Install the failure of a new episode and restart the step count.

        Args:
            legs: Canonical tuple of failed legs (may be empty).
            strength: The validated ``leg_strength`` (a number, or a dict whose
                missing legs keep 0).
            failure_step: Step index of the failure (0 = from the start).
        """
        strengths = tuple(
            strength.get(leg, 0.0) if isinstance(strength, dict) else strength for leg in legs
        )
        mask = self._mask_cache.get((legs, strengths))
        if mask is None:
            mask = np.ones(self.model.nu, dtype=np.float64)
            for leg, s in zip(legs, strengths):
                mask[list(self._leg_actuators[leg])] = s
            self._mask_cache[(legs, strengths)] = mask
        self._episode_failed_legs = legs
        self._episode_strength = dict(zip(legs, strengths))
        self._failure_mask = mask
        self._failure_step = failure_step
        self._t = 0
        self._failure_active = bool(legs) and failure_step == 0
        self._mask = mask if self._failure_active else self._intact_mask
