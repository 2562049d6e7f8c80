// torch_runtime.hpp — private, torch-free: the TorchScript backend lives in a plugin
// (libthingsvision_torch.so, the only shared object that links LibTorch), loaded with dlopen the
// first time it is needed, or early on a thread (preload_torch_runtime) so that LibTorch's start
// overlaps other work. These are the entry points the plugin gives the rest of the library.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>

#include "model/model_impl.hpp"

namespace thingsvision {

/// The functions of the TorchScript plugin (src/model/torch/torch_plugin.cpp fills it in).
struct TorchRuntime {
  /// The library version and LibTorch version the plugin was built with (checked against ours).
  const char* library_version;
  const char* torch_version;
  std::unique_ptr<ModelBackend> (*load_model)(const std::filesystem::path& file, const ModelOptions& options);
  std::int64_t (*input_copies)();
  void (*set_num_threads)(int num_threads);
  bool (*cuda_available)();
};

/// The plugin's symbol returning its TorchRuntime.
inline constexpr const char* kTorchRuntimeSymbol = "thingsvision_torch_runtime_v1";

/// The loaded plugin's functions: loads it on first use (or waits for preload_torch_runtime);
/// throws Error(model) naming the plugin's path and dlerror()'s reason when it cannot be loaded.
const TorchRuntime& torch_runtime();

}  // namespace thingsvision
