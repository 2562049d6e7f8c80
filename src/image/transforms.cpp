// transforms.cpp — Resize / CenterCrop / ToTensor / Normalize as torchvision 0.14 does on PIL images;
// Keras preprocess_input + tf.image.resize bilinear for the keras_* presets.
#include "thingsvision/transforms.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "image/pil_resample.hpp"
#include "thingsvision/error.hpp"

namespace thingsvision {
namespace {

constexpr std::array<float, 3> kImageNetMean = {0.485f, 0.456f, 0.406f};
constexpr std::array<float, 3> kImageNetStd = {0.229f, 0.224f, 0.225f};
// = OpenAI CLIP's _transform (clip/clip.py) Normalize values.
constexpr std::array<float, 3> kClipMean = {0.48145466f, 0.4578275f, 0.40821073f};
constexpr std::array<float, 3> kClipStd = {0.26862954f, 0.26130258f, 0.27577711f};

// Keras imagenet_utils.preprocess_input, mode "caffe": BGR means (here indexed R, G, B).
constexpr std::array<float, 3> kKerasCaffeMeanRgb = {123.68f, 116.779f, 103.939f};

/// The divisor that maps 0..255 to 0..value_scale (255, 127.5, 1; exact in float).
float value_divisor(const Transform& t) { return 255.0f / t.value_scale; }

/// The preset `name` ("keras_tf:299" included), or nothing if the name is not one.
std::optional<Transform> find_preset(std::string_view name) {
  Transform t;  // defaults = "thingsvision": Resize(256), CenterCrop(224), ImageNet
  if (name == "thingsvision") return t;
  if (name == "clip") {
    t.resize_size = 224;
    t.interpolation = Interpolation::bicubic;
    t.mean_rgb = kClipMean;
    t.std_rgb = kClipStd;
    return t;
  }
  if (name == "net2brain") {  // Net2Brain: Resize((256, 256)), CenterCrop(224), ImageNet
    t.resize_mode = ResizeMode::fixed;
    t.resize_height = t.resize_width = 256;
    return t;
  }
  if (name == "brainscore") {  // Brain-Score: Resize((224, 224)), no crop, ImageNet
    t.resize_mode = ResizeMode::fixed;
    t.resize_height = t.resize_width = 224;
    t.crop_height = t.crop_width = 0;
    return t;
  }
  // THINGSvision's Keras path: Sequential([Lambda(preprocess_input), Resizing(H, H)]) on float HWC 0-255.
  if (name.substr(0, 6) != "keras_") return std::nullopt;
  const std::string_view mode = name.substr(0, name.find(':'));
  int size = 224;
  if (mode.size() < name.size()) {
    const std::string digits(name.substr(mode.size() + 1));
    if (digits.empty() || digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(digits) <= 0) {
      return std::nullopt;
    }
    size = std::stoi(digits);
  }
  t.resize_mode = ResizeMode::fixed;
  t.resize_height = t.resize_width = size;
  t.interpolation = Interpolation::tf_bilinear;
  t.crop_height = t.crop_width = 0;
  if (mode == "keras_caffe") {  // x[..., ::-1] - [103.939, 116.779, 123.68]
    t.channel_order = ChannelOrder::bgr;
    t.value_scale = 255.0f;
    t.mean_rgb = kKerasCaffeMeanRgb;
    t.std_rgb = {1.0f, 1.0f, 1.0f};
  } else if (mode == "keras_tf") {  // x / 127.5 - 1
    t.value_scale = 2.0f;
    t.mean_rgb = {1.0f, 1.0f, 1.0f};
    t.std_rgb = {1.0f, 1.0f, 1.0f};
  } else if (mode == "keras_torch") {  // x / 255, then ImageNet mean and std
    t.mean_rgb = kImageNetMean;
    t.std_rgb = kImageNetStd;
  } else if (mode == "keras_none") {  // identity, 0-255
    t.value_scale = 255.0f;
    t.mean_rgb = {0.0f, 0.0f, 0.0f};
    t.std_rgb = {1.0f, 1.0f, 1.0f};
  } else {
    return std::nullopt;
  }
  return t;
}

void require_uint8_filter(Interpolation interpolation, const char* function) {
  if (interpolation == Interpolation::tf_bilinear) {
    throw Error(ErrorKind::usage, fmt::format("{}: tf_bilinear resamples float values after normalisation; "
                                              "use apply_transform", function));
  }
}

/// Python's round() of d / 2.0 for d >= 0 (half to even), as in torchvision's center_crop.
int half_round_even(int d) {
  const int m = d / 2;
  if (d % 2 == 0) return m;
  return m % 2 == 0 ? m : m + 1;
}

/// Size after the resize step, {width, height}.
std::array<int, 2> resized_size(const Transform& t, int width, int height) {
  switch (t.resize_mode) {
    case ResizeMode::none: return {width, height};
    case ResizeMode::fixed: return {t.resize_width, t.resize_height};
    case ResizeMode::shorter_side: break;
  }
  // torchvision _compute_resized_output_size: int(size * long / short), in double.
  const int short_side = std::min(width, height), long_side = std::max(width, height);
  const double scaled = static_cast<double>(static_cast<long long>(t.resize_size) * long_side) / short_side;
  const int new_long = static_cast<int>(scaled);
  return width <= height ? std::array<int, 2>{t.resize_size, new_long}
                         : std::array<int, 2>{new_long, t.resize_size};
}

/// The crop window on the resized image, after torchvision's zero padding.
struct CropPlan {
  int out_w = 0, out_h = 0;       // output size
  int src_x = 0, src_y = 0;       // first resized pixel copied
  int dst_x = 0, dst_y = 0;       // where it lands in the output
  int copy_w = 0, copy_h = 0;     // size of the copied (non-padding) block
};

CropPlan plan_crop(int width, int height, int crop_w, int crop_h) {
  CropPlan plan;
  if (crop_w == 0 || crop_h == 0) {
    plan.out_w = plan.copy_w = width;
    plan.out_h = plan.copy_h = height;
    return plan;
  }
  // torchvision 0.14 F.center_crop: pad with 0 (left/top get the smaller half), then crop at
  // round((H - h) / 2), round((W - w) / 2).
  const int pad_left = crop_w > width ? (crop_w - width) / 2 : 0;
  const int pad_top = crop_h > height ? (crop_h - height) / 2 : 0;
  const int padded_w = std::max(width, crop_w), padded_h = std::max(height, crop_h);
  const int left = half_round_even(padded_w - crop_w) - pad_left;  // in resized coordinates
  const int top = half_round_even(padded_h - crop_h) - pad_top;
  plan.out_w = crop_w;
  plan.out_h = crop_h;
  plan.dst_x = std::max(0, -left);
  plan.dst_y = std::max(0, -top);
  plan.src_x = left + plan.dst_x;
  plan.src_y = top + plan.dst_y;
  plan.copy_w = std::min(crop_w, width - left) - plan.dst_x;
  plan.copy_h = std::min(crop_h, height - top) - plan.dst_y;
  return plan;
}

[[noreturn]] void sidecar_error(const std::filesystem::path& file, const std::string& what) {
  throw Error(ErrorKind::input, fmt::format("cannot read the preprocessing of model sidecar '{}': {}",
                                            file.string(), what));
}

}  // namespace

const char* interpolation_name(Interpolation interpolation) {
  switch (interpolation) {
    case Interpolation::bicubic: return "bicubic";
    case Interpolation::tf_bilinear: return "tf_bilinear";
    case Interpolation::bilinear: break;
  }
  return "bilinear";
}

Transform Transform::preset(std::string_view name) {
  if (auto t = find_preset(name)) return *t;
  std::string names;
  for (const auto& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
  throw Error(ErrorKind::usage, fmt::format("unknown preprocessing preset '{}'; valid presets: {} (keras_*: "
                                            "optional size suffix :N, e.g. keras_tf:299)", name, names));
}

std::vector<std::string> Transform::preset_names() {
  return {"thingsvision", "clip", "net2brain", "brainscore", "keras_caffe", "keras_tf", "keras_torch", "keras_none"};
}

void Transform::validate() const {
  auto positive = [](int value, const char* field) {
    if (value <= 0) throw Error(ErrorKind::usage, fmt::format("Transform: {} must be positive, got {}", field, value));
  };
  if (resize_mode == ResizeMode::shorter_side) positive(resize_size, "resize_size");
  if (resize_mode == ResizeMode::fixed) {
    positive(resize_height, "resize_height");
    positive(resize_width, "resize_width");
  }
  if (crop_height < 0 || crop_width < 0 || (crop_height == 0) != (crop_width == 0)) {
    throw Error(ErrorKind::usage, fmt::format("Transform: crop_height and crop_width must both be positive or "
                                              "both 0 (no crop), got {} x {}", crop_height, crop_width));
  }
  for (int c = 0; c < 3; ++c) {
    if (!(std_rgb[c] > 0.0f) || !std::isfinite(std_rgb[c]) || !std::isfinite(mean_rgb[c])) {
      throw Error(ErrorKind::usage, fmt::format("Transform: std_rgb must be positive and mean_rgb finite, got "
                                                "mean {} std {} for channel {}", mean_rgb[c], std_rgb[c], c));
    }
  }
  if (!(value_scale > 0.0f) || !std::isfinite(value_scale)) {
    throw Error(ErrorKind::usage, fmt::format("Transform: value_scale must be positive, got {}", value_scale));
  }
}

std::string Transform::describe() const {
  const bool tf = interpolation == Interpolation::tf_bilinear;
  const char* filter = tf ? "bilinear, TF half-pixel, float" : interpolation == Interpolation::bicubic
                                                                    ? "bicubic, PIL" : "bilinear, PIL";
  std::string geometry;
  switch (resize_mode) {
    case ResizeMode::none: geometry = "no resize"; break;
    case ResizeMode::shorter_side: geometry = fmt::format("resize shorter side to {} ({})", resize_size, filter); break;
    case ResizeMode::fixed: geometry = fmt::format("resize to {}x{} HxW ({})", resize_height, resize_width, filter); break;
  }
  geometry += crop_height > 0 ? fmt::format(", center crop {}x{}", crop_height, crop_width) : ", no crop";
  std::string values = fmt::format("to tensor /{}", value_divisor(*this));
  if (channel_order == ChannelOrder::bgr) values += ", BGR order";
  values += fmt::format(", normalize mean ({}, {}, {}) std ({}, {}, {})", mean_rgb[0], mean_rgb[1], mean_rgb[2],
                        std_rgb[0], std_rgb[1], std_rgb[2]);
  if (channel_order == ChannelOrder::bgr) values += " (R, G, B)";
  return tf ? values + ", then " + geometry : geometry + ", " + values;
}

Transform Transform::from_sidecar(const std::filesystem::path& json_file) {
  std::ifstream in(json_file, std::ios::binary);
  if (!in) sidecar_error(json_file, "file cannot be opened");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    sidecar_error(json_file, fmt::format("invalid JSON at byte {}", e.byte));
  }
  if (!doc.is_object() || !doc.contains("preprocessing")) sidecar_error(json_file, "no \"preprocessing\" object");
  const nlohmann::json& p = doc["preprocessing"];
  if (!p.is_object()) sidecar_error(json_file, "\"preprocessing\" is not an object");
  const auto key_error = [&](const char* key, const std::string& expected) {
    sidecar_error(json_file, fmt::format("key \"preprocessing.{}\" must be {}, got {}", key, expected,
                                         p[key].dump()));
  };
  const auto get_int = [&](const char* key, int& value) {
    if (!p.contains(key)) return;
    if (!p[key].is_number_integer() || p[key].get<long long>() < 0 || p[key].get<long long>() > 1000000) {
      key_error(key, "a non-negative integer");
    }
    value = p[key].get<int>();
  };
  const auto get_string = [&](const char* key) -> std::string {
    if (!p.contains(key)) return {};
    if (!p[key].is_string()) key_error(key, "a string");
    return p[key].get<std::string>();
  };
  const auto get_triple = [&](const char* key, std::array<float, 3>& value) {
    if (!p.contains(key)) return;
    const auto& a = p[key];
    if (!a.is_array() || a.size() != 3 || !a[0].is_number() || !a[1].is_number() || !a[2].is_number()) {
      key_error(key, "an array of 3 numbers");
    }
    for (int c = 0; c < 3; ++c) value[c] = static_cast<float>(a[c].get<double>());  // as torch.as_tensor(float32)
  };
  Transform t;
  // A name that is not one of ours (e.g. "torchvision:ResNet50_Weights.IMAGENET1K_V2") only labels the fields.
  if (auto named = find_preset(get_string("preset"))) t = *named;
  const std::string mode = get_string("resize_mode");
  if (mode == "shorter_side") {
    t.resize_mode = ResizeMode::shorter_side;
  } else if (mode == "fixed") {
    t.resize_mode = ResizeMode::fixed;
  } else if (mode == "none") {
    t.resize_mode = ResizeMode::none;
  } else if (!mode.empty()) {
    key_error("resize_mode", "\"shorter_side\", \"fixed\" or \"none\"");
  }
  get_int("resize_size", t.resize_size);
  get_int("resize_height", t.resize_height);
  get_int("resize_width", t.resize_width);
  const std::string interpolation = get_string("interpolation");
  if (interpolation == "bilinear") {
    t.interpolation = Interpolation::bilinear;
  } else if (interpolation == "bicubic") {
    t.interpolation = Interpolation::bicubic;
  } else if (interpolation == "tf_bilinear") {
    t.interpolation = Interpolation::tf_bilinear;
  } else if (!interpolation.empty()) {
    key_error("interpolation", "\"bilinear\", \"bicubic\" or \"tf_bilinear\"");
  }
  get_int("crop_height", t.crop_height);
  get_int("crop_width", t.crop_width);
  get_triple("mean", t.mean_rgb);
  get_triple("std", t.std_rgb);
  const std::string order = get_string("channel_order");
  if (order == "rgb") {
    t.channel_order = ChannelOrder::rgb;
  } else if (order == "bgr") {
    t.channel_order = ChannelOrder::bgr;
  } else if (!order.empty()) {
    key_error("channel_order", "\"rgb\" or \"bgr\"");
  }
  const std::string scale = get_string("scale");
  if (scale == "0-1") {
    t.value_scale = 1.0f;
  } else if (scale == "0-2") {
    t.value_scale = 2.0f;
  } else if (scale == "0-255") {
    t.value_scale = 255.0f;
  } else if (!scale.empty()) {
    key_error("scale", "\"0-1\", \"0-2\" or \"0-255\"");
  }
  try {
    t.validate();
  } catch (const Error& e) {
    sidecar_error(json_file, e.what());
  }
  return t;
}

Image resize(const Image& image, int width, int height, Interpolation interpolation) {
  if (width <= 0 || height <= 0) {
    throw Error(ErrorKind::usage, fmt::format("resize: target size must be positive, got {} x {}", width, height));
  }
  if (image.width <= 0 || image.height <= 0) throw Error(ErrorKind::usage, "resize: the image is empty");
  require_uint8_filter(interpolation, "resize");
  if (width == image.width && height == image.height) return image;
  Image out;
  out.width = width;
  out.height = height;
  out.pixels.resize(std::size_t(width) * height * 3);
  detail::resample_region(image, width, height, interpolation, 0, 0, width, height, out.pixels.data(),
                          std::size_t(width) * 3);
  return out;
}

Image resize_shorter_side(const Image& image, int size, Interpolation interpolation) {
  if (size <= 0) throw Error(ErrorKind::usage, fmt::format("resize_shorter_side: size must be positive, got {}", size));
  require_uint8_filter(interpolation, "resize_shorter_side");
  Transform t;
  t.resize_size = size;
  const auto wh = resized_size(t, image.width, image.height);
  return resize(image, wh[0], wh[1], interpolation);
}

Image center_crop(const Image& image, int height, int width) {
  if (height <= 0 || width <= 0) {
    throw Error(ErrorKind::usage, fmt::format("center_crop: size must be positive, got {} x {}", height, width));
  }
  const CropPlan plan = plan_crop(image.width, image.height, width, height);
  Image out;
  out.width = plan.out_w;
  out.height = plan.out_h;
  out.pixels.assign(std::size_t(out.width) * out.height * 3, 0);
  for (int y = 0; y < plan.copy_h; ++y) {
    std::copy_n(image.row(plan.src_y + y) + 3 * plan.src_x, std::size_t(plan.copy_w) * 3,
                out.row(plan.dst_y + y) + 3 * plan.dst_x);
  }
  return out;
}

std::array<int, 2> output_size(const Transform& transform, int width, int height) {
  if (width <= 0 || height <= 0) {
    throw Error(ErrorKind::usage, fmt::format("output_size: image size must be positive, got {} x {}", width, height));
  }
  const auto wh = resized_size(transform, width, height);
  if (transform.crop_height > 0 && transform.crop_width > 0) return {transform.crop_height, transform.crop_width};
  return {wh[1], wh[0]};
}

std::optional<std::array<int, 2>> fixed_output_size(const Transform& transform) {
  if (transform.crop_height > 0 && transform.crop_width > 0) return std::array<int, 2>{transform.crop_height, transform.crop_width};
  if (transform.resize_mode == ResizeMode::fixed) return std::array<int, 2>{transform.resize_height, transform.resize_width};
  return std::nullopt;
}

Image resize_and_crop(const Transform& transform, const Image& image) {
  transform.validate();
  require_uint8_filter(transform.interpolation, "resize_and_crop");
  if (image.width <= 0 || image.height <= 0) throw Error(ErrorKind::usage, "apply_transform: the image is empty");
  const auto wh = resized_size(transform, image.width, image.height);
  const CropPlan plan = plan_crop(wh[0], wh[1], transform.crop_width, transform.crop_height);
  Image out;
  out.width = plan.out_w;
  out.height = plan.out_h;
  out.pixels.assign(std::size_t(out.width) * out.height * 3, 0);
  // Only the pixels that survive the crop are resampled; each equals Pillow's full-image value.
  detail::resample_region(image, wh[0], wh[1], transform.interpolation, plan.src_x, plan.src_y, plan.copy_w,
                          plan.copy_h, out.row(plan.dst_y) + 3 * plan.dst_x, std::size_t(out.width) * 3);
  return out;
}

namespace {

/// One table per input channel (R, G, B) holding the 256 possible values after scaling and Normalize.
using ValueTables = std::array<std::array<float, 256>, 3>;

ValueTables value_tables(const Transform& transform) {
  // ToTensor: uint8 → float32, / 255 (img.float().div(255)); Normalize: sub_(mean).div_(std), all in
  // float32. Keras: x / 127.5 - 1 ("tf"), x - mean ("caffe"; / 1 is exact), as float32 tensors.
  const float divisor = value_divisor(transform);
  ValueTables table;
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) {
      const float scaled = static_cast<float>(v) / divisor;
      table[c][v] = (scaled - transform.mean_rgb[c]) / transform.std_rgb[c];
    }
  }
  return table;
}

