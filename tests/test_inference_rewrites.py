"""Folding batch norms into convolutions changes no output beyond float rounding."""

import copy

import pytest
import torch
from torchvision.models import mobilenet_v2

from marquee.ops.inference import fold_batch_norms


def _with_trained_statistics(net: torch.nn.Module) -> torch.nn.Module:
    """Random weights give batch norms identity statistics; give them real-looking ones."""
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
    return net.eval()


def test_mobilenet_features_are_unchanged_and_no_batch_norm_is_left():
    net = _with_trained_statistics(mobilenet_v2(weights=None).features)
    folded = fold_batch_norms(copy.deepcopy(net))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        a, b = net(x), folded(x)
    assert float((a - b).abs().max()) <= 1e-5 * float(a.abs().max())


def test_a_batch_norm_not_right_after_a_convolution_is_kept():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.BatchNorm2d(4)).eval()
    folded = fold_batch_norms(copy.deepcopy(net))
    assert isinstance(folded[2], torch.nn.BatchNorm2d)


def test_a_model_in_training_mode_is_refused():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)))
