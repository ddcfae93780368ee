"""Gradients with the traces AT the clip: float64 gradcheck of every cell, modulation and rule.

Training runs at ``clip=1``, where many Hebbian traces sit at ±clip, so the hand-written
backwards of the fused autograd Functions (``_ClampedOuterUpdate``, ``_RetroactiveUpdate``,
``_PlasticMatVec``) must route no gradient through saturated entries and the right
gradient through the others. tests/test_cells.py checks gradients at ``clip=50``, away
from the clip; here the initial traces, inputs, alpha and rates are large enough that a
good fraction of the pre-clip trace entries fall outside [-1, 1] at every step, and a
spy on ``torch.clamp`` checks that (and that no entry lies at the kink, where the
derivative is undefined and a finite difference would straddle it).

gradcheck is taken over several steps with respect to the inputs, the initial state
(h, c, hebb, eligibility, theta) and every plastic parameter (alpha, eta, the modulator
weight and bias, modulator_fanout, the ABCD coefficients).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import pytest
import torch
from torch.overrides import TorchFunctionMode

from plastic_rl import MODULATIONS, RULES, PlasticLinear, PlasticLSTMCell, PlasticRNNCell
from plastic_rl import plasticity as plasticity_module

CELLS = {"rnn": PlasticRNNCell, "lstm": PlasticLSTMCell, "linear": PlasticLinear}
IN, OUT, BATCH, STEPS = 4, 5, 2, 5
CLIP = 1.0
# gradcheck's finite differences (step 1e-6) move a pre-clip entry by about 1e-6 times its
# sensitivity (of order 1 here), so an entry this far from ±clip stays on its side of the kink.
KINK_MARGIN = 1e-5
# At least this fraction of all pre-clip trace entries (over all steps) lies beyond ±clip, on
# all steps but at most one.
MIN_SATURATED = 0.2
# ...and at most this fraction, so that gradients still flow through the others.
MAX_SATURATED = 0.9

# The Hebbian rule runs through the fused Functions; the two fan-out settings take different
# branches of their backwards (one modulator per episode vs one per post-neuron).
HEBBIAN_CASES = [(m, False) for m in MODULATIONS] + [(m, True) for m in ("simple", "retroactive")]
OTHER_RULE_CASES = [(rule, m) for rule in RULES if rule != "hebbian" for m in MODULATIONS]


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny tensors: extra threads only add contention on a shared machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class ClampSpy(TorchFunctionMode):
    """Records the input and bounds of every ``torch.clamp`` call (the trace clip) run under it."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: List[torch.Tensor] = []
        self.bounds: List[Tuple] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.clamp, torch.clip, torch.Tensor.clamp, torch.Tensor.clip):
            self.inputs.append(args[0].detach().clone())
            self.bounds.append((args[1:], tuple(sorted(kwargs.items()))))
        return func(*args, **kwargs)


def build(cell: str, modulation: str, rule: str, fanout: bool, seed: int):
    """A float64 module at clip 1 and the gradcheck inputs: (names, values) of the inputs, state and plastic parameters."""
    torch.manual_seed(seed)
    # η is the plasticity rate for modulation "none" (large, so that even Oja's self-limiting rule
    # reaches the clip) and the eligibility decay for "retroactive".
    eta = 2.5 if modulation == "none" else 0.5
    module = CELLS[cell](
        IN, OUT, modulation=modulation, rule=rule, clip=CLIP, modulator_fanout=fanout, alpha_init=1.0, eta_init=eta,
    ).double()
    with torch.no_grad():
        # Stronger input weights drive |pre| and |post| towards 1, so each step's trace update is large.
        for name in ("weight_ih", "weight"):
            if hasattr(module, name):
                getattr(module, name).mul_(3.0)
    values: Dict[str, torch.Tensor] = {}
    for name, p in module.named_parameters():
        if not name.startswith("plasticity."):
            continue
        v = p.detach().clone()
        if name.endswith("modulator.weight"):
            v = 3.0 * torch.randn_like(v)  # a neuromodulator of either sign, often near ±1, not saturated
        elif name.endswith("modulator_fanout"):
            v = 1.0 + 0.5 * torch.randn_like(v)
        values[name] = v
    state = module.initial_state(BATCH)
    init = {}
    for field, t in state._asdict().items():
        if t.shape[1] == 0:
            continue
        if field in ("hebb", "eligibility"):
            # |entries| in [0.75, 0.98]: near, not at, the clip, so that one step's update saturates many.
            init[field] = torch.empty_like(t).uniform_(0.75, 0.98) * (2 * torch.randint_like(t, 2) - 1)
        elif field == "theta":
            init[field] = torch.rand_like(t)  # the BCM threshold is a running mean of y², so >= 0
        else:
            init[field] = torch.empty_like(t).uniform_(-0.9, 0.9)  # h, c
    xs = 2.0 * torch.randn(STEPS, BATCH, IN, dtype=torch.float64)
    names = ["xs"] + [f"state.{f}" for f in init] + list(values)
    tensors = [xs] + list(init.values()) + list(values.values())
    return module, names, [t.requires_grad_(True) for t in tensors]


