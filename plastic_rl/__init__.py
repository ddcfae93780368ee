"""plastic-rl: neuromodulated plastic policies trained by gradient RL or evolution strategies.

The core (this package) holds the plastic networks and never imports gymnasium,
stable-baselines3, EvoTorch or Ray; environments live in :mod:`plastic_rl.envs`
and trainers in :mod:`plastic_rl.agents`.
"""

from plastic_rl.binary import BinaryLinear, StochasticBinaryLinear
from plastic_rl.cells import LinearState, LSTMState, PlasticLinear, PlasticLSTMCell, PlasticRNNCell, RNNState
from plastic_rl.metaplastic import MetaplasticAdam, meta_param_groups
from plastic_rl.plasticity import MODULATIONS, PLASTICITY_FIELDS, RULES, Plasticity, PlasticityConfig, Traces
from plastic_rl.random_weights import RandomWeightLinear, RandomWeightRNNCell
from plastic_rl.spiking import LeakyReadoutSpikingCell, PlasticSpikingCell, ReadoutSpikingState, SpikingState
from plastic_rl.policies import (
    MLPActorCritic,
    PolicyOutput,
    RecurrentActorCritic,
    build_policy,
    count_parameters,
    export_policy,
    load_policy,
    match_parameter_count,
)
from plastic_rl.state import detach_state, flatten_state, index_state, map_state, reset_state, unflatten_state

__version__ = "0.1.0"

__all__ = [
    "PlasticRNNCell",
    "PlasticLSTMCell",
    "PlasticLinear",
    "BinaryLinear",
    "StochasticBinaryLinear",
    "MetaplasticAdam",
    "meta_param_groups",
    "RNNState",
    "LSTMState",
    "LinearState",
    "PlasticSpikingCell",
    "LeakyReadoutSpikingCell",
    "SpikingState",
    "ReadoutSpikingState",
    "Plasticity",
    "RandomWeightLinear",
    "RandomWeightRNNCell",
    "PlasticityConfig",
    "PLASTICITY_FIELDS",
    "Traces",
    "MODULATIONS",
    "RULES",
    "RecurrentActorCritic",
    "MLPActorCritic",
    "PolicyOutput",
    "build_policy",
    "export_policy",
    "load_policy",
    "count_parameters",
    "match_parameter_count",
    "map_state",
    "reset_state",
    "detach_state",
    "index_state",
    "flatten_state",
    "unflatten_state",
]
