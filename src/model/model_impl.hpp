// model_impl.hpp — ModelBackend: the private interface a model backend implements; torch-free.
#pragma once
#include <cstdint>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "thingsvision/model.hpp"

namespace thingsvision {

/// What Model forwards to once its arguments are checked (src/model/backends/*_backend.cpp and the
/// TorchScript plugin's src/model/torch/torchscript_backend.cpp).
class ModelBackend {
 public:
  virtual ~ModelBackend() = default;
  virtual const std::filesystem::path& path() const = 0;
  virtual Device device() const = 0;
  /// The entry method in use and what the file revealed (Model::traits).
  virtual const ModelTraits& traits() const = 0;
  /// Every named module with its type, in named_modules() order, the root excluded.
  virtual const std::vector<ModuleInfo>& modules() const = 0;
  virtual std::string module_tree() const = 0;
  /// `modules` are known, non-empty names; `batch` is well-formed and non-empty.
  virtual std::vector<Activations> extract(const ImageBatch& batch,
                                           const std::vector<std::string>& modules,
                                           const ExtractOptions& options) = 0;
  /// As extract(), not waiting for the device (Model::extract_async). This default, for CPU
  /// backends, runs extract() and returns a ready future.
  virtual std::future<std::vector<Activations>> extract_async(const ImageBatch& batch,
                                                              const std::vector<std::string>& modules,
                                                              const ExtractOptions& options) {
    std::promise<std::vector<Activations>> done;
    done.set_value(extract(batch, modules, options));
    return done.get_future();
  }
  virtual Activations forward(const ImageBatch& batch) = 0;
  virtual std::string extraction_graph(const std::vector<std::string>& modules,
                                       const ExtractOptions& options) = 0;
  /// What ModelOptions::optimize did for `modules` (known, non-empty names). This default serves
  /// backends without an optimizer: not_requested, or not_supported if optimize was asked for.
  virtual OptimizationStatus optimization_status(const std::vector<std::string>& modules,
                                                 const ExtractOptions& options) {
    (void)modules;
    (void)options;
    OptimizationStatus status;
    if (optimize_requested_) {
      status.state = OptimizationStatus::State::not_supported;
      status.reason = "not supported by this model's backend (OpenCV DNN runs the graph as loaded)";
    }
    return status;
  }
  /// Records ModelOptions::optimize for the default optimization_status (set by Model::load).
  void set_optimize_requested(bool requested) { optimize_requested_ = requested; }
  /// `token_ids` holds num_texts × context_length ids, both > 0; `method` is not empty.
  virtual Activations encode_text(const std::vector<std::int64_t>& token_ids, std::int64_t num_texts,
                                  std::int64_t context_length, const std::string& method) = 0;

 private:
  bool optimize_requested_ = false;
};

/// For backends that run a file's graph on the CPU (OpenCV DNN, ONNX Runtime; `backend` names it
/// in messages): Error(model) naming `file` for a CUDA device, an entry method other than forward,
/// or a missing file.
void check_cpu_graph_options(const std::filesystem::path& file, const ModelOptions& options,
                             const std::string& backend);

/// Error(model) unless `shape`'s first dimension holds the batch's `num_images` (the output of
/// `module` of `file`).
void check_batch_dimension(const std::vector<std::int64_t>& shape, std::int64_t num_images,
                           const std::string& module, const std::filesystem::path& file);

/// Throws Error(model): the `backend` running `file` (an image graph) has no text method `method`.
[[noreturn]] void throw_no_text_method(const std::filesystem::path& file, const std::string& backend,
                                       const std::string& method);

/// How many times the TorchScript backend copied an image batch for a method that may write into
/// its input (process-wide; for tests: a model that never writes runs on the caller's pixels).
std::int64_t torchscript_input_copies();

/// Loads a TorchScript archive through the TorchScript plugin (torch_runtime.cpp), loading the
/// plugin first if needed; throws Error(model) naming `file`, or the plugin if it cannot be loaded.
std::unique_ptr<ModelBackend> load_torchscript_model(const std::filesystem::path& file,
                                                     const ModelOptions& options);

}  // namespace thingsvision
