// onnx_backend_test.cpp — the OpenCV DNN backend against the TorchScript backend and Python forward
// hooks on the same seeded resnet18 exported both ways (fixture: tests/reference/export_onnx_models.py).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>
#include <nlohmann/json.hpp>

#include "model/backends/onnxruntime_backend.hpp"
#include "model_test_names.hpp"
#include "reference_arrays.hpp"
#include "test_support.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/model.hpp"

namespace {

using namespace tv_test::model_names;
using ::testing::Contains;
using ::testing::HasSubstr;

std::filesystem::path onnx_dir() { return tv_test::data_dir() / "onnx"; }

const nlohmann::json& index_json() {
  static const nlohmann::json index = tv_test::read_json(onnx_dir() / "index.json");
  return index;
}

std::vector<float> read_floats(const std::string& file) { return tv_test::read_array<float>(onnx_dir() / file); }

const ImageBatch& input_batch() {
  static const ImageBatch batch =
      tv_test::image_batch(read_floats("input.bin"), index_json().at("input_shape").get<std::vector<std::int64_t>>());
  return batch;
}

Model& cached_model(const std::string& file) {
  static std::map<std::string, Model> models;
  auto found = models.find(file);
  if (found == models.end()) found = models.emplace(file, Model::load(onnx_dir() / file)).first;
  return found->second;
}

using tv_test::catch_error;

const tv_test::Tolerance kRelative{1e-4, 0.0};

TEST(OnnxBackend, ListsOnnxLayersAndTheirModulePaths) {
  const Model& model = cached_model("resnet18.onnx");
  const auto names = model.module_names();
  for (const char* name : {"conv1", "bn1", "maxpool", "layer1", "layer1.0", "layer1.0.conv1",
                           "layer1.0.relu", "layer2.0.downsample.0", "avgpool", "fc",
                           "onnx_node!/conv1/Conv", "onnx_node!/layer1/layer1.0/relu_1/Relu"}) {
    EXPECT_THAT(names, Contains(std::string(name)));
  }
  // relu_1 is the second call of layer1.0.relu, not a module of its own.
  EXPECT_THAT(names, ::testing::Not(Contains(std::string("layer1.0.relu_1"))));
  std::map<std::string, std::string> types;
  for (const auto& info : model.modules()) types[info.name] = info.type;
  EXPECT_EQ(types.at("conv1"), "Convolution");
  EXPECT_EQ(types.at("layer1.0"), "Module");
  EXPECT_THAT(model.module_tree(), HasSubstr("onnx_node!/fc/Gemm"));
}

// Conv, BN, ReLU, pooling and linear layers plus whole blocks, all from one extract() call, against
// the TorchScript backend and the Python forward hooks.
TEST(OnnxBackend, SameModuleOutputsAsTorchScriptInOnePass) {
  std::vector<std::string> modules;
  for (const auto& [name, shape] : index_json().at("modules").items()) {
    (void)shape;
    modules.push_back(name);
  }
  ASSERT_GE(modules.size(), 5u);
  const auto onnx = cached_model("resnet18.onnx").extract(input_batch(), modules);
  const auto torch = cached_model("resnet18.pt").extract(input_batch(), modules);
  ASSERT_EQ(onnx.size(), modules.size());
  ASSERT_EQ(torch.size(), modules.size());
  for (std::size_t i = 0; i < modules.size(); ++i) {
    const auto& m = modules[i];
    EXPECT_EQ(onnx[i].module_name, m);
    EXPECT_EQ(onnx[i].shape, index_json().at("modules").at(m).get<std::vector<std::int64_t>>()) << m;
    EXPECT_EQ(onnx[i].shape, torch[i].shape) << m;
    EXPECT_TRUE(tv_test::expect_close(torch[i].values, onnx[i].values, kRelative, m + " vs torch"));
    EXPECT_TRUE(tv_test::expect_close(read_floats("ref_" + m + ".bin"), onnx[i].values, kRelative,
                                      m + " vs hooks"));
  }
}

TEST(OnnxBackend, LayerNamesAndModulePathsAreInterchangeable) {
  Model& model = cached_model("resnet18.onnx");
  const auto out = model.extract(input_batch(), {"onnx_node!/layer1/layer1.0/relu_1/Relu",
                                                 "layer1.0.relu", "onnx_node!/fc/Gemm"});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].module_name, "onnx_node!/layer1/layer1.0/relu_1/Relu");
  EXPECT_EQ(out[0].values, out[1].values);
  EXPECT_TRUE(tv_test::expect_close(read_floats("ref_fc.bin"), out[2].values, kRelative, "fc"));
}

