"""Plain PyTorch reference models for the benchmarks (never imported by jaxprune).

Written here to mirror the seeds' PyTorch code: CIFAR ResNet with option-A
shortcuts (strided subsample + zero channel padding, akamaster/BIMP/TPP) and
MLP-7 (7 Linear layers, width 100, 1024 inputs). Import torch lazily: callers
run `import torch_reference` only when PyTorch is installed.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class BasicBlock(nn.Module):
  def __init__(self, cin: int, cout: int, stride: int):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(cout)
    self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(cout)
    self.stride, self.pad = stride, cout - cin

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    short = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
    if self.pad:  # Option A: zero channels, half on each side.
      short = F.pad(short, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
    return F.relu(y + short)


class CifarResNet(nn.Module):
  """ResNet-(6n+2) for 32x32x3 inputs, widths 16/32/64."""

  def __init__(self, depth: int, num_classes: int = 10):
    super().__init__()
    n = (depth - 2) // 6
    self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
    self.bn = nn.BatchNorm2d(16)
    layers, cin = [], 16
    for stage, width in enumerate((16, 32, 64)):
      for b in range(n):
        layers.append(BasicBlock(cin, width, 2 if stage and b == 0 else 1))
        cin = width
    self.layers = nn.Sequential(*layers)
    self.fc = nn.Linear(64, num_classes)

  def forward(self, x):
    x = self.layers(F.relu(self.bn(self.conv(x))))
    return self.fc(x.mean((2, 3)))


def mlp7(num_inputs: int = 1024, width: int = 100, num_classes: int = 10) -> nn.Module:
  layers, fan_in = [nn.Flatten()], num_inputs
  for _ in range(6):
    layers += [nn.Linear(fan_in, width), nn.ReLU()]
    fan_in = width
  return nn.Sequential(*layers, nn.Linear(width, num_classes))


def global_magnitude_masks(weights: list[torch.Tensor], sparsity: float) -> list:
  """0/1 masks keeping the largest (1 - sparsity) of all weights by magnitude."""
  flat = torch.cat([w.detach().abs().flatten() for w in weights])
  threshold = flat.kthvalue(int(sparsity * flat.numel())).values
  return [(w.detach().abs() > threshold).float() for w in weights]