def make_loss(module, names: List[str]):
    """A scalar of every output and of the final state, with fixed random weights (a generic projection)."""
    field_names = [n[len("state."):] for n in names if n.startswith("state.")]
    param_names = [n for n in names if n != "xs" and not n.startswith("state.")]
    weights: Dict[str, torch.Tensor] = {}

    def weight(key: str, like: torch.Tensor) -> torch.Tensor:
        if key not in weights:
            g = torch.Generator().manual_seed(len(weights) + 1)
            weights[key] = torch.randn(like.shape, generator=g, dtype=like.dtype)
        return weights[key]

    def loss(xs, *tensors):
        init = dict(zip(field_names, tensors[: len(field_names)]))
        params = dict(zip(param_names, tensors[len(field_names):]))
        state = module.initial_state(BATCH)._replace(**init)
        total = xs.new_zeros(())
        for t, x in enumerate(xs):
            out, state = torch.func.functional_call(module, params, (x, state))
            total = total + (weight(f"out{t}", out) * out).sum()
        for field, value in state._asdict().items():
            if value.numel():
                total = total + (weight(field, value) * value).sum()
        return total

    return loss


def graph_node_names(tensor: torch.Tensor) -> set:
    """The class names of every autograd node behind ``tensor``."""
    seen, stack, names = set(), [tensor.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names


def clip_statistics(module, names: List[str], inputs: List[torch.Tensor]) -> Tuple[float, int, float]:
    """(fraction of pre-clip trace entries beyond ±clip, steps with any, distance of the closest entry to the kink)."""
    spy = ClampSpy()
    with spy, torch.no_grad():
        make_loss(module, names)(*inputs)
    assert len(spy.inputs) == STEPS, "expected one trace clip per step"
    assert all(b == ((-CLIP, CLIP), ()) for b in spy.bounds), spy.bounds
    pre_clip = torch.cat([u.flatten() for u in spy.inputs])
    fraction = (pre_clip.abs() > CLIP).double().mean().item()
    steps = sum(bool((u.abs() > CLIP).any()) for u in spy.inputs)
    return fraction, steps, (pre_clip.abs() - CLIP).abs().min().item()


def saturated_setup(cell: str, modulation: str, rule: str, fanout: bool):
    """The first seed whose rollout has many traces at the clip and none at its kink.

    Only these preconditions choose the seed; the gradients are never looked at here.
    """
    tried = []
    for seed in range(10):
        module, names, inputs = build(cell, modulation, rule, fanout, seed)
        fraction, steps, kink_distance = clip_statistics(module, names, inputs)
        if MIN_SATURATED <= fraction <= MAX_SATURATED and steps >= STEPS - 1 and kink_distance > KINK_MARGIN:
            return module, names, inputs
        tried.append(f"seed {seed}: {fraction:.2f} beyond the clip on {steps} steps, {kink_distance:.1e} from the kink")
    pytest.fail("no setup with traces at the clip: " + "; ".join(tried))


def check_at_the_clip(cell: str, modulation: str, rule: str, fanout: bool, fast_mode: bool = True) -> List[str]:
    """gradcheck through STEPS steps with saturated traces; returns the names of the checked inputs.

    ``fast_mode`` compares the analytical and numerical Jacobian along random directions
    (two forwards per check instead of two per input scalar, ~15x faster here); the full
    comparison, entry by entry, runs in the ``slow`` tests.
    """
    module, names, inputs = saturated_setup(cell, modulation, rule, fanout)
    loss = make_loss(module, names)
    value = loss(*inputs)

    # The fused Functions are the ones under test for the Hebbian rule.
    if rule == "hebbian":
        nodes = graph_node_names(value)
        assert "_PlasticMatVecBackward" in nodes, nodes
        fused = "_RetroactiveUpdateBackward" if modulation == "retroactive" else "_ClampedOuterUpdateBackward"
        assert fused in nodes, nodes

    assert torch.autograd.gradcheck(loss, tuple(inputs), fast_mode=fast_mode)

    # Every gradcheck input gets a non-zero gradient, so no comparison above was trivially 0 == 0.
    grads = torch.autograd.grad(value, inputs)
    for name, g in zip(names, grads):
        assert g.abs().sum() > 0, f"no gradient reaches {name}"
    return names


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("modulation,fanout", HEBBIAN_CASES)
def test_gradcheck_hebbian_at_the_clip(cell, modulation, fanout):
    names = check_at_the_clip(cell, modulation, "hebbian", fanout)
    expected = {"plasticity.alpha"}
    if modulation != "simple":
        expected.add("plasticity.eta")
    if modulation != "none":
        expected |= {"plasticity.modulator.weight", "plasticity.modulator.bias"}
    if fanout:
        expected.add("plasticity.modulator_fanout")
    assert expected <= set(names), (expected, names)
    if modulation == "retroactive":
        assert "state.eligibility" in names


@pytest.mark.slow
@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("modulation,fanout", HEBBIAN_CASES)
def test_full_gradcheck_hebbian_at_the_clip(cell, modulation, fanout):
    """The whole Jacobian, entry by entry, of the fused Functions' paths (about 3 s a case on an idle core)."""
    check_at_the_clip(cell, modulation, "hebbian", fanout, fast_mode=False)


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("rule,modulation", OTHER_RULE_CASES)
def test_gradcheck_other_rules_at_the_clip(cell, rule, modulation):
    names = check_at_the_clip(cell, modulation, rule, fanout=modulation != "none")
    if rule == "abcd":
        assert {f"plasticity.rule_{k}" for k in "abcd"} <= set(names)
    if rule == "bcm":
        assert "state.theta" in names


# --------------------------------------------------------------------------- the check has teeth
def _backward_without_clip_mask(original):
    """A backward that passes gradient through saturated entries too (the bug these tests must catch)."""

    def backward(ctx, *grads):
        saved_clip = ctx.clip
        ctx.clip = float("inf")  # hardtanh_backward then masks nothing
        try:
            return original(ctx, *grads)
        finally:
            ctx.clip = saved_clip

    return staticmethod(backward)


@pytest.mark.parametrize("function,modulation", [("_ClampedOuterUpdate", "simple"), ("_ClampedOuterUpdate", "none"),
                                                 ("_RetroactiveUpdate", "retroactive")])
def test_gradcheck_catches_a_backward_that_ignores_the_clip(monkeypatch, function, modulation):
    cls = getattr(plasticity_module, function)
    monkeypatch.setattr(cls, "backward", _backward_without_clip_mask(cls.backward))
    module, names, inputs = saturated_setup("rnn", modulation, "hebbian", False)
    passed = torch.autograd.gradcheck(make_loss(module, names), tuple(inputs), fast_mode=True, raise_exception=False)
    assert not passed, f"gradcheck missed gradients leaking through clipped entries (does {function}.backward still read ctx.clip?)"
