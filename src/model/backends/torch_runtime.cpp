// torch_runtime.cpp — loads the TorchScript plugin (libthingsvision_torch.so) with dlopen, on first
// use or early on a thread (preload_torch_runtime), and forwards the public LibTorch functions to
// it. Torch-free: a process that runs only ONNX models never loads LibTorch.
#include "model/backends/torch_runtime.hpp"

#include <dlfcn.h>
#include <strings.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "thingsvision/error.hpp"
#include "thingsvision/model.hpp"
#include "thingsvision/version.hpp"

#ifndef THINGSVISION_TORCH_PLUGIN_NAME
#error "THINGSVISION_TORCH_PLUGIN_NAME (the TorchScript plugin's file name) is not set"
#endif
#ifndef THINGSVISION_TORCH_PLUGIN_BUILD_PATH
#error "THINGSVISION_TORCH_PLUGIN_BUILD_PATH (the plugin in the build tree) is not set"
#endif

namespace thingsvision {
namespace {

struct LoadResult {
  const TorchRuntime* runtime = nullptr;
  std::string error;     // why it could not be loaded (runtime == nullptr)
  double seconds = 0.0;  // how long dlopen and the plugin's checks took on the loading thread
};

/// The shared object holding this code (libthingsvision.so, or a program built with its objects).
std::string own_object_path() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&own_object_path), &info) == 0 || info.dli_fname == nullptr) return {};
  return info.dli_fname;
}

/// Where the plugin is looked for: $THINGSVISION_TORCH_PLUGIN if set (a program moved away from its
/// build tree), else beside the object holding this code (an installed or build tree's
/// libthingsvision.so), then where this build tree wrote it (programs linking the library's
/// objects, such as the tests).
std::vector<std::string> plugin_candidates() {
  std::vector<std::string> candidates;
  if (const char* path = std::getenv("THINGSVISION_TORCH_PLUGIN"); path != nullptr && *path != '\0') {
    return {path};
  }
  const std::string own = own_object_path();
  if (const auto slash = own.rfind('/'); slash != std::string::npos) {
    candidates.push_back(own.substr(0, slash + 1) + THINGSVISION_TORCH_PLUGIN_NAME);
  }
  candidates.push_back(THINGSVISION_TORCH_PLUGIN_BUILD_PATH);
  return candidates;
}

/// Warns once on stderr if LibTorch carries its own BLAS (PyPI's wheel: libtorch_cpu.so exports
/// sgemm_) but its calls bind to another library's, loaded first (Debian's OpenBLAS, by OpenCV).
void warn_if_blas_bound_elsewhere() {
  void* torch_cpu = ::dlopen("libtorch_cpu.so", RTLD_NOW | RTLD_NOLOAD);
  if (torch_cpu == nullptr) return;
  void* const own = ::dlsym(torch_cpu, "sgemm_");  // libtorch_cpu's own first, then its dependencies
  void* const bound = ::dlsym(RTLD_DEFAULT, "sgemm_");
  ::dlclose(torch_cpu);
  Dl_info own_info{};
  Dl_info bound_info{};
  if (own == nullptr || bound == nullptr || own == bound || ::dladdr(own, &own_info) == 0 ||
      ::dladdr(bound, &bound_info) == 0 || own_info.dli_fname == nullptr || bound_info.dli_fname == nullptr) {
    return;
  }
  const std::string own_file = own_info.dli_fname;
  if (own_file.find("libtorch_cpu.so") == std::string::npos) return;  // a dependency's: not LibTorch's own
  std::fprintf(stderr,
               "thingsvision: warning: LibTorch's matrix products (sgemm_) run in %s, loaded before LibTorch, "
               "not in its own BLAS (%s): transformers run several times slower. Start the program with "
               "LD_PRELOAD=%s (tv-extract does) or link that library ahead of OpenCV (docs/cli.md, "
               "\"BLAS on platform (c)\")\n",
               bound_info.dli_fname, own_file.c_str(), own_file.c_str());
}

