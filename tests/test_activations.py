import pytest
import torch
import yaml

from actflow import activations
from actflow.config import ConfigError, validate
from conftest import ROOT


@pytest.mark.parametrize("name", sorted(activations.REGISTRY))
def test_derivative_matches_autograd(name):
    act = activations.get(name)
    # avoid the kink at exactly 0, where relu-like functions have no derivative
    x = torch.linspace(-6, 6, 2001, dtype=torch.float64)
    x = x[x.abs() > 1e-9].requires_grad_(True)
    (grad,) = torch.autograd.grad(act.fn(x).sum(), x)
    torch.testing.assert_close(act.derivative(x.detach()), grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(activations.REGISTRY))
def test_backward_is_grad_times_derivative(name):
    """Training uses Activation.backward: a fused ATen kernel where the entry names one, else
    the generic grad · σ′(z). Either way it equals grad · σ′(z) and autograd's product."""
    act = activations.get(name)
    z = torch.linspace(-15, 15, 4001, dtype=torch.float64)  # softplus is linear above 20
    z = z[z.abs() > 1e-9].requires_grad_(True)
    g = torch.randn(z.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    (want,) = torch.autograd.grad(act.fn(z), z, g)
    z = z.detach()
    torch.testing.assert_close(act.backward(g, z, act.fn(z)), g * act.derivative(z),
                               rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(act.backward(g, z, act.fn(z)), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(n for n, a in activations.REGISTRY.items() if a.inplace))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_in_place_activation_and_backward_from_the_output_give_the_same_bits(name, dtype):
    """Where an entry gives σ in place, training overwrites z with h = σ(z) and its backward
    reads h where z was: both must give exactly the bits of σ(z) and of the backward from z,
    on every kind of value a chaotic run meets (zeros of both signs, subnormals, huge values,
    infinities, NaN)."""
    act = activations.get(name)
    tiny = torch.finfo(dtype).tiny
    special = torch.tensor([0.0, -0.0, tiny / 4, -tiny / 4, tiny, -tiny, 1e-30, -1e-30, 1e30,
                            -1e30, float("inf"), float("-inf"), float("nan")], dtype=dtype)
    gen = torch.Generator().manual_seed(1)
    z = torch.cat([special, torch.randn(5000, dtype=dtype, generator=gen) * 4])
    g = torch.randn(z.shape, dtype=dtype, generator=gen)
    h = act.fn(z)
    overwritten = z.clone()
    out = act.inplace(overwritten)
    assert out.data_ptr() == overwritten.data_ptr()  # really in place: z is gone
    assert torch.equal(out.view(-1).view(torch.uint8), h.view(-1).view(torch.uint8))
    want = act.backward(g, z, h)
    got = act.backward(g, out, out)
    assert torch.equal(got.view(torch.uint8), want.view(torch.uint8))


def test_only_entries_with_a_fused_backward_may_give_sigma_in_place():
    """The generic backward computes σ′(z), which needs z: an entry that gives σ in place
    without a fused kernel is refused when it is made."""
    with pytest.raises(ValueError, match="in place.*fused backward"):
        activations.Activation("odd", "Odd", "x", lambda t, F: t.relu, lambda t, F: t.sign,
                               make_inplace=lambda t, F: t.relu_)
    assert any(a.inplace for a in activations.REGISTRY.values())
    assert any(a.inplace is None for a in activations.REGISTRY.values())


def test_an_entry_without_a_fused_kernel_uses_the_generic_backward():
    plain = [a for a in activations.REGISTRY.values() if not a.has_fused_backward]
    assert plain, "the registry should exercise the generic fallback"
    fused = [a for a in activations.REGISTRY.values() if a.has_fused_backward]
    assert fused


def test_max_derivatives_of_the_study():
    df = activations.curves(["sigmoid", "relu"], -10, 10, 20001)
    top = df.groupby("activation")["derivative"].max()
    assert top["sigmoid"] == pytest.approx(0.25, abs=1e-9)
    assert top["relu"] == 1.0


def test_leaky_relu_slope_is_the_study_s():
    x = torch.tensor([-2.0, 3.0], dtype=torch.float64)
    assert activations.get("leaky_relu").fn(x).tolist() == [-0.02, 3.0]


def test_unknown_activation_lists_the_known_ones():
    with pytest.raises(KeyError, match="known activations: .*relu.*gelu"):
        activations.get("swishy")


def test_the_config_accepts_exactly_the_registry_s_activations():
    """The schema's list is the registry (injected at validation), not a copy that can drift."""
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    assert "enum" not in schema["properties"]["activations"]["items"]
    SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
    assert validate({"activations": list(activations.REGISTRY)}, SCHEMA)
    with pytest.raises(ConfigError) as err:
        validate({"activations": ["swish"]}, SCHEMA)
    assert all(name in str(err.value) for name in activations.REGISTRY)


def test_labels_and_order_come_from_the_registry():
    assert activations.ORDER == list(activations.REGISTRY)
    assert all(activations.label(n) == a.label for n, a in activations.REGISTRY.items())
    assert activations.ordered(["gelu", "zzz", "sigmoid"]) == ["sigmoid", "gelu", "zzz"]
