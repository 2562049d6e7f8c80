// tv_extract_launcher.cpp — the `tv-extract` command: sets OMP_WAIT_POLICY=PASSIVE (unless the
// user set it, or the run uses one LibTorch thread or a GPU) and executes the program holding
// LibTorch, ../libexec/thingsvision/tv-extract beside it. libgomp reads the policy only when it is
// loaded, so it must be set before the process that loads LibTorch starts; this launcher links
// neither, so LibTorch is loaded once per run (docs/cli.md, "Threads"). With a LibTorch that
// carries its own BLAS (PyPI's wheel), it also preloads that LibTorch, so that its BLAS calls do
// not bind to the system's OpenBLAS that OpenCV loads first (docs/cli.md, "BLAS on platform (c)").
// No other work here.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "model/model_file_kind.hpp"

#ifndef TV_EXTRACT_MAIN_RELATIVE
#error "TV_EXTRACT_MAIN_RELATIVE (the program's path relative to this launcher's folder) is not set"
#endif
#ifndef TV_TORCH_BLAS_PRELOAD
#error "TV_TORCH_BLAS_PRELOAD (LibTorch's library to preload, or empty) is not set"
#endif

namespace {

/// The value of option `name` in argv ("--name VALUE" or "--name=VALUE"), else empty.
std::string_view option_value(int argc, char** argv, std::string_view name) {
  std::string_view value;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == name && i + 1 < argc) value = argv[i + 1];
    if (arg.size() > name.size() && arg.substr(0, name.size()) == name && arg[name.size()] == '=') {
      value = arg.substr(name.size() + 1);
    }
  }
  return value;
}

/// Whether idle LibTorch threads should sleep: more than one CPU thread may run the forward pass.
bool wants_passive_openmp(int argc, char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return false;  // the user's choice is kept
  if (option_value(argc, argv, "--threads") == "1") return false;
  return option_value(argc, argv, "--device").substr(0, 4) != "cuda";
}

/// Whether the run only prints help or the version (no model: LibTorch is not worth loading).
bool only_prints(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "--version") return true;
  }
  return false;
}

/// The LibTorch library to preload, if the build's LibTorch carries its own BLAS: the first
/// libtorch_cpu.so in LD_LIBRARY_PATH (the one the loader would take: a bundle moved to another
/// machine, scripts/gpu-bundle.sh), else the one built against; empty if none.
std::string torch_blas_library() {
  const std::string built = TV_TORCH_BLAS_PRELOAD;
  if (built.empty()) return {};
  const char* path = std::getenv("LD_LIBRARY_PATH");
  for (std::string_view dirs = path != nullptr ? path : ""; !dirs.empty();) {
    const std::size_t colon = dirs.find(':');
    const std::string candidate = std::string(dirs.substr(0, colon)) + "/libtorch_cpu.so";
    if (colon != 0 && ::access(candidate.c_str(), R_OK) == 0) return candidate;
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
  }
  return ::access(built.c_str(), R_OK) == 0 ? built : std::string();
}

/// Whether the run may load LibTorch: not where --backend names another library, nor for a model
/// file that the automatic choice gives to OpenCV DNN (as thingsvision::resolve_backend decides).
bool may_run_libtorch(int argc, char** argv) {
  const std::string_view backend = option_value(argc, argv, "--backend");
  if (backend == "opencv_dnn" || backend == "onnxruntime") return false;
  if (backend == "libtorch") return true;
  const std::string_view model = option_value(argc, argv, "--model");
  const std::string_view name = model.substr(model.rfind('/') + 1);  // npos + 1 == 0
  const std::size_t dot = name.rfind('.');
  return dot == std::string_view::npos || dot == 0 || !thingsvision::is_opencv_dnn_extension(name.substr(dot));
}

/// Puts LibTorch's own library first in LD_PRELOAD, where it carries the BLAS that LibTorch calls.
void preload_torch_blas(int argc, char** argv) {
  if (only_prints(argc, argv) || !may_run_libtorch(argc, argv)) return;
  std::string preload = torch_blas_library();
  if (preload.empty()) return;
  if (const char* user = std::getenv("LD_PRELOAD"); user != nullptr && *user != '\0') {
    preload += std::string(":") + user;
  }
  ::setenv("LD_PRELOAD", preload.c_str(), 1);
}

/// This executable's folder, from /proc/self/exe (argv[0] may be a bare name found on PATH).
std::string own_folder() {
  std::string path(4096, '\0');
  const ssize_t n = ::readlink("/proc/self/exe", path.data(), path.size() - 1);
  if (n <= 0) return {};
  path.resize(static_cast<std::size_t>(n));
  return path.substr(0, path.rfind('/'));
}

}  // namespace

int main(int argc, char** argv) {
  if (wants_passive_openmp(argc, argv)) ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  preload_torch_blas(argc, argv);
  const std::string folder = own_folder();
  if (folder.empty()) {
    std::fprintf(stderr, "tv-extract: error: cannot find this program's folder (/proc/self/exe: %s)\n",
                 std::strerror(errno));
    return 1;
  }
  const std::string program = folder + "/" + TV_EXTRACT_MAIN_RELATIVE;
  ::execv(program.c_str(), argv);
  std::fprintf(stderr, "tv-extract: error: cannot run '%s': %s (an incomplete installation?)\n", program.c_str(),
               std::strerror(errno));
  return 1;
}