TEST(OnnxBackend, AllCallsOfASharedRelu) {
  ExtractOptions options;
  options.calls = ModuleCalls::all;
  const auto onnx = cached_model("resnet18.onnx").extract(input_batch(), {"layer1.0.relu"}, options);
  const auto torch = cached_model("resnet18.pt").extract(input_batch(), {"layer1.0.relu"}, options);
  ASSERT_EQ(onnx.size(), 2u);
  ASSERT_EQ(torch.size(), 2u);
  for (std::size_t c = 0; c < 2; ++c) {
    EXPECT_EQ(onnx[c].call_index, static_cast<int>(c));
    EXPECT_EQ(onnx[c].num_calls, 2);
    EXPECT_TRUE(tv_test::expect_close(torch[c].values, onnx[c].values, kRelative, "relu call"));
  }
  EXPECT_NE(onnx[0].values, onnx[1].values);
}

TEST(OnnxBackend, ForwardIsTheLastLinearLayer) {
  const Activations out = cached_model("resnet18.onnx").forward(input_batch());
  EXPECT_EQ(out.shape, index_json().at("output_shape").get<std::vector<std::int64_t>>());
  EXPECT_TRUE(tv_test::expect_close(read_floats("ref_fc.bin"), out.values, kRelative, "output"));
}

TEST(OnnxBackend, UnknownLayerListsClosestNames) {
  Model& model = cached_model("resnet18.onnx");
  const Error e = catch_error([&] { model.extract(input_batch(), {"layer1.0.relu_2"}); });
  EXPECT_EQ(e.kind(), ErrorKind::model);
  EXPECT_THAT(e.what(), HasSubstr("'layer1.0.relu_2' not found in resnet18.onnx"));
  EXPECT_THAT(e.what(), HasSubstr("closest: layer1.0.relu"));
}

TEST(OnnxBackend, BadOnnxFileIsAnErrorNamingIt) {
  const Error e = catch_error([] { Model::load(onnx_dir() / "bad.onnx"); });
  EXPECT_EQ(e.kind(), ErrorKind::model);
  EXPECT_THAT(e.what(), HasSubstr("bad.onnx"));
  EXPECT_THAT(e.what(), HasSubstr("OpenCV DNN"));
  const Error missing = catch_error([] { Model::load(onnx_dir() / "missing.onnx"); });
  EXPECT_THAT(missing.what(), HasSubstr("missing.onnx"));
}

TEST(OnnxBackend, CudaIsAnError) {
  ModelOptions options;
  options.device = thingsvision::Device::cuda();
  const Error e = catch_error([&] { Model::load(onnx_dir() / "resnet18.onnx", options); });
  EXPECT_EQ(e.kind(), ErrorKind::model);
  EXPECT_THAT(e.what(), HasSubstr("resnet18.onnx"));
  EXPECT_THAT(e.what(), HasSubstr("CPU only"));
}

TEST(OnnxBackend, BackendOptionOverridesTheExtension) {
  tv_test::TempDir dir;
  const auto copy = dir.path() / "resnet18.bin";
  std::filesystem::copy_file(onnx_dir() / "resnet18.onnx", copy);
  ModelOptions options;
  options.backend = ModelBackendKind::opencv_dnn;
  Model model = Model::load(copy, options);
  const auto out = model.extract(input_batch(), {"avgpool"});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(tv_test::expect_close(read_floats("ref_avgpool.bin"), out[0].values, kRelative));
  // Forced LibTorch on an ONNX file: the TorchScript loader's error, naming the file.
  options.backend = ModelBackendKind::libtorch;
  const Error e = catch_error([&] { Model::load(onnx_dir() / "resnet18.onnx", options); });
  EXPECT_THAT(e.what(), HasSubstr("resnet18.onnx"));
}

}  // namespace

