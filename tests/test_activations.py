import pytest
import torch
import yaml

from actflow import activations, names
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
def test_fused_backward_is_grad_times_derivative(name):
    """Training uses Activation.backward (one ATen kernel); it equals grad · σ′(z)."""
    act = activations.get(name)
    z = torch.linspace(-15, 15, 4001, dtype=torch.float64)  # softplus is linear above 20
    z = z[z.abs() > 1e-9]
    g = torch.randn_like(z, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(act.backward(g, z, act.fn(z)), g * act.derivative(z),
                               rtol=1e-10, atol=1e-12)


def test_max_derivatives_of_the_study():
    df = activations.curves(["sigmoid", "relu"], -10, 10, 20001)
    top = df.groupby("activation")["derivative"].max()
    assert top["sigmoid"] == pytest.approx(0.25, abs=1e-9)
    assert top["relu"] == 1.0


def test_leaky_relu_slope_is_the_study_s():
    x = torch.tensor([-2.0, 3.0], dtype=torch.float64)
    assert activations.get("leaky_relu").fn(x).tolist() == [-0.02, 3.0]


def test_unknown_activation_lists_the_known_ones():
    with pytest.raises(KeyError, match="known activations: .*gelu.*relu"):
        activations.get("swishy")


def test_schema_registry_and_labels_agree():
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    enum = schema["properties"]["activations"]["items"]["enum"]
    assert sorted(enum) == sorted(activations.REGISTRY)
    assert set(activations.REGISTRY) <= set(names.ORDER) == set(names.LABELS)
