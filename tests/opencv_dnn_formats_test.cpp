// opencv_dnn_formats_test.cpp — the OpenCV DNN backend's layouts (NHWC input, native NHWC outputs)
// on a small torch model exported to ONNX twice (tests/reference/export_onnx_layout_models.py), and
// TensorFlow .pb / Caffe models built as protobuf messages with numpy references
// (tests/reference/make_tf_caffe_models.py).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "rsa_test_support.hpp"
#include "test_support.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/model.hpp"

namespace {

using thingsvision::Activations;
using thingsvision::Error;
using thingsvision::ErrorKind;
using thingsvision::ExtractOptions;
using thingsvision::ImageBatch;
using thingsvision::Model;
using thingsvision::ModelOptions;
using thingsvision::OutputLayout;
using thingsvision::TensorLayout;
using ::testing::HasSubstr;

const tv_test::Tolerance kRelative{1e-4, 0.0};

std::filesystem::path layout_dir() { return tv_test::data_dir() / "onnx_layout"; }

std::vector<float> to_floats(const std::vector<double>& values) {
  return std::vector<float>(values.begin(), values.end());
}

// An NCHW float32 .npy as an image batch.
ImageBatch read_batch(const std::filesystem::path& file) {
  const tv_test::NpyArray a = tv_test::read_npy(file);
  ImageBatch b;
  b.num_images = a.shape.at(0);
  b.channels = a.shape.at(1);
  b.height = a.shape.at(2);
  b.width = a.shape.at(3);
  b.pixels = to_floats(a.values);
  for (std::int64_t i = 0; i < b.num_images; ++i) b.indices.push_back(static_cast<std::size_t>(i));
  return b;
}

// numpy's a.transpose(0, 2, 3, 1) of an N × C × H × W array, written out here as the reference.
std::vector<double> nchw_to_nhwc(const tv_test::NpyArray& a) {
  const auto n = a.shape.at(0), c = a.shape.at(1), h = a.shape.at(2), w = a.shape.at(3);
  std::vector<double> out;
  out.reserve(a.values.size());
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t y = 0; y < h; ++y) {
      for (std::int64_t x = 0; x < w; ++x) {
        for (std::int64_t ch = 0; ch < c; ++ch) {
          out.push_back(a.values[static_cast<std::size_t>(((i * c + ch) * h + y) * w + x)]);
        }
      }
    }
  }
  return out;
}

template <typename F>
Error catch_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no thingsvision::Error thrown";
  return Error(ErrorKind::internal, "none");
}

const std::vector<std::string> kLayoutModules = {"conv1", "relu", "conv2", "pool", "fc"};

// The NHWC-input export with input_layout nhwc gives the NCHW export's module outputs (and the
// forward hooks'), in one pass.
TEST(OpenCvDnnLayout, NhwcInputGivesTheSameModuleOutputs) {
  const ImageBatch batch = read_batch(layout_dir() / "input.npy");
  ModelOptions nhwc_options;
  nhwc_options.input_layout = TensorLayout::nhwc;
  Model nchw = Model::load(layout_dir() / "small_nchw.onnx");
  Model nhwc = Model::load(layout_dir() / "small_nhwc.onnx", nhwc_options);
  const auto a = nchw.extract(batch, kLayoutModules);
  const auto b = nhwc.extract(batch, kLayoutModules);
  ASSERT_EQ(a.size(), kLayoutModules.size());
  ASSERT_EQ(b.size(), kLayoutModules.size());
  for (std::size_t i = 0; i < kLayoutModules.size(); ++i) {
    const auto& m = kLayoutModules[i];
    const tv_test::NpyArray ref = tv_test::read_npy(layout_dir() / ("ref_" + m + ".npy"));
    EXPECT_EQ(b[i].module_name, m);
    EXPECT_EQ(a[i].shape, ref.shape) << m;
    EXPECT_EQ(b[i].shape, ref.shape) << m;
    EXPECT_TRUE(tv_test::expect_close(ref.values, a[i].values, kRelative, m + " nchw export"));
    EXPECT_TRUE(tv_test::expect_close(ref.values, b[i].values, kRelative, m + " nhwc export"));
  }
  const Activations out = nhwc.forward(batch);
  EXPECT_TRUE(tv_test::expect_close(tv_test::read_npy(layout_dir() / "ref_fc.npy").values,
                                    out.values, kRelative, "forward"));
  // Without input_layout the NHWC export gets an NCHW blob: its convolution cannot run.
  Model plain = Model::load(layout_dir() / "small_nhwc.onnx");
  const Error e = catch_error([&] { plain.extract(batch, {"conv1"}); });
  EXPECT_EQ(e.kind(), ErrorKind::model);
  EXPECT_THAT(e.what(), HasSubstr("small_nhwc.onnx"));
}