// ModelBackendKind::onnxruntime: where the build has ONNX Runtime (Debian 13), the same module
// outputs as TorchScript and the hooks, module paths as OpenCV DNN names them; elsewhere an Error
// saying the build has none.
TEST(OnnxRuntimeBackend, AbsentFromTheBuildIsAClearError) {
  if (thingsvision::have_onnxruntime()) GTEST_SKIP() << "this build has ONNX Runtime";
  ModelOptions options;
  options.backend = ModelBackendKind::onnxruntime;
  const Error e = catch_error([&] { Model::load(onnx_dir() / "resnet18.onnx", options); });
  EXPECT_EQ(e.kind(), ErrorKind::model);
  EXPECT_THAT(e.what(), HasSubstr("model '" + (onnx_dir() / "resnet18.onnx").string() +
                                  "': this build of thingsvision has no ONNX Runtime backend"));
}

// A model over 2 GB keeps its weights in a file beside the .onnx (the fixture saves resnet18 that
// way): ONNX Runtime reads them (its sessions are made from bytes, so it is told the folder) and gives
// the same outputs as the one-file model; OpenCV DNN cannot, and says so, naming the file.
TEST(OnnxRuntimeBackend, ReadsWeightsFromExternalDataFiles) {
  const std::filesystem::path file = onnx_dir() / "external" / "resnet18.onnx";
  ASSERT_LT(std::filesystem::file_size(file), 100000u) << "the fixture's weights are not external";
  const Error e = catch_error([&] { Model::load(file); });
  EXPECT_THAT(e.what(), HasSubstr("cannot read model '" + file.string() + "' with OpenCV DNN"));
  EXPECT_THAT(e.what(), HasSubstr("its weights are in external data files"));
  if (!thingsvision::have_onnxruntime()) GTEST_SKIP() << "this build has no ONNX Runtime";
  EXPECT_THAT(e.what(), HasSubstr("--backend onnxruntime"));
  ModelOptions options;
  options.backend = ModelBackendKind::onnxruntime;
  Model external = Model::load(file, options);
  Model one_file = Model::load(onnx_dir() / "resnet18.onnx", options);
  const std::vector<std::string> modules = {"layer1.0.relu", "avgpool", "fc"};
  const auto got = external.extract(input_batch(), modules);
  const auto want = one_file.extract(input_batch(), modules);
  ASSERT_EQ(got.size(), modules.size());
  for (std::size_t i = 0; i < modules.size(); ++i) {
    EXPECT_EQ(got[i].shape, want[i].shape) << modules[i];
    EXPECT_EQ(got[i].values, want[i].values) << modules[i];
  }
  EXPECT_EQ(external.forward(input_batch()).values, one_file.forward(input_batch()).values);
}

TEST(OnnxRuntimeBackend, SameModuleOutputsAsTorchScript) {
  if (!thingsvision::have_onnxruntime()) GTEST_SKIP() << "this build has no ONNX Runtime";
  ModelOptions options;
  options.backend = ModelBackendKind::onnxruntime;
  Model ort = Model::load(onnx_dir() / "resnet18.onnx", options);
  EXPECT_THAT(ort.module_names(), Contains(std::string("onnx_node!/layer1/layer1.0/relu_1/Relu")));
  std::vector<std::string> modules;
  for (const auto& [name, shape] : index_json().at("modules").items()) {
    (void)shape;
    modules.push_back(name);
  }
  const auto got = ort.extract(input_batch(), modules);
  const auto torch = cached_model("resnet18.pt").extract(input_batch(), modules);
  ASSERT_EQ(got.size(), modules.size());
  for (std::size_t i = 0; i < modules.size(); ++i) {
    EXPECT_EQ(got[i].shape, torch[i].shape) << modules[i];
    EXPECT_TRUE(tv_test::expect_close(torch[i].values, got[i].values, kRelative, modules[i] + " vs torch"));
  }
  ExtractOptions all;
  all.calls = ModuleCalls::all;
  const auto calls = ort.extract(input_batch(), {"layer1.0.relu"}, all);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_NE(calls[0].values, calls[1].values);
  const Activations out = ort.forward(input_batch());
  EXPECT_TRUE(tv_test::expect_close(read_floats("ref_fc.bin"), out.values, kRelative, "output"));
}

// --- token outputs whose images are not in dimension 0 (layouts.onnx / layouts.pt) ----------------

