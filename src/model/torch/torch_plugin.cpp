// torch_plugin.cpp — the entry point of libthingsvision_torch.so, the plugin holding the TorchScript
// backend and LibTorch (torch_runtime.cpp loads it). Everything else in the plugin is hidden.
#include "model/torch/torch_glue.hpp"
#include "model/backends/torch_runtime.hpp"
#include "thingsvision/version.hpp"

/// The plugin's functions; the library checks both versions before using them.
extern "C" __attribute__((visibility("default"))) const thingsvision::TorchRuntime* thingsvision_torch_runtime_v1() {
  static const thingsvision::TorchRuntime runtime{
      THINGSVISION_VERSION_STRING,           THINGSVISION_TORCH_VERSION_STRING,
      &thingsvision::load_torchscript_archive, &thingsvision::count_torchscript_input_copies,
      &thingsvision::set_torch_threads,        &thingsvision::torch_cuda_available,
  };
  return &runtime;
}
