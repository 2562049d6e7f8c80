// transforms_test.cpp — Resize/CenterCrop/ToTensor/Normalize equal torchvision 0.14 on PIL (issue #3).
#include "thingsvision/transforms.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "image_reference.hpp"
#include "image/pil_resample.hpp"
#include "thingsvision/error.hpp"

namespace tv = thingsvision;
using ::testing::HasSubstr;

namespace {

/// The Transform a reference pipeline of pil_reference.py describes (its fields, not its preset).
tv::Transform transform_from_fields(const nlohmann::json& p) {
  tv::Transform t;
  const std::string mode = p["resize_mode"];
  t.resize_mode = mode == "none" ? tv::ResizeMode::none
                  : mode == "fixed" ? tv::ResizeMode::fixed : tv::ResizeMode::shorter_side;
  if (mode == "shorter_side") t.resize_size = p["resize"][0];
  if (mode == "fixed") {
    t.resize_height = p["resize"][0];
    t.resize_width = p["resize"][1];
  }
  t.interpolation = p["interpolation"] == "bicubic" ? tv::Interpolation::bicubic : tv::Interpolation::bilinear;
  t.crop_height = p["crop"][0];
  t.crop_width = p["crop"][1];
  for (int c = 0; c < 3; ++c) {
    t.mean_rgb[c] = static_cast<float>(p["norm"][0][c].get<double>());
    t.std_rgb[c] = static_cast<float>(p["norm"][1][c].get<double>());
  }
  return t;
}

bool same(const tv::Transform& a, const tv::Transform& b) {
  return a.resize_mode == b.resize_mode && a.interpolation == b.interpolation && a.crop_height == b.crop_height &&
         a.crop_width == b.crop_width && a.mean_rgb == b.mean_rgb && a.std_rgb == b.std_rgb &&
         a.channel_order == b.channel_order && a.value_scale == b.value_scale &&
         (a.resize_mode != tv::ResizeMode::shorter_side || a.resize_size == b.resize_size) &&
         (a.resize_mode != tv::ResizeMode::fixed ||
          (a.resize_height == b.resize_height && a.resize_width == b.resize_width));
}

tv::Image reference_image(const nlohmann::json& entry) {
  tv::Image image;
  image.width = entry["width"];
  image.height = entry["height"];
  image.pixels = tv_test::read_reference<std::uint8_t>(entry["rgb"], std::size_t(image.width) * image.height * 3);
  return image;
}

}  // namespace

TEST(Transforms, PresetsAreTheReferencePipelines) {
  const auto index = tv_test::load_image_index();
  ASSERT_FALSE(index.is_null());
  int presets = 0;
  for (const auto& [name, p] : index["pipelines"].items()) {
    if (p["preset"].is_null()) continue;
    SCOPED_TRACE(name);
    EXPECT_TRUE(same(tv::Transform::preset(p["preset"].get<std::string>()), transform_from_fields(p)));
    ++presets;
  }
  EXPECT_EQ(presets, 4);
  EXPECT_TRUE(same(tv::Transform{}, tv::Transform::preset("thingsvision")));
}

