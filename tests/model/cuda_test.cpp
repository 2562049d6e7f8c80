// cuda_test.cpp — Model on CUDA (issue #16): resnet18, vit_b_16 and CORnet-RT (every call) on
// "cuda" and "cuda:0" equal to the CPU, through extract() and the asynchronous pipeline
// (extract_async: pinned staging, copy stream, two device buffers), the OpenAI-style float16 CLIP
// stand-in kept in float16 on the GPU against the eager model in float16, and cuda:N beyond the GPU
// count. Models from tests/reference/export_cuda_models.py. Without a GPU every test skips (ctest
// SKIP) and says why; a GPU that LibTorch sees but the fixture's Python did not is a failure.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <future>
#include <nlohmann/json.hpp>

#include "test_support.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/model.hpp"

namespace {

using thingsvision::Activations;
using thingsvision::Device;
using thingsvision::Error;
using thingsvision::ExtractOptions;
using thingsvision::ImageBatch;
using thingsvision::Model;
using thingsvision::ModelOptions;
using ::testing::HasSubstr;

// cuDNN runs float32 convolutions in TF32 by default (in LibTorch as in PyTorch, so also for
// THINGSvision on a GPU): CUDA outputs agree with the CPU's to about 1e-3 of their largest value.
constexpr double kCudaVsCpu = 5e-3;
// The float16 stand-in: the same float16 kernels as the eager model; one float16 rounding step.
constexpr double kHalfVsEagerHalf = 2e-3;

std::filesystem::path cuda_dir() { return tv_test::data_dir() / "cuda"; }

const nlohmann::json& index_json() {
  static const nlohmann::json index = nlohmann::json::parse(tv_test::read_file(cuda_dir() / "index.json"));
  return index;
}

// Skips the test without a GPU; fails it if LibTorch sees one but the fixture exported nothing.
#define REQUIRE_CUDA()                                                                             \
  do {                                                                                             \
    if (!thingsvision::cuda_available()) {                                                         \
      GTEST_SKIP() << "no CUDA GPU visible to this LibTorch (a CPU-only build, or no GPU); "       \
                   << "fixture: " << index_json().value("reason", std::string("?"));               \
    }                                                                                              \
    ASSERT_TRUE(index_json().at("cuda").get<bool>())                                               \
        << "LibTorch sees a GPU but the fixture's Python did not: " << index_json().at("reason");   \
  } while (false)

std::vector<float> read_floats(const std::filesystem::path& file) {
  const std::string bytes = tv_test::read_file(file);
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

// Images [first, first + count) of input.f32 as a batch.
ImageBatch input_batch(std::int64_t first, std::int64_t count) {
  const auto shape = index_json().at("input").get<std::vector<std::int64_t>>();
  const std::vector<float> all = read_floats(cuda_dir() / "input.f32");
  ImageBatch batch;
  batch.num_images = count;
  batch.channels = shape.at(1);
  batch.height = shape.at(2);
  batch.width = shape.at(3);
  const auto begin = all.begin() + static_cast<std::ptrdiff_t>(first * static_cast<std::int64_t>(batch.image_size()));
  batch.pixels.assign(begin, begin + static_cast<std::ptrdiff_t>(count * static_cast<std::int64_t>(batch.image_size())));
  for (std::int64_t i = 0; i < count; ++i) batch.indices.push_back(static_cast<std::size_t>(first + i));
  return batch;
}

Model load(const std::string& file, const std::string& device) {
  ModelOptions options;
  options.device = Device::parse(device);
  options.num_threads = 4;
  return Model::load(cuda_dir() / file, options);
}

void expect_same(const std::vector<Activations>& cpu, const std::vector<Activations>& cuda,
                 const std::string& label) {
  ASSERT_EQ(cpu.size(), cuda.size()) << label;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    EXPECT_EQ(cpu[i].module_name, cuda[i].module_name) << label;
    EXPECT_EQ(cpu[i].call_index, cuda[i].call_index) << label;
    EXPECT_EQ(cpu[i].shape, cuda[i].shape) << label << " " << cpu[i].module_name;
    EXPECT_TRUE(tv_test::expect_close(cpu[i].values, cuda[i].values, {kCudaVsCpu, 0.0},
                                      label + " " + cpu[i].module_name + " call " +
                                          std::to_string(cpu[i].call_index)));
  }
}

TEST(Cuda, ModelsOnCudaEqualTheCpu) {
  REQUIRE_CUDA();
  const ImageBatch batch = input_batch(0, 2);
  for (const auto& [name, entry] : index_json().at("models").items()) {
    const auto modules = entry.at("modules").get<std::vector<std::string>>();
    ExtractOptions options;
    if (entry.at("all_calls").get<bool>()) options.calls = thingsvision::ModuleCalls::all;
    Model cpu_model = load(entry.at("file"), "cpu");
    const std::vector<Activations> cpu = cpu_model.extract(batch, modules, options);
    if (options.calls == thingsvision::ModuleCalls::all) {
      EXPECT_GT(cpu.size(), modules.size()) << name;
    }
    for (const std::string device : {"cuda", "cuda:0"}) {
      Model model = load(entry.at("file"), device);
      EXPECT_TRUE(model.device().is_cuda());
      expect_same(cpu, model.extract(batch, modules, options), name + " extract on " + device);
      expect_same(cpu, model.extract_async(batch, modules, options).get(), name + " extract_async on " + device);
    }
  }
}

TEST(Cuda, PipelinedBatchesStayApart) {
  REQUIRE_CUDA();
  // Three batches in flight before the first is collected: the two device buffers alternate, the
  // last batch (one image) needs a buffer of another size; each result must be its own batch's.
  Model cpu_model = load("resnet18.pt", "cpu");
  Model model = load("resnet18.pt", "cuda");
  const std::vector<ImageBatch> batches{input_batch(0, 2), input_batch(1, 2), input_batch(2, 1)};
  std::vector<std::future<std::vector<Activations>>> pending;
  for (const auto& batch : batches) pending.push_back(model.extract_async(batch, {"layer3", "avgpool"}));
  for (std::size_t i = 0; i < batches.size(); ++i) {
    expect_same(cpu_model.extract(batches[i], {"layer3", "avgpool"}), pending[i].get(),
                "resnet18 batch " + std::to_string(i));
  }
}

TEST(Cuda, Float16ClipStandinStaysHalfOnTheGpu) {
  REQUIRE_CUDA();
  const auto& clip = index_json().at("clip");
  const nlohmann::json clip_index = nlohmann::json::parse(tv_test::read_file(cuda_dir() / "clip" / "index.json"));
  const auto shape = clip_index.at("image").get<std::vector<std::int64_t>>();
  ImageBatch batch;
  batch.num_images = shape.at(0);
  batch.channels = shape.at(1);
  batch.height = shape.at(2);
  batch.width = shape.at(3);
  batch.pixels = read_floats(cuda_dir() / "clip" / "image.f32");
  for (std::int64_t i = 0; i < batch.num_images; ++i) batch.indices.push_back(static_cast<std::size_t>(i));

  Model model = load("clip/clip_fp16.pt", "cuda");  // no entry method: a CLIP archive → encode_image
  EXPECT_EQ(model.traits().entry_method, "encode_image");
  const Activations encoded = model.forward(batch);
  EXPECT_EQ(encoded.shape, clip.at("encode_image").get<std::vector<std::int64_t>>());
  EXPECT_TRUE(tv_test::expect_close(read_floats(cuda_dir() / "clip" / "ref16_encode_image.f32"), encoded.values,
                                    {kHalfVsEagerHalf, 0.0}, "encode_image in float16"));
  const auto trunk = model.extract_async(batch, {"visual.trunk"}).get();
  ASSERT_EQ(trunk.size(), 1u);
  EXPECT_TRUE(tv_test::expect_close(read_floats(cuda_dir() / "clip" / "ref16_visual.trunk.f32"), trunk[0].values,
                                    {kHalfVsEagerHalf, 0.0}, "visual.trunk in float16"));
  // Kept in float16: the float32 reference (same weights) differs by more than float32 rounding.
  const std::vector<float> ref32 = read_floats(cuda_dir() / "clip" / "ref_encode_image.f32");
  EXPECT_FALSE(tv_test::expect_close(ref32, encoded.values, {1e-6, 0.0}, "float16 vs float32"))
      << "encode_image on CUDA equals the float32 reference to 1e-6: the archive did not run in float16";
}

TEST(Cuda, DeviceBeyondTheGpuCountNamesTheCount) {
  REQUIRE_CUDA();
  // How many GPUs: the first index that fails tells, and the message must say it.
  int count = 1;
  for (;; ++count) {
    try {
      load("resnet18.pt", "cuda:" + std::to_string(count));
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("cuda:" + std::to_string(count)));
      EXPECT_THAT(e.what(), HasSubstr("only " + std::to_string(count) + " CUDA GPU(s) visible"));
      EXPECT_THAT(e.what(), HasSubstr("resnet18.pt"));
      break;
    }
    ASSERT_LT(count, 64) << "no cuda:N index failed";
  }
}

}  // namespace
