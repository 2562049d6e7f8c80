// onnxruntime_backend.cpp — ModelBackend through ONNX Runtime's C++ API: the file's graph, read with
// onnx_graph, runs as it is for forward(); extract() runs a session of a copy whose graph outputs are
// the requested layers' outputs (one session per module set, the last one kept).
#include "model/backends/onnxruntime_backend.hpp"

#include <fmt/format.h>

#include "thingsvision/error.hpp"

#ifdef THINGSVISION_HAVE_ONNXRUNTIME
#include <onnxruntime_cxx_api.h>
#include <onnxruntime_session_options_config_keys.h>

#include <algorithm>
#include <iostream>
#include <sstream>
#include <utility>

#include "model/backends/onnx_graph.hpp"
#include "model/backends/layer_graph_backend.hpp"
#endif

namespace thingsvision {

#ifndef THINGSVISION_HAVE_ONNXRUNTIME

bool have_onnxruntime() { return false; }

std::unique_ptr<ModelBackend> load_onnxruntime_model(const std::filesystem::path& file,
                                                     const ModelOptions& /*options*/) {
  throw Error(ErrorKind::model,
              fmt::format("model '{}': this build of thingsvision has no ONNX Runtime backend (CMake "
                          "found no ONNX Runtime: Debian 13's libonnxruntime-dev; Debian 12 has none); "
                          "use the OpenCV DNN backend (automatic for .onnx) or a TorchScript file",
                          file.string()));
}

#else

bool have_onnxruntime() { return true; }

namespace {

// Runs `f` with std::cerr muted. Debian 13's ONNX Runtime registers the ONNX op schemas into the
// system libonnx, which registered them itself, and libonnx prints each duplicate on std::cerr
// ("Schema error: Trying to register schema with name Abs ... already registered", ~500 lines).
template <typename F>
auto with_cerr_muted(F&& f) {
  std::ostringstream muted;
  std::streambuf* const previous = std::cerr.rdbuf(muted.rdbuf());
  struct Restore {
    std::streambuf* buffer;
    ~Restore() { std::cerr.rdbuf(buffer); }
  } restore{previous};
  return f();
}

Ort::Env& ort_env() {
  static Ort::Env env = with_cerr_muted([] { return Ort::Env(ORT_LOGGING_LEVEL_ERROR, "thingsvision"); });
  return env;
}

class OnnxRuntimeModel final : public LayerGraphBackend {
 public:
  OnnxRuntimeModel(std::filesystem::path path, std::string bytes, const ModelOptions& options)
      : LayerGraphBackend(std::move(path), "ONNX Runtime"),
        bytes_(std::move(bytes)),
        graph_(OnnxModel::parse(bytes_, path_)) {
    if (options.num_threads > 0) session_options_.SetIntraOpNumThreads(options.num_threads);
    // Sessions are made from bytes (the file's, or a copy with outputs added): a model over 2 GB
    // keeps its weights in files beside it, found through this folder.
    const std::filesystem::path folder = path_.has_parent_path() ? path_.parent_path() : std::filesystem::path(".");
    session_options_.AddConfigEntry(kOrtSessionOptionsModelExternalInitializersFileFolderPath, folder.c_str());
    session_options_.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    const auto& initializers = graph_.initializers();
    for (const auto& input : graph_.graph_inputs()) {
      if (std::find(initializers.begin(), initializers.end(), input) == initializers.end()) {
        input_name_ = input;
        break;
      }
    }
    if (input_name_.empty() || graph_.graph_outputs().empty()) {
      throw Error(ErrorKind::model, fmt::format("ONNX model '{}' has no graph input or output", path_.string()));
    }
    std::vector<std::string> types;
    for (const auto& node : graph_.nodes()) {
      if (node.op_type == "Constant" || node.outputs.empty() || node.outputs[0].empty()) continue;
      layer_names_.push_back(kOnnxLayerPrefix + (node.name.empty() ? node.outputs[0] : node.name));
      types.push_back(node.op_type);
      layer_tensors_.push_back(node.outputs[0]);
    }
    set_layers(layer_names_, std::move(types));
    session_ = make_session(bytes_);
  }

