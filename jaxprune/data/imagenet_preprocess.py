"""Host-side decoding to a fixed size for streamed datasets (ImageNet).

Training images get an Inception-style random-resized crop (scale 0.08-1, aspect
3/4-4/3, as torchvision's `RandomResizedCrop`, used by the seeds' ImageNet runs);
evaluation images are resized so the shorter side is size*256/224 and centre
cropped. Flips and normalisation happen later on device (`pipeline.Preprocess`).
Images that already have the target size are passed through unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image


def _to_pil(image: np.ndarray) -> Image.Image:
  if image.ndim == 3 and image.shape[-1] == 1:
    return Image.fromarray(image[..., 0])
  return Image.fromarray(image)


def _from_pil(image: Image.Image, channels: int) -> np.ndarray:
  array = np.asarray(image, dtype=np.uint8)
  if array.ndim == 2:
    array = array[..., None]
  if array.shape[-1] != channels:
    array = np.broadcast_to(array[..., :1], (*array.shape[:2], channels)).copy()
  return array


def random_resized_crop_box(
  height: int, width: int, rng: np.random.Generator
) -> tuple[int, int, int, int]:
  """(top, left, h, w) of a random crop covering 8-100% of the area."""
  area = height * width
  for _ in range(10):
    target = area * rng.uniform(0.08, 1.0)
    aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    w = round(math.sqrt(target * aspect))
    h = round(math.sqrt(target / aspect))
    if 0 < w <= width and 0 < h <= height:
      return (
        int(rng.integers(0, height - h + 1)),
        int(rng.integers(0, width - w + 1)),
        h,
        w,
      )
  side = min(height, width)  # Fallback: central square crop.
  return (height - side) // 2, (width - side) // 2, side, side


def fixed_size(
  image: np.ndarray, size: Sequence[int], train: bool, rng: np.random.Generator
) -> np.ndarray:
  """Returns `image` as uint8 [size[0], size[1], C]."""
  h, w = image.shape[:2]
  channels = image.shape[-1] if image.ndim == 3 else 1
  out_h, out_w = size
  if (h, w) == (out_h, out_w):
    return image if image.ndim == 3 else image[..., None]
  pil = _to_pil(image)
  if train:
    top, left, ch, cw = random_resized_crop_box(h, w, rng)
    pil = pil.resize(
      (out_w, out_h), Image.BILINEAR, box=(left, top, left + cw, top + ch)
    )
  else:
    scale = (out_h * 256 / 224) / min(h, w)
    rh, rw = max(out_h, round(h * scale)), max(out_w, round(w * scale))
    pil = pil.resize((rw, rh), Image.BILINEAR)
    top, left = (rh - out_h) // 2, (rw - out_w) // 2
    pil = pil.crop((left, top, left + out_w, top + out_h))
  return _from_pil(pil, channels)
