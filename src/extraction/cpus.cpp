// cpus.cpp — the CPUs a job may use (affinity, cgroup quota, Slurm, OpenMP) and how many of them
// decode images.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "extraction/job.hpp"
#include "thingsvision/extraction.hpp"

namespace thingsvision {

namespace fs = std::filesystem;

namespace {

int positive_env_int(const char* name) {
  const char* value = std::getenv(name);
  if (!value || !*value) return 0;
  char* end = nullptr;
  const long n = std::strtol(value, &end, 10);  // OMP_NUM_THREADS may be "4,2": the first level counts
  if (end == value || n <= 0) return 0;
  return static_cast<int>(std::min<long>(n, 1 << 20));
}

int cgroup_cpu_limit() {
  // cgroup v2: cpu.max of this process's cgroup, then the root; v1: cfs quota / period.
  std::vector<fs::path> v2_files;
  {
    std::ifstream in("/proc/self/cgroup");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("0::", 0) == 0) v2_files.push_back(fs::path("/sys/fs/cgroup") / line.substr(4) / "cpu.max");
    }
  }
  v2_files.push_back("/sys/fs/cgroup/cpu.max");
  for (const auto& file : v2_files) {
    std::ifstream in(file);
    std::string quota;
    long period = 0;
    if (in >> quota >> period) {
      if (quota == "max" || period <= 0) return 0;
      const long q = std::atol(quota.c_str());
      if (q > 0) return static_cast<int>(std::max<long>(1, (q + period - 1) / period));
      return 0;
    }
  }
  std::ifstream quota_in("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), period_in("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  long quota = -1, period = 0;
  if (quota_in >> quota && period_in >> period && quota > 0 && period > 0) {
    return static_cast<int>(std::max<long>(1, (quota + period - 1) / period));
  }
  return 0;
}

}  // namespace

int available_cpus() {
  int cpus = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
  if (cpus <= 0) cpus = static_cast<int>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
  for (const int limit : {cgroup_cpu_limit(), positive_env_int("SLURM_CPUS_PER_TASK"),
                          positive_env_int("OMP_NUM_THREADS")}) {
    if (limit > 0) cpus = std::min(cpus, limit);
  }
  return std::max(1, cpus);
}

}  // namespace thingsvision

namespace thingsvision::detail {

/// Decoding threads when --decode-threads is not given. On the CPU they take cores from the
/// forward pass, which needs ~10–30× more time per image: half the threads, 1 to 4 (on 2 cores,
/// 1 decoder kept up as well as 2 for resnet18 layer2/avgpool). On CUDA the GPU computes and the
/// CPU mostly decodes (a GPU runs resnet50 faster than 4 cores decode JPEGs): all threads but one.
int default_decode_threads(int threads, const Device& device) {
  return device.is_cuda() ? std::max(threads - 1, 1) : std::clamp(threads / 2, 1, 4);
}

}  // namespace thingsvision::detail
