"""The layers' product: oneDNN when predicting on x86, F.linear otherwise, same numbers."""
import platform

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rechub_mini import ESMM, MMOE, SparseFeature
from rechub_mini.models import linear as linear_module
from rechub_mini.models.linear import Linear, find_onednn_linear, linear

HAS_ONEDNN = linear_module.ONEDNN_LINEAR is not None
needs_onednn = pytest.mark.skipif(not HAS_ONEDNN, reason="no oneDNN linear in this PyTorch")


@pytest.fixture
def counted(monkeypatch):
    """Count the calls that reach oneDNN's operator."""
    calls = []
    operator = linear_module.ONEDNN_LINEAR

    def counting(*args):
        calls.append(args[0].shape)
        return operator(*args)

    monkeypatch.setattr(linear_module, "ONEDNN_LINEAR", counting)
    return calls


def inputs(rows=300, columns=37, outputs=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, columns, generator=g), torch.randn(outputs, columns, generator=g),
            torch.randn(outputs, generator=g))


def test_the_machine_check_finds_oneDNN_on_x86_builds():
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    assert HAS_ONEDNN == (x86 and torch.backends.mkldnn.is_available())


@needs_onednn
@pytest.mark.parametrize("rows", [0, 1, 300, 4096])
@pytest.mark.parametrize("with_bias", [True, False])
def test_predicting_goes_through_oneDNN_and_matches_F_linear(counted, rows, with_bias):
    x, weight, bias = inputs(rows)
    bias = bias if with_bias else None
    with torch.inference_mode():
        y = linear(x, weight, bias)
    assert counted == [x.shape]
    expected = F.linear(x.double(), weight.double(), None if bias is None else bias.double())
    assert y.dtype == torch.float32 and y.shape == (rows, 11)
    assert torch.allclose(y.double(), expected, atol=1e-4, rtol=1e-5)


@needs_onednn
def test_training_keeps_F_linear_and_its_gradients(counted):
    x, weight, bias = inputs()
    layer = Linear(37, 11)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    reference = nn.Linear(37, 11)
    reference.load_state_dict(layer.state_dict())  # the same saved state as nn.Linear
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    layer(x1).square().sum().backward()
    reference(x2).square().sum().backward()
    assert counted == []
    assert torch.equal(x1.grad, x2.grad)
    assert torch.equal(layer.weight.grad, reference.weight.grad)
    assert torch.equal(layer.bias.grad, reference.bias.grad)


@needs_onednn
def test_other_tensors_keep_F_linear(counted):
    x, weight, bias = inputs()
    assert torch.equal(linear(x.double(), weight.double(), bias.double()),
                       F.linear(x.double(), weight.double(), bias.double()))
    x3 = x.view(3, 100, 37)
    assert torch.equal(linear(x3, weight, bias), F.linear(x3, weight, bias))
    assert counted == []


def test_without_oneDNN_every_product_is_F_linear(monkeypatch):
    monkeypatch.setattr(linear_module, "ONEDNN_LINEAR", None)
    x, weight, bias = inputs()
    with torch.inference_mode():
        assert torch.equal(linear(x, weight, bias), F.linear(x, weight, bias))


def test_the_check_leaves_the_random_generator_alone_and_skips_other_machines(monkeypatch):
    state = torch.random.get_rng_state()
    found = find_onednn_linear()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert (found is not None) == HAS_ONEDNN
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    assert find_onednn_linear() is None


@needs_onednn
@pytest.mark.parametrize("name", ["esmm", "mmoe"])
def test_models_predict_the_same_with_either_library(monkeypatch, counted, name):
    features = [SparseFeature(f"f{i}", 50, 8) for i in range(4)]
    torch.manual_seed(0)
    model = (ESMM(features[:2], features[2:], {"dims": [16, 8]}, {"dims": [16, 8]})
             if name == "esmm" else
             MMOE(features, ["classification"] * 2, 4, {"dims": [16]}, [{"dims": [8]}] * 2))
    g = torch.Generator().manual_seed(1)
    x = {f.name: torch.randint(0, 50, (500,), generator=g) for f in features}
    model.eval()
    with torch.inference_mode():
        fast = model(x)
        # ESMM: 2 towers x 3 layers; MMoE: gates, experts, 2 towers x 2 layers
        assert len(counted) == 6
        monkeypatch.setattr(linear_module, "ONEDNN_LINEAR", None)
        slow = model(x)
    assert torch.allclose(fast, slow, atol=1e-6) and not torch.equal(fast, torch.zeros_like(fast))
