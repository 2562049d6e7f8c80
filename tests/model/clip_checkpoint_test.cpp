// clip_checkpoint_test.cpp — archives traced on CUDA in float16 (OpenAI's CLIP RN50.pt /
// ViT-B-32.pt) load and run on the CPU in float32. Stand-ins and float32 references (eager, same
// half-rounded weights) from tests/reference/make_fp16_clip_standin.py.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/script.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "model/torch/torchscript_patch.hpp"
#include "test_support.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/model.hpp"

namespace {

using thingsvision::Error;
using thingsvision::ImageBatch;
using thingsvision::Model;
using thingsvision::ModelOptions;
using thingsvision::TracedDevicePatch;

std::filesystem::path standin_dir() { return tv_test::data_dir() / "clip_fp16"; }
std::string fp16_file() { return (standin_dir() / "clip_fp16.pt").string(); }
std::string fp32_file() { return (standin_dir() / "clip_fp32.pt").string(); }

const nlohmann::json& index_json() {
  static const nlohmann::json index =
      nlohmann::json::parse(tv_test::read_file(standin_dir() / "index.json"));
  return index;
}

template <typename T>
std::vector<T> read_values(const std::string& file) {
  const std::string bytes = tv_test::read_file(standin_dir() / file);
  std::vector<T> values(bytes.size() / sizeof(T));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(T));
  return values;
}

std::vector<float> reference(const std::string& name) { return read_values<float>("ref_" + name + ".f32"); }

ImageBatch image_batch() {
  const auto shape = index_json().at("image").get<std::vector<std::int64_t>>();
  ImageBatch batch;
  batch.num_images = shape.at(0);
  batch.channels = shape.at(1);
  batch.height = shape.at(2);
  batch.width = shape.at(3);
  batch.pixels = read_values<float>("image.f32");
  for (std::int64_t i = 0; i < batch.num_images; ++i) batch.indices.push_back(static_cast<std::size_t>(i));
  return batch;
}

at::Tensor image_tensor() {
  const auto shape = index_json().at("image").get<std::vector<std::int64_t>>();
  return torch::from_blob(read_values<float>("image.f32").data(), shape, at::kFloat).clone();
}

at::Tensor text_tensor() {
  const auto shape = index_json().at("text").get<std::vector<std::int64_t>>();
  return torch::from_blob(read_values<std::int64_t>("text.i64").data(), shape, at::kLong).clone();
}

std::vector<float> values_of(const c10::IValue& output) {
  const at::Tensor t = output.toTensor().to(at::kFloat).contiguous();
  return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
}

TEST(ClipCheckpoint, StandinHoldsCudaConstantsAndHalfCastsAndWeights) {
  const auto report = thingsvision::inspect_traced_device(torch::jit::load(fp16_file(), at::kCPU));
  EXPECT_GT(report.cuda_device_constants, 0);
  EXPECT_GT(report.half_dtype_arguments, 0);
  EXPECT_EQ(report.half_tensors, 12);  // every parameter but the 3 LayerNorms' weights and biases
  EXPECT_FALSE(thingsvision::inspect_traced_device(torch::jit::load(fp32_file(), at::kCPU)).any());
}

TEST(ClipCheckpoint, UnpatchedStandinFailsOnCpu) {
  ModelOptions options;
  options.entry_method = "encode_image";
  options.traced_device_patch = TracedDevicePatch::off;
  Model model = Model::load(fp16_file(), options);
  EXPECT_THROW(model.forward(image_batch()), Error);
}

TEST(ClipCheckpoint, EncodeImageEqualsFloat32Reference) {
  ModelOptions options;
  options.entry_method = "encode_image";
  Model model = Model::load(fp16_file(), options);
  const auto out = model.forward(image_batch());
  EXPECT_EQ(out.shape, index_json().at("refs").at("encode_image").get<std::vector<std::int64_t>>());
  EXPECT_TRUE(tv_test::expect_close(reference("encode_image"), out.values, {}, "encode_image"));
}

TEST(ClipCheckpoint, ExtractedModuleEqualsFloat32Reference) {
  ModelOptions options;
  options.entry_method = "encode_image";
  Model model = Model::load(fp16_file(), options);
  const auto out = model.extract(image_batch(), {"visual.trunk"});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(tv_test::expect_close(reference("visual.trunk"), out[0].values, {}, "visual.trunk"));
}

