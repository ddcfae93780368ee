"""No per-episode state hidden in module attributes: every module is functional about its state.

For every cell, policy and the ES adapter, a forward must leave every submodule's ``__dict__``
(attributes, hooks, the names, shapes and values of its parameters and buffers, its
children) exactly as it was, must leave the globals of the core's Python modules alone, must
not write into the state tensors it was given, and must give the same output twice for the
same inputs from the same state. A control module that does keep state (``LeakyCell``)
shows that the snapshot comparison finds it.
"""

from __future__ import annotations

import enum
import itertools
import sys
import types
from typing import Any, Dict, List

import pytest
import torch
from torch import Tensor, nn

from plastic_rl import (
    MODULATIONS,
    RULES,
    MLPActorCritic,
    PlasticLinear,
    PlasticLSTMCell,
    PlasticRNNCell,
    RecurrentActorCritic,
)
from plastic_rl import state as state_ops
from plastic_rl.random_weights import RandomWeightLinear

es = pytest.importorskip("plastic_rl.agents.es")

OBS, ACT, BATCH, STEPS = 6, 3, 4, 5
CELLS = {"rnn": PlasticRNNCell, "lstm": PlasticLSTMCell, "linear": PlasticLinear}
# The Python modules whose globals (and whose classes' attributes) a forward must not touch.
CORE_MODULES = ("plastic_rl.plasticity", "plastic_rl.cells", "plastic_rl.random_weights", "plastic_rl.policies",
                "plastic_rl.state", "plastic_rl.agents.es")


# --------------------------------------------------------------------------- snapshots
def freeze(value: Any, depth: int = 0) -> Any:
    """A deep, comparable (``==``) copy of ``value``: tensors by dtype, shape and bytes, containers recursively."""
    if depth > 8:
        return ("deep", type(value).__name__, id(value))
    if isinstance(value, Tensor):
        data = value.detach().cpu().contiguous()
        return ("tensor", str(data.dtype), tuple(data.shape), data.numpy().tobytes() if data.numel() else b"")
    if isinstance(value, nn.Module):
        return ("module", id(value))  # its own __dict__ is snapshotted separately
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, torch.dtype, torch.device, enum.Enum)):
        return value
    if isinstance(value, (dict, types.MappingProxyType)):
        return ("dict", type(value).__name__, tuple((repr(k), freeze(v, depth + 1)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(freeze(v, depth + 1) for v in value))
    if isinstance(value, (set, frozenset)):
        return (type(value).__name__, tuple(sorted(repr(freeze(v, depth + 1)) for v in value)))
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type, types.ModuleType,
                          staticmethod, classmethod, property)):
        return ("ref", id(value))
    if hasattr(value, "__dict__"):
        return ("object", type(value).__name__, id(value), freeze(vars(value), depth + 1))
    return ("other", type(value).__name__, id(value), repr(value))


def module_snapshot(root: nn.Module) -> Dict[str, Any]:
    """Every submodule's ``__dict__``: plain attributes frozen, and its parameters, buffers and children by name."""
    snap = {}
    for name, module in root.named_modules(remove_duplicate=False):
        attributes = {k: v for k, v in vars(module).items() if k not in ("_parameters", "_buffers", "_modules")}
        snap[name or "<root>"] = {
            "attributes": freeze(attributes),
            "parameters": freeze(dict(module._parameters)),
            "buffers": freeze(dict(module._buffers)),
            "children": tuple((k, id(v)) for k, v in module._modules.items()),
        }
    return snap


def globals_snapshot() -> Dict[str, Any]:
    """The globals of the core's Python modules, and the attributes of the classes they define."""
    snap = {}
    for module_name in CORE_MODULES:
        module = sys.modules[module_name]
        for key, value in vars(module).items():
            if isinstance(value, type) and value.__module__ == module_name:
                snap[f"{module_name}.{key}"] = freeze(dict(vars(value)))
            else:
                snap[f"{module_name}.{key}"] = freeze(value)
    return snap