/// The input channel (0 = R) that output channel `c` holds.
int source_channel(const Transform& transform, int c) {
  return transform.channel_order == ChannelOrder::bgr ? 2 - c : c;
}

/// tf.image.resize bilinear (legacy ResizeBilinear kernel, half_pixel_centers=True): source position
/// (i + 0.5) * in/out - 0.5 in float, lower = max(floor, 0), upper = min(ceil, in - 1).
struct TfTap {
  int lower = 0, upper = 0;
  float lerp = 0.0f;
};

std::vector<TfTap> tf_taps(int in_size, int out_size, int first, int count) {
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  std::vector<TfTap> taps(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    const float in = (static_cast<float>(first + i) + 0.5f) * scale - 0.5f;
    const float in_floor = std::floor(in);
    taps[i].lower = std::max(static_cast<int>(in_floor), 0);
    taps[i].upper = std::min(static_cast<int>(std::ceil(in)), in_size - 1);
    taps[i].lerp = in - in_floor;
  }
  return taps;
}

/// Keras order: preprocess_input on float HWC 0-255 (scaling, channel order), then Resizing, then crop.
void apply_tf_transform(const Transform& transform, const Image& image, float* out) {
  const auto wh = resized_size(transform, image.width, image.height);
  const CropPlan plan = plan_crop(wh[0], wh[1], transform.crop_width, transform.crop_height);
  const ValueTables table = value_tables(transform);
  const std::size_t in_plane = std::size_t(image.width) * image.height;
  std::vector<float> values(3 * in_plane);
  for (int c = 0; c < 3; ++c) {
    const int s = source_channel(transform, c);
    float* dst = values.data() + c * in_plane;
    for (std::size_t i = 0; i < in_plane; ++i) dst[i] = table[s][image.pixels[3 * i + s]];
  }
  const auto xs = tf_taps(image.width, wh[0], plan.src_x, plan.copy_w);
  const auto ys = tf_taps(image.height, wh[1], plan.src_y, plan.copy_h);
  const std::size_t out_plane = std::size_t(plan.out_w) * plan.out_h;
  for (int c = 0; c < 3; ++c) {
    const float* src = values.data() + c * in_plane;
    float* dst = out + c * out_plane;
    std::fill(dst, dst + out_plane, table[source_channel(transform, c)][0]);  // padding = a black pixel
    for (int y = 0; y < plan.copy_h; ++y) {
      const float* top_row = src + std::size_t(ys[y].lower) * image.width;
      const float* bottom_row = src + std::size_t(ys[y].upper) * image.width;
      float* row = dst + std::size_t(plan.dst_y + y) * plan.out_w + plan.dst_x;
      for (int x = 0; x < plan.copy_w; ++x) {
        const TfTap& t = xs[x];
        const float top = top_row[t.lower] + (top_row[t.upper] - top_row[t.lower]) * t.lerp;
        const float bottom = bottom_row[t.lower] + (bottom_row[t.upper] - bottom_row[t.lower]) * t.lerp;
        row[x] = top + (bottom - top) * ys[y].lerp;
      }
    }
  }
}

}  // namespace

void apply_transform(const Transform& transform, const Image& image, float* out) {
  if (transform.interpolation == Interpolation::tf_bilinear) {
    transform.validate();
    if (image.width <= 0 || image.height <= 0) throw Error(ErrorKind::usage, "apply_transform: the image is empty");
    apply_tf_transform(transform, image, out);
    return;
  }
  const Image pixels = resize_and_crop(transform, image);
  const ValueTables table = value_tables(transform);
  const std::size_t plane = std::size_t(pixels.width) * pixels.height;
  const std::uint8_t* in = pixels.pixels.data();
  for (int c = 0; c < 3; ++c) {
    const int s = source_channel(transform, c);
    float* dst = out + c * plane;
    for (std::size_t i = 0; i < plane; ++i) dst[i] = table[s][in[3 * i + s]];
  }
}

TransformedImage apply_transform(const Transform& transform, const Image& image) {
  transform.validate();
  const auto hw = output_size(transform, image.width, image.height);
  TransformedImage result;
  result.height = hw[0];
  result.width = hw[1];
  result.values.resize(std::size_t(3) * hw[0] * hw[1]);
  apply_transform(transform, image, result.values.data());
  return result;
}

}  // namespace thingsvision