namespace {

const nlohmann::json& layouts_json() {
  static const nlohmann::json index = tv_test::read_json(onnx_dir() / "layouts.json");
  return index;
}

// The first `n` images of the layouts fixture's input.
ImageBatch layouts_batch(std::int64_t n) {
  std::vector<std::int64_t> shape = layouts_json().at("input_shape").get<std::vector<std::int64_t>>();
  std::vector<float> pixels = read_floats("layouts_input.bin");
  pixels.resize(pixels.size() / static_cast<std::size_t>(shape[0]) * static_cast<std::size_t>(n));
  shape[0] = n;
  return tv_test::image_batch(std::move(pixels), shape);
}

// The reference's rows of the first `n` images (references are batch-first).
std::vector<float> layouts_reference(const std::string& module, std::int64_t n) {
  std::vector<float> ref = read_floats("layouts_ref_" + module + ".bin");
  const auto images = layouts_json().at("input_shape").at(0).get<std::size_t>();
  ref.resize(ref.size() / images * static_cast<std::size_t>(n));
  return ref;
}

// Sequence-first (L, N, D) and merged (N·L, D) outputs come out batch-first, as the TorchScript
// backend writes them, against the forward hooks rearranged by the fixture; batches of 3, 1 and 2
// (the layout a module showed is kept for the next batch).
void expect_batch_first_layouts(Model& model, const std::string& what) {
  const std::vector<std::string> modules = {"seq_proj", "inner_proj", "fc"};
  for (const std::int64_t n : {3, 1, 2}) {
    const auto got = model.extract(layouts_batch(n), modules);
    ASSERT_EQ(got.size(), modules.size());
    for (std::size_t i = 0; i < modules.size(); ++i) {
      auto shape = layouts_json().at("modules").at(modules[i]).get<std::vector<std::int64_t>>();
      shape[0] = n;
      const std::string label = what + " " + modules[i] + " batch of " + std::to_string(n);
      EXPECT_EQ(got[i].shape, shape) << label;
      EXPECT_TRUE(tv_test::expect_close(layouts_reference(modules[i], n), got[i].values, kRelative, label));
    }
  }
}

// (L·N, D), merged token by token: no layout fits a batch, and the error says so.
void expect_token_major_rows_refused(Model& model) {
  const Error e = catch_error([&] { model.extract(layouts_batch(3), {"mixed_proj"}); });
  EXPECT_EQ(e.kind(), ErrorKind::model);
  EXPECT_THAT(e.what(), HasSubstr("module 'mixed_proj'"));
  EXPECT_THAT(e.what(), HasSubstr("merged into dimension 0 in another order"));
}

}  // namespace

TEST(BatchLayout, TorchScriptMovesTheImagesToDimensionZero) {
  Model model = Model::load(onnx_dir() / "layouts.pt");
  expect_batch_first_layouts(model, "torchscript");
  expect_token_major_rows_refused(model);
}

// OpenCV DNN 4.6 evaluates this graph's shape arithmetic for one image (a batch of 3 gives `fc`
// [1, 4]), and 4.10 may as well: a batch whose outputs fit no layout, or whose first image differs
// from that image alone, runs image by image. Each image's rows of `mixed_proj` are then right.
TEST(BatchLayout, OpenCvDnnMovesTheImagesToDimensionZero) {
  Model model = Model::load(onnx_dir() / "layouts.onnx");
  expect_batch_first_layouts(model, "opencv_dnn");
  const auto mixed = model.extract(layouts_batch(3), {"mixed_proj"});
  EXPECT_EQ(mixed.at(0).shape, layouts_json().at("modules").at("mixed_proj").get<std::vector<std::int64_t>>());
  EXPECT_TRUE(tv_test::expect_close(layouts_reference("mixed_proj", 3), mixed.at(0).values, kRelative, "mixed_proj"));
}

TEST(BatchLayout, OnnxRuntimeMovesTheImagesToDimensionZero) {
  if (!thingsvision::have_onnxruntime()) GTEST_SKIP() << "this build has no ONNX Runtime";
  ModelOptions options;
  options.backend = ModelBackendKind::onnxruntime;
  Model model = Model::load(onnx_dir() / "layouts.onnx", options);
  expect_batch_first_layouts(model, "onnxruntime");
  expect_token_major_rows_refused(model);
}