// The uint8 image after Resize + CenterCrop equals torchvision's on the PIL image in every pixel, and
// the float tensor after ToTensor + Normalize is within 1e-6. Input: PIL's decoded RGB, so that this
// test checks the transforms alone (image_test checks the decoder).
TEST(Transforms, EqualTorchvisionOnEveryImageAndPipeline) {
  const auto index = tv_test::load_image_index();
  ASSERT_FALSE(index.is_null());
  std::map<std::string, int> images_per_pipeline, tensors_per_pipeline;
  std::size_t values = 0, exact_values = 0;
  for (const auto& entry : index["images"]) {
    const tv::Image image = reference_image(entry);
    for (const auto& [name, rec] : entry["pipelines"].items()) {
      const auto& p = index["pipelines"][name];
      SCOPED_TRACE(entry["path"].get<std::string>() + " pipeline " + name);
      const tv::Transform t = p["preset"].is_null() ? transform_from_fields(p) : tv::Transform::preset(p["preset"].get<std::string>());
      const int height = rec["height"], width = rec["width"];
      const auto hw = tv::output_size(t, image.width, image.height);
      ASSERT_EQ(hw[0], height);
      ASSERT_EQ(hw[1], width);
      const tv::Image pixels = tv::resize_and_crop(t, image);
      ASSERT_EQ(pixels.height, height);
      ASSERT_EQ(pixels.width, width);
      const auto ref = tv_test::read_reference<std::uint8_t>(rec["u8"], std::size_t(width) * height * 3);
      EXPECT_EQ(tv_test::first_difference(pixels.pixels, ref, width), "");
      ++images_per_pipeline[name];
      if (!rec.contains("f32")) continue;
      const tv::TransformedImage tensor = tv::apply_transform(t, image);
      ASSERT_EQ(tensor.channels, 3);
      ASSERT_EQ(tensor.height, height);
      ASSERT_EQ(tensor.width, width);
      const auto ref_tensor = tv_test::read_reference<float>(rec["f32"], std::size_t(3) * width * height);
      EXPECT_TRUE(tv_test::expect_close(ref_tensor, tensor.values, {0.0, 1e-6}, name));
      for (std::size_t i = 0; i < ref_tensor.size(); ++i) exact_values += ref_tensor[i] == tensor.values[i];
      values += ref_tensor.size();
      ++tensors_per_pipeline[name];
    }
  }
  EXPECT_GE(images_per_pipeline["thingsvision"], 130);
  EXPECT_GE(tensors_per_pipeline["thingsvision"], 130);
  EXPECT_GE(tensors_per_pipeline["clip"], 130);
  EXPECT_GE(tensors_per_pipeline["net2brain"], 40);
  EXPECT_GE(tensors_per_pipeline["brainscore"], 40);
  EXPECT_GE(tensors_per_pipeline["pad_crop"], 40);
  EXPECT_GE(tensors_per_pipeline["short_bicubic_pad"], 40);
  std::printf("float tensors: %zu of %zu values bit-identical to torchvision\n", exact_values, values);
}

// The separate steps (full resize, then crop) give the same pixels as torchvision too, with the
// SIMD kernels and with the scalar ones.
class ResizeSteps : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { tv::detail::enable_simd_resampling(GetParam()); }
  void TearDown() override { tv::detail::enable_simd_resampling(true); }
};
INSTANTIATE_TEST_SUITE_P(Kernels, ResizeSteps, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& param_info) { return param_info.param ? "simd" : "scalar"; });

TEST_P(ResizeSteps, ResizeThenCenterCropEqualTorchvision) {
  const auto index = tv_test::load_image_index();
  ASSERT_FALSE(index.is_null());
  int checked = 0;
  for (const auto& entry : index["images"]) {
    if (!entry["generated"].get<bool>()) continue;
    const tv::Image image = reference_image(entry);
    SCOPED_TRACE(entry["path"].get<std::string>());
    for (const char* name : {"thingsvision", "clip", "fixed_bicubic", "pad_crop"}) {
      const auto& rec = entry["pipelines"][name];
      const auto& p = index["pipelines"][name];
      const tv::Transform t = transform_from_fields(p);
      tv::Image out = image;
      if (t.resize_mode == tv::ResizeMode::shorter_side) out = tv::resize_shorter_side(image, t.resize_size, t.interpolation);
      if (t.resize_mode == tv::ResizeMode::fixed) out = tv::resize(image, t.resize_width, t.resize_height, t.interpolation);
      if (t.crop_height > 0) out = tv::center_crop(out, t.crop_height, t.crop_width);
      const int height = rec["height"], width = rec["width"];
      ASSERT_EQ(out.height, height) << name;
      ASSERT_EQ(out.width, width) << name;
      const auto ref = tv_test::read_reference<std::uint8_t>(rec["u8"], std::size_t(width) * height * 3);
      EXPECT_EQ(tv_test::first_difference(out.pixels, ref, width), "") << name;
      ++checked;
    }
  }
  EXPECT_GE(checked, 160);
}

