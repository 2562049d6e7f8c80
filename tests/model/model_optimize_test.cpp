// model_optimize_test.cpp — Model::optimization_status, extraction_graph while the optimized graph
// is unchecked, and the image input a model runs on: the caller's pixels when the graph provably
// never writes into them, else a copy (fixture: tests/reference/export_optimize_models.py).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "model/model_impl.hpp"  // torchscript_input_copies()
#include "reference_arrays.hpp"
#include "test_support.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/model.hpp"

namespace {

using thingsvision::Activations;
using thingsvision::ImageBatch;
using thingsvision::Model;
using thingsvision::ModelOptions;
using thingsvision::OptimizationStatus;
using State = thingsvision::OptimizationStatus::State;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::filesystem::path fixture_dir() { return tv_test::data_dir() / "model_optimize"; }

const nlohmann::json& index_json() {
  static const nlohmann::json index = tv_test::read_json(fixture_dir() / "index.json");
  return index;
}

ImageBatch input_batch(const std::string& model) {
  const auto& in = index_json().at(model).at("input");
  return tv_test::image_batch(tv_test::read_array<float>(fixture_dir() / in.at("file").get<std::string>()),
                              in.at("shape").get<std::vector<std::int64_t>>());
}

Model load(const std::string& model, const std::string& how, bool optimize) {
  ModelOptions options;
  options.optimize = optimize;
  return Model::load(fixture_dir() / index_json().at(model).at("exports").at(how).get<std::string>(),
                     options);
}

// Every module's output against the Python hook reference (optimized: conv-BN folding rounds
// differently, up to 1e-5 of the plain graph plus its own).
void expect_matches_hooks(const std::string& model, const std::vector<std::string>& names,
                          const std::vector<Activations>& result, const std::string& label) {
  ASSERT_EQ(result.size(), names.size()) << label;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto& ref = index_json().at(model).at("modules").at(names[i]);
    EXPECT_EQ(result[i].shape, ref.at("shape").get<std::vector<std::int64_t>>()) << label << " " << names[i];
    EXPECT_TRUE(tv_test::expect_close(
        tv_test::read_array<float>(fixture_dir() / ref.at("file").get<std::string>()), result[i].values,
        {2e-5, 0.0}, label + " " + names[i]));
  }
}

// --- the image input: a copy only for graphs that may write into it --------------------------------

struct Case {
  std::string model, how;
  bool optimize;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.model << "." << c.how << (c.optimize ? ".optimize" : ""); }

class InPlaceInput : public ::testing::TestWithParam<Case> {};