def differences(before: Dict[str, Any], after: Dict[str, Any]) -> List[str]:
    """Names whose snapshot changed, appeared or disappeared."""
    out = [f"{k} appeared" for k in after.keys() - before.keys()]
    out += [f"{k} disappeared" for k in before.keys() - after.keys()]
    for k in before.keys() & after.keys():
        if isinstance(before[k], dict) and isinstance(after[k], dict):
            out += [f"{k}: {d}" for d in differences(before[k], after[k])]
        elif before[k] != after[k]:
            out.append(f"{k} changed")
    return sorted(out)


# --------------------------------------------------------------------------- the modules
def cell_cases():
    for (name, cls), modulation, rule in itertools.product(CELLS.items(), MODULATIONS, RULES):
        yield pytest.param(lambda cls=cls, m=modulation, r=rule: cls(OBS, 7, modulation=m, rule=r),
                           id=f"{name}-{modulation}-{rule}")
    for name, cls in CELLS.items():
        yield pytest.param(lambda cls=cls: cls(OBS, 7, plastic=False), id=f"{name}-static")
    for modulation in MODULATIONS:
        # Rules-only layer: its per-episode random weights live in the state.
        yield pytest.param(lambda m=modulation: RandomWeightLinear(OBS, 7, modulation=m), id=f"random-weights-{modulation}")


def policy_cases():
    for modulation in MODULATIONS:
        for cell in ("rnn", "lstm"):
            yield pytest.param(lambda m=modulation, c=cell: RecurrentActorCritic(OBS, ACT, "discrete", hidden_size=8, cell=c,
                                                                                  modulation=m, modulator_fanout=True),
                               id=f"recurrent-{cell}-{modulation}")
        yield pytest.param(lambda m=modulation: MLPActorCritic(OBS, ACT, "continuous", hidden_sizes=(8, 8), modulation=m,
                                                               rule="bcm"),
                           id=f"mlp-{modulation}")
    yield pytest.param(lambda: MLPActorCritic(OBS, ACT, "continuous", hidden_sizes=(8, 8), random_weights=True),
                       id="mlp-random-weights")
    yield pytest.param(lambda: RecurrentActorCritic(OBS, ACT, "continuous", hidden_size=8, plastic=False), id="recurrent-static")
    yield pytest.param(lambda: MLPActorCritic(OBS, ACT, "discrete", hidden_sizes=(8,), plastic=False), id="mlp-static")


def adapter_cases():
    for kind, modulation in itertools.product(("mlp", "recurrent"), ("simple", "retroactive")):
        config = es.Config(policy=kind, hidden_sizes=(8, 8), hidden_size=8, modulation=modulation, cell="lstm")
        yield pytest.param(lambda c=config: es.EvoTorchPolicy(es.build_policy(c, OBS, ACT)), id=f"evotorch-{kind}-{modulation}")


ALL_CASES = list(cell_cases()) + list(policy_cases()) + list(adapter_cases())


def outputs_of(result) -> List[Tensor]:
    """The tensors a forward returns, without its state (``(y, state)`` or ``(PolicyOutput, state)``)."""
    out, _state = result
    return [t for t in (out if isinstance(out, tuple) else (out,)) if t is not None]


def roll(module: nn.Module, xs: Tensor, state) -> tuple:
    """Run ``module`` over ``xs`` (time first) from ``state``; return (outputs per step, final state)."""
    outs = []
    for x in xs:
        result = module(x, state)
        outs.append(outputs_of(result))
        state = result[1]
    return outs, state


def assert_same(a, b) -> None:
    for ta, tb in zip(state_ops.state_tensors(a), state_ops.state_tensors(b), strict=True):
        assert torch.equal(ta, tb)


# --------------------------------------------------------------------------- tests
@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("grad", [True, False], ids=["grad", "no_grad"])
@pytest.mark.parametrize("make", ALL_CASES)
def test_forward_keeps_no_state_in_modules(make, grad):
    module = make()
    xs = 2.0 * torch.randn(STEPS, BATCH, OBS)
    # Warm up first: lazily built caches would show up at the first call.
    with torch.set_grad_enabled(grad):
        _, warm_state = roll(module, xs[:2], None)
    modules_before, globals_before = module_snapshot(module), globals_snapshot()
    with torch.set_grad_enabled(grad):
        roll(module, xs, warm_state)
        roll(module, xs, None)
    assert differences(modules_before, module_snapshot(module)) == []
    assert differences(globals_before, globals_snapshot()) == []