  Activations forward(const ImageBatch& batch) override {
    std::vector<Ort::Value> outs = run(*session_, batch, {graph_.graph_outputs().front()});
    Activations a = to_activations(outs.front(), layer_names_.empty() ? std::string("output") : layer_names_.back());
    check_batch_dimension(a.shape, batch.num_images, a.module_name, path_);
    return a;
  }

 private:
  std::vector<Activations> read_layers(const ImageBatch& batch, const std::vector<std::size_t>& layers,
                                       const std::vector<std::string>& modules,
                                       const ExtractOptions& /*options*/) override {
    std::vector<std::string> tensors;
    for (const std::size_t layer : layers) tensors.push_back(layer_tensors_[layer]);
    if (tensors != extract_tensors_) {
      OnnxModel tapped = graph_;
      for (const auto& tensor : tensors) tapped.add_graph_output(tensor);
      extract_session_ = make_session(tapped.serialize());
      extract_tensors_ = tensors;
    }
    std::vector<Ort::Value> outs = run(*extract_session_, batch, tensors);
    std::vector<Activations> result;
    result.reserve(layers.size());
    for (std::size_t i = 0; i < layers.size(); ++i) result.push_back(to_activations(outs.at(i), modules[i]));
    return result;
  }

  std::string graph_summary() const override {
    return fmt::format("ONNX Runtime session of {} ({} nodes), graph outputs added for:\n",
                       path_.filename().string(), graph_.nodes().size());
  }

  std::unique_ptr<Ort::Session> make_session(const std::string& model_bytes) const {
    try {
      return with_cerr_muted([&] {
        return std::make_unique<Ort::Session>(ort_env(), model_bytes.data(), model_bytes.size(), session_options_);
      });
    } catch (const Ort::Exception& e) {
      throw Error(ErrorKind::model, fmt::format("cannot read model '{}' with ONNX Runtime {}: {}", path_.string(),
                                                Ort::GetVersionString(), e.what()));
    }
  }

  std::vector<Ort::Value> run(Ort::Session& session, const ImageBatch& batch,
                              const std::vector<std::string>& outputs) const {
    const std::int64_t shape[] = {batch.num_images, batch.channels, batch.height, batch.width};
    const Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    // ONNX Runtime does not write into its inputs.
    const Ort::Value input = Ort::Value::CreateTensor<float>(memory, const_cast<float*>(batch.pixels.data()),
                                                             batch.pixels.size(), shape, 4);
    const char* input_names[] = {input_name_.c_str()};
    std::vector<const char*> output_names;
    for (const auto& name : outputs) output_names.push_back(name.c_str());
    try {
      return session.Run(Ort::RunOptions{nullptr}, input_names, &input, 1, output_names.data(),
                         output_names.size());
    } catch (const Ort::Exception& e) {
      throw Error(ErrorKind::model, fmt::format("ONNX Runtime failed to run {}: {}", path_.string(), e.what()));
    }
  }

  Activations to_activations(const Ort::Value& value, const std::string& module) const {
    const auto info = value.GetTensorTypeAndShapeInfo();
    if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
      throw Error(ErrorKind::model, fmt::format("the output of module '{}' of {} is not a float tensor (ONNX "
                                                "element type {})",
                                                module, path_.filename().string(),
                                                static_cast<int>(info.GetElementType())));
    }
    Activations a;
    a.module_name = module;
    a.shape = info.GetShape();
    const float* data = value.GetTensorData<float>();
    a.values.assign(data, data + info.GetElementCount());
    return a;
  }

  std::string bytes_;  // the file; graph_ views into it
  OnnxModel graph_;
  Ort::SessionOptions session_options_;
  std::string input_name_;
  std::vector<std::string> layer_names_;    // "onnx_node!" + the node's name, per layer
  std::vector<std::string> layer_tensors_;  // per layer: the node's first output
  std::unique_ptr<Ort::Session> session_;          // the file's graph
  std::unique_ptr<Ort::Session> extract_session_;  // with graph outputs extract_tensors_
  std::vector<std::string> extract_tensors_;
};

}  // namespace

std::unique_ptr<ModelBackend> load_onnxruntime_model(const std::filesystem::path& file,
                                                     const ModelOptions& options) {
  check_cpu_graph_options(file, options, "ONNX Runtime");
  return std::make_unique<OnnxRuntimeModel>(file, read_model_bytes(file), options);
}

#endif

}  // namespace thingsvision
