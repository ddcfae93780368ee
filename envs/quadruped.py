"""The quadruped with disabled legs: ``plastic_rl/AntLegFailure-v0``.

:class:`AntLegFailureEnv` is gymnasium's ``Ant-v5`` in which chosen legs stop
working: both actuators of a failed leg (hip and ankle) receive zero control.
Which legs fail is either fixed or drawn per episode from a distribution, and
the failure either exists from the first step or happens at step ``k`` of the
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
    "FAILURE_OUTCOMES",
    "LEG_ACTUATORS",
    "LEG_JOINTS",
    "LEG_NAMES",
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
"""Keys allowed in ``failure_probs``: ``"none"`` (intact) or one failed leg."""

DEFAULT_FAILURE_PROBS: Final[dict[str, float]] = {
    "none": 0.4,
    "front_left": 0.15,
    "front_right": 0.15,
    "back_left": 0.15,
    "back_right": 0.15,
}
"""Default distribution for ``failed_legs="random"``."""

_PROB_TOLERANCE: Final[float] = 1e-6


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


def _validate_failure_probs(value: Any) -> tuple[tuple[str, ...], np.ndarray]:
    """Turn ``failure_probs`` into (outcomes, cumulative distribution).

    Args:
        value: Mapping from "none"/leg names to probabilities, or None for
            :data:`DEFAULT_FAILURE_PROBS`. Keys left out have probability 0.

    Raises:
        ValueError: On a wrong type, unknown keys, negative or non-finite
            probabilities, or a sum farther than 1e-6 from 1.
    """
    if value is None:
        value = DEFAULT_FAILURE_PROBS
    if not isinstance(value, Mapping):
        raise ValueError(
            f"failure_probs must be a dict mapping keys from {list(FAILURE_OUTCOMES)} to "
            f"probabilities, got {type(value).__name__}."
        )
    unknown = [key for key in value if key not in FAILURE_OUTCOMES]
    if unknown:
        raise ValueError(
            f"failure_probs has unknown key(s) {unknown}; allowed keys are {list(FAILURE_OUTCOMES)}."
        )
    outcomes: list[str] = []
    probs: list[float] = []
    for key in FAILURE_OUTCOMES:  # fixed order: the draw for a seed must not depend on dict order
        p = value.get(key, 0.0)
        if isinstance(p, bool) or not isinstance(p, Real) or not math.isfinite(p) or p < 0:
            raise ValueError(
                f"failure_probs[{key!r}] must be a finite probability >= 0, got {p!r}."
            )
        if p > 0:
            outcomes.append(key)
            probs.append(float(p))
    total = math.fsum(probs)
    if abs(total - 1.0) > _PROB_TOLERANCE:
        raise ValueError(
            f"failure_probs must sum to 1 (within {_PROB_TOLERANCE:g}) over keys from "
            f"{list(FAILURE_OUTCOMES)}, got a sum of {total!r}."
        )
    cdf = np.cumsum(np.asarray(probs) / total)
    cdf[-1] = 1.0  # guard against round-off so that a draw in [0, 1) always lands
    return tuple(outcomes), cdf


def _validate_failure_step(value: Any, argument: str = "failure_step") -> int:
    """Return ``value`` as a non-negative int.

    Args:
        value: The step index at which the failure happens (0 = from the start).
        argument: The argument's name, quoted in error messages.

    Raises:
        ValueError: If ``value`` is not an integer or is negative.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(
            f"{argument} must be a non-negative integer (0 = from the start), "
            f"got {type(value).__name__} {value!r}."
        )
    if value < 0:
        raise ValueError(
            f"{argument} must be a non-negative integer (0 = from the start), got {value}."
        )
    return int(value)