@pytest.mark.parametrize("make", ALL_CASES)
def test_same_inputs_from_the_same_state_give_the_same_outputs(make):
    module = make()
    xs = 2.0 * torch.randn(STEPS, BATCH, OBS)
    with torch.no_grad():
        _, state = roll(module, xs[:3], None)  # a state with non-zero traces
    state_copy = state_ops.map_state(torch.clone, state)
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            first = roll(module, xs, state)
            second = roll(module, xs, state)
            # From state=None, the random generator is part of "the same state": rules-only
            # layers draw the episode's weights from it.
            torch.manual_seed(1)
            fresh_first = roll(module, xs, None)
            torch.manual_seed(1)
            fresh_second = roll(module, xs, None)
        assert_same(first, second)
        assert_same(fresh_first, fresh_second)
        # The state handed in was not written to.
        assert_same(state, state_copy)
    # Control: the warm state matters (so equal outputs above are not equal because the state is ignored).
    with torch.no_grad():
        warm, fresh = roll(module, xs, state)[0], roll(module, xs, None)[0]
    has_state = bool(state_ops.state_tensors(state)) and any(t.numel() for t in state_ops.state_tensors(state))
    if has_state:
        assert any(not torch.equal(a, b) for a, b in zip(state_ops.state_tensors(warm), state_ops.state_tensors(fresh)))


def test_the_adapter_single_observation_path_keeps_no_state():
    """EvoTorch's vmapped Policy hands the adapter one unbatched observation at a time."""
    config = es.Config(policy="recurrent", hidden_size=8, modulation="retroactive", cell="rnn")
    adapter = es.EvoTorchPolicy(es.build_policy(config, OBS, ACT))
    xs = torch.randn(STEPS, OBS)
    _, h = adapter(xs[0])
    before = module_snapshot(adapter)
    first = roll(adapter, xs, h)
    second = roll(adapter, xs, h)
    assert differences(before, module_snapshot(adapter)) == []
    assert_same(first, second)
    assert first[0][0][0].shape == (ACT,)


# --------------------------------------------------------------------------- the check has teeth
class LeakyCell(PlasticRNNCell):
    """A cell that remembers its last output in an attribute: the hidden state these tests must find."""

    def forward(self, x, state=None):
        h, state = super().forward(x, state)
        self.last_h = h.detach()
        return h, state


class CountingLinear(PlasticLinear):
    """A layer that counts its calls in a plain attribute."""

    calls = 0

    def forward(self, x, state=None):
        self.calls = self.calls + 1
        return super().forward(x, state)


@pytest.mark.parametrize("make,expected", [
    (lambda: LeakyCell(OBS, 7), "<root>: attributes changed"),
    (lambda: nn.Sequential(CountingLinear(OBS, 7)), "0: attributes changed"),
])
def test_snapshot_finds_state_kept_in_attributes(make, expected):
    module = make()
    target = module[0] if isinstance(module, nn.Sequential) else module
    x = torch.randn(BATCH, OBS)
    target(x)
    before = module_snapshot(module)
    target(x + 1)
    assert differences(before, module_snapshot(module)) == [expected]


def test_snapshot_finds_a_parameter_changed_in_place():
    cell = PlasticRNNCell(OBS, 7)
    before = module_snapshot(cell)
    with torch.no_grad():
        cell.plasticity.alpha.add_(1e-3)
    assert differences(before, module_snapshot(cell)) == ["plasticity: parameters changed"]


def test_snapshot_finds_a_module_global_changed(monkeypatch):
    activations = sys.modules["plastic_rl.cells"].ACTIVATIONS
    holders = [name for name in CORE_MODULES if getattr(sys.modules[name], "ACTIVATIONS", None) is activations]
    before = globals_snapshot()
    monkeypatch.setitem(activations, "cached", torch.zeros(1))
    assert differences(before, globals_snapshot()) == sorted(f"{name}.ACTIVATIONS changed" for name in holders)
