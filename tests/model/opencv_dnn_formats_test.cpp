// opencv_dnn_formats_test.cpp — the OpenCV DNN backend's layouts (NHWC input, native NHWC
// outputs) on a small torch model exported to ONNX twice (tests/reference/
// export_onnx_layout_models.py), and TensorFlow .pb / Caffe models built as protobuf messages with
// numpy references (tests/reference/make_tf_caffe_models.py).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "model_test_names.hpp"
#include "reference_arrays.hpp"
#include "rsa_test_support.hpp"
#include "test_support.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/model.hpp"

namespace {

using namespace tv_test::model_names;
using ::testing::HasSubstr;

const tv_test::Tolerance kRelative{1e-4, 0.0};

std::filesystem::path layout_dir() { return tv_test::data_dir() / "onnx_layout"; }

std::vector<float> to_floats(const std::vector<double>& values) {
  return std::vector<float>(values.begin(), values.end());
}

// An NCHW float32 .npy as an image batch.
ImageBatch read_batch(const std::filesystem::path& file) {
  const tv_test::NpyArray a = tv_test::read_npy(file);
  return tv_test::image_batch(to_floats(a.values), a.shape);
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

using tv_test::catch_error;

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
          "': input_layout nhwc applies to the OpenCV DNN backend only (.onnx, .pb, Caffe); "
          "TorchScript and ONNX Runtime models take and return NCHW tensors");
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

std::filesystem::path tf_caffe_dir() { return tv_test::data_dir() / "tf_caffe"; }

ImageBatch tf_caffe_batch() { return read_batch(tf_caffe_dir() / "input.npy"); }

tv_test::NpyArray tf_caffe_ref(const std::string& file) {
  return tv_test::read_npy(tf_caffe_dir() / file);
}

std::vector<std::string> names_of(const Model& model) { return model.module_names(); }

// TensorFlow layer names are node names; OpenCV's importer merges a BiasAdd into the Conv2D /
// MatMul before it (the layer keeps the Conv2D's name) and adds a Permute "<reshape>/nhwc".
TEST(OpenCvDnnTensorFlow, ListsNodeNames) {
  const Model model = Model::load(tf_caffe_dir() / "tiny.pb");
  const std::vector<std::string> expected = {"conv1", "relu1",        "pool1",   "conv2", "relu2",
                                             "conv3", "flatten/nhwc", "flatten", "fc",    "fc_relu"};
  EXPECT_EQ(names_of(model), expected);
  std::map<std::string, std::string> types;
  for (const auto& info : model.modules()) types[info.name] = info.type;
  EXPECT_EQ(types.at("conv1"), "Convolution");
  EXPECT_EQ(types.at("pool1"), "Pooling");
  EXPECT_EQ(types.at("fc"), "InnerProduct");
  const Error e = catch_error([&] {
    Model m = Model::load(tf_caffe_dir() / "tiny.pb");
    m.extract(tf_caffe_batch(), {"conv1/bias"});
  });
  EXPECT_EQ(e.kind(), ErrorKind::model);
  EXPECT_THAT(e.what(), HasSubstr("'conv1/bias' not found in tiny.pb"));
}

// (layer, numpy reference file, NHWC shape) for every layer of tiny.pb.
struct TfLayer {
  std::string name;
  std::string ref;
  std::vector<std::int64_t> shape;
};

// The names of `layers` (TfLayer or CaffeLayer), in order.
template <typename Layer>
std::vector<std::string> layer_names(const std::vector<Layer>& layers) {
  std::vector<std::string> names;
  for (const auto& layer : layers) names.push_back(layer.name);
  return names;
}

const std::vector<TfLayer> kTfLayers = {
    {"conv1", "tf_conv1_bias.npy", {2, 11, 13, 6}}, {"relu1", "tf_relu1.npy", {2, 11, 13, 6}},
    {"pool1", "tf_pool1.npy", {2, 6, 7, 6}},        {"conv2", "tf_conv2_bias.npy", {2, 5, 6, 5}},
    {"relu2", "tf_relu2.npy", {2, 5, 6, 5}},        {"conv3", "tf_conv3.npy", {2, 5, 6, 4}},
    {"flatten", "tf_flatten.npy", {2, 120}},
    {"fc", "tf_fc_bias.npy", {2, 4}},               {"fc_relu", "tf_fc_relu.npy", {2, 4}},
};

// Every layer in one pass equals numpy's TensorFlow semantics (NHWC, SAME padding, asymmetric for
// conv3, flattening in NHWC order), 4-D outputs in their native NHWC layout by default.
TEST(OpenCvDnnTensorFlow, EveryLayerMatchesNumpyInOnePassNhwc) {
  Model model = Model::load(tf_caffe_dir() / "tiny.pb");
  const auto out = model.extract(tf_caffe_batch(), layer_names(kTfLayers));
  ASSERT_EQ(out.size(), kTfLayers.size());
  for (std::size_t i = 0; i < kTfLayers.size(); ++i) {
    const auto& layer = kTfLayers[i];
    const tv_test::NpyArray ref = tf_caffe_ref(layer.ref);
    EXPECT_EQ(out[i].module_name, layer.name);
    EXPECT_EQ(ref.shape, layer.shape) << layer.name;
    EXPECT_EQ(out[i].shape, layer.shape) << layer.name;
    EXPECT_TRUE(tv_test::expect_close(ref.values, out[i].values, kRelative, layer.name));
  }
  // The importer's Permute before the Reshape: already NHWC, returned as such.
  const auto permute = model.extract(tf_caffe_batch(), {"flatten/nhwc"});
  EXPECT_EQ(permute.at(0).shape, (std::vector<std::int64_t>{2, 5, 6, 4}));
  EXPECT_TRUE(tv_test::expect_close(tf_caffe_ref("tf_conv3.npy").values, permute.at(0).values,
                                    kRelative, "flatten/nhwc"));
  const Activations last = model.forward(tf_caffe_batch());
  EXPECT_EQ(last.shape, (std::vector<std::int64_t>{2, 4}));
  EXPECT_TRUE(tv_test::expect_close(tf_caffe_ref("tf_fc_relu.npy").values, last.values, kRelative,
                                    "forward"));
}

// OutputLayout::nchw (or native_layout nchw) returns 4-D outputs as OpenCV computes them: numpy's
// transpose(0, 3, 1, 2) of the TensorFlow result; 2-D outputs are the same either way.
TEST(OpenCvDnnTensorFlow, NchwLayoutOnRequest) {
  Model model = Model::load(tf_caffe_dir() / "tiny.pb");
  ExtractOptions nchw;
  nchw.layout = OutputLayout::nchw;
  const auto out = model.extract(tf_caffe_batch(), {"conv2", "fc"}, nchw);
  const tv_test::NpyArray conv2 = tf_caffe_ref("tf_conv2_bias.npy");  // N × H × W × C
  std::vector<double> transposed;
  for (std::int64_t n = 0; n < 2; ++n) {
    for (std::int64_t c = 0; c < 5; ++c) {
      for (std::int64_t h = 0; h < 5; ++h) {
        for (std::int64_t w = 0; w < 6; ++w) {
          const auto at = static_cast<std::size_t>(((n * 5 + h) * 6 + w) * 5 + c);
          transposed.push_back(conv2.values[at]);
        }
      }
    }
  }
  EXPECT_EQ(out.at(0).shape, (std::vector<std::int64_t>{2, 5, 5, 6}));
  EXPECT_TRUE(tv_test::expect_close(transposed, out.at(0).values, kRelative, "conv2 nchw"));
  EXPECT_TRUE(tv_test::expect_close(tf_caffe_ref("tf_fc_bias.npy").values, out.at(1).values,
                                    kRelative, "fc"));
  ModelOptions native_nchw;
  native_nchw.native_layout = TensorLayout::nchw;
  Model plain = Model::load(tf_caffe_dir() / "tiny.pb", native_nchw);
  EXPECT_EQ(plain.extract(tf_caffe_batch(), {"conv2"}).at(0).values, out.at(0).values);
}

struct CaffeLayer {
  std::string name;
  std::vector<std::int64_t> shape;
};
const std::vector<CaffeLayer> kCaffeLayers = {
    {"conv1", {2, 4, 6, 7}}, {"relu1", {2, 4, 6, 7}}, {"pool1", {2, 4, 3, 3}},
    {"fc1", {2, 6}},         {"relu2", {2, 6}},
};

// Caffe layer names; every layer in one pass equals numpy (NCHW, ceil-mode pooling: 3 rows where
// floor mode gives 2); the convolution before its in-place ReLU keeps its own output.
TEST(OpenCvDnnCaffe, EveryLayerMatchesNumpyInOnePass) {
  Model model = Model::load(tf_caffe_dir() / "caffe_tiny.prototxt");
  EXPECT_EQ(names_of(model),
            (std::vector<std::string>{"conv1", "relu1", "pool1", "fc1", "relu2"}));
  const auto out = model.extract(tf_caffe_batch(), layer_names(kCaffeLayers));
  ASSERT_EQ(out.size(), kCaffeLayers.size());
  for (std::size_t i = 0; i < kCaffeLayers.size(); ++i) {
    const auto& layer = kCaffeLayers[i];
    const tv_test::NpyArray ref = tf_caffe_ref("caffe_" + layer.name + ".npy");
    EXPECT_EQ(ref.shape, layer.shape) << layer.name;
    EXPECT_EQ(out[i].shape, layer.shape) << layer.name;
    EXPECT_TRUE(tv_test::expect_close(ref.values, out[i].values, kRelative, layer.name));
  }
  EXPECT_NE(out[0].values, out[1].values);  // conv1 has negative values; relu1 has none
}

// The weights file is found from either file; a lone prototxt (or caffemodel) beside one file of
// the other kind is paired with it; several candidates or none are an error naming the file.
TEST(OpenCvDnnCaffe, FindsThePartnerFile) {
  const auto ref = tf_caffe_ref("caffe_fc1.npy");
  const auto fc1 = [](const std::filesystem::path& file) {
    Model model = Model::load(file);
    return model.extract(tf_caffe_batch(), {"fc1"}).at(0).values;
  };
  EXPECT_TRUE(tv_test::expect_close(ref.values, fc1(tf_caffe_dir() / "caffe_tiny.caffemodel"),
                                    kRelative, "from .caffemodel"));
  tv_test::TempDir dir;
  const auto weights = tf_caffe_dir() / "caffe_tiny.caffemodel";
  const auto deploy = dir.path() / "deploy.prototxt";
  std::filesystem::copy_file(tf_caffe_dir() / "caffe_tiny.prototxt", deploy);
  std::filesystem::copy_file(weights, dir.path() / "weights.caffemodel");
  for (const char* file : {"deploy.prototxt", "weights.caffemodel"}) {
    EXPECT_TRUE(tv_test::expect_close(ref.values, fc1(dir.path() / file), kRelative, file));
  }
  std::filesystem::copy_file(weights, dir.path() / "other.caffemodel");
  tv_test::expect_error([&] { Model::load(dir.path() / "deploy.prototxt"); }, ErrorKind::model,
                        "Caffe model '" + (dir.path() / "deploy.prototxt").string() +
                            "': no .caffemodel file 'deploy.caffemodel' beside it, and 2 other "
                            ".caffemodel files there (other.caffemodel, weights.caffemodel): give "
                            "the one to use the same stem");
  std::filesystem::remove(dir.path() / "deploy.prototxt");
  tv_test::expect_error([&] { Model::load(dir.path() / "weights.caffemodel"); }, ErrorKind::model,
                        "Caffe model '" + (dir.path() / "weights.caffemodel").string() +
                            "': no .prototxt file 'weights.prototxt' beside it nor any other "
                            ".prototxt file in that folder");
}

// Damaged or missing files: Error(model) naming the file, no crash.
TEST(OpenCvDnnFormats, DamagedOrMissingFilesAreErrorsNamingThem) {
  const auto expect_model_error = [](const std::filesystem::path& file,
                                     const std::string& named) {
    const Error e = catch_error([&] { Model::load(file); });
    EXPECT_EQ(e.kind(), ErrorKind::model) << e.what();
    EXPECT_THAT(e.what(), HasSubstr(named));
  };
  expect_model_error(tf_caffe_dir() / "bad.pb", "cannot read model '" +
                                                    (tf_caffe_dir() / "bad.pb").string() +
                                                    "' with OpenCV DNN");
  expect_model_error(tf_caffe_dir() / "bad.prototxt",
                     "cannot read Caffe model '" + (tf_caffe_dir() / "bad.prototxt").string() +
                         "' (weights '" + (tf_caffe_dir() / "bad.caffemodel").string() +
                         "') with OpenCV DNN");
  expect_model_error(tf_caffe_dir() / "badweights.caffemodel",
                     "(weights '" + (tf_caffe_dir() / "badweights.caffemodel").string() + "')");
  expect_model_error(tf_caffe_dir() / "badweights.prototxt", "badweights.caffemodel");
  expect_model_error(tf_caffe_dir() / "missing.pb",
                     "model file '" + (tf_caffe_dir() / "missing.pb").string() + "' not found");
  expect_model_error(tf_caffe_dir() / "missing.caffemodel", "missing.caffemodel' not found");
}

}  // namespace