TEST(Transforms, ResizeToTheSameSizeIsANoOp) {
  tv::Image image;
  image.width = 300;
  image.height = 256;
  image.pixels.resize(300 * 256 * 3);
  for (std::size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = std::uint8_t(i * 7919 % 251);
  EXPECT_EQ(tv::resize_shorter_side(image, 256, tv::Interpolation::bicubic).pixels, image.pixels);
  EXPECT_EQ(tv::resize(image, 300, 256, tv::Interpolation::bilinear).pixels, image.pixels);
}

TEST(Transforms, OutputSizeFollowsTorchvision) {
  const tv::Transform t = tv::Transform::preset("thingsvision");
  EXPECT_EQ(tv::output_size(t, 500, 375), (std::array<int, 2>{224, 224}));
  tv::Transform no_crop = t;
  no_crop.crop_height = no_crop.crop_width = 0;
  // int(256 * 500 / 375) = int(341.33) = 341 (truncation, not rounding)
  EXPECT_EQ(tv::output_size(no_crop, 500, 375), (std::array<int, 2>{256, 341}));
  EXPECT_EQ(tv::output_size(no_crop, 7, 3000), (std::array<int, 2>{109714, 256}));
}

TEST(Transforms, UnknownPresetListsTheValidOnes) {
  try {
    tv::Transform::preset("imagenet");
    FAIL() << "no error";
  } catch (const tv::Error& e) {
    EXPECT_EQ(e.kind(), tv::ErrorKind::usage);
    EXPECT_STREQ(e.what(), "unknown preprocessing preset 'imagenet'; valid presets: thingsvision, clip, net2brain, "
                           "brainscore, keras_caffe, keras_tf, keras_torch, keras_none (keras_*: optional size "
                           "suffix :N, e.g. keras_tf:299)");
  }
  EXPECT_EQ(tv::Transform::preset_names().size(), 8u);
  for (const char* bad : {"keras_tf:", "keras_tf:0", "keras_tf:29x", "keras_vgg", "clip:224"}) {
    EXPECT_THAT([&] { tv::Transform::preset(bad); },
                ::testing::ThrowsMessage<tv::Error>(HasSubstr(std::string("unknown preprocessing preset '") + bad)));
  }
}

TEST(Transforms, DescribeIsOneLine) {
  const std::string text = tv::Transform::preset("clip").describe();
  EXPECT_EQ(text.find('\n'), std::string::npos);
  EXPECT_EQ(text, "resize shorter side to 224 (bicubic, PIL), center crop 224x224, to tensor /255, normalize mean "
                  "(0.48145467, 0.4578275, 0.40821072) std (0.26862955, 0.2613026, 0.2757771)");
  EXPECT_THAT(tv::Transform::preset("brainscore").describe(), HasSubstr("resize to 224x224 HxW (bilinear, PIL), no crop"));
}

TEST(Transforms, InvalidSettingsAreUsageErrors) {
  tv::Transform t;
  t.crop_width = 0;
  EXPECT_THAT([&] { t.validate(); }, ::testing::ThrowsMessage<tv::Error>(HasSubstr("crop_height and crop_width")));
  t = tv::Transform{};
  t.resize_mode = tv::ResizeMode::fixed;
  EXPECT_THAT([&] { t.validate(); }, ::testing::ThrowsMessage<tv::Error>(HasSubstr("resize_height must be positive")));
  t = tv::Transform{};
  t.std_rgb[1] = 0;
  EXPECT_THAT([&] { t.validate(); }, ::testing::ThrowsMessage<tv::Error>(HasSubstr("std_rgb must be positive")));
}

TEST(TransformFromSidecar, ReadsThePreprocessingObject) {
  tv_test::TempDir dir;
  const auto file = dir / "model.json";
  std::ofstream(file) << R"({"schema_version": 1, "architecture": "clip-vit", "unknown_key": [1, 2],
    "preprocessing": {"preset": "clip", "resize_mode": "fixed", "resize_height": 300, "resize_width": 200,
      "interpolation": "bicubic", "crop_height": 0, "crop_width": 0,
      "mean": [0.5, 0.25, 0.125], "std": [0.2, 0.3, 0.4], "channel_order": "rgb", "scale": "0-1"}})";
  const tv::Transform t = tv::Transform::from_sidecar(file);
  EXPECT_EQ(t.resize_mode, tv::ResizeMode::fixed);
  EXPECT_EQ(t.resize_height, 300);
  EXPECT_EQ(t.resize_width, 200);
  EXPECT_EQ(t.interpolation, tv::Interpolation::bicubic);
  EXPECT_EQ(t.crop_height, 0);
  EXPECT_EQ(t.mean_rgb, (std::array<float, 3>{0.5f, 0.25f, 0.125f}));
  EXPECT_EQ(t.std_rgb, (std::array<float, 3>{0.2f, 0.3f, 0.4f}));
  // Only a preset name: the preset's values.
  std::ofstream(file) << R"({"preprocessing": {"preset": "net2brain"}})";
  EXPECT_TRUE(same(tv::Transform::from_sidecar(file), tv::Transform::preset("net2brain")));
}