TEST(ClipCheckpoint, Float32ArchiveUnchangedByAutomaticPatch) {
  ModelOptions options;
  options.entry_method = "encode_image";
  Model model = Model::load(fp32_file(), options);
  EXPECT_TRUE(tv_test::expect_close(reference("encode_image"), model.forward(image_batch()).values,
                                    {}, "fp32 encode_image"));
}

TEST(ClipCheckpoint, PatchCoversEncodeTextAndForwardAndLeavesNothingBehind) {
  torch::jit::Module module = torch::jit::load(fp16_file(), at::kCPU);
  module.eval();
  const auto report = thingsvision::patch_traced_device(module, at::kCPU, /*to_float32=*/true);
  EXPECT_TRUE(report.any());
  const auto after = thingsvision::inspect_traced_device(module);
  EXPECT_EQ(after.cuda_device_constants, 0);
  EXPECT_EQ(after.half_dtype_arguments, 0);
  EXPECT_EQ(after.half_tensors, 0);
  c10::InferenceMode inference;
  EXPECT_TRUE(tv_test::expect_close(reference("encode_text"),
                                    values_of(module.get_method("encode_text")({text_tensor()})),
                                    {}, "encode_text"));
  EXPECT_TRUE(tv_test::expect_close(reference("forward"),
                                    values_of(module.forward({image_tensor(), text_tensor()})), {},
                                    "forward"));
}

// A constant node may feed several uses: only the dtype use may change (a new constant).
TEST(ClipCheckpoint, SharedHalfConstantKeepsItsOtherUses) {
  torch::jit::Module module("m");
  module.define(R"(
def forward(self, x):
    a = 5
    return x.to(a), a
)");
  thingsvision::patch_traced_device(module, at::kCPU, /*to_float32=*/true);
  const auto out = module.forward({torch::ones({2})}).toTuple();
  EXPECT_EQ(out->elements().at(0).toTensor().scalar_type(), at::kFloat);
  EXPECT_EQ(out->elements().at(1).toInt(), 5);
}

TEST(ClipCheckpoint, CudaDeviceConstantsRetargetedOnCpu) {
  const auto make = [] {
    torch::jit::Module module("m");
    module.define(R"(
def forward(self, x):
    return torch.zeros([2], dtype=5, device=torch.device("cuda:1")) + x
)");
    return module;
  };
  EXPECT_THROW(make().forward({torch::ones({2})}), std::exception);
  torch::jit::Module module = make();
  const auto report = thingsvision::patch_traced_device(module, at::kCPU, /*to_float32=*/true);
  EXPECT_EQ(report.cuda_device_constants, 1);
  EXPECT_EQ(report.half_dtype_arguments, 1);
  const at::Tensor out = module.forward({torch::ones({2})}).toTensor();
  EXPECT_EQ(out.scalar_type(), at::kFloat);
  EXPECT_TRUE(out.device().is_cpu());
}

// Without an entry method (no sidecar), an archive shaped like OpenAI's (encode_image, encode_text,
// forward(image, text)) runs encode_image; its input_resolution comes from the positional
// embedding (4 patch tokens + class token, patch 8: 2 x 8 = 16 px, the fixture's image size).
TEST(ClipCheckpoint, SidecarlessArchiveRunsEncodeImage) {
  for (const auto& file : {fp16_file(), fp32_file()}) {
    Model model = Model::load(file);
    EXPECT_TRUE(model.traits().clip_archive) << file;
    EXPECT_EQ(model.traits().entry_method, "encode_image") << file;
    EXPECT_EQ(model.traits().input_resolution, 16) << file;
    EXPECT_TRUE(tv_test::expect_close(reference("encode_image"), model.forward(image_batch()).values, {},
                                      "encode_image of " + file));
  }
}

TEST(ClipCheckpoint, ExplicitForwardOfClipArchiveNamesEncodeImage) {
  ModelOptions options;
  options.entry_method = "forward";
  EXPECT_THAT([&] { Model::load(fp16_file(), options); },
              testing::ThrowsMessage<Error>(testing::AllOf(testing::HasSubstr("'text'"),
                                                           testing::HasSubstr("encode_image"))));
}

}  // namespace
