// model_test.cpp — Model against Python forward hooks on the same seeded models and inputs
// (fixture: tests/reference/export_test_models.py, scripted and traced archives).
#include "thingsvision/model.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "model_test_names.hpp"
#include "reference_arrays.hpp"
#include "test_support.hpp"
#include "thingsvision/error.hpp"

namespace {

using namespace tv_test::model_names;
using ::testing::HasSubstr;
using tv_test::catch_error;

std::filesystem::path model_dir() { return tv_test::data_dir() / "model"; }

const nlohmann::json& index_json() {
  static const nlohmann::json index = tv_test::read_json(model_dir() / "index.json");
  return index;
}

std::vector<float> read_floats(const std::string& file) { return tv_test::read_array<float>(model_dir() / file); }

ImageBatch read_batch(const std::string& file, const std::vector<std::int64_t>& shape) {
  return tv_test::image_batch(read_floats(file), shape);
}

// Each model archive is loaded once per test process.
Model& cached_model(const std::string& file, const std::string& entry = "forward") {
  static std::map<std::string, Model> models;
  const std::string key = file + "#" + entry;
  auto found = models.find(key);
  if (found == models.end()) {
    ModelOptions options;
    options.entry_method = entry;
    // TV_TEST_MODEL_OPTIMIZE=1 runs the parity tests through the frozen + optimized methods.
    options.optimize = std::getenv("TV_TEST_MODEL_OPTIMIZE") != nullptr;
    found = models.emplace(key, Model::load(model_dir() / file, options)).first;
  }
  return found->second;
}

struct Export {
  std::string model;
  std::string how;  // "script" or "trace"
};

void PrintTo(const Export& e, std::ostream* os) { *os << e.model << "." << e.how; }

std::string export_name(const ::testing::TestParamInfo<Export>& info) {
  return info.param.model + "_" + info.param.how;
}

class ModelParity : public ::testing::TestWithParam<Export> {};

// Module names, types and tree, then activations: one test (one process) per archive.
TEST_P(ModelParity, MatchesPythonModulesAndForwardHooks) {
  const auto& entry = index_json().at(GetParam().model);
  {
  Model& model = cached_model(entry.at("exports").at(GetParam().how));
  const auto names = entry.at("module_names").get<std::vector<std::string>>();
  const auto types = entry.at("module_types").get<std::vector<std::string>>();
  EXPECT_EQ(model.module_names(), names);
  const auto infos = model.modules();
  ASSERT_EQ(infos.size(), types.size());
  for (std::size_t i = 0; i < infos.size(); ++i) EXPECT_EQ(infos[i].type, types[i]) << names[i];
  EXPECT_EQ(model.module_tree(), entry.at("module_tree").get<std::string>());
  }
  // "main" first, then an input whose batch size equals the sequence length (if any).
  for (const std::string input_key : {"main", "ambiguous"}) {
    if (!entry.at("inputs").contains(input_key)) continue;
    const auto& input = entry.at("inputs").at(input_key);
    const ImageBatch batch = read_batch(input.at("file"), input.at("shape"));
    for (const auto& [method, refs] : input.at("methods").items()) {
      if (method != "forward" && GetParam().how == "trace") continue;  // traces have forward only
      Model& model = cached_model(entry.at("exports").at(GetParam().how), method);
      const std::string where = GetParam().model + "." + GetParam().how + " " + input_key + " " + method;

      const Activations out = model.forward(batch);
      EXPECT_EQ(out.shape, refs.at("output").at("shape").get<std::vector<std::int64_t>>()) << where;
      EXPECT_TRUE(tv_test::expect_close(read_floats(refs.at("output").at("file")), out.values, {},
                                        where + " output"));

      // Group the reference modules by tuple index: one extract() call per group, all at once.
      std::map<int, std::vector<const nlohmann::json*>> groups;
      for (const auto& m : refs.at("modules")) {
        // A pass-through module (nn.Identity) has no output in a trace (see TracedIdentity... below).
        if (GetParam().how == "trace" && m.at("module") == "extra") continue;
        groups[m.at("tuple_index").get<int>()].push_back(&m);
      }
      for (const auto& [tuple_index, mods] : groups) {
        std::vector<std::string> names;
        for (const auto* m : mods) names.push_back(m->at("module"));
        for (const ModuleCalls calls : {ModuleCalls::last, ModuleCalls::all}) {
          ExtractOptions options;
          options.calls = calls;
          options.tuple_index = tuple_index;
          const auto result = model.extract(batch, names, options);
          std::size_t k = 0;
          for (const auto* m : mods) {
            const auto& ref_calls = m->at("calls");
            const int num_calls = static_cast<int>(ref_calls.size());
            const int first = calls == ModuleCalls::all ? 0 : num_calls - 1;
            for (int call = first; call < num_calls; ++call, ++k) {
              const std::string label = where + " " + m->at("module").get<std::string>() + "[" +
                                        std::to_string(tuple_index) + "] call " +
                                        std::to_string(call);
              ASSERT_LT(k, result.size()) << label;
              const auto& ref = ref_calls.at(static_cast<std::size_t>(call));
              EXPECT_EQ(result[k].module_name, m->at("module").get<std::string>()) << label;
              EXPECT_EQ(result[k].call_index, call) << label;
              EXPECT_EQ(result[k].num_calls, num_calls) << label;
              EXPECT_EQ(result[k].shape, ref.at("shape").get<std::vector<std::int64_t>>()) << label;
              EXPECT_EQ(result[k].num_rows(), batch.num_images) << label;
              EXPECT_TRUE(tv_test::expect_close(read_floats(ref.at("file")), result[k].values, {},
                                                label));
            }
          }
          EXPECT_EQ(k, result.size()) << where;
          if (std::getenv("TV_TEST_MODEL_OPTIMIZE")) {
            const bool kept = model.extraction_graph(names, options).find("prim::GetAttr") ==
                              std::string::npos;
            std::cout << "[ optimize ] " << where << ": " << (kept ? "optimized graph kept" : "plain graph")
                      << "\n";
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    TorchvisionZoo, ModelParity,
    ::testing::Values(Export{"alexnet", "script"}, Export{"alexnet", "trace"},
                      Export{"resnet18", "script"}, Export{"resnet18", "trace"},
                      Export{"vgg11_bn", "script"}, Export{"vgg11_bn", "trace"},
                      Export{"densenet121", "script"}, Export{"densenet121", "trace"},
                      Export{"mobilenet_v3_small", "script"}, Export{"mobilenet_v3_small", "trace"},
                      Export{"googlenet", "script"}, Export{"googlenet", "trace"},
                      Export{"vit", "script"}, Export{"vit", "trace"},
                      Export{"seqfirst", "script"}, Export{"seqfirst", "trace"}),
    export_name);

// --- single behaviours ----------------------------------------------------------------------

const nlohmann::json& input_of(const std::string& model, const std::string& key = "main") {
  return index_json().at(model).at("inputs").at(key);
}

const nlohmann::json& module_ref(const std::string& model, const std::string& key,
                                 const std::string& module, int tuple_index = 0) {
  for (const auto& m : input_of(model, key).at("methods").at("forward").at("modules")) {
    if (m.at("module") == module && m.at("tuple_index") == tuple_index) return m;
  }
  throw std::runtime_error("no reference for " + module);
}

// The error that extracting `modules` from archive `file` on `model`'s main input throws.
Error extract_error(const std::string& file, const std::string& model,
                    const std::vector<std::string>& modules, const ExtractOptions& options = {}) {
  Model& loaded = cached_model(file);
  const auto& in = input_of(model);
  return catch_error([&] { loaded.extract(read_batch(in.at("file"), in.at("shape")), modules, options); });
}

TEST(ModelExtract, InPlaceOpAfterModuleDoesNotChangeItsOutput) {
  // AlexNet features.11 is ReLU(inplace=True) on features.10's output: the hook value has negatives.
  const auto ref = read_floats(module_ref("alexnet", "main", "features.10").at("calls").at(0).at("file"));
  ASSERT_LT(*std::min_element(ref.begin(), ref.end()), 0.0f);
  Model& model = cached_model("alexnet.script.pt");
  const auto& in = input_of("alexnet");
  const auto result = model.extract(read_batch(in.at("file"), in.at("shape")), {"features.10"});
  ASSERT_EQ(result.size(), 1u);
  EXPECT_TRUE(tv_test::expect_close(ref, result[0].values, {}, "features.10"));
}

TEST(ModelExtract, SharedReluAllCallsInOrder) {
  Model& model = cached_model("resnet18.trace.pt");
  const auto& in = input_of("resnet18");
  ExtractOptions options;
  options.calls = ModuleCalls::all;
  const auto result = model.extract(read_batch(in.at("file"), in.at("shape")),
                                    {"layer4.1.relu", "avgpool"}, options);
  ASSERT_EQ(result.size(), 3u);  // BasicBlock calls its relu twice
  EXPECT_EQ(result[0].call_index, 0);
  EXPECT_EQ(result[1].call_index, 1);
  EXPECT_EQ(result[1].num_calls, 2);
  EXPECT_EQ(result[2].module_name, "avgpool");
}

TEST(ModelExtract, DuplicateNamesAreAnsweredInRequestOrder) {
  Model& model = cached_model("resnet18.script.pt");
  const auto& in = input_of("resnet18");
  const auto result = model.extract(read_batch(in.at("file"), in.at("shape")),
                                    {"avgpool", "layer3", "avgpool"});
  ASSERT_EQ(result.size(), 3u);
  EXPECT_EQ(result[0].module_name, "avgpool");
  EXPECT_EQ(result[1].module_name, "layer3");
  EXPECT_EQ(result[2].values, result[0].values);
}

TEST(ModelExtract, SequenceFirstAmbiguousBatchIsResolvedByAProbe) {
  // A fresh model whose first batch has as many images as tokens: (4, 4, 8) either way.
  Model model = Model::load(model_dir() / "seqfirst.script.pt");
  const auto& in = input_of("seqfirst", "ambiguous");
  const auto result = model.extract(read_batch(in.at("file"), in.at("shape")), {"blocks.1"});
  ASSERT_EQ(result.size(), 1u);
  const auto& ref = module_ref("seqfirst", "ambiguous", "blocks.1").at("calls").at(0);
  EXPECT_EQ(result[0].shape, ref.at("shape").get<std::vector<std::int64_t>>());
  EXPECT_TRUE(tv_test::expect_close(read_floats(ref.at("file")), result[0].values, {}, "blocks.1"));
}

TEST(ModelExtract, RowsMergedImageByImageSplitIntoImages) {
  // (N·4, 4, 6) → (N, 4, 4, 6): THINGSvision's view(N, -1) once flattened. N = 4 also fits
  // sequence-first (dimension 1 is 4), so a fresh model needs the probe there.
  for (const std::string key : {"main", "ambiguous"}) {
    Model model = Model::load(model_dir() / "merged.script.pt");
    const auto& in = input_of("merged", key);
    const auto result = model.extract(read_batch(in.at("file"), in.at("shape")), {"inner", "embed"});
    ASSERT_EQ(result.size(), 2u);
    const auto& ref = module_ref("merged", key, "inner").at("calls").at(0);
    EXPECT_EQ(result[0].shape, ref.at("shape").get<std::vector<std::int64_t>>()) << key;
    EXPECT_TRUE(tv_test::expect_close(read_floats(ref.at("file")), result[0].values, {}, "inner " + key));
  }
}

TEST(ModelExtract, RowsMergedInAnotherOrderAreAnError) {
  const Error e = extract_error("merged.script.pt", "merged", {"mixed"});
  EXPECT_EQ(e.kind(), ErrorKind::model);
  EXPECT_THAT(e.what(), HasSubstr("'mixed'"));
  EXPECT_THAT(e.what(), HasSubstr("[12, 4, 6] for 3 images"));
  EXPECT_THAT(e.what(), HasSubstr("merged into dimension 0 in another order"));
}

TEST(ModelExtract, UnknownModuleListsClosestNames) {
  const Error e = extract_error("resnet18.script.pt", "resnet18", {"layer4", "layer5"});
  EXPECT_EQ(e.kind(), ErrorKind::model);
  EXPECT_THAT(e.what(), HasSubstr("'layer5'"));
  EXPECT_THAT(e.what(), HasSubstr("resnet18.script.pt"));
  EXPECT_THAT(e.what(), ::testing::ContainsRegex("closest: .*layer4"));
}

TEST(ModelExtract, ModuleNeverCalledInEvalIsAnError) {
  const Error e = extract_error("googlenet.script.pt", "googlenet", {"aux1"});
  EXPECT_EQ(e.kind(), ErrorKind::model);
  EXPECT_THAT(e.what(), HasSubstr("'aux1' is never called"));
}

TEST(ModelExtract, TracedIdentityHasNoOutputAndSaysSo) {
  const Error e = extract_error("seqfirst.trace.pt", "seqfirst", {"extra"});
  EXPECT_EQ(e.kind(), ErrorKind::model);
  EXPECT_THAT(e.what(), HasSubstr("'extra'"));
  EXPECT_THAT(e.what(), HasSubstr("pass-through"));
}

TEST(ModelExtract, TupleIndexOutOfRangeIsAnError) {
  ExtractOptions options;
  options.tuple_index = 2;
  const Error e = extract_error("seqfirst.script.pt", "seqfirst", {"pair"}, options);
  EXPECT_EQ(e.kind(), ErrorKind::model);
  EXPECT_THAT(e.what(), HasSubstr("tuple of 2 elements"));
}

TEST(ModelExtract, GraphStopsAfterTheLastRequestedModule) {
  Model& model = cached_model("vgg11_bn.script.pt");
  // Module types appear in the graph's attribute reads: no BatchNorm2d or Linear is left.
  const std::string early = model.extraction_graph({"features.0"});
  EXPECT_THAT(early, HasSubstr("Conv2d"));
  EXPECT_THAT(early, ::testing::Not(HasSubstr("BatchNorm2d")));
  EXPECT_THAT(early, ::testing::Not(HasSubstr("Linear")));
  const std::string late = model.extraction_graph({"features.0", "classifier.3"});
  EXPECT_THAT(late, HasSubstr("BatchNorm2d"));
  EXPECT_THAT(late, HasSubstr("Linear"));

  // The measurement (reported, not asserted): features.0 against the full forward pass.
  const auto& in = input_of("vgg11_bn");
  const ImageBatch batch = read_batch(in.at("file"), in.at("shape"));
  auto seconds = [&](auto&& f) {
    f();  // warm-up (graph executor profiling)
    f();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i) f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 5;
  };
  const double cut = seconds([&] { model.extract(batch, {"features.0"}); });
  const double full = seconds([&] { model.forward(batch); });
  std::cout << "[ measure  ] vgg11_bn 2x3x64x64: extract features.0 " << cut * 1e3
            << " ms, full forward " << full * 1e3 << " ms, ratio " << cut / full << "\n";
}

TEST(ModelExtract, GraphCutAlsoForTracedResnet) {
  Model& model = cached_model("resnet18.trace.pt");
  const std::string graph = model.extraction_graph({"layer1.0.conv1"});
  EXPECT_THAT(graph, HasSubstr("Conv2d"));
  EXPECT_THAT(graph, ::testing::Not(HasSubstr("Linear")));
  EXPECT_THAT(graph, ::testing::Not(HasSubstr("AdaptiveAvgPool2d")));
  EXPECT_THAT(graph, ::testing::Not(HasSubstr("layer2")));
}

TEST(ModelOptimize, FrozenOptimizedMethodMatchesHooks) {
  ModelOptions options;
  options.optimize = true;
  Model model = Model::load(model_dir() / "resnet18.script.pt", options);
  Model& plain = cached_model("resnet18.script.pt");
  const auto& in = input_of("resnet18");
  const ImageBatch batch = read_batch(in.at("file"), in.at("shape"));
  const std::vector<std::string> names{"layer1.0.conv1", "layer3", "avgpool"};
  for (int run = 0; run < 2; ++run) {  // the first run checks the optimized method, the second uses it
    const auto result = model.extract(batch, names);
    ASSERT_EQ(result.size(), names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
      const auto& ref = module_ref("resnet18", "main", names[i]).at("calls").at(0);
      // Conv-batchnorm folding changes rounding: up to 1e-5 against the plain graph, plus its own.
      EXPECT_TRUE(tv_test::expect_close(read_floats(ref.at("file")), result[i].values, {2e-5, 0.0},
                                        names[i] + " optimized, run " + std::to_string(run)));
    }
  }
  // Kept: the frozen graph reads no module attributes any more.
  EXPECT_THAT(model.extraction_graph(names), ::testing::Not(HasSubstr("prim::GetAttr")));

  auto seconds = [&](Model& m) {
    m.extract(batch, names);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 3; ++i) m.extract(batch, names);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 3;
  };
  const double plain_s = seconds(plain), optimized_s = seconds(model);
  std::cout << "[ measure  ] resnet18 2x3x64x64 layer1.0.conv1+layer3+avgpool: plain "
            << plain_s * 1e3 << " ms, frozen+optimized " << optimized_s * 1e3 << " ms\n";
}

// LibTorch is the TorchScript plugin: a preload on a thread is what Model::load then uses, and its
// start is timed (thread-safe with a concurrent load).
TEST(ModelLoad, PreloadedTorchRuntimeIsTimedAndUsed) {
  thingsvision::preload_torch_runtime();
  std::future<Model> other = std::async(std::launch::async, [] { return Model::load(model_dir() / "resnet18.script.pt"); });
  Model model = Model::load(model_dir() / "resnet18.script.pt");
  const Model concurrent = other.get();
  EXPECT_FALSE(concurrent.module_names().empty());
  EXPECT_EQ(model.module_names(), concurrent.module_names());
  const thingsvision::TorchRuntimeTiming timing = thingsvision::torch_runtime_timing();
  EXPECT_GT(timing.start_seconds, 0.0);
  EXPECT_GE(timing.wait_seconds, 0.0);
}

TEST(ModelLoad, NotTorchScriptIsAClearError) {
  for (const std::string file : {"not_torchscript.pt", "state_dict.pt"}) {
    const Error e = catch_error([&] { Model::load(model_dir() / file); });
    EXPECT_EQ(e.kind(), ErrorKind::model);
    EXPECT_THAT(e.what(), HasSubstr(file));
    EXPECT_THAT(e.what(), HasSubstr("TorchScript"));
  }
  const Error missing = catch_error([&] { Model::load(model_dir() / "missing.pt"); });
  EXPECT_THAT(missing.what(), HasSubstr("missing.pt"));
}

TEST(ModelLoad, ForwardWithASecondInputIsAClearError) {
  const Error e = catch_error([&] { Model::load(model_dir() / "two_inputs.script.pt"); });
  EXPECT_EQ(e.kind(), ErrorKind::model);
  EXPECT_THAT(e.what(), HasSubstr("needs other inputs"));
  EXPECT_THAT(e.what(), HasSubstr("'y'"));
}

TEST(ModelLoad, MissingEntryMethodIsAClearError) {
  ModelOptions options;
  options.entry_method = "encode_text";
  const Error e = catch_error([&] { Model::load(model_dir() / "seqfirst.script.pt", options); });
  EXPECT_EQ(e.kind(), ErrorKind::model);
  EXPECT_THAT(e.what(), HasSubstr("no method 'encode_text'"));
  EXPECT_THAT(e.what(), HasSubstr("encode_image"));
}

TEST(ModelLoad, SecondInputWithDefaultIsAccepted) {
  Model model = Model::load(model_dir() / "default_arg.script.pt");
  const auto shape = index_json().at("default_arg").at("input_shape").get<std::vector<std::int64_t>>();
  const ImageBatch batch = read_batch("default_arg.input.bin", shape);
  EXPECT_TRUE(tv_test::expect_close(read_floats("default_arg.output.bin"), model.forward(batch).values,
                                    {}, "forward"));
  const auto result = model.extract(batch, {"conv"});
  ASSERT_EQ(result.size(), 1u);
  EXPECT_EQ(result[0].shape, (std::vector<std::int64_t>{2, 4, 6, 6}));
}

TEST(ModelLoad, TreeWithoutExtraFileIsBuiltFromTheModules) {
  // default_arg.script.pt was saved without "module_tree.txt": PyTorch's print form, no extra_repr.
  Model model = Model::load(model_dir() / "default_arg.script.pt");
  EXPECT_EQ(model.module_tree(), "DefaultArg(\n  (conv): Conv2d()\n)");
}

TEST(ModelExtract, AsyncOnTheCpuIsExtractDoneBeforeReturning) {
  Model model = Model::load(model_dir() / "resnet18.script.pt");
  const auto& in = input_of("resnet18");
  ImageBatch batch = read_batch(in.at("file"), in.at("shape"));
  const auto expected = model.extract(batch, {"layer3", "avgpool"});
  auto pending = model.extract_async(batch, {"layer3", "avgpool"});
  ASSERT_EQ(pending.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  std::fill(batch.pixels.begin(), batch.pixels.end(), 0.0f);  // the batch may be reused at once
  const auto got = pending.get();
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].module_name, expected[i].module_name);
    EXPECT_EQ(got[i].shape, expected[i].shape);
    EXPECT_EQ(got[i].values, expected[i].values);
  }
  // Arguments are checked before anything runs: an unknown module throws from extract_async itself.
  EXPECT_THROW(model.extract_async(batch, {"no_such_module"}), Error);
  EXPECT_TRUE(model.extract_async(batch, {}).get().empty());
}

TEST(ModelLoad, CudaWithoutCudaIsAnErrorNotAFallback) {
  ModelOptions options;
  options.device = thingsvision::Device::parse("cuda");
  if (thingsvision::cuda_available()) {
    Model model = Model::load(model_dir() / "resnet18.script.pt", options);
    EXPECT_TRUE(model.device().is_cuda());
    const auto& in = input_of("resnet18");
    const auto result = model.extract(read_batch(in.at("file"), in.at("shape")), {"layer3"});
    const auto& ref = module_ref("resnet18", "main", "layer3").at("calls").at(0);
    EXPECT_TRUE(tv_test::expect_close(read_floats(ref.at("file")), result.at(0).values,
                                      {1e-4, 0.0}, "layer3 on cuda"));
    return;
  }
  for (const std::string device : {"cuda", "cuda:1"}) {
    options.device = thingsvision::Device::parse(device);
    const Error e = catch_error([&] { Model::load(model_dir() / "resnet18.script.pt", options); });
    EXPECT_EQ(e.kind(), ErrorKind::model);
    EXPECT_THAT(e.what(), HasSubstr(device));
    EXPECT_THAT(e.what(), HasSubstr("resnet18.script.pt"));
  }
}

}  // namespace