// native_layout nhwc permutes 4-D outputs exactly (numpy's transpose(0, 2, 3, 1) of the NCHW
// result); 2-D outputs stay; OutputLayout::nchw returns what OpenCV computes.
TEST(OpenCvDnnLayout, NativeNhwcPermutesFourDimensionalOutputs) {
  const ImageBatch batch = read_batch(layout_dir() / "input.npy");
  ModelOptions options;
  options.native_layout = TensorLayout::nhwc;
  Model model = Model::load(layout_dir() / "small_nchw.onnx", options);
  const auto native = model.extract(batch, {"conv2", "fc"});
  ASSERT_EQ(native.size(), 2u);
  const tv_test::NpyArray conv2 = tv_test::read_npy(layout_dir() / "ref_conv2.npy");
  EXPECT_EQ(native[0].shape, (std::vector<std::int64_t>{2, 5, 6, 6}));
  EXPECT_TRUE(tv_test::expect_close(nchw_to_nhwc(conv2), native[0].values, kRelative, "conv2"));
  EXPECT_EQ(native[1].shape, (std::vector<std::int64_t>{2, 5}));
  // Exactly the NCHW values, permuted.
  ExtractOptions nchw_layout;
  nchw_layout.layout = OutputLayout::nchw;
  const auto nchw = model.extract(batch, {"conv2"}, nchw_layout);
  EXPECT_EQ(nchw.at(0).shape, conv2.shape);
  tv_test::NpyArray computed{nchw.at(0).shape, {}, true};
  computed.values.assign(nchw.at(0).values.begin(), nchw.at(0).values.end());
  EXPECT_EQ(to_floats(nchw_to_nhwc(computed)), native[0].values);
  // The default (automatic) for ONNX is nchw.
  Model plain = Model::load(layout_dir() / "small_nchw.onnx");
  EXPECT_EQ(plain.extract(batch, {"conv2"}).at(0).values, nchw.at(0).values);
}

TEST(OpenCvDnnLayout, TorchScriptRejectsNhwcLayouts) {
  ModelOptions input;
  input.input_layout = TensorLayout::nhwc;
  tv_test::expect_error(
      [&] { Model::load(layout_dir() / "small.pt", input); }, ErrorKind::usage,
      "model '" + (layout_dir() / "small.pt").string() +
          "': input_layout nhwc applies to OpenCV DNN models only (.onnx, .pb, Caffe); a "
          "TorchScript model takes and returns NCHW tensors");
  ModelOptions native;
  native.native_layout = TensorLayout::nhwc;
  const Error e = catch_error([&] { Model::load(layout_dir() / "small.pt", native); });
  EXPECT_EQ(e.kind(), ErrorKind::usage);
  EXPECT_THAT(e.what(), HasSubstr("native_layout nhwc"));
  ModelOptions explicit_nchw;
  explicit_nchw.input_layout = TensorLayout::nchw;
  explicit_nchw.native_layout = TensorLayout::nchw;
  Model model = Model::load(layout_dir() / "small.pt", explicit_nchw);
  const auto out = model.extract(read_batch(layout_dir() / "input.npy"), {"conv2"});
  EXPECT_TRUE(tv_test::expect_close(tv_test::read_npy(layout_dir() / "ref_conv2.npy").values,
                                    out.at(0).values, kRelative, "torchscript conv2"));
}

}  // namespace