TEST(TransformFromSidecar, BadFilesNameTheFileAndKey) {
  tv_test::TempDir dir;
  const auto file = dir / "bad.json";
  const auto expect_error = [&](const std::string& text, const std::string& message) {
    std::ofstream(file) << text;
    try {
      tv::Transform::from_sidecar(file);
      ADD_FAILURE() << "no error for " << text;
    } catch (const tv::Error& e) {
      EXPECT_EQ(e.kind(), tv::ErrorKind::input);
      EXPECT_THAT(e.what(), HasSubstr("'" + file.string() + "'"));
      EXPECT_THAT(e.what(), HasSubstr(message)) << text;
    }
  };
  expect_error("{\"preprocessing\": {", "invalid JSON");
  expect_error("{\"schema_version\": 1}", "no \"preprocessing\" object");
  expect_error(R"({"preprocessing": {"crop_height": "224"}})", "key \"preprocessing.crop_height\" must be a non-negative integer");
  expect_error(R"({"preprocessing": {"mean": [0.5, 0.5]}})", "key \"preprocessing.mean\" must be an array of 3 numbers");
  expect_error(R"({"preprocessing": {"interpolation": "lanczos"}})", "key \"preprocessing.interpolation\"");
  expect_error(R"({"preprocessing": {"resize_mode": "fixed"}})", "resize_height must be positive");
  expect_error(R"({"preprocessing": {"channel_order": "grb"}})", "key \"preprocessing.channel_order\" must be \"rgb\" or \"bgr\"");
  expect_error(R"({"preprocessing": {"scale": "0-127"}})", "key \"preprocessing.scale\" must be \"0-1\", \"0-2\" or \"0-255\"");
  expect_error(R"({"preprocessing": {"interpolation": "area"}})", "\"bilinear\", \"bicubic\" or \"tf_bilinear\"");
  try {
    tv::Transform::from_sidecar(dir / "absent.json");
    ADD_FAILURE() << "no error for a missing sidecar";
  } catch (const tv::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("absent.json"));
  }
}

// ---------------------------------------------------------------------------------------------
// Keras presets (THINGSvision's KerasExtractor: preprocess_input, then Resizing(H, H))
// ---------------------------------------------------------------------------------------------

TEST(KerasPresets, FieldsAreKerasPreprocessInputModes) {
  const tv::Transform caffe = tv::Transform::preset("keras_caffe");
  EXPECT_EQ(caffe.resize_mode, tv::ResizeMode::fixed);
  EXPECT_EQ(caffe.resize_height, 224);
  EXPECT_EQ(caffe.resize_width, 224);
  EXPECT_EQ(caffe.crop_height, 0);
  EXPECT_EQ(caffe.interpolation, tv::Interpolation::tf_bilinear);
  EXPECT_EQ(caffe.channel_order, tv::ChannelOrder::bgr);
  EXPECT_EQ(caffe.value_scale, 255.0f);
  EXPECT_EQ(caffe.mean_rgb, (std::array<float, 3>{123.68f, 116.779f, 103.939f}));
  const tv::Transform tf299 = tv::Transform::preset("keras_tf:299");
  EXPECT_EQ(tf299.resize_height, 299);
  EXPECT_EQ(tf299.resize_width, 299);
  EXPECT_EQ(tf299.value_scale, 2.0f);
  EXPECT_EQ(tv::output_size(tf299, 500, 375), (std::array<int, 2>{299, 299}));
  EXPECT_EQ(tv::Transform::preset("keras_caffe").describe(),
            "to tensor /1, BGR order, normalize mean (123.68, 116.779, 103.939) std (1, 1, 1) (R, G, B), then resize "
            "to 224x224 HxW (bilinear, TF half-pixel, float), no crop");
  EXPECT_EQ(tv::Transform::preset("keras_tf").describe(),
            "to tensor /127.5, normalize mean (1, 1, 1) std (1, 1, 1), then resize to 224x224 HxW (bilinear, TF "
            "half-pixel, float), no crop");
  EXPECT_STREQ(tv::interpolation_name(tv::Interpolation::tf_bilinear), "tf_bilinear");
}

