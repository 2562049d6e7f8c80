// transforms.hpp — Transform: resize, center crop, to-tensor, normalize — equal to torchvision on PIL,
// or Keras's preprocess_input then tf.image.resize (the keras_* presets).
#pragma once
#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "thingsvision/image.hpp"

namespace thingsvision {

/// Resampling filter. bilinear, bicubic: PIL's (Image.BILINEAR triangle filter, bicubic a = -0.5) on the
/// uint8 image, antialiased. tf_bilinear: tf.image.resize(method="bilinear") as Keras's Resizing layer
/// (half-pixel centres, no antialias) on the float values after scaling and normalisation, never rounded.
enum class Interpolation { bilinear, bicubic, tf_bilinear };

/// "bilinear", "bicubic" or "tf_bilinear" (the sidecar and manifest spelling).
const char* interpolation_name(Interpolation interpolation);

/// Order of the output channels: rgb (torchvision) or bgr (Keras "caffe" mode, VGG and ResNet v1).
enum class ChannelOrder { rgb, bgr };

/// How the image is resized before cropping.
enum class ResizeMode {
  none,          ///< keep the decoded size
  shorter_side,  ///< torchvision Resize(S): shorter side to S, longer side int(S * long / short)
  fixed,         ///< torchvision Resize((H, W)): exactly H × W
};

/// A preprocessing pipeline: resize → center crop → ToTensor (÷255) → Normalize, CHW float32. With
/// Interpolation::tf_bilinear the value steps come first (Keras's preprocess_input, then Resizing).
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
  /// Output channel order; mean_rgb and std_rgb stay indexed R, G, B (bgr: channel 0 is B − mean_rgb[2]).
  ChannelOrder channel_order = ChannelOrder::rgb;
  /// Pixel values are mapped to 0..value_scale (x / (255 / value_scale)) before Normalize: 1 (ToTensor),
  /// 2 (Keras "tf" mode with mean 1, std 1: x / 127.5 − 1), 255 (Keras "caffe" and "none": no division).
  float value_scale = 1.0f;

  /// A named preset: "thingsvision" (default), "clip", "net2brain", "brainscore", or Keras's
  /// preprocess_input modes "keras_caffe", "keras_tf", "keras_torch", "keras_none" (224 × 224; a
  /// suffix ":N" gives N × N, e.g. "keras_tf:299" for InceptionV3 and Xception).
  /// Throws Error(usage) naming the preset and listing the valid ones.
  static Transform preset(std::string_view name);
  /// The names preset() accepts (without the ":N" size suffix of the keras_* presets).
  static std::vector<std::string> preset_names();
  /// Reads the "preprocessing" object of a model's JSON sidecar; throws Error(input) naming the file.
  static Transform from_sidecar(const std::filesystem::path& json_file);
  /// A one-line human-readable description (recorded in manifests).
  std::string describe() const;
  /// Throws Error(usage) naming the field if a size is not positive, only one crop side is 0, a std or
  /// value_scale is not positive. Called by the functions below.
  void validate() const;
};

/// An image after a Transform: channels × height × width float32 values, C order.
struct TransformedImage {
  int channels = 3;
  int height = 0;
  int width = 0;
  std::vector<float> values;
};

/// Resizes to exactly width × height with PIL's resampling (Image.resize), bit-exact. The uint8 functions
/// below throw Error(usage) for Interpolation::tf_bilinear, which resamples float values (apply_transform).
Image resize(const Image& image, int width, int height, Interpolation interpolation);

/// torchvision Resize(size): the shorter side becomes `size`, the other int(size * long / short).
Image resize_shorter_side(const Image& image, int size, Interpolation interpolation);

/// torchvision CenterCrop: offsets round((H - h) / 2) half-to-even; zero padding if larger.
Image center_crop(const Image& image, int height, int width);

/// The output height and width `transform` gives an input of `width` × `height` (Error(usage) if empty).
std::array<int, 2> output_size(const Transform& transform, int width, int height);

/// The output height and width every image gets when `transform` fixes it (a center crop, or a resize to
/// exactly H × W without crop); std::nullopt when it depends on the image's size.
std::optional<std::array<int, 2>> fixed_output_size(const Transform& transform);

/// The uint8 image after the resize and center-crop steps of `transform` (before ToTensor): what
/// torchvision's Resize + CenterCrop give on the PIL image. Only the cropped region is resampled.
/// Error(usage) for Interpolation::tf_bilinear (no uint8 image exists in that pipeline).
Image resize_and_crop(const Transform& transform, const Image& image);

/// Applies the whole transform; ToTensor and Normalize in float32 as torchvision computes them. With
/// tf_bilinear: scale, normalise (and reorder) in float32 as Keras's preprocess_input, then resize in
/// float as tf.image.resize, then center crop (padding with the value of a black pixel).
TransformedImage apply_transform(const Transform& transform, const Image& image);

/// As apply_transform, writing channels × H × W floats to `out` (H, W as output_size returns).
void apply_transform(const Transform& transform, const Image& image, float* out);

}  // namespace thingsvision
