// rsa_bench.cpp — compute_rdm (each method), Spearman between two RDMs and linear CKA against
// numpy/scipy (bench/rsa_numpy.py) on the same data in the same run: time and peak extra memory.
//
//   ./rsa_bench [N=5000] [D=4096] [threads=0 (all)]      reported, not asserted
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "thingsvision/rsa.hpp"

namespace tv = thingsvision;

namespace {

std::int64_t status_bytes(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return std::stoll(line.substr(prefix.size())) * 1024;
  }
  return 0;
}

struct Measurement {
  double seconds = 0;
  std::int64_t peak_extra_bytes = 0;
  double value = 0;
};

/// Runs `fn`; wall time and the peak resident memory above the level before it (VmHWM reset).
Measurement measure(const std::function<double()>& fn) {
  malloc_trim(0);  // give freed memory back so the next peak is measured from a clean level
  {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
  }
  const std::int64_t base = status_bytes("VmRSS");
  const auto t0 = std::chrono::steady_clock::now();
  Measurement m;
  m.value = fn();
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  m.peak_extra_bytes = status_bytes("VmHWM") - base;
  return m;
}

void write_npy(const std::filesystem::path& path, const tv::FeatureMatrix& x) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(x.rows()) + ", " +
                       std::to_string(x.cols()) + "), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const char len[2] = {static_cast<char>(header.size() & 0xff), static_cast<char>(header.size() >> 8)};
  out.write(len, 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(x.data()), static_cast<std::streamsize>(x.size() * sizeof(float)));
}

/// Post-ReLU-like features from a fixed seed (SplitMix64 + Box–Muller).
tv::FeatureMatrix relu_features(std::int64_t n, std::int64_t d, std::uint64_t seed, const tv::FeatureMatrix* base) {
  tv::FeatureMatrix x(n, d);
  std::uint64_t state = seed;
  auto uniform = [&] {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (static_cast<double>((z ^ (z >> 31)) >> 11) + 0.5) / 9007199254740992.0;
  };
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < d; ++j) {
      const double g = std::sqrt(-2.0 * std::log(uniform())) * std::cos(6.283185307179586 * uniform());
      const double v = base ? (*base)(i, j) + 0.7 * g : g - 0.3;
      x(i, j) = static_cast<float>(v > 0 ? v : 0.0);
    }
  }
  return x;
}

double rdm_checksum(const tv::RdmMatrix& r) {
  double s = 0;
  for (Eigen::Index k = 0; k < r.size(); ++k)
    if (!std::isnan(r.data()[k])) s += r.data()[k];
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t n = argc > 1 ? std::atoll(argv[1]) : 5000;
  const std::int64_t d = argc > 2 ? std::atoll(argv[2]) : 4096;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 0;
  const double rdm_bytes = 8.0 * static_cast<double>(n) * static_cast<double>(n);
  mallopt(M_MMAP_THRESHOLD, 1 << 20);  // large blocks always mmap'd: freed memory leaves the RSS

  const tv::FeatureMatrix x = relu_features(n, d, 1, nullptr);
  const tv::FeatureMatrix y = relu_features(n, d, 2, &x);
  const auto dir = std::filesystem::temp_directory_path() / ("rsa_bench_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  write_npy(dir / "x.npy", x);
  write_npy(dir / "y.npy", y);

  std::printf("rsa_bench: N = %lld conditions, D = %lld features (float32 in, float64 compute)\n",
              static_cast<long long>(n), static_cast<long long>(d));
  std::printf("C++ GEMM: %s; threads: %s (hardware %u)\n", tv::gemm_backend().c_str(),
              threads > 0 ? std::to_string(threads).c_str() : "all", std::thread::hardware_concurrency());
  std::fflush(stdout);

  // numpy/scipy first, in its own process, on the same files
  std::map<std::string, Measurement> numpy;
  {
    const std::string command = std::string(TV_PYTHON) + " -c \"import numpy; numpy.show_config()\" 2>/dev/null | "
                                "grep -A1 -m1 '^blas_opt_info\\|^  *libraries' | head -2; " + TV_PYTHON + " " +
                                TV_BENCH_SOURCE_DIR + "/rsa_numpy.py " + (dir / "x.npy").string() + " " +
                                (dir / "y.npy").string();
    FILE* pipe = popen(command.c_str(), "r");
    char line[1024];
    while (pipe && std::fgets(line, sizeof line, pipe)) {
      std::istringstream in(line);
      std::string name;
      Measurement m;
      if (in >> name >> m.seconds >> m.peak_extra_bytes >> m.value) numpy[name] = m;
      else std::printf("numpy config: %s", line);
    }
    if (pipe) pclose(pipe);
  }
  std::filesystem::remove_all(dir);

  std::map<std::string, Measurement> ours;
  const tv::RdmMethod methods[] = {tv::RdmMethod::correlation, tv::RdmMethod::cosine, tv::RdmMethod::euclidean,
                                   tv::RdmMethod::gaussian, tv::RdmMethod::sqeuclidean};
  for (const auto method : methods) {
    ours[std::string("rdm_") + tv::to_string(method)] =
        measure([&] { return rdm_checksum(tv::compute_rdm(x, method, threads)); });
  }
  {
    const tv::RdmMatrix a = tv::compute_rdm(x, tv::RdmMethod::correlation, threads);
    const tv::RdmMatrix b = tv::compute_rdm(y, tv::RdmMethod::correlation, threads);
    ours["spearman"] = measure([&] { return tv::correlate_rdms(a, b, tv::RdmCorrelation::spearman); });
  }
  tv::CkaOptions options;
  options.num_threads = threads;
  ours["linear_cka"] = measure([&] { return tv::cka(x, y, options); });

  std::printf("\n%-18s %10s %10s %8s %12s %12s %s\n", "operation", "C++ s", "numpy s", "speedup", "C++ mem/RDM",
              "numpy mem/RDM", "agreement (rel.)");
  for (const auto& [name, m] : ours) {
    const auto it = numpy.find(name);
    const bool have = it != numpy.end();
    const double rel = have ? std::abs(m.value - it->second.value) / std::max(1e-300, std::abs(it->second.value)) : NAN;
    std::printf("%-18s %10.3f %10.3f %8.2f %12.2f %12.2f %.1e\n", name.c_str(), m.seconds,
                have ? it->second.seconds : NAN, have ? it->second.seconds / m.seconds : NAN,
                static_cast<double>(m.peak_extra_bytes) / rdm_bytes,
                have ? static_cast<double>(it->second.peak_extra_bytes) / rdm_bytes : NAN, rel);
  }
  std::printf("(mem/RDM: peak resident memory above the level before the call, in units of one N×N float64 RDM = "
              "%.0f MB; the result itself included)\n",
              rdm_bytes / 1e6);
  return 0;
}