// tf_bilinear has no uint8 image: the uint8 resize functions refuse it instead of using PIL's filter.
TEST(KerasPresets, Uint8ResizeRefusesTfBilinear) {
  tv::Image image;
  image.width = image.height = 4;
  image.pixels.assign(48, 7);
  EXPECT_THAT([&] { tv::resize(image, 2, 2, tv::Interpolation::tf_bilinear); },
              ::testing::ThrowsMessage<tv::Error>(HasSubstr("resize: tf_bilinear resamples float values")));
  EXPECT_THAT([&] { tv::resize_and_crop(tv::Transform::preset("keras_tf"), image); },
              ::testing::ThrowsMessage<tv::Error>(HasSubstr("resize_and_crop: tf_bilinear")));
}

// A hand-computed case: 2 x 1 image upsampled to 4 x 1. Half-pixel centres: source x = (i + 0.5) / 2 - 0.5
// = -0.25, 0.25, 0.75, 1.25 -> clamped 0, lerp 0.25, lerp 0.75, clamped 1.
TEST(KerasPresets, TfBilinearByHand) {
  tv::Image image;
  image.width = 2;
  image.height = 1;
  image.pixels = {0, 10, 20, 100, 110, 120};
  tv::Transform t = tv::Transform::preset("keras_none");
  t.resize_height = 1;
  t.resize_width = 4;
  const tv::TransformedImage out = tv::apply_transform(t, image);
  ASSERT_EQ(out.values.size(), 12u);
  EXPECT_EQ(std::vector<float>(out.values.begin(), out.values.begin() + 4), (std::vector<float>{0, 25, 75, 100}));
  t = tv::Transform::preset("keras_caffe");  // channel 0 is B - 103.939
  t.resize_height = 1;
  t.resize_width = 4;
  const tv::TransformedImage bgr = tv::apply_transform(t, image);
  EXPECT_FLOAT_EQ(bgr.values[0], 20.0f - 103.939f);
  EXPECT_FLOAT_EQ(bgr.values[3], 120.0f - 103.939f);
  EXPECT_FLOAT_EQ(bgr.values[8], 0.0f - 123.68f);  // channel 2 is R
}

