#!/usr/bin/env python3
"""keras_preprocess_reference.py OUT_DIR PHOTO... — THINGSvision's Keras preprocessing in numpy/torch.

THINGSvision (KerasExtractor) preprocesses each image as
    PIL .convert("RGB") -> img_to_array (float32 HWC 0-255)
    -> Sequential([Lambda(<keras.applications module>.preprocess_input), Resizing(H, H)])
i.e. preprocess_input FIRST (in float32), then tf.image.resize(method="bilinear", antialias=False), no crop.

TensorFlow is not installed here, so the resize is computed twice:
- tf_resize_bilinear: numpy float32 transcription of TF's ResizeBilinear kernel, which tf.image.resize
  (v2, bilinear, antialias=False) calls with half_pixel_centers=True
  (tensorflow/core/kernels/image/resize_bilinear_op.cc: scale = in / float(out); source position
  (i + 0.5f) * scale - 0.5f in float; lower = max(floor, 0), upper = min(ceil, in - 1);
  top + (bottom - top) * y_lerp with top = top_left + (top_right - top_left) * x_lerp).
- torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False): the same
  half-pixel-centre bilinear, but it computes the source position in double before rounding it to
  float, so it differs from TF by the float rounding of the position (up to ~3e-3 on the 0-255 scale
  at sharp edges of a 300-pixel image); an independent cross-check with that tolerance.

For each photo, a few crops of odd sizes (upsampling and downsampling) and each Keras preset, writes
  OUT_DIR/<n>.rgb (uint8 RGB input, HWC), OUT_DIR/<n>.f32 (TF-kernel reference, float32 CHW) and
  OUT_DIR/<n>.torch.f32 (torch reference), and OUT_DIR/index.json listing
  {preset, size, width, height, rgb, f32, torch_f32, photo}.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def preprocess_input(x, mode):
    """keras.applications.imagenet_utils.preprocess_input (channels_last) on a float32 HWC array."""
    x = x.astype(np.float32, copy=True)
    if mode == "tf":
        x /= np.float32(127.5)
        x -= np.float32(1.0)
    elif mode == "torch":
        x /= np.float32(255.0)
        x -= np.array([0.485, 0.456, 0.406], np.float32)
        x /= np.array([0.229, 0.224, 0.225], np.float32)
    elif mode == "caffe":
        x = x[..., ::-1]  # RGB -> BGR
        x = x - np.array([103.939, 116.779, 123.68], np.float32)
    elif mode != "none":
        raise ValueError(mode)
    return np.ascontiguousarray(x)


def tf_taps(in_size, out_size):
    scale = np.float32(in_size) / np.float32(out_size)
    pos = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(pos)
    lower = np.maximum(floor, 0).astype(np.int64)
    upper = np.minimum(np.ceil(pos), in_size - 1).astype(np.int64)
    return lower, upper, (pos - floor).astype(np.float32)


def tf_resize_bilinear(x, size):
    """Keras Resizing(size, size) = TF ResizeBilinear(half_pixel_centers=True) in float32; CHW out."""
    y0, y1, ylerp = tf_taps(x.shape[0], size)
    x0, x1, xlerp = tf_taps(x.shape[1], size)
    xlerp = xlerp[None, :, None]
    top = x[y0][:, x0] + (x[y0][:, x1] - x[y0][:, x0]) * xlerp
    bottom = x[y1][:, x0] + (x[y1][:, x1] - x[y1][:, x0]) * xlerp
    out = top + (bottom - top) * ylerp[:, None, None]
    return np.ascontiguousarray(out.transpose(2, 0, 1)).astype(np.float32)


def torch_resize_bilinear(x, size):
    """The same resize with torch (position computed in double): an independent cross-check."""
    t = torch.from_numpy(x).permute(2, 0, 1)[None]
    out = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return out[0].numpy().astype(np.float32)  # CHW


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    cases = []
    for photo in sys.argv[2:]:
        img = Image.open(photo).convert("RGB")
        w, h = img.size
        crops = [(0, 0, w, h), (3, 5, 3 + 97, 5 + 131), (w - 301, h - 223, w, h), (10, 20, 13, 21)]
        for box in crops:
            rgb = np.asarray(img.crop(box), dtype=np.uint8)
            for preset, mode, size in [("keras_caffe", "caffe", 224), ("keras_tf", "tf", 224),
                                       ("keras_torch", "torch", 224), ("keras_none", "none", 224),
                                       ("keras_tf:299", "tf", 299), ("keras_caffe:299", "caffe", 299)]:
                x = preprocess_input(rgb.astype(np.float32), mode)
                n = len(cases)
                rgb.tofile(os.path.join(out_dir, f"{n}.rgb"))
                tf_resize_bilinear(x, size).tofile(os.path.join(out_dir, f"{n}.f32"))
                torch_resize_bilinear(x, size).tofile(os.path.join(out_dir, f"{n}.torch.f32"))
                cases.append({"photo": os.path.basename(photo), "preset": preset, "size": size,
                              "width": rgb.shape[1], "height": rgb.shape[0],
                              "rgb": f"{n}.rgb", "f32": f"{n}.f32", "torch_f32": f"{n}.torch.f32"})
    with open(os.path.join(out_dir, "index.json"), "w") as f:
        json.dump({"cases": cases}, f)


if __name__ == "__main__":
    main()