class AntLegFailureEnv(AntEnv):
    """Ant-v5 in which some legs get zero control.

    A failed leg's hip and ankle actuators are masked to 0 before the action
    reaches MuJoCo *and* before Ant-v5 computes its control cost, so the cost
    is ``ctrl_cost_weight * ||masked action||^2``. The mask is a float vector
    built once per episode; a step costs one extra vector multiply.

    Failure timing (``failure_step = k``): steps are counted from 0 after each
    ``reset``. With ``k = 0`` the legs are failed from the start (already in
    the reset info). With ``k > 0`` the actions of steps 0 .. k-1 pass
    unchanged and the action of step index k (the (k+1)-th ``step`` call) is
    the first one masked; the info returned by that call is the first with
    ``failure_active = True``. If the episode ends before step k, the failure
    never happens.

    ``info`` of ``reset`` and of every ``step`` carries:

    * ``failed_legs``: tuple of the leg names that fail (or will fail) in this
      episode, in :data:`LEG_NAMES` order; ``()`` for an intact episode.
    * ``failure_active``: whether the failure is in effect for this step
      (always False when ``failed_legs`` is empty).

    ``reset(options=...)`` may override, for that one episode only,
    ``"failed_legs"`` (a list of leg names or "random") and ``"failure_step"``.
    Other option keys are ignored, so that wrappers can use their own.

    Random draws use ``self.np_random`` after Ant-v5's own reset noise, so
    ``reset(seed=s)`` gives the same initial state as ``Ant-v5`` with seed s
    and a reproducible draw. No random number is consumed when the legs are
    fixed (or overridden through ``options``), so an intact env reproduces
    ``Ant-v5`` exactly.
    """

    def __init__(
        self,
        *,
        failed_legs: list[str] | tuple[str, ...] | str = (),
        failure_probs: Mapping[str, float] | None = None,
        failure_step: int = 0,
        **kwargs: Any,
    ) -> None:
        """Create the env.

        Args:
            failed_legs: Legs that fail in every episode, as a list/tuple of
                names from :data:`LEG_NAMES` (empty = intact), or the string
                "random" to draw one outcome per episode from ``failure_probs``.
            failure_probs: Distribution used when ``failed_legs="random"``:
                a dict mapping "none" and leg names to probabilities summing
                to 1 (within 1e-6); missing keys mean 0. Default
                :data:`DEFAULT_FAILURE_PROBS` (none 0.4, each leg 0.15).
                Validated even when not used, so a typo never goes unnoticed.
            failure_step: Step index of the failure within each episode:
                0 = from the start; k > 0 = the action of step index k
                (counted from 0 after reset) is the first one masked.
            **kwargs: Passed unchanged to ``gymnasium.envs.mujoco.ant_v5.AntEnv``
                (``ctrl_cost_weight``, ``healthy_z_range``, ``xml_file``, ...).

        Raises:
            ValueError: On an unknown leg name, a malformed ``failure_probs``,
                a negative ``failure_step``, a wrong type, or an ``xml_file``
                lacking the hip_i/ankle_i actuated joints.
        """
        # Validate our own arguments before the (slower) model load.
        self._fixed_failed_legs = _validate_failed_legs(failed_legs, "failed_legs")
        self._outcomes, self._outcome_cdf = _validate_failure_probs(failure_probs)
        self._default_failure_step = _validate_failure_step(failure_step)

        super().__init__(**kwargs)
        # AntEnv registered its own positional args for pickling/copying;
        # re-register ours so that a copy is rebuilt with the failure settings.
        utils.EzPickle.__init__(
            self,
            failed_legs=failed_legs,
            failure_probs=failure_probs,
            failure_step=failure_step,
            **kwargs,
        )

        self._leg_actuators = self._resolve_leg_actuators(kwargs.get("xml_file", "ant.xml"))
        # One mask per outcome, built once: a reset only picks a prebuilt array.
        self._intact_mask = np.ones(self.model.nu, dtype=np.float64)
        self._mask_cache: dict[tuple[str, ...], np.ndarray] = {(): self._intact_mask}

        # Episode state; valid before the first reset too (stepping without
        # reset is allowed by MujocoEnv when the env is built directly).
        self._episode_failed_legs: tuple[str, ...] = ()
        self._failure_mask = self._intact_mask
        self._mask = self._intact_mask
        self._failure_step = self._default_failure_step
        self._failure_active = False
        self._t = 0
        self._begin_episode(self._fixed_failed_legs or (), self._default_failure_step)

    # ------------------------------------------------------------------ API
    @property
    def failed_legs(self) -> tuple[str, ...]:
        """Legs that fail (or will fail) in the current episode, in LEG_NAMES order."""
        return self._episode_failed_legs

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
            seed: Seed for ``self.np_random`` (Ant's reset noise and the draw).
            options: Optional one-episode overrides: ``"failed_legs"`` (list of
                leg names or "random") and ``"failure_step"`` (int >= 0).

        Returns:
            The observation and Ant-v5's reset info plus ``failed_legs`` and
            ``failure_active``.
        """
        # Validate overrides before touching the simulation, so that bad
        # options leave the env as it was.
        legs_spec: tuple[str, ...] | None = self._fixed_failed_legs
        failure_step = self._default_failure_step
        if options:
            if "failed_legs" in options:
                legs_spec = _validate_failed_legs(options["failed_legs"], 'options["failed_legs"]')
            if "failure_step" in options:
                failure_step = _validate_failure_step(options["failure_step"], 'options["failure_step"]')

        obs, info = super().reset(seed=seed, options=options)
        # Drawn after Ant's reset noise: a seeded reset starts exactly where
        # Ant-v5 with the same seed starts.
        legs = self._draw_failed_legs() if legs_spec is None else legs_spec
        self._begin_episode(legs, failure_step)
        info["failed_legs"] = self._episode_failed_legs
        info["failure_active"] = self._failure_active
        return obs, info

    def step(
        self, action: np.ndarray
    ) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Mask the failed legs' controls, then step Ant-v5.

        Ant-v5 computes its control cost from the action it receives, so
        passing the masked action makes the cost see the mask.

        Args:
            action: The 8 actuator controls, as for Ant-v5. Not modified.

        Returns:
            Ant-v5's step tuple; ``info`` also has ``failed_legs`` and
            ``failure_active``.
        """
        if self._t == self._failure_step and self._episode_failed_legs:
            self._mask = self._failure_mask
            self._failure_active = True
        self._t += 1
        # A new array, so the caller's action is never modified in place.
        obs, reward, terminated, truncated, info = super().step(np.multiply(action, self._mask))
        info["failed_legs"] = self._episode_failed_legs
        info["failure_active"] = self._failure_active
        return obs, reward, terminated, truncated, info

    # ------------------------------------------------------------- helpers
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
        outcome = self._outcomes[index]
        return () if outcome == "none" else (outcome,)

    def _begin_episode(self, legs: tuple[str, ...], failure_step: int) -> None:
        """Install the failure of a new episode and restart the step count.

        Args:
            legs: Canonical tuple of failed legs (may be empty).
            failure_step: Step index of the failure (0 = from the start).
        """
        mask = self._mask_cache.get(legs)
        if mask is None:
            mask = np.ones(self.model.nu, dtype=np.float64)
            for leg in legs:
                mask[list(self._leg_actuators[leg])] = 0.0
            self._mask_cache[legs] = mask
        self._episode_failed_legs = legs
        self._failure_mask = mask
        self._failure_step = failure_step
        self._t = 0
        self._failure_active = bool(legs) and failure_step == 0
        self._mask = mask if self._failure_active else self._intact_mask