// Every Keras preset on real photographs (opencv-doc) and odd-sized crops of them (97 x 131 upsampled,
// 301 x 223, 3 x 1) equals tests/reference/keras_preprocess_reference.py: numpy preprocess_input in
// float32 FIRST, then tf.image.resize's bilinear (Keras Resizing) transcribed in numpy float32 from TF's
// ResizeBilinear kernel: within 1e-4 on the 0-255 scale. Cross-check: torch.nn.functional.interpolate
// (mode="bilinear", align_corners=False, antialias=False) computes the same half-pixel bilinear but with
// the source position in double, so it differs by the float rounding of that position: within 5e-3.
TEST(KerasPresets, EqualNumpyTorchReferenceOnPhotos) {
  tv_test::TempDir dir;
  const auto doc = tv_test::opencv_doc_data();
  const std::string photos = (doc / "baboon.jpg").string() + " " + (doc / "fruits.jpg").string() + " " +
                             (doc / "messi5.jpg").string() + " " + (doc / "chicky_512.png").string();
  tv_test::run_python((tv_test::source_dir() / "tests/reference/keras_preprocess_reference.py").string(),
                      dir.path().string() + " " + photos);
  std::ifstream index_file(dir / "index.json");
  ASSERT_TRUE(index_file) << "the reference script wrote no index.json";
  const auto index = nlohmann::json::parse(index_file);
  std::map<std::string, int> per_preset;
  std::map<std::string, double> worst, worst_torch;  // on the 0-255 scale
  for (const auto& c : index["cases"]) {
    const std::string preset = c["preset"];
    SCOPED_TRACE(c["photo"].get<std::string>() + " " + std::to_string(c["width"].get<int>()) + "x" +
                 std::to_string(c["height"].get<int>()) + " " + preset);
    tv::Image image;
    image.width = c["width"];
    image.height = c["height"];
    const std::string rgb = tv_test::read_file(dir / c["rgb"].get<std::string>());
    ASSERT_EQ(rgb.size(), std::size_t(image.width) * image.height * 3);
    image.pixels.assign(rgb.begin(), rgb.end());
    const int size = c["size"];
    const auto read_f32 = [&](const char* key) {
      const std::string bytes = tv_test::read_file(dir / c[key].get<std::string>());
      std::vector<float> values(std::size_t(3) * size * size);
      EXPECT_EQ(bytes.size(), values.size() * sizeof(float));
      std::memcpy(values.data(), bytes.data(), std::min(bytes.size(), values.size() * sizeof(float)));
      return values;
    };
    const std::vector<float> ref = read_f32("f32"), torch_ref = read_f32("torch_f32");
    const tv::Transform t = tv::Transform::preset(preset);
    const tv::TransformedImage got = tv::apply_transform(t, image);
    ASSERT_EQ(got.height, size);
    ASSERT_EQ(got.width, size);
    // 1e-4 absolute on the 0-255 scale: values on the 0-255 scale (caffe, none) get 1e-4; the others
    // the same tolerance divided by their range (tf: / 127.5, torch: / (255 * 0.225)).
    const double per_255 = t.value_scale == 255.0f ? 1.0 : t.value_scale == 2.0f ? 1.0 / 127.5 : 1.0 / (255 * 0.225);
    EXPECT_TRUE(tv_test::expect_close(ref, got.values, {0.0, 1e-4 * per_255}, preset + " vs TF kernel"));
    EXPECT_TRUE(tv_test::expect_close(torch_ref, got.values, {0.0, 5e-3 * per_255}, preset + " vs torch"));
    double max_diff = 0, max_torch = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
      max_diff = std::max(max_diff, std::fabs(double(ref[i]) - got.values[i]) / per_255);
      max_torch = std::max(max_torch, std::fabs(double(torch_ref[i]) - got.values[i]) / per_255);
    }
    worst[preset] = std::max(worst[preset], max_diff);
    worst_torch[preset] = std::max(worst_torch[preset], max_torch);
    ++per_preset[preset];
  }
  for (const char* preset : {"keras_caffe", "keras_tf", "keras_torch", "keras_none", "keras_tf:299", "keras_caffe:299"}) {
    EXPECT_EQ(per_preset[preset], 16) << preset;
    std::printf("%s: max |C++ - TF kernel| = %.3g, |C++ - torch| = %.3g (0-255 scale)\n", preset, worst[preset],
                worst_torch[preset]);
  }
}

// The same numbers through a sidecar that spells the fields out (no preset name).
TEST(KerasPresets, SidecarFieldsGiveThePreset) {
  tv_test::TempDir dir;
  const auto file = dir / "vgg16.json";
  std::ofstream(file) << R"({"preprocessing": {"resize_mode": "fixed", "resize_height": 224, "resize_width": 224,
      "interpolation": "tf_bilinear", "crop_height": 0, "crop_width": 0, "mean": [123.68, 116.779, 103.939],
      "std": [1, 1, 1], "channel_order": "bgr", "scale": "0-255"}})";
  const tv::Transform t = tv::Transform::from_sidecar(file);
  EXPECT_TRUE(same(t, tv::Transform::preset("keras_caffe")));
  EXPECT_EQ(t.channel_order, tv::ChannelOrder::bgr);
  EXPECT_EQ(t.value_scale, 255.0f);
  EXPECT_EQ(t.describe(), tv::Transform::preset("keras_caffe").describe());
  std::ofstream(file) << R"({"preprocessing": {"preset": "keras_tf:299"}})";
  const tv::Transform inception = tv::Transform::from_sidecar(file);
  EXPECT_EQ(inception.describe(), tv::Transform::preset("keras_tf:299").describe());
  EXPECT_EQ(inception.resize_height, 299);
}