// x.mul_(2) in forward / x.add_(1) in a submodule: right outputs, the caller's batch unchanged, on
// the first run (the optimize check runs both graphs on the same images), the second run (kept or
// dropped) and the one-image probe of the ambiguous sequence-first output (inplace_add_seq).
TEST_P(InPlaceInput, WritersRunOnACopyAndTheBatchIsUnchanged) {
  const Case c = GetParam();
  Model model = load(c.model, c.how, c.optimize);
  std::vector<std::string> names;
  for (const auto& [name, ref] : index_json().at(c.model).at("modules").items()) names.push_back(name);
  const ImageBatch batch = input_batch(c.model);
  const std::vector<float> original = batch.pixels;
  for (int run = 0; run < 2; ++run) {
    const auto copies_before = thingsvision::torchscript_input_copies();
    const auto result = model.extract(batch, names);
    const std::string label = c.model + "." + c.how + (c.optimize ? " optimized" : "") + " run " +
                              std::to_string(run);
    expect_matches_hooks(c.model, names, result, label);
    EXPECT_EQ(batch.pixels, original) << label << ": the model wrote into the caller's batch";
    EXPECT_GT(thingsvision::torchscript_input_copies(), copies_before) << label;
  }
  if (c.model == "inplace_mul") {  // forward(): the entry method writes too
    const Activations out = model.forward(batch);
    EXPECT_TRUE(tv_test::expect_close(
        tv_test::read_array<float>(fixture_dir() / "inplace_mul.pool.bin"), out.values, {}, "forward"));
    EXPECT_EQ(batch.pixels, original) << "forward";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Writers, InPlaceInput,
    ::testing::Values(Case{"inplace_mul", "script", false}, Case{"inplace_mul", "script", true},
                      Case{"inplace_mul", "trace", false}, Case{"inplace_mul", "trace", true},
                      Case{"inplace_add_seq", "script", false}, Case{"inplace_add_seq", "script", true}),
    [](const ::testing::TestParamInfo<Case>& param_info) {
      const Case& c = param_info.param;
      return c.model + "_" + c.how + (c.optimize ? "_optimize" : "");
    });

// A graph that never writes into its input (its in-place ReLU works on the batch norm's output)
// runs on the caller's pixels: no copy, plain or frozen + optimized.
TEST(InPlaceInputNone, NonWritingGraphRunsWithoutACopy) {
  const std::vector<std::string> names{"conv", "relu", "pool"};
  for (const bool optimize : {false, true}) {
    Model model = load("plain", "script", optimize);
    const ImageBatch batch = input_batch("plain");
    const std::vector<float> original = batch.pixels;
    const auto copies_before = thingsvision::torchscript_input_copies();
    for (int run = 0; run < 2; ++run) {
      const std::string label = std::string(optimize ? "optimized" : "plain") + " run " + std::to_string(run);
      expect_matches_hooks("plain", names, model.extract(batch, names), label);
    }
    EXPECT_EQ(thingsvision::torchscript_input_copies(), copies_before) << "optimize " << optimize;
    EXPECT_EQ(batch.pixels, original);
    if (optimize) {
      EXPECT_EQ(model.optimization_status(names).state, State::kept);
    }
  }
}

// The torchvision resnet18 of model_test's fixture (scripted and traced, the tv-extract benchmark's
// model): no copy of the batch, plain or optimized, and the hook values.
TEST(InPlaceInputNone, TorchvisionResnetRunsWithoutACopy) {
  const auto dir = tv_test::data_dir() / "model";
  const nlohmann::json index = tv_test::read_json(dir / "index.json");
  const auto& entry = index.at("resnet18");
  const auto& in = entry.at("inputs").at("main");
  const ImageBatch batch = tv_test::image_batch(tv_test::read_array<float>(dir / in.at("file").get<std::string>()),
                                                in.at("shape").get<std::vector<std::int64_t>>());
  const std::vector<float> original = batch.pixels;
  const std::vector<std::string> names{"layer3", "avgpool"};
  for (const std::string how : {"script", "trace"}) {
    for (const bool optimize : {false, true}) {
      ModelOptions options;
      options.optimize = optimize;
      Model model = Model::load(dir / entry.at("exports").at(how).get<std::string>(), options);
      const auto copies_before = thingsvision::torchscript_input_copies();
      for (int run = 0; run < 2; ++run) {
        const std::string label = how + (optimize ? " optimized" : "") + " run " + std::to_string(run);
        const auto result = model.extract(batch, names);
        ASSERT_EQ(result.size(), names.size());
        for (std::size_t i = 0; i < names.size(); ++i) {
          for (const auto& m : in.at("methods").at("forward").at("modules")) {
            if (m.at("module") != names[i] || m.at("tuple_index") != 0) continue;
            EXPECT_TRUE(tv_test::expect_close(
                tv_test::read_array<float>(dir / m.at("calls").at(0).at("file").get<std::string>()),
                result[i].values, {2e-5, 0.0}, label + " " + names[i]));
          }
        }
      }
      EXPECT_EQ(thingsvision::torchscript_input_copies(), copies_before) << how << " optimize " << optimize;
      EXPECT_EQ(batch.pixels, original);
    }
  }
}

// --- Model::optimization_status -------------------------------------------------------------------

TEST(OptimizationStatus, NotRequestedWithoutOptimize) {
  Model model = load("plain", "script", false);
  const OptimizationStatus status = model.optimization_status({"pool"});
  EXPECT_EQ(status.state, State::not_requested);
  EXPECT_EQ(status.reason, "");
  EXPECT_TRUE(std::isnan(status.max_relative_difference));
  EXPECT_EQ(status.checked_images, 0);
  EXPECT_THAT(model.extraction_graph({"pool"}), Not(StartsWith("# optimize")));
}

// Before the first batch: unchecked, and extraction_graph shows the plain graph (module attribute
// reads) under the header; after it: kept, with the frozen graph (no attribute reads) and the
// measured agreement, which a test computes again from a plain model's outputs.
TEST(OptimizationStatus, UncheckedThenKeptWithTheMeasuredDifference) {
  const std::vector<std::string> names{"conv", "pool"};
  Model model = load("plain", "script", true);
  const OptimizationStatus before = model.optimization_status(names);
  EXPECT_EQ(before.state, State::unchecked);
  EXPECT_THAT(before.reason, StartsWith("not run yet; frozen + optimize_for_inference in "));
  EXPECT_TRUE(std::isnan(before.max_relative_difference));
  EXPECT_EQ(before.checked_images, 0);
  const std::string unchecked_graph = model.extraction_graph(names);
  EXPECT_THAT(unchecked_graph, StartsWith("# optimize: unchecked: " + before.reason + "\n"));
  EXPECT_THAT(unchecked_graph, HasSubstr("prim::GetAttr"));
  EXPECT_THAT(unchecked_graph, HasSubstr("Conv2d"));

  ImageBatch batch = input_batch("plain");  // two images: the check covers the whole batch
  batch.num_images = 2;
  batch.pixels.resize(2 * batch.image_size());
  batch.indices.resize(2);
  const auto optimized = model.extract(batch, names);
  const OptimizationStatus after = model.optimization_status(names);
  EXPECT_EQ(after.state, State::kept) << after.reason;
  EXPECT_EQ(after.checked_images, 2);
  EXPECT_THAT(after.reason, HasSubstr("on 2 images (within 1e-05)"));
  const std::string kept_graph = model.extraction_graph(names);
  EXPECT_THAT(kept_graph, StartsWith("# optimize: kept: " + after.reason + "\n"));
  EXPECT_THAT(kept_graph, Not(HasSubstr("prim::GetAttr")));

  Model plain = load("plain", "script", false);
  const auto reference = plain.extract(batch, names);
  double worst = 0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    double max_ref = 0, max_diff = 0;
    for (std::size_t k = 0; k < reference[i].values.size(); ++k) {
      max_ref = std::max(max_ref, std::abs(static_cast<double>(reference[i].values[k])));
      max_diff = std::max(max_diff, std::abs(static_cast<double>(reference[i].values[k]) -
                                             static_cast<double>(optimized[i].values[k])));
    }
    worst = std::max(worst, max_diff / max_ref);
  }
  EXPECT_LE(after.max_relative_difference, 1e-5);
  EXPECT_NEAR(after.max_relative_difference, worst, 1e-3 * worst + 1e-12);
}

