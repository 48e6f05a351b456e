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


_VGG_STAGES = {
  11: ((64,), (128,), (256, 256), (512, 512), (512, 512)),
  16: ((64, 64), (128, 128), (256,) * 3, (512,) * 3, (512,) * 3),
}


class CifarVGG(nn.Module):
  """VGG-11/16 with BatchNorm for CIFAR, the l1-norm-pruning flavour (jaxprune's
  `vgg11`/`vgg16` defaults): convs, max pool after every stage but the last,
  average pool, [fc 512 + BatchNorm1d + ReLU,] head."""

  def __init__(self, depth: int = 16, num_classes: int = 10):
    super().__init__()
    layers, cin, stages = [], 3, _VGG_STAGES[depth]
    for s, stage in enumerate(stages):
      for width in stage:
        layers += [
          nn.Conv2d(cin, width, 3, 1, 1, bias=False),
          nn.BatchNorm2d(width),
          nn.ReLU(inplace=True),
        ]
        cin = width
      if s + 1 < len(stages):
        layers.append(nn.MaxPool2d(2))
    self.features = nn.Sequential(*layers)
    # jaxprune's vgg16 defaults to the l1 classifier (fc 512 + BN1d + ReLU),
    # vgg11 to slimming's (average pool straight into the head).
    self.classifier = (
      nn.Sequential(nn.Linear(cin, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True))
      if depth == 16
      else nn.Identity()
    )
    self.head = nn.Linear(512, num_classes)

  def forward(self, x):
    return self.head(self.classifier(self.features(x).mean((2, 3))))


def lenet5(num_classes: int = 10) -> nn.Module:
  """LeNet-5 on 32x32x1 (jaxprune's `lenet5_relu`): 3 valid 5x5 convs, 2 max
  pools, fc 84, head."""
  return nn.Sequential(
    nn.Conv2d(1, 6, 5),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Conv2d(6, 16, 5),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Conv2d(16, 120, 5),
    nn.ReLU(),
    nn.Flatten(),
    nn.Linear(120, 84),
    nn.ReLU(),
    nn.Linear(84, num_classes),
  )


def create(name: str) -> nn.Module:
  """The PyTorch twin of a jaxprune registry model name (benchmarked ones only)."""
  if name.startswith("resnet"):
    return CifarResNet(int(name.removeprefix("resnet")))
  if name in ("vgg11", "vgg16"):
    return CifarVGG(int(name.removeprefix("vgg")))
  if name.startswith("mlp7"):
    return mlp7()
  if name.startswith("lenet5"):
    return lenet5()
  raise ValueError(f"no PyTorch twin for {name!r}")
