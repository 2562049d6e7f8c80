// transforms.hpp — Transform: resize, center crop, to-tensor, normalize — equal to torchvision on PIL.
#pragma once
#include <array>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "thingsvision/image.hpp"

namespace thingsvision {

/// Resampling filter, as PIL's (bilinear = Image.BILINEAR triangle filter, bicubic a = -0.5).
enum class Interpolation { bilinear, bicubic };

/// How the image is resized before cropping.
enum class ResizeMode {
  none,          ///< keep the decoded size
  shorter_side,  ///< torchvision Resize(S): shorter side to S, longer side int(S * long / short)
  fixed,         ///< torchvision Resize((H, W)): exactly H × W
};

/// A preprocessing pipeline: resize → center crop → ToTensor (÷255) → Normalize, CHW float32.
struct Transform {
  ResizeMode resize_mode = ResizeMode::shorter_side;
  /// Target of the shorter side (ResizeMode::shorter_side).
  int resize_size = 256;
  /// Target size (ResizeMode::fixed).
  int resize_height = 0;
  int resize_width = 0;
  Interpolation interpolation = Interpolation::bilinear;
  /// Center crop to crop_height × crop_width; 0 = no crop.
  int crop_height = 224;
  int crop_width = 224;
  /// Per-channel mean and standard deviation on the 0–1 scale (ImageNet by default).
  std::array<float, 3> mean_rgb = {0.485f, 0.456f, 0.406f};
  std::array<float, 3> std_rgb = {0.229f, 0.224f, 0.225f};

  /// A named preset: "thingsvision" (default), "clip", "net2brain", "brainscore".
  /// Throws Error(usage) naming the preset and listing the valid ones.
  static Transform preset(std::string_view name);
  /// The names preset() accepts.
  static std::vector<std::string> preset_names();
  /// Reads the "preprocessing" object of a model's JSON sidecar; throws Error(input) naming the file.
  static Transform from_sidecar(const std::filesystem::path& json_file);
  /// A one-line human-readable description (recorded in manifests).
  std::string describe() const;
  /// Throws Error(usage) naming the field if a size is not positive, only one crop side is 0 or a
  /// std is not positive. Called by the functions below.
  void validate() const;
};

/// An image after a Transform: channels × height × width float32 values, C order.
struct TransformedImage {
  int channels = 3;
  int height = 0;
  int width = 0;
  std::vector<float> values;
};

/// Resizes to exactly width × height with PIL's resampling (Image.resize), bit-exact.
Image resize(const Image& image, int width, int height, Interpolation interpolation);

/// torchvision Resize(size): the shorter side becomes `size`, the other int(size * long / short).
Image resize_shorter_side(const Image& image, int size, Interpolation interpolation);

/// torchvision CenterCrop: offsets round((H - h) / 2) half-to-even; zero padding if larger.
Image center_crop(const Image& image, int height, int width);

/// The output height and width `transform` gives an input of `width` × `height` (Error(usage) if empty).
std::array<int, 2> output_size(const Transform& transform, int width, int height);

/// The uint8 image after the resize and center-crop steps of `transform` (before ToTensor): what
/// torchvision's Resize + CenterCrop give on the PIL image. Only the cropped region is resampled.
Image resize_and_crop(const Transform& transform, const Image& image);

/// Applies the whole transform; ToTensor and Normalize in float32 as torchvision computes them.
TransformedImage apply_transform(const Transform& transform, const Image& image);

/// As apply_transform, writing channels × H × W floats to `out` (H, W as output_size returns).
void apply_transform(const Transform& transform, const Image& image, float* out);

}  // namespace thingsvision