LoadResult load_plugin() {
  const auto start = std::chrono::steady_clock::now();
  LoadResult result;
  // The plugin resolves the library's own symbols (Error, ...) from the process: make sure the
  // library is visible globally even if a program loaded it with RTLD_LOCAL.
  if (const std::string own = own_object_path(); !own.empty()) {
    ::dlopen(own.c_str(), RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL);
  }
  std::string tried;
  void* handle = nullptr;
  for (const std::string& path : plugin_candidates()) {
    if (::access(path.c_str(), F_OK) != 0) {
      tried += fmt::format("{}'{}' (not found)", tried.empty() ? "" : ", ", path);
      continue;
    }
    // RTLD_GLOBAL: LibTorch's libraries (OpenBLAS's thread setter among them) become visible to
    // dlsym(RTLD_DEFAULT, ...) as when a program links them. Never closed.
    handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (handle == nullptr) {
      const char* why = ::dlerror();
      result.error = fmt::format("cannot load LibTorch through '{}': {}", path, why ? why : "unknown error");
      return result;
    }
    using Entry = const TorchRuntime* (*)();
    auto entry = reinterpret_cast<Entry>(::dlsym(handle, kTorchRuntimeSymbol));
    if (entry == nullptr) {
      result.error = fmt::format("'{}' is not thingsvision's TorchScript plugin (no symbol {})", path,
                                 kTorchRuntimeSymbol);
      return result;
    }
    const TorchRuntime* runtime = entry();
    if (std::string(runtime->library_version) != THINGSVISION_VERSION_STRING ||
        std::string(runtime->torch_version) != THINGSVISION_TORCH_VERSION_STRING) {
      result.error = fmt::format("'{}' was built for thingsvision {} with LibTorch {}, this library is {} "
                                 "with LibTorch {}: reinstall the two together",
                                 path, runtime->library_version, runtime->torch_version,
                                 THINGSVISION_VERSION_STRING, THINGSVISION_TORCH_VERSION_STRING);
      return result;
    }
    warn_if_blas_bound_elsewhere();
    result.runtime = runtime;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
  }
  result.error = fmt::format("the TorchScript plugin {} is missing (looked for {}); an incomplete installation?",
                             THINGSVISION_TORCH_PLUGIN_NAME, tried);
  return result;
}

struct RuntimeState {
  std::mutex mutex;
  std::shared_future<LoadResult> loading;  // valid once a load has started
  double wait_seconds = 0.0;
};

RuntimeState& state() {
  static RuntimeState s;
  return s;
}

/// The load, started on a thread if `async` (else on the calling thread) unless already started.
std::shared_future<LoadResult> start_loading(bool async) {
  RuntimeState& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.loading.valid()) {
    s.loading = std::async(async ? std::launch::async : std::launch::deferred, load_plugin).share();
  }
  return s.loading;
}

// OMP_WAIT_POLICY as libgomp reads it when it is loaded (the environment before LibTorch's start).
bool openmp_waits_passively() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  return policy != nullptr && strcasecmp(policy, "passive") == 0;
}

}  // namespace

const TorchRuntime& torch_runtime() {
  const std::shared_future<LoadResult> loading = start_loading(false);
  const auto start = std::chrono::steady_clock::now();
  const LoadResult& result = loading.get();
  {
    RuntimeState& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    s.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  if (result.runtime == nullptr) throw Error(ErrorKind::model, result.error);
  return *result.runtime;
}

void preload_torch_runtime() { start_loading(true); }

TorchRuntimeTiming torch_runtime_timing() {
  RuntimeState& s = state();
  std::shared_future<LoadResult> loading;
  TorchRuntimeTiming timing;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    loading = s.loading;
    timing.wait_seconds = s.wait_seconds;
  }
  if (loading.valid() &&
      loading.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
    timing.start_seconds = loading.get().seconds;
  }
  return timing;
}

std::unique_ptr<ModelBackend> load_torchscript_model(const std::filesystem::path& file,
                                                     const ModelOptions& options) {
  return torch_runtime().load_model(file, options);
}

std::int64_t torchscript_input_copies() { return torch_runtime().input_copies(); }

int blas_threads_for(int torch_threads) {
  if (std::getenv("OPENBLAS_NUM_THREADS") != nullptr) return 0;
  return torch_threads > 1 && openmp_waits_passively() ? torch_threads : 1;
}

void set_num_threads(int num_threads) {
  if (num_threads < 1) {
    throw Error(ErrorKind::usage, fmt::format("number of threads must be >= 1 (got {})", num_threads));
  }
  torch_runtime().set_num_threads(num_threads);
}

bool cuda_available() { return torch_runtime().cuda_available(); }

}  // namespace thingsvision