// Float32 cancellation in the plain graph that conv-BN folding avoids: the graphs differ by ~4e-4,
// so the optimized one is dropped and extract() returns the plain graph's values.
TEST(OptimizationStatus, DroppedWhenTheGraphsDisagree) {
  Model model = load("cancel", "script", true);
  const ImageBatch batch = input_batch("cancel");
  const auto result = model.extract(batch, {"bn"});
  const OptimizationStatus status = model.optimization_status({"bn"});
  EXPECT_EQ(status.state, State::dropped) << status.reason;
  EXPECT_EQ(status.checked_images, 2);
  EXPECT_THAT(status.reason, HasSubstr("(above 1e-05)"));
  const double python = index_json().at("cancel").at("python_optimize_difference").get<double>();
  ASSERT_GT(python, 1e-4);
  EXPECT_NEAR(status.max_relative_difference, python, 0.2 * python);
  EXPECT_THAT(model.extraction_graph({"bn"}), StartsWith("# optimize: dropped: " + status.reason + "\n"));
  Model plain = load("cancel", "script", false);
  EXPECT_EQ(plain.extract(batch, {"bn"}).at(0).values, result.at(0).values);  // the plain graph ran
}

TEST(OptimizationStatus, DroppedWhenTheOptimizedGraphFailsToRun) {
  // timm's maxvit: the optimized graph throws (mkldnn_gelu); the plain graph must run instead.
  Model model = load("gelu_tanh", "script", true);
  const ImageBatch batch = input_batch("gelu_tanh");
  const auto result = model.extract(batch, {"act", "head"});
  const OptimizationStatus status = model.optimization_status({"act", "head"});
  EXPECT_EQ(status.state, State::dropped) << status.reason;
  if (index_json().at("gelu_tanh").at("python_optimized_fails").get<bool>()) {
    EXPECT_THAT(status.reason, HasSubstr("the optimized graph failed on 2 images: "));
    EXPECT_TRUE(std::isnan(status.max_relative_difference));
  }
  EXPECT_EQ(status.reason.find('\n'), std::string::npos) << "one line";
  const auto& refs = index_json().at("gelu_tanh").at("modules");
  for (std::size_t i = 0; i < result.size(); ++i) {
    const std::string name = i == 0 ? "act" : "head";
    EXPECT_TRUE(tv_test::expect_close(
        tv_test::read_array<float>(fixture_dir() / refs.at(name).at("file").get<std::string>()), result[i].values,
        {1e-5, 0.0}, "gelu_tanh " + name));
  }
}

