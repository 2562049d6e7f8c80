// model.cpp — Model facade: argument checks, then a ModelBackend (TorchScript or OpenCV DNN).
#include "thingsvision/model.hpp"

#include <fmt/format.h>

#include <unordered_set>
#include <utility>

#include "model/backends/onnxruntime_backend.hpp"
#include "model/backends/opencv_dnn_backend.hpp"
#include "model/model_impl.hpp"
#include "thingsvision/error.hpp"

namespace thingsvision {

namespace {

void check_batch(const ImageBatch& batch, const std::filesystem::path& model_path) {
  if (batch.num_images <= 0 || batch.channels <= 0 || batch.height <= 0 || batch.width <= 0) {
    throw Error(ErrorKind::usage,
                fmt::format("model '{}': empty image batch ({}x{}x{}x{})", model_path.string(),
                            batch.num_images, batch.channels, batch.height, batch.width));
  }
  const auto expected = static_cast<std::size_t>(batch.num_images) * batch.image_size();
  if (batch.pixels.size() != expected) {
    throw Error(ErrorKind::usage,
                fmt::format("model '{}': image batch of {}x{}x{}x{} holds {} values, expected {}",
                            model_path.string(), batch.num_images, batch.channels, batch.height,
                            batch.width, batch.pixels.size(), expected));
  }
}

}  // namespace

void check_cpu_graph_options(const std::filesystem::path& file, const ModelOptions& options,
                             const std::string& backend) {
  if (options.device.is_cuda()) {
    throw Error(ErrorKind::model,
                fmt::format("model '{}': the {} backend runs on the CPU only (device {} "
                            "requested); use a TorchScript export for CUDA",
                            file.string(), backend, options.device.to_string()));
  }
  if (options.entry_method == "encode_text") throw_no_text_method(file, backend, options.entry_method);  // --text
  if (!options.entry_method.empty() && options.entry_method != "forward") {
    throw Error(ErrorKind::model,
                fmt::format("model '{}': entry method '{}' does not apply to the {} "
                            "backend (the file's graph is the exported method)",
                            file.string(), options.entry_method, backend));
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    throw Error(ErrorKind::model, fmt::format("model file '{}' not found", file.string()));
  }
}

void check_batch_dimension(const std::vector<std::int64_t>& shape, std::int64_t num_images,
                           const std::string& module, const std::filesystem::path& file) {
  if (!shape.empty() && shape[0] == num_images) return;
  std::string text;
  for (auto s : shape) text += (text.empty() ? "" : ", ") + std::to_string(s);
  throw Error(ErrorKind::model,
              fmt::format("the output of module '{}' of {} has shape [{}]: its first "
                          "dimension does not hold the {} images of the batch",
                          module, file.filename().string(), text, num_images));
}

void throw_no_text_method(const std::filesystem::path& file, const std::string& backend,
                          const std::string& method) {
  throw Error(ErrorKind::model,
              fmt::format("model '{}': the {} backend has no text method '{}'; export the text "
                          "encoder as TorchScript",
                          file.string(), backend, method));
}

const char* to_string(ModelBackendKind backend) noexcept {
  switch (backend) {
    case ModelBackendKind::libtorch: return "libtorch";
    case ModelBackendKind::opencv_dnn: return "opencv_dnn";
    case ModelBackendKind::onnxruntime: return "onnxruntime";
    case ModelBackendKind::automatic: break;
  }
  return "automatic";
}

ModelBackendKind resolve_backend(const std::filesystem::path& file, ModelBackendKind backend) {
  if (backend != ModelBackendKind::automatic) return backend;
  return is_opencv_dnn_file(file) ? ModelBackendKind::opencv_dnn : ModelBackendKind::libtorch;
}

Model Model::load(const std::filesystem::path& file, const ModelOptions& options) {
  if (options.num_threads < 0) {
    throw Error(ErrorKind::usage,
                fmt::format("num_threads must be >= 0 (got {})", options.num_threads));
  }
  const ModelBackendKind backend_kind = resolve_backend(file, options.backend);
  if (backend_kind == ModelBackendKind::opencv_dnn) {
    auto backend = load_opencv_dnn_model(file, options);
    backend->set_optimize_requested(options.optimize);  // no optimizer: reported as not_supported
    return Model(std::move(backend));
  }
  for (const auto& [option, layout] : {std::pair{"input_layout", options.input_layout},
                                       std::pair{"native_layout", options.native_layout}}) {
    if (layout == TensorLayout::nhwc) {
      throw Error(ErrorKind::usage,
                  fmt::format("model '{}': {} nhwc applies to the OpenCV DNN backend only (.onnx, .pb, "
                              "Caffe); TorchScript and ONNX Runtime models take and return NCHW tensors",
                              file.string(), option));
    }
  }
  if (backend_kind == ModelBackendKind::onnxruntime) {
    auto backend = load_onnxruntime_model(file, options);
    backend->set_optimize_requested(options.optimize);  // no optimizer: reported as not_supported
    return Model(std::move(backend));
  }
  return Model(load_torchscript_model(file, options));
}

Model::Model(std::unique_ptr<ModelBackend> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

const std::filesystem::path& Model::path() const { return impl_->path(); }
Device Model::device() const { return impl_->device(); }
const ModelTraits& Model::traits() const { return impl_->traits(); }

std::vector<std::string> Model::module_names() const {
  std::vector<std::string> names;
  names.reserve(impl_->modules().size());
  for (const auto& info : impl_->modules()) names.push_back(info.name);
  return names;
}

std::vector<ModuleInfo> Model::modules() const { return impl_->modules(); }

std::string Model::module_tree() const { return impl_->module_tree(); }

namespace {

void check_modules(const std::vector<std::string>& requested, const std::vector<ModuleInfo>& known,
                   const std::filesystem::path& model_path, const ExtractOptions& options) {
  if (options.tuple_index < 0) {
    throw Error(ErrorKind::usage,
                fmt::format("tuple_index must be >= 0 (got {})", options.tuple_index));
  }
  std::unordered_set<std::string> names;
  for (const auto& info : known) names.insert(info.name);
  for (const auto& name : requested) {
    if (names.count(name)) continue;
    std::vector<std::string> candidates;
    candidates.reserve(known.size());
    for (const auto& info : known) candidates.push_back(info.name);
    throw Error(ErrorKind::model,
                fmt::format("module '{}' not found in {}; closest: {}", name,
                            model_path.filename().string(), closest_names(name, candidates)));
  }
}

}  // namespace

std::vector<Activations> Model::extract(const ImageBatch& batch,
                                        const std::vector<std::string>& modules,
                                        const ExtractOptions& options) {
  check_modules(modules, impl_->modules(), impl_->path(), options);
  if (modules.empty()) return {};
  check_batch(batch, impl_->path());
  return impl_->extract(batch, modules, options);
}

std::future<std::vector<Activations>> Model::extract_async(const ImageBatch& batch,
                                                         const std::vector<std::string>& modules,
                                                         const ExtractOptions& options) {
  check_modules(modules, impl_->modules(), impl_->path(), options);
  if (modules.empty()) {
    std::promise<std::vector<Activations>> none;
    none.set_value({});
    return none.get_future();
  }
  check_batch(batch, impl_->path());
  return impl_->extract_async(batch, modules, options);
}

Activations Model::forward(const ImageBatch& batch) {
  check_batch(batch, impl_->path());
  return impl_->forward(batch);
}

std::string Model::extraction_graph(const std::vector<std::string>& modules,
                                    const ExtractOptions& options) {
  check_modules(modules, impl_->modules(), impl_->path(), options);
  if (modules.empty()) {
    throw Error(ErrorKind::usage, "extraction_graph needs at least one module name");
  }
  return impl_->extraction_graph(modules, options);
}

OptimizationStatus Model::optimization_status(const std::vector<std::string>& modules,
                                              const ExtractOptions& options) {
  check_modules(modules, impl_->modules(), impl_->path(), options);
  if (modules.empty()) {
    throw Error(ErrorKind::usage, "optimization_status needs at least one module name");
  }
  return impl_->optimization_status(modules, options);
}

Activations Model::encode_text(const std::vector<std::int64_t>& token_ids, std::int64_t num_texts,
                               std::int64_t context_length, const std::string& method) {
  if (num_texts <= 0 || context_length <= 0 ||
      token_ids.size() != static_cast<std::size_t>(num_texts) * static_cast<std::size_t>(context_length)) {
    throw Error(ErrorKind::usage,
                fmt::format("model '{}': {} token ids for {} texts of context length {}",
                            impl_->path().string(), token_ids.size(), num_texts, context_length));
  }
  if (method.empty()) throw Error(ErrorKind::usage, "encode_text: the method name must not be empty");
  return impl_->encode_text(token_ids, num_texts, context_length, method);
}

}  // namespace thingsvision