// A graph of more matrix products than convolutions (a transformer's shape) is frozen, but not run
// through optimize_for_inference, whose MKLDNN conversions slow such graphs down; its values still
// equal the Python hooks'.
TEST(OptimizationStatus, TransformerShapedGraphIsFrozenOnly) {
  const std::vector<std::string> names{"fc1", "norm"};
  Model model = load("tokens_mlp", "script", true);
  EXPECT_THAT(model.optimization_status(names).reason,
              StartsWith("not run yet; frozen only (1 convolutions, 2 matrix products) in "));
  const ImageBatch batch = input_batch("tokens_mlp");
  const auto result = model.extract(batch, names);
  const OptimizationStatus status = model.optimization_status(names);
  EXPECT_EQ(status.state, State::kept) << status.reason;
  EXPECT_THAT(status.reason, HasSubstr("(within 1e-05); frozen only (1 convolutions, 2 matrix products) in "));
  const std::string graph = model.extraction_graph(names);
  EXPECT_THAT(graph, Not(HasSubstr("prim::GetAttr")));  // frozen
  EXPECT_THAT(graph, HasSubstr("aten::linear"));        // not transposed into matmuls
  EXPECT_THAT(graph, Not(HasSubstr("mkldnn")));
  const auto& refs = index_json().at("tokens_mlp").at("modules");
  for (std::size_t i = 0; i < names.size(); ++i) {
    EXPECT_TRUE(tv_test::expect_close(
        tv_test::read_array<float>(fixture_dir() / refs.at(names[i]).at("file").get<std::string>()),
        result[i].values, {1e-5, 0.0}, "tokens_mlp " + names[i]));
  }
}

// The convolutional fixture goes through optimize_for_inference: its convolutions become MKLDNN ones
// where LibTorch has MKLDNN.
TEST(OptimizationStatus, ConvolutionalGraphIsOptimizedForInference) {
  Model model = load("plain", "script", true);
  model.extract(input_batch("plain"), {"pool"});
  const OptimizationStatus status = model.optimization_status({"pool"});
  EXPECT_EQ(status.state, State::kept) << status.reason;
  EXPECT_THAT(status.reason, HasSubstr("frozen + optimize_for_inference in "));
}

TEST(OptimizationStatus, OpenCvDnnBackendHasNoOptimizer) {
  for (const bool optimize : {false, true}) {
    Model model = load("plain", "onnx", optimize);
    const std::vector<std::string> names{model.module_names().back()};
    const OptimizationStatus status = model.optimization_status(names);
    EXPECT_EQ(status.state, optimize ? State::not_supported : State::not_requested);
    if (optimize) {
      EXPECT_THAT(status.reason, HasSubstr("not supported"));
    } else {
      EXPECT_EQ(status.reason, "");
    }
  }
}

TEST(OptimizationStatus, UnknownModuleIsAnError) {
  Model model = load("plain", "script", true);
  const thingsvision::Error e = tv_test::catch_error([&] { model.optimization_status({"conv2"}); });
  EXPECT_EQ(e.kind(), thingsvision::ErrorKind::model);
  EXPECT_THAT(e.what(), HasSubstr("'conv2'"));
}

}  // namespace
