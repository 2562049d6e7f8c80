// extraction.cpp — the tv-extract job: dataset → loader → model → writers; resume, shards, skip-bad, manifest.
#include "thingsvision/extraction.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fnmatch.h>
#include <sched.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <future>
#include <thread>

#include "thingsvision/clip_tokenizer.hpp"
#include "thingsvision/data_loader.hpp"
#include "thingsvision/dataset.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/feature_reader.hpp"
#include "thingsvision/manifest.hpp"
#include "thingsvision/model.hpp"
#include "thingsvision/sha256.hpp"
#include "thingsvision/version.hpp"

namespace thingsvision {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Small parsers and names
// ---------------------------------------------------------------------------------------------

Pooling parse_pooling(const std::string& text) {
  if (text == "none") return Pooling::none;
  if (text == "avg") return Pooling::avg;
  if (text == "max") return Pooling::max;
  throw Error(ErrorKind::usage, fmt::format("--pool: '{}' is not one of none, avg, max", text));
}

TokenMode parse_token_mode(const std::string& text) {
  if (text == "none") return TokenMode::none;
  if (text == "cls" || text == "cls_token") return TokenMode::cls;
  if (text == "avg" || text == "avg_pool") return TokenMode::avg;
  if (text == "cls+avg" || text == "cls_token+avg_pool") return TokenMode::cls_avg;
  throw Error(ErrorKind::usage, fmt::format("--token: '{}' is not one of none, cls, avg, cls+avg", text));
}

const char* to_string(Pooling pooling) noexcept {
  switch (pooling) {
    case Pooling::none: return "none";
    case Pooling::avg: return "avg";
    case Pooling::max: return "max";
  }
  return "none";
}

const char* to_string(TokenMode mode) noexcept {
  switch (mode) {
    case TokenMode::none: return "none";
    case TokenMode::cls: return "cls";
    case TokenMode::avg: return "avg";
    case TokenMode::cls_avg: return "cls+avg";
  }
  return "none";
}

std::string escape_module_name(const std::string& module_name) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (std::size_t i = 0; i < module_name.size(); ++i) {
    const auto c = static_cast<unsigned char>(module_name[i]);
    const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                       c == '_' || c == '-' || (c == '.' && i > 0);
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string unescape_module_name(const std::string& directory_name) {
  auto hex_value = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw Error(ErrorKind::usage, fmt::format("'{}' is not an escaped module name", directory_name));
  };
  std::string out;
  for (std::size_t i = 0; i < directory_name.size(); ++i) {
    if (directory_name[i] != '%') {
      out += directory_name[i];
      continue;
    }
    if (i + 2 >= directory_name.size()) {
      throw Error(ErrorKind::usage, fmt::format("'{}' is not an escaped module name", directory_name));
    }
    out += static_cast<char>(hex_value(directory_name[i + 1]) * 16 + hex_value(directory_name[i + 2]));
    i += 2;
  }
  return out;
}

std::pair<int, int> parse_shard(const std::string& text) {
  const auto usage = [&]() {
    return Error(ErrorKind::usage,
                 fmt::format("--shard: '{}' is not I/N with 0 <= I < N (0-based, as SLURM_ARRAY_TASK_ID)",
                             text));
  };
  const auto slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= text.size()) throw usage();
  const std::string a = text.substr(0, slash), b = text.substr(slash + 1);
  const auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 9 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!digits(a) || !digits(b)) throw usage();
  const int index = std::stoi(a), count = std::stoi(b);
  if (count < 1 || index >= count) throw usage();
  return {index, count};
}

std::pair<std::size_t, std::size_t> shard_range(std::size_t num_images, int index, int count) {
  if (count < 1 || index < 0 || index >= count) {
    throw Error(ErrorKind::usage, fmt::format("shard {}/{} is invalid", index, count));
  }
  const auto image_at = [&](std::size_t i) { return num_images * i / static_cast<std::size_t>(count); };
  return {image_at(static_cast<std::size_t>(index)), image_at(static_cast<std::size_t>(index) + 1)};
}

// ---------------------------------------------------------------------------------------------
// CPUs and BLAS threads
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Module selection and row shaping
// ---------------------------------------------------------------------------------------------

std::vector<std::string> select_modules(const std::vector<std::string>& requests,
                                        const std::vector<std::string>& module_names,
                                        const std::string& model_name) {
  std::vector<std::string> selected;
  std::set<std::string> seen;
  const auto add = [&](const std::string& name) {
    if (seen.insert(name).second) selected.push_back(name);
  };
  for (const auto& request : requests) {
    if (request == "all") {
      for (const auto& name : module_names) add(name);
    } else if (request.find_first_of("*?[") != std::string::npos) {
      bool any = false;
      for (const auto& name : module_names) {
        if (::fnmatch(request.c_str(), name.c_str(), 0) == 0) {
          add(name);
          any = true;
        }
      }
      if (!any) {
        throw Error(ErrorKind::usage,
                    fmt::format("--module: pattern '{}' matches no module of {}", request, model_name));
      }
    } else if (std::find(module_names.begin(), module_names.end(), request) != module_names.end()) {
      add(request);
    } else {
      throw Error(ErrorKind::usage, fmt::format("module '{}' not found in {}; closest: {}", request,
                                                model_name, closest_names(request, module_names)));
    }
  }
  return selected;
}

namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

std::vector<float> random_projection(const std::vector<float>& values, std::size_t num_rows,
                                     std::size_t input_dim, std::size_t output_dim, std::uint64_t seed) {
  if (values.size() != num_rows * input_dim || output_dim == 0) {
    throw Error(ErrorKind::internal, "random_projection: size mismatch (internal error, please report)");
  }
  std::vector<float> out(num_rows * output_dim, 0.0f);
  for (std::size_t d = 0; d < input_dim; ++d) {
    std::uint64_t word_index = ~std::uint64_t{0}, word = 0;
    for (std::size_t k = 0; k < output_dim; ++k) {
      const std::uint64_t bit = static_cast<std::uint64_t>(d) * output_dim + k;
      if (bit / 64 != word_index) {
        word_index = bit / 64;
        word = splitmix64(seed + word_index);
      }
      const bool negative = (word >> (bit % 64)) & 1u;
      for (std::size_t n = 0; n < num_rows; ++n) {
        const float x = values[n * input_dim + d];
        out[n * output_dim + k] += negative ? -x : x;
      }
    }
  }
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(output_dim)));
  for (auto& v : out) v *= scale;
  return out;
}

namespace {

struct RowOptions {
  TokenMode token = TokenMode::none;
  Pooling pool = Pooling::none;
  bool flatten = false;
  std::int64_t projection = 0;
  std::uint64_t seed = 0;
};

/// Turns a module's activations into rows: token selection, pooling, flattening, projection.
void shape_rows(Activations& a, const RowOptions& o) {
  auto& shape = a.shape;
  const std::int64_t n = a.num_rows();
  if (o.token != TokenMode::none && shape.size() == 3) {
    const std::int64_t t = shape[1], d = shape[2];
    const bool cls = o.token == TokenMode::cls || o.token == TokenMode::cls_avg;
    const bool avg = o.token == TokenMode::avg || o.token == TokenMode::cls_avg;
    const std::int64_t width = (cls ? d : 0) + (avg ? d : 0);
    std::vector<float> out(static_cast<std::size_t>(n * width));
    for (std::int64_t i = 0; i < n; ++i) {
      const float* in = a.values.data() + i * t * d;
      float* row = out.data() + i * width;
      if (cls) std::copy(in, in + d, row);
      if (avg) {
        for (std::int64_t j = 0; j < d; ++j) {
          double sum = 0;
          for (std::int64_t k = 1; k < t; ++k) sum += in[k * d + j];
          row[(cls ? d : 0) + j] = t > 1 ? static_cast<float>(sum / static_cast<double>(t - 1)) : 0.0f;
        }
      }
    }
    a.values = std::move(out);
    shape = {n, width};
  }
  if (o.pool != Pooling::none && shape.size() >= 3) {
    const std::int64_t c = shape[1];
    const std::int64_t spatial = a.row_size() / std::max<std::int64_t>(1, c);
    std::vector<float> out(static_cast<std::size_t>(n * c));
    for (std::int64_t i = 0; i < n * c; ++i) {
      const float* in = a.values.data() + i * spatial;
      if (o.pool == Pooling::max) {
        out[i] = spatial > 0 ? *std::max_element(in, in + spatial) : 0.0f;
      } else {
        double sum = 0;
        for (std::int64_t k = 0; k < spatial; ++k) sum += in[k];
        out[i] = spatial > 0 ? static_cast<float>(sum / static_cast<double>(spatial)) : 0.0f;
      }
    }
    a.values = std::move(out);
    shape = {n, c};
  }
  if ((o.flatten || o.projection > 0) && shape.size() != 2) shape = {n, a.row_size()};
  if (o.projection > 0) {
    a.values = random_projection(a.values, static_cast<std::size_t>(n), static_cast<std::size_t>(shape[1]),
                                 static_cast<std::size_t>(o.projection), o.seed);
    shape = {n, o.projection};
  }
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  int u = 0;
  while (bytes >= 1000 && u < 5) {
    bytes /= 1000;
    ++u;
  }
  return fmt::format("{:.1f} {}", bytes, units[u]);
}

// ---------------------------------------------------------------------------------------------
// Signals and the fault hook
// ---------------------------------------------------------------------------------------------

std::atomic<int> g_stop_signal{0};
// While a run has written nothing yet (model load, graph cut, optimize and its check, the probe:
// LibTorch calls that cannot be interrupted), a stop signal writes this line and ends the process
// at once with exit code 1: there is nothing to save, and the same command starts again.
std::atomic<const std::string*> g_stop_now_term{nullptr};
std::atomic<const std::string*> g_stop_now_int{nullptr};

extern "C" void tv_on_stop_signal(int sig) {
  if (const std::string* line = (sig == SIGINT ? g_stop_now_int : g_stop_now_term).load()) {
    const ssize_t written = ::write(STDERR_FILENO, line->data(), line->size());
    (void)written;
    ::_exit(1);
  }
  if (g_stop_signal.load() != 0) {  // a second signal: give up at once
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_stop_signal.store(sig);
}

/// Installs SIGTERM/SIGINT handlers for the duration of a run and restores the previous ones.
/// Until writing_starts(), a signal ends the process at once (see g_stop_now_term).
class StopSignals {
 public:
  explicit StopSignals(const fs::path& output) {
    const auto line = [&](const char* name) {
      return fmt::format("tv-extract: error: stopped by {} while preparing the run (model load, graph cut, "
                         "optimize); nothing was written to '{}': run the same command again\n",
                         name, output.string());
    };
    stop_now_term_ = line("SIGTERM");
    stop_now_int_ = line("SIGINT");
    g_stop_now_term.store(&stop_now_term_);
    g_stop_now_int.store(&stop_now_int_);
    g_stop_signal.store(0);
    // Test hook: the stop handlers are in place once this file exists (process start and LibTorch's
    // library loading, before them, end with the default action).
    if (const char* ready = std::getenv("TV_TEST_STOP_HANDLERS_READY")) std::ofstream(ready) << "ready\n";
    struct sigaction action {};
    action.sa_handler = tv_on_stop_signal;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGTERM, &action, &old_term_);
    ::sigaction(SIGINT, &action, &old_int_);
  }
  ~StopSignals() {
    ::sigaction(SIGTERM, &old_term_, nullptr);
    ::sigaction(SIGINT, &old_int_, nullptr);
    writing_starts();
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  /// From now on a signal only sets g_stop_signal: the run ends after its next durable batch.
  void writing_starts() {
    g_stop_now_term.store(nullptr);
    g_stop_now_int.store(nullptr);
  }

 private:
  std::string stop_now_term_;
  std::string stop_now_int_;
  struct sigaction old_term_ {};
  struct sigaction old_int_ {};
};

/// Test hook: TV_FAULT_AFTER_BATCHES=k kills the process (SIGKILL, as kill -9) at stage
/// TV_FAULT_STAGE: "batch" (after batch k is durable), "module" (batch k+1 written to the first
/// output only), "commit" (after the first output is committed); "sigterm" sends SIGTERM to the
/// process after batch k instead, to test the clean stop.
struct FaultHook {
  long after_batches = -1;
  std::string stage = "batch";
  FaultHook() {
    if (const char* v = std::getenv("TV_FAULT_AFTER_BATCHES")) after_batches = std::atol(v);
    if (const char* s = std::getenv("TV_FAULT_STAGE")) stage = s;
  }
  void at(const std::string& here, long batches_done) const {
    if (after_batches < 0 || batches_done < after_batches) return;
    if (stage == "sigterm" && here == "batch") {
      std::raise(SIGTERM);
    } else if (stage == here) {
      std::raise(SIGKILL);
    }
  }
};

// ---------------------------------------------------------------------------------------------
// The run journal: OUT/.tv-extract.journal, appended and fsync'd after each durable batch
// ---------------------------------------------------------------------------------------------

constexpr const char* journal_name = ".tv-extract.journal";

struct JournalState {
  std::size_t next_index = 0;  // dataset index where the next batch starts
  std::size_t rows = 0;        // rows every output holds
  std::map<std::size_t, std::pair<std::string, std::string>> bad;  // index → (path, reason)
  bool committing = false;
  std::set<std::string> committed;  // output directories already committed
};

JournalState read_journal(const fs::path& file, std::size_t start_index) {
  JournalState state;
  state.next_index = start_index;
  std::ifstream in(file, std::ios::binary);
  if (!in) return state;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::map<std::size_t, std::pair<std::string, std::string>> pending_bad;
  std::size_t pos = 0;
  while (true) {
    const auto end = text.find('\n', pos);
    if (end == std::string::npos) break;  // an incomplete last line is ignored
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    std::istringstream fields(line.substr(std::min<std::size_t>(2, line.size())));
    switch (line[0]) {
      case 'B': {
        std::size_t next = 0, rows = 0;
        if (fields >> next >> rows) {
          state.next_index = next;
          state.rows = rows;
          for (auto it = pending_bad.begin(); it != pending_bad.end();) {
            if (it->first < next) {
              state.bad.insert(*it);
              it = pending_bad.erase(it);
            } else {
              ++it;
            }
          }
        }
        break;
      }
      case 'S': {  // S index\tpath\treason
        const std::string rest = line.substr(2);
        const auto t1 = rest.find('\t'), t2 = rest.find('\t', t1 == std::string::npos ? t1 : t1 + 1);
        if (t1 != std::string::npos && t2 != std::string::npos) {
          pending_bad[std::stoul(rest.substr(0, t1))] = {rest.substr(t1 + 1, t2 - t1 - 1), rest.substr(t2 + 1)};
        }
        break;
      }
      case 'C': state.committing = true; break;
      case 'M': state.committed.insert(line.substr(2)); break;
      default: break;
    }
  }
  return state;
}

class Journal {
 public:
  explicit Journal(fs::path file) : file_(std::move(file)) {
    fd_ = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(ErrorKind::io, fmt::format("cannot write '{}': {}", file_.string(), std::strerror(errno)));
  }
  ~Journal() {
    if (fd_ >= 0) ::close(fd_);
  }
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;
  void append(const std::string& text) {
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw Error(ErrorKind::io, fmt::format("cannot write '{}': {}", file_.string(), std::strerror(errno)));
      }
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd_) != 0) {
      throw Error(ErrorKind::io, fmt::format("cannot write '{}': {}", file_.string(), std::strerror(errno)));
    }
  }
  void remove() {
    ::close(fd_);
    fd_ = -1;
    std::error_code ec;
    fs::remove(file_, ec);
  }

 private:
  fs::path file_;
  int fd_ = -1;
};

// ---------------------------------------------------------------------------------------------
// Job description shared by extraction, resume checks and merges
// ---------------------------------------------------------------------------------------------

struct Output {
  std::string module_name;
  int call_index = -1;
  std::string directory;
  std::vector<std::int64_t> activation_shape;
  std::vector<std::int64_t> row_shape;
};

/// A float as the shortest decimal that reads back as it (0.485f → 0.485, not 0.48500001430511475).
double shortest_decimal(float v) { return std::strtod(fmt::format("{}", v).c_str(), nullptr); }

void describe_transform(const Transform& t, Manifest& m) {
  m.preprocessing = t.describe();
  m.resize_mode = t.resize_mode == ResizeMode::none ? "none" : t.resize_mode == ResizeMode::fixed ? "fixed" : "shorter_side";
  m.resize_size = t.resize_size;
  m.resize_height = t.resize_height;
  m.resize_width = t.resize_width;
  m.interpolation = interpolation_name(t.interpolation);
  m.crop_height = t.crop_height;
  m.crop_width = t.crop_width;
  m.mean_rgb.clear();
  m.std_rgb.clear();
  for (const float v : t.mean_rgb) m.mean_rgb.push_back(shortest_decimal(v));
  for (const float v : t.std_rgb) m.std_rgb.push_back(shortest_decimal(v));
}

/// The first setting in which two manifests of one job differ (empty if none). With `merge`, the
/// settings that legitimately differ between shards are not compared.
std::string job_difference(const Manifest& a, const Manifest& b, bool merge) {
  if (a.model_sha256 != b.model_sha256) return "model (SHA-256 " + a.model_sha256.substr(0, 12) + " vs " + b.model_sha256.substr(0, 12) + ")";
  if (a.backend != b.backend && !a.backend.empty() && !b.backend.empty()) {
    return "--backend (" + a.backend + " vs " + b.backend + ")";
  }
  if (a.format != b.format) return "--format (" + a.format + " vs " + b.format + ")";
  if (a.dtype != b.dtype) return "--dtype (" + a.dtype + " vs " + b.dtype + ")";
  if (a.flatten != b.flatten) return "--flatten";
  if (a.pool != b.pool) return "--pool (" + a.pool + " vs " + b.pool + ")";
  if (a.token != b.token) return "--token (" + a.token + " vs " + b.token + ")";
  if (a.all_calls != b.all_calls) return "--all-calls";
  if (a.random_projection != b.random_projection || a.seed != b.seed) return "--random-projection/--seed";
  if (a.n_splits != b.n_splits) return "--n-splits";
  if (a.layout != b.layout) return "--layout (" + a.layout + " vs " + b.layout + ")";
  if (a.preprocessing != b.preprocessing) return "preprocessing (" + a.preprocessing + " vs " + b.preprocessing + ")";
  if (a.entry_method != b.entry_method) return "entry method";
  if (a.hdf5_key != b.hdf5_key || a.indices != b.indices) return "--hdf5-key/--indices";
  if (a.dataset_images != b.dataset_images) return fmt::format("image count ({} vs {})", a.dataset_images, b.dataset_images);
  if (a.batch_size != b.batch_size) return fmt::format("--batch-size ({} vs {})", a.batch_size, b.batch_size);
  if (a.modules.size() != b.modules.size()) return "--module";
  for (std::size_t i = 0; i < a.modules.size(); ++i) {
    if (a.modules[i].name != b.modules[i].name || a.modules[i].directory != b.modules[i].directory ||
        a.modules[i].call_index != b.modules[i].call_index) {
      return "--module (" + a.modules[i].name + " vs " + b.modules[i].name + ")";
    }
    if (a.modules[i].row_shape != b.modules[i].row_shape) return "row shape of " + a.modules[i].name;
  }
  if (!merge && (a.shard_index != b.shard_index || a.shard_count != b.shard_count)) {
    return fmt::format("--shard ({}/{} vs {}/{})", a.shard_index, a.shard_count, b.shard_index, b.shard_count);
  }
  // the same --shard over another image list, or cut by another rule (before shards were balanced
  // by images they were cut at batch boundaries)
  if (!merge && (a.first_image != b.first_image || a.last_image != b.last_image)) {
    return fmt::format("the images of the shard ({}..{} vs {}..{})", a.first_image, a.last_image, b.first_image,
                       b.last_image);
  }
  return {};
}

std::vector<std::string> features_files(const fs::path& output, const std::string& directory) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(output / directory, ec)) {
    const std::string name = entry.path().filename().string();
    const bool temporary = name.find(".tmp") != std::string::npos || name.find(".partial") != std::string::npos ||
                           name.find(".journal") != std::string::npos;
    if (name.rfind("features", 0) == 0 && !temporary && entry.is_regular_file()) {
      files.push_back(directory + "/" + name);
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

/// True when `directory` holds final features files and no writer journal: its commit finished
/// although the run journal did not record it (killed in between).
bool committed_without_record(const fs::path& directory) {
  bool final_file = false;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".journal") != std::string::npos) return false;
    if (name.rfind("features", 0) == 0 && name.find(".partial") == std::string::npos) final_file = true;
  }
  return final_file;
}

/// Removes the writer journals (names holding ".journal") in a module directory.
void remove_journal_files(const fs::path& directory) {
  std::error_code ec;
  std::vector<fs::path> journals;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    if (entry.path().filename().string().find(".journal") != std::string::npos) journals.push_back(entry.path());
  }
  for (const auto& file : journals) fs::remove(file, ec);
}

/// Removes what an earlier run wrote into `output` (only our own names).
void remove_previous_outputs(const fs::path& output, const std::vector<std::string>& directories) {
  std::error_code ec;
  for (const char* name : {"manifest.json", "file_names.txt", journal_name}) fs::remove(output / name, ec);
  for (const auto& directory : directories) {
    const std::string top = directory.substr(0, directory.find('/'));
    if (!top.empty() && top != "." && top != "..") fs::remove_all(output / top, ec);
  }
}

/// Checks the output directory's state; returns the existing manifest when one is there.
std::optional<Manifest> check_output_directory(const fs::path& output, bool resume, bool overwrite) {
  const fs::path manifest_file = output / "manifest.json";
  if (!fs::exists(manifest_file)) return std::nullopt;
  Manifest previous = read_manifest(manifest_file);
  if (overwrite) return previous;
  if (previous.status == "complete" && !resume) {
    throw Error(ErrorKind::usage,
                fmt::format("--out: '{}' holds a finished extraction; pass --overwrite to replace it or "
                            "choose another directory", output.string()));
  }
  if (previous.status != "complete" && !resume) {
    // An unfinished run that made nothing durable (it stopped at its first batch, e.g. at a bad image
    // without --skip-bad) holds nothing to continue: it is replaced, whatever the options now.
    const JournalState state = read_journal(output / journal_name, 0);
    if (state.rows == 0 && state.bad.empty() && !state.committing) return previous;
    throw Error(ErrorKind::usage,
                fmt::format("--out: '{}' holds an unfinished extraction; pass --resume to continue it or "
                            "--overwrite to start again", output.string()));
  }
  return previous;
}

/// Without --skip-bad: `e` (a bad image) with the flag that leaves such images out.
Error with_skip_bad_hint(const Error& e) {
  return Error(e.kind(), fmt::format("{}; pass --skip-bad to leave unreadable images out", e.what()));
}

/// Without --skip-bad, before the first forward pass: the header checks of images [first, last) of
/// an image folder (check_image_header). Throws Error(input) naming the bad ones (10 at most) and --skip-bad.
void check_image_headers(const ImageDataset& dataset, std::size_t first, std::size_t last) {
  constexpr std::size_t named = 10;
  std::vector<std::string> bad;
  std::size_t count = 0;
  for (std::size_t i = first; i < last; ++i) {
    try {
      check_image_header(dataset[i].path);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::input && e.kind() != ErrorKind::io) throw;
      if (++count <= named) bad.push_back(e.what());
    }
  }
  if (count == 0) return;
  std::string list;
  for (const auto& text : bad) list += (list.empty() ? "" : "; ") + text;
  if (count > named) list += fmt::format("; and {} more", count - named);
  throw Error(ErrorKind::input, fmt::format("{} of {} images cannot be read: {}; pass --skip-bad to leave them out",
                                            count, last - first, list));
}

/// Free bytes on the file system holding `directory` (test hook: TV_FAKE_FREE_BYTES overrides).
double free_bytes(fs::path directory) {
  if (const char* fake = std::getenv("TV_FAKE_FREE_BYTES")) return std::atof(fake);
  while (!directory.empty() && !fs::exists(directory)) directory = directory.parent_path();
  if (directory.empty()) directory = ".";
  struct statvfs info {};
  if (::statvfs(directory.c_str(), &info) != 0) return -1;
  return static_cast<double>(info.f_bavail) * static_cast<double>(info.f_frsize);
}

double bytes_per_value(OutputFormat format, DataType dtype) {
  if (format == OutputFormat::txt) return 26.0;  // "%.18e" + separator
  switch (dtype) {
    case DataType::float16: return 2;
    case DataType::float32: return 4;
    case DataType::float64: return 8;
  }
  return 4;
}

/// Runs `work` on each pushed job on a thread of its own, one at a time and in push order, with at
/// most `capacity` jobs waiting: the writes of one batch overlap the next forward pass while the
/// activations held stay bounded. `work` returns false to stop taking jobs (a stop signal).
template <typename Job>
class BackgroundWorker {
 public:
  using Work = std::function<bool(Job&)>;
  BackgroundWorker(std::size_t capacity, Work work)
      : capacity_(std::max<std::size_t>(1, capacity)), work_(std::move(work)), thread_([this] { run(); }) {}
  ~BackgroundWorker() { stop(); }
  BackgroundWorker(const BackgroundWorker&) = delete;
  BackgroundWorker& operator=(const BackgroundWorker&) = delete;

  /// Queues `job`, blocking while `capacity` jobs wait; false once the worker has stopped (by
  /// `work` returning false or throwing: then stop() and rethrow()).
  bool push(Job job) {
    std::unique_lock<std::mutex> lock(mutex_);
    space_.wait(lock, [&] { return queue_.size() < capacity_ || done_; });
    if (done_) return false;
    queue_.push_back(std::move(job));
    ready_.notify_one();
    return true;
  }
  /// Waits until every queued job is done, ends the thread and rethrows a job's error.
  void finish() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    ready_.notify_one();
    if (thread_.joinable()) thread_.join();
    rethrow();
  }
  /// Ends the thread after the job in progress; jobs still waiting are dropped.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
      queue_.clear();
    }
    ready_.notify_one();
    space_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  /// Rethrows the error a job threw (call after finish() or stop()).
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void run() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [&] { return !queue_.empty() || closing_ || done_; });
        if (done_ || queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      space_.notify_one();
      bool go_on = false;
      try {
        go_on = work_(job);
      } catch (...) {
        error_ = std::current_exception();
      }
      if (!go_on) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_ = true;
        queue_.clear();
        space_.notify_all();
        return;
      }
    }
  }

  const std::size_t capacity_;
  Work work_;
  std::mutex mutex_;
  std::condition_variable ready_;  // a job is waiting, or closing_/done_
  std::condition_variable space_;  // the queue has room, or done_
  std::deque<Job> queue_;
  bool closing_ = false;  // finish(): end once the queue is empty
  bool done_ = false;     // stopped: take no more jobs
  std::exception_ptr error_;
  std::thread thread_;  // last: starts once the members above exist
};

/// One forward pass's activations on their way to the writers and the journal.
struct WriteJob {
  std::vector<Activations> acts;
  /// The activations while the device still computes them (Model::extract_async on CUDA): the
  /// writer thread waits for them, so the next batch is queued meanwhile.
  std::future<std::vector<Activations>> pending;
  std::size_t num_images = 0;
  std::size_t first_index = 0, last_index = 0;  // dataset indices of the batch's first/last image
  std::size_t next_index = 0;                   // where the next batch starts (journal)
  std::string bad_lines;                        // journal lines of images found bad meanwhile
};

/// Whether the probe kept the optimized graph for `modules` (Model::optimization_status).
ManifestOptimization optimization_record(Model& model, const std::vector<std::string>& modules,
                                         const ExtractOptions& extract_options, bool optimize) {
  ManifestOptimization record;
  record.modules = modules;
  if (!optimize) {
    record.reason = "--no-optimize";
    return record;
  }
  OptimizationStatus status;
  try {
    status = model.optimization_status(modules, extract_options);
  } catch (const Error& e) {
    record.reason = e.what();
    return record;
  }
  using State = OptimizationStatus::State;
  switch (status.state) {
    case State::kept:
      record.graph = "optimized";
      record.reason = status.reason;
      break;
    case State::unchecked: record.reason = "unchecked: " + status.reason; break;
    case State::dropped: record.reason = "dropped: " + status.reason; break;
    case State::not_requested:
    case State::not_supported: record.reason = "not supported by this model's backend"; break;
  }
  return record;
}

/// Decoding threads when --decode-threads is not given. On the CPU they take cores from the
/// forward pass, which needs ~10–30× more time per image: half the threads, 1 to 4 (on 2 cores,
/// 1 decoder kept up as well as 2 for resnet18 layer2/avgpool). On CUDA the GPU computes and the
/// CPU mostly decodes (a GPU runs resnet50 faster than 4 cores decode JPEGs): all threads but one.
int default_decode_threads(int threads, const Device& device) {
  return device.is_cuda() ? std::max(threads - 1, 1) : std::clamp(threads / 2, 1, 4);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

ImageBatch one_image_batch(const TransformedImage& image, std::size_t index) {
  ImageBatch batch;
  batch.num_images = 1;
  batch.channels = image.channels;
  batch.height = image.height;
  batch.width = image.width;
  batch.pixels = image.values;
  batch.indices = {index};
  return batch;
}

struct LoadedModel {
  Model model;
  ModelSidecar sidecar;
  bool has_sidecar = false;
};

/// Loads --model with its sidecar (if any). The entry method: --entry-method, else (--text)
/// "encode_text", else the sidecar's, else Model::load's choice ("encode_image" for a CLIP archive).
LoadedModel load_model(const ExtractionOptions& options, int threads, bool text = false) {
  if (options.model_file.empty()) throw Error(ErrorKind::usage, "--model is required");
  if (!fs::is_regular_file(options.model_file)) {
    throw Error(ErrorKind::usage, fmt::format("--model: no such file '{}'", options.model_file.string()));
  }
  ModelSidecar sidecar;
  const fs::path json = sidecar_path(options.model_file);
  const bool has_sidecar = fs::is_regular_file(json);
  if (has_sidecar) sidecar = read_model_sidecar(json);
  ModelOptions model_options;
  model_options.device = options.device;
  model_options.backend = options.backend;
  model_options.entry_method = !options.entry_method.empty() ? options.entry_method
                               : text                          ? std::string("encode_text")
                                                               : sidecar.entry_method;
  model_options.num_threads = threads;
  model_options.optimize = options.optimize;
  const auto layout = [](const std::string& value) {  // read_model_sidecar accepts only these
    return value == "nhwc" ? TensorLayout::nhwc : value == "nchw" ? TensorLayout::nchw : TensorLayout::automatic;
  };
  model_options.input_layout = layout(sidecar.input_layout);
  model_options.native_layout = layout(sidecar.native_layout);
  return LoadedModel{Model::load(options.model_file, model_options), sidecar, has_sidecar};
}

}  // namespace

/// The manifest fields that image and text runs fill alike: versions, command line, model, device,
/// row shaping, output format, batch size and threads.
Manifest job_manifest(const ExtractionOptions& options, const LoadedModel& loaded, const std::string& model_sha256,
                      const RowOptions& row_options, int threads) {
  Manifest manifest;
  manifest.tool_version = version_string();
  manifest.torch_version = torch_version_string();
  manifest.command_line = options.command_line;
  manifest.model_path = options.model_file.string();
  manifest.model_sha256 = model_sha256;
  manifest.architecture = loaded.sidecar.architecture;
  manifest.device = options.device.to_string();
  manifest.backend = to_string(resolve_backend(options.model_file, options.backend));
  manifest.format = to_string(options.format);
  manifest.dtype = to_string(options.dtype);
  manifest.flatten = options.flatten;
  manifest.pool = to_string(options.pool);
  manifest.token = to_string(row_options.token);
  manifest.random_projection = options.random_projection;
  manifest.seed = options.seed;
  manifest.n_splits = options.n_splits;
  manifest.batch_size = static_cast<std::int64_t>(options.batch_size);
  manifest.threads = threads;
  manifest.blas_threads = blas_threads_for(threads);
  const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
  manifest.openmp_wait_policy = wait_policy != nullptr ? wait_policy : "";
  return manifest;
}

Transform resolve_transform(const ExtractionOptions& options, std::string* source, const ModelTraits* model) {
  Transform t;
  const fs::path json = sidecar_path(options.model_file);
  std::string from;
  if (!options.preset.empty()) {
    try {
      t = Transform::preset(options.preset);
    } catch (const Error& e) {
      throw Error(ErrorKind::usage, std::string("--preset: ") + e.what());
    }
    from = "preset " + options.preset;
  } else if (!options.model_file.empty() && fs::is_regular_file(json)) {
    t = Transform::from_sidecar(json);
    from = "sidecar " + json.string();
  } else if (model != nullptr && model->clip_archive) {  // OpenAI's clip.load: _transform(input_resolution)
    t = Transform::preset("clip");
    if (model->input_resolution > 0) t.resize_size = t.crop_height = t.crop_width = model->input_resolution;
    from = fmt::format("CLIP archive: preset clip at {} px{}", t.crop_height,
                       model->input_resolution > 0 ? " (its input_resolution)" : " (it records no input_resolution)");
  } else {
    t = Transform::preset("thingsvision");
    from = "preset thingsvision";
  }
  if (options.resize_size) {
    if (*options.resize_size < 0) throw Error(ErrorKind::usage, "--resize must be >= 0 (0 = no resize)");
    t.resize_mode = *options.resize_size == 0 ? ResizeMode::none : ResizeMode::shorter_side;
    t.resize_size = *options.resize_size;
  }
  if (options.crop_size) {
    if (*options.crop_size < 0) throw Error(ErrorKind::usage, "--crop must be >= 0 (0 = no crop)");
    t.crop_height = t.crop_width = *options.crop_size;
  }
  if (options.interpolation) t.interpolation = *options.interpolation;
  if (options.mean_rgb) t.mean_rgb = *options.mean_rgb;
  if (options.std_rgb) {
    for (float s : *options.std_rgb) {
      if (!(s > 0)) throw Error(ErrorKind::usage, "--std: every value must be > 0");
    }
    t.std_rgb = *options.std_rgb;
  }
  if (options.resize_size || options.crop_size || options.interpolation || options.mean_rgb || options.std_rgb) {
    from += " + flags";
  }
  if (source) *source = from;
  return t;
}

// ---------------------------------------------------------------------------------------------
// run_extraction
// ---------------------------------------------------------------------------------------------

namespace {

/// The prompts of a --text file: one per line, a final newline ends the last; "\r\n" accepted.
std::vector<std::string> read_prompts(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(ErrorKind::usage, fmt::format("--text: cannot open '{}'", file.string()));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  std::vector<std::string> prompts;
  std::size_t start = 0;
  while (start < bytes.size()) {
    std::size_t end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    std::string line = bytes.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) {
      throw Error(ErrorKind::usage, fmt::format("--text '{}' line {} is empty (one prompt per line)",
                                                file.string(), prompts.size() + 1));
    }
    prompts.push_back(std::move(line));
    start = end + 1;
  }
  if (prompts.empty()) throw Error(ErrorKind::usage, fmt::format("--text '{}' holds no prompt", file.string()));
  return prompts;
}

/// tv-extract --text: encode_text of each prompt → OUT/encode_text/features.<ext>, manifest.json.
ExtractionResult run_text_extraction(const ExtractionOptions& options) {
  const auto start_time = std::chrono::steady_clock::now();
  if (!options.images.empty()) throw Error(ErrorKind::usage, "--text and --images exclude each other");
  if (options.output.empty()) throw Error(ErrorKind::usage, "--out is required");
  if (!options.modules.empty()) {
    throw Error(ErrorKind::usage, "--module does not apply to --text (the features are encode_text's output)");
  }
  if (!options.hdf5_key.empty() || !options.indices.empty() || !options.file_list.empty() ||
      !options.class_names.empty()) {
    throw Error(ErrorKind::usage, "--hdf5-key, --indices, --file-names and --class-names need --images, not --text");
  }
  if (options.resume || options.shard_count != 1 || options.all_calls) {
    throw Error(ErrorKind::usage, "--resume, --shard and --all-calls do not apply to --text");
  }
  if (options.batch_size == 0) throw Error(ErrorKind::usage, "--batch-size must be at least 1");
  if (options.n_splits < 1) throw Error(ErrorKind::usage, "--n-splits must be at least 1");
  if (options.random_projection < 0) throw Error(ErrorKind::usage, "--random-projection must be >= 1");
  if (options.num_threads < 0) throw Error(ErrorKind::usage, "--threads must be >= 1 (0 = all available CPUs)");
  if (!fs::is_regular_file(options.text)) {
    throw Error(ErrorKind::usage, fmt::format("--text: no such file '{}'", options.text.string()));
  }
  const fs::path& out = options.output;
  if (auto previous = check_output_directory(out, false, options.overwrite)) {
    std::vector<std::string> directories;
    for (const auto& m : previous->modules) directories.push_back(m.directory);
    remove_previous_outputs(out, directories);
  }
  if (resolve_backend(options.model_file, options.backend) == ModelBackendKind::libtorch) preload_torch_runtime();

  // Tokenize every prompt first: a prompt that does not fit is a usage error naming its line.
  const std::vector<std::string> prompts = read_prompts(options.text);
  const ClipTokenizer tokenizer = options.vocabulary.empty() ? ClipTokenizer() : ClipTokenizer(options.vocabulary);
  const std::size_t context = ClipTokenizer::default_context_length;
  std::vector<std::int64_t> ids;
  ids.reserve(prompts.size() * context);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    try {
      const TokenIds row = tokenizer.tokenize({prompts[i]}, context);
      ids.insert(ids.end(), row.ids.begin(), row.ids.end());
    } catch (const Error& e) {
      throw Error(e.kind(), fmt::format("--text '{}' line {}: {}", options.text.string(), i + 1, e.what()));
    }
  }

  const int threads = options.num_threads > 0 ? options.num_threads : available_cpus();
  LoadedModel loaded = load_model(options, threads, /*text=*/true);
  const std::string method = loaded.model.traits().entry_method;
  const std::string directory = method;
  RowOptions row_options;
  row_options.pool = options.pool;
  row_options.token = options.token ? *options.token : TokenMode::none;
  row_options.flatten = options.flatten;
  row_options.projection = options.random_projection;
  row_options.seed = options.seed;

  Manifest manifest = job_manifest(options, loaded, sha256_file(options.model_file), row_options, threads);
  manifest.entry_method = method;
  manifest.text_file = options.text.string();
  manifest.text_sha256 = sha256_file(options.text);
  manifest.module_requests = {method};
  manifest.first_image = 0;
  manifest.last_image = static_cast<std::int64_t>(prompts.size());
  manifest.dataset_images = static_cast<std::int64_t>(prompts.size());
  manifest.preprocessing = "CLIP tokenizer " + tokenizer.vocabulary_path().string();

  WriterOptions writer_options;
  writer_options.dtype = options.dtype;
  writer_options.mat_version = options.mat_version;
  writer_options.n_splits = options.n_splits;
  writer_options.mat_variable_per_image = options.mat_variable_per_image;
  writer_options.attributes = {{"model", options.model_file.filename().string()},
                               {"model_sha256", manifest.model_sha256},
                               {"module", method},
                               {"text_file", manifest.text_file},
                               {"text_sha256", manifest.text_sha256}};
  std::unique_ptr<FeatureWriter> writer;
  for (std::size_t first = 0; first < prompts.size(); first += options.batch_size) {
    const std::size_t n = std::min(options.batch_size, prompts.size() - first);
    const std::vector<std::int64_t> batch(ids.begin() + static_cast<std::ptrdiff_t>(first * context),
                                          ids.begin() + static_cast<std::ptrdiff_t>((first + n) * context));
    Activations a = loaded.model.encode_text(batch, static_cast<std::int64_t>(n),
                                             static_cast<std::int64_t>(context), method);
    const std::vector<std::int64_t> activation_shape(a.shape.begin() + 1, a.shape.end());
    shape_rows(a, row_options);
    if (!writer) {
      const std::vector<std::int64_t> row_shape(a.shape.begin() + 1, a.shape.end());
      writer = open_feature_writer(options.format, out / directory, row_shape, writer_options);
      ManifestModule m;
      m.name = method;
      m.directory = directory;
      m.activation_shape = activation_shape;
      m.row_shape = row_shape;
      manifest.modules.push_back(m);
      write_manifest(out / "manifest.json", manifest);
    }
    writer->append_batch(a.values.data(), a.shape);
  }
  writer->commit(prompts);
  write_lines(out / "file_names.txt", prompts);
  manifest.modules[0].files = features_files(out, directory);
  manifest.num_images = static_cast<std::int64_t>(prompts.size());
  manifest.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  manifest.status = "complete";
  write_manifest(out / "manifest.json", manifest);

  ExtractionResult result;
  result.output = out;
  result.text = true;
  result.num_images = prompts.size();
  result.modules = {directory};
  result.seconds = manifest.seconds;
  result.extract_seconds = manifest.seconds;
  return result;
}

}  // namespace

ExtractionResult run_extraction(const ExtractionOptions& options, const ProgressCallback& progress,
                                const MessageCallback& message) {
  const auto start_time = std::chrono::steady_clock::now();
  const auto elapsed = [&]() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  };
  const auto say = [&](const std::string& text) {
    if (message) message(text);
  };

  // --- arguments --------------------------------------------------------------------------------
  if (!options.text.empty()) return run_text_extraction(options);
  if (options.output.empty()) throw Error(ErrorKind::usage, "--out is required");
  if (options.images.empty()) throw Error(ErrorKind::usage, "--images is required");
  if (!options.hdf5_key.empty()) {
    if (!fs::is_regular_file(options.images)) {
      throw Error(ErrorKind::usage, fmt::format("--images: no such HDF5 file '{}' (with --hdf5-key)", options.images.string()));
    }
  } else if (!options.indices.empty()) {
    throw Error(ErrorKind::usage, "--indices needs --hdf5-key (it selects images of an HDF5 array)");
  } else if (!fs::is_directory(options.images)) {
    throw Error(ErrorKind::usage, fmt::format("--images: no such directory '{}'", options.images.string()));
  }
  if (options.batch_size == 0) throw Error(ErrorKind::usage, "--batch-size must be at least 1");
  if (options.n_splits < 1) throw Error(ErrorKind::usage, "--n-splits must be at least 1");
  if (options.shard_count < 1 || options.shard_index < 0 || options.shard_index >= options.shard_count) {
    throw Error(ErrorKind::usage, fmt::format("--shard: {}/{} is not I/N with 0 <= I < N",
                                              options.shard_index, options.shard_count));
  }
  if (options.resume && options.overwrite) {
    throw Error(ErrorKind::usage, "--resume and --overwrite exclude each other");
  }
  if (options.random_projection < 0) throw Error(ErrorKind::usage, "--random-projection must be >= 1");
  if (options.num_threads < 0) throw Error(ErrorKind::usage, "--threads must be >= 1 (0 = all available CPUs)");
  if (options.modules.empty()) {
    throw Error(ErrorKind::usage, "--module is required (see --list-modules for the names)");
  }

  const fs::path& out = options.output;
  std::optional<Manifest> previous = check_output_directory(out, options.resume, options.overwrite);
  const bool resuming = options.resume && previous.has_value();
  StopSignals stop_signals(out);
  // LibTorch starts (~0.4 s, one core) on a thread while the images are listed and checked and the
  // loader decodes the first batches; load_model waits for what is left of it.
  if (resolve_backend(options.model_file, options.backend) == ModelBackendKind::libtorch) preload_torch_runtime();
  // The model file's SHA-256 (manifest.json) is computed on another core while the images are
  // checked and the model loads (a ViT-B/16 file: ~0.7 s of hashing).
  std::future<std::string> model_sha256_hash =
      std::async(std::launch::async, [file = options.model_file] { return sha256_file(file); });

  // --- preprocessing and dataset, then the model ---------------------------------------------------
  // The image folder (or HDF5 store) and the sidecar are read before the model: a bad folder fails
  // before a long model load, and a fresh run starts decoding its first batches on the loader's
  // threads while the model loads (load_model is mostly one thread).
  const int threads = options.num_threads > 0 ? options.num_threads : available_cpus();
  const auto load_start = std::chrono::steady_clock::now();
  DatasetOptions dataset_options;
  dataset_options.file_list = options.file_list;
  dataset_options.class_names = options.class_names;
  const ImageDataset dataset =
      options.hdf5_key.empty()
          ? ImageDataset::open(options.images, dataset_options)
          : ImageDataset::open_hdf5(options.images, options.hdf5_key,
                                    options.indices.empty()
                                        ? std::vector<std::size_t>{}
                                        : parse_index_selection(options.indices, ImageDataset::hdf5_image_count(
                                                                                     options.images, options.hdf5_key)));
  const auto [first_image, last_image] =
      shard_range(dataset.size(), options.shard_index, options.shard_count);
  if (!options.skip_bad_images && !resuming && !dataset.is_hdf5_store()) {
    check_image_headers(dataset, first_image, last_image);  // before anything is written
  }
  std::string transform_source;
  Transform transform = resolve_transform(options, &transform_source);
  DataLoaderOptions loader_options;
  loader_options.batch_size = options.batch_size;
  loader_options.num_workers =
      options.decode_threads > 0 ? options.decode_threads : default_decode_threads(threads, options.device);
  loader_options.first_index = first_image;
  loader_options.last_index = last_image;
  loader_options.skip_bad_images = options.skip_bad_images;
  // A resumed run starts where its journal ends (read below): its loader starts there, later.
  std::optional<DataLoader> loader;
  if (!resuming && first_image < last_image) loader.emplace(dataset, transform, loader_options);

  const double runtime_wait_before = torch_runtime_timing().wait_seconds;
  LoadedModel loaded = load_model(options, threads);
  const TorchRuntimeTiming runtime_timing = torch_runtime_timing();
  Model& model = loaded.model;
  const std::string model_label = options.model_file.filename().string();
  // A CLIP archive without a sidecar or --preset is preprocessed as clip.py does at its own
  // input_resolution, known only now: the loader (decoding since before the load) starts again.
  if (model.traits().clip_archive && !loaded.has_sidecar && options.preset.empty()) {
    const bool restart = loader.has_value();
    loader.reset();
    transform = resolve_transform(options, &transform_source, &model.traits());
    if (restart) loader.emplace(dataset, transform, loader_options);
  }
  if (model.traits().clip_archive && !loaded.has_sidecar && options.entry_method.empty()) {
    say(fmt::format("'{}' is a CLIP archive without a sidecar (encode_image, encode_text, forward(image, text)): "
                    "extracting from encode_image, preprocessing: {} (--entry-method and --preset override)",
                    model_label, transform_source));
  }
  const std::vector<std::string> modules = select_modules(options.modules, model.module_names(), model_label);
  const std::string model_sha256 = model_sha256_hash.get();
  if (loaded.has_sidecar && !loaded.sidecar.sha256.empty() && loaded.sidecar.sha256 != model_sha256) {
    say(fmt::format("warning: sidecar '{}' was written for another file (SHA-256 {}…, model has {}…)",
                    sidecar_path(options.model_file).string(), loaded.sidecar.sha256.substr(0, 12),
                    model_sha256.substr(0, 12)));
  }
  RowOptions row_options;
  row_options.token = options.token ? *options.token
                      : loaded.sidecar.token_mode.empty() ? TokenMode::none
                                                          : parse_token_mode(loaded.sidecar.token_mode);
  row_options.pool = options.pool;
  row_options.flatten = options.flatten;
  row_options.projection = options.random_projection;
  row_options.seed = options.seed;
  ExtractOptions extract_options;
  extract_options.calls = options.all_calls ? ModuleCalls::all : ModuleCalls::last;
  // Pooling averages or maxes each channel over dims 2..: take 4-D outputs as N x C x H x W then,
  // whatever the native layout (the pooled N x C rows are the same in both layouts).
  extract_options.layout = options.pool != Pooling::none ? OutputLayout::nchw : options.layout;

  // --- probe one image: output shapes and the disk-space estimate --------------------------------
  std::vector<Output> outputs;
  {
    std::vector<Activations> probe;
    std::string first_error;
    for (std::size_t i = first_image < last_image ? first_image : 0; i < dataset.size(); ++i) {
      try {
        const TransformedImage image = apply_transform(transform, dataset.load_image(i));
        probe = model.extract(one_image_batch(image, i), modules, extract_options);
        break;
      } catch (const Error& e) {
        const bool skippable = e.kind() == ErrorKind::input || e.kind() == ErrorKind::io;
        if (!skippable) throw;
        if (!options.skip_bad_images) throw with_skip_bad_hint(e);
        if (first_error.empty()) first_error = e.what();
      }
    }
    if (probe.empty()) {
      throw Error(ErrorKind::input, fmt::format("no readable image in '{}' ({})", options.images.string(), first_error));
    }
    for (auto& a : probe) {
      if (a.shape.size() < 2 || a.shape[0] != 1) {
        throw Error(ErrorKind::model, fmt::format("module '{}' of {} gives an output of shape {} for one image; "
                                                  "rows need a batch dimension first", a.module_name, model_label,
                                                  shape_text(a.shape)));
      }
      Output o;
      o.module_name = a.module_name;
      o.call_index = options.all_calls ? a.call_index : -1;
      o.directory = escape_module_name(a.module_name);
      if (options.all_calls) o.directory += "/call_" + std::to_string(a.call_index);
      o.activation_shape.assign(a.shape.begin() + 1, a.shape.end());
      shape_rows(a, row_options);
      o.row_shape.assign(a.shape.begin() + 1, a.shape.end());
      outputs.push_back(std::move(o));
    }
  }
  // Model load, graph cut and (with optimize) freezing and its check, all done by the probe.
  const double load_seconds = seconds_since(load_start);
  const ManifestOptimization optimization = optimization_record(model, modules, extract_options, options.optimize);

  // --- manifest (running) ------------------------------------------------------------------------
  Manifest manifest = job_manifest(options, loaded, model_sha256, row_options, threads);
  manifest.entry_method = model.traits().entry_method;
  manifest.images_root = options.images.string();
  manifest.file_list = options.file_list.string();
  manifest.hdf5_key = options.hdf5_key;
  manifest.indices = options.indices;
  manifest.class_names = dataset.class_names();
  manifest.module_requests = options.modules;
  for (const auto& o : outputs) {
    ManifestModule m;
    m.name = o.module_name;
    m.directory = o.directory;
    m.call_index = o.call_index;
    m.activation_shape = o.activation_shape;
    m.row_shape = o.row_shape;
    manifest.modules.push_back(m);
  }
  manifest.all_calls = options.all_calls;
  manifest.shard_index = options.shard_index;
  manifest.shard_count = options.shard_count;
  manifest.first_image = static_cast<std::int64_t>(first_image);
  manifest.last_image = static_cast<std::int64_t>(last_image);
  manifest.dataset_images = static_cast<std::int64_t>(dataset.size());
  describe_transform(transform, manifest);
  manifest.preprocessing_source = transform_source;
  manifest.layout = options.layout == OutputLayout::nchw ? "nchw" : "native";
  if (!loaded.sidecar.input_layout.empty()) manifest.input_layout = loaded.sidecar.input_layout;
  if (!loaded.sidecar.native_layout.empty()) manifest.native_layout = loaded.sidecar.native_layout;
  manifest.optimization = {optimization};

  stop_signals.writing_starts();  // a stop signal now ends the run after its next durable batch
  if (resuming) {
    const bool complete = previous->status == "complete";
    const std::string difference = job_difference(*previous, manifest, false);
    if (!difference.empty()) {
      throw Error(ErrorKind::usage,
                  fmt::format("--resume: the {} run in '{}' differs in {}; pass the same options, "
                              "or --overwrite to start again", complete ? "finished" : "unfinished",
                              out.string(), difference));
    }
    if (complete) {
      ExtractionResult done;
      done.output = out;
      done.num_images = static_cast<std::size_t>(previous->num_images);
      for (const auto& m : previous->modules) done.modules.push_back(m.directory);
      for (const auto& s : previous->skipped) done.skipped.emplace_back(s.path, s.reason);
      done.already_complete = true;
      return done;
    }
  } else {
    if (previous) {
      std::vector<std::string> old_directories;
      for (const auto& m : previous->modules) old_directories.push_back(m.directory);
      remove_previous_outputs(out, old_directories);
    }
    std::error_code ec;
    fs::create_directories(out, ec);
    if (ec || !fs::is_directory(out)) {
      throw Error(ErrorKind::io, fmt::format("--out: cannot create '{}': {}", out.string(), ec.message()));
    }
  }

  JournalState state = resuming ? read_journal(out / journal_name, first_image) : JournalState{};
  if (!resuming) state.next_index = first_image;

  // --- disk space --------------------------------------------------------------------------------
  if (options.check_disk_space) {
    double bytes_per_image = 0;
    for (const auto& o : outputs) {
      double values = 1;
      for (auto d : o.row_shape) values *= static_cast<double>(d);
      bytes_per_image += values * bytes_per_value(options.format, options.dtype);
    }
    const double remaining = static_cast<double>(last_image - std::min(last_image, state.next_index));
    const double needed = 2.0 * bytes_per_image * remaining;  // journal + final file while committing
    const double available = free_bytes(out);
    if (available >= 0 && needed > available) {
      throw Error(ErrorKind::io,
                  fmt::format("--out: the features need about {} ({} per image × {} images, twice while "
                              "committing) but '{}' has {} free; use --pool, --random-projection or "
                              "--dtype float16, or pass --no-space-check",
                              human_bytes(needed), human_bytes(bytes_per_image), remaining, out.string(),
                              human_bytes(available)));
    }
  }
  write_manifest(out / "manifest.json", manifest);

  // --- writers -----------------------------------------------------------------------------------
  WriterOptions writer_options;
  writer_options.dtype = options.dtype;
  writer_options.n_splits = options.n_splits;
  writer_options.mat_version = options.mat_version;
  writer_options.mat_variable_per_image = options.mat_variable_per_image;
  writer_options.resume = resuming;
  std::vector<std::unique_ptr<FeatureWriter>> writers(outputs.size());
  std::vector<std::size_t> skip_rows(outputs.size(), 0);
  for (std::size_t w = 0; w < outputs.size(); ++w) {
    if (state.committed.count(outputs[w].directory)) continue;
    if (state.committing && committed_without_record(out / outputs[w].directory)) continue;
    WriterOptions wo = writer_options;
    wo.attributes = {{"model", model_label},
                     {"model_sha256", model_sha256},
                     {"module", outputs[w].module_name},
                     {"thingsvision_cpp_version", version_string()},
                     {"torch_version", torch_version_string()},
                     {"preprocessing", transform.describe()}};
    writers[w] = open_feature_writer(options.format, out / outputs[w].directory, outputs[w].row_shape, wo);
    const std::size_t have = writers[w]->rows_written();
    if (have < state.rows) {
      throw Error(ErrorKind::input,
                  fmt::format("--resume: '{}' holds {} rows but the run journal records {}; pass --overwrite "
                              "to start again", (out / outputs[w].directory).string(), have, state.rows));
    }
    skip_rows[w] = have - state.rows;
  }

  // --- the loop ----------------------------------------------------------------------------------
  const FaultHook fault;
  Journal journal(out / journal_name);
  std::map<std::pair<std::string, int>, std::size_t> output_of;
  for (std::size_t w = 0; w < outputs.size(); ++w) output_of[{outputs[w].module_name, outputs[w].call_index}] = w;
  const std::size_t images_total = last_image - first_image;
  std::size_t bad_recorded = 0;
  long batches_done = 0;
  const auto record_bad = [&](const std::vector<BadImage>& bad) {
    std::string text;
    for (; bad_recorded < bad.size(); ++bad_recorded) {
      const BadImage& b = bad[bad_recorded];
      if (state.bad.count(b.index)) continue;
      say(fmt::format("skipped '{}': {}", b.relative_path, b.reason));
      state.bad[b.index] = {b.relative_path, b.reason};
      std::string reason = b.reason;
      std::replace(reason.begin(), reason.end(), '\n', ' ');
      text += fmt::format("S {}\t{}\t{}\n", b.index, b.relative_path, reason);
    }
    return text;
  };

  ManifestTiming& timing = manifest.timing;
  timing.load_seconds = load_seconds;
  timing.runtime_start_seconds = runtime_timing.start_seconds;
  timing.runtime_wait_seconds = runtime_timing.wait_seconds - runtime_wait_before;
  const auto extract_start = std::chrono::steady_clock::now();
  const std::size_t rows_before = state.rows, images_before = state.next_index - first_image;
  if (!state.committing && state.next_index < last_image) {
    if (!loader) {  // resumed: from the journal's next image
      loader_options.first_index = state.next_index;
      loader.emplace(dataset, transform, loader_options);
    }
    std::atomic<std::size_t> images_durable{state.next_index - first_image};
    const auto stopped_error = [&](int sig) {
      return Error(ErrorKind::io,
                   fmt::format("stopped by {} after {} of {} images; the finished batches are saved in '{}': "
                               "run the same command with --resume to continue",
                               sig == SIGTERM ? "SIGTERM" : "SIGINT", state.next_index - first_image,
                               images_total, out.string()));
    };
    // The writer thread: shapes the rows, appends them to every output, then records the batch
    // in the journal (so a batch is in the journal only once all its rows are written).
    const auto write_batch = [&](WriteJob& job) {
      if (job.pending.valid()) job.acts = job.pending.get();
      const std::size_t n = job.num_images;
      if (n > 0) {
        std::vector<bool> written(outputs.size(), false);
        for (auto& a : job.acts) {
          const auto it = output_of.find({a.module_name, options.all_calls ? a.call_index : -1});
          if (it == output_of.end()) {
            throw Error(ErrorKind::model, fmt::format("module '{}' gave a call {} that the first image did not; "
                                                      "its call count varies between inputs", a.module_name, a.call_index));
          }
          const std::size_t w = it->second;
          if (a.shape.empty()) throw Error(ErrorKind::model, fmt::format("module '{}' gave an empty shape", a.module_name));
          shape_rows(a, row_options);
          const std::vector<std::int64_t> row_shape(a.shape.begin() + 1, a.shape.end());
          if (a.num_rows() != static_cast<std::int64_t>(n) || row_shape != outputs[w].row_shape) {
            throw Error(ErrorKind::model,
                        fmt::format("module '{}' gave rows of shape {} for images {}..{}, but {} for the first image",
                                    a.module_name, shape_text(row_shape), job.first_index, job.last_index,
                                    shape_text(outputs[w].row_shape)));
          }
          written[w] = true;
          if (!writers[w]) continue;
          const std::size_t skip = std::min(skip_rows[w], n);
          skip_rows[w] -= skip;
          if (skip < n) writers[w]->append_rows(a.values.data() + skip * writers[w]->row_size(), n - skip);
          fault.at("module", batches_done);
        }
        if (std::find(written.begin(), written.end(), false) != written.end()) {
          throw Error(ErrorKind::model, "a module was not called for this batch; its call count varies between inputs");
        }
        state.rows += n;
      }
      state.next_index = job.next_index;
      journal.append(job.bad_lines + fmt::format("B {} {}\n", state.next_index, state.rows));
      ++batches_done;
      images_durable.store(state.next_index - first_image);
      fault.at("batch", batches_done);
      return g_stop_signal.load() == 0;  // a stop signal: end after this durable batch
    };
    // One batch waiting besides the one being written: two batches of activations at most.
    BackgroundWorker<WriteJob> writes(1, write_batch);
    std::size_t next_index = state.next_index;
    ImageBatch batch;
    for (;;) {
      auto clock = std::chrono::steady_clock::now();
      bool more = false;
      try {
        more = loader->next(batch);
      } catch (const Error& e) {
        const bool skippable = e.kind() == ErrorKind::input || e.kind() == ErrorKind::io;
        if (!skippable || options.skip_bad_images) throw;
        throw with_skip_bad_hint(e);
      }
      timing.input_wait_seconds += seconds_since(clock);
      if (!more) break;
      WriteJob job;
      job.num_images = static_cast<std::size_t>(batch.num_images);
      if (job.num_images > 0) {
        clock = std::chrono::steady_clock::now();
        // On CUDA this only queues the batch (forward_seconds is then the time to queue it; the
        // wait for the GPU shows as write_seconds); on the CPU it runs the forward pass.
        job.pending = model.extract_async(batch, modules, extract_options);
        timing.forward_seconds += seconds_since(clock);
      }
      // The loader cuts fixed windows of batch_size images from its first index (a window whose
      // images all failed is skipped): the next batch starts at the end of this one's window.
      if (!batch.indices.empty()) {
        job.first_index = batch.indices.front();
        job.last_index = batch.indices.back();
        const std::size_t window = (batch.indices.back() - loader_options.first_index) / options.batch_size;
        next_index = std::min(last_image, loader_options.first_index + (window + 1) * options.batch_size);
      }
      job.next_index = next_index;
      job.bad_lines = record_bad(loader->bad_images());
      clock = std::chrono::steady_clock::now();
      const bool queued = writes.push(std::move(job));
      timing.write_seconds += seconds_since(clock);
      const int sig = g_stop_signal.load();
      if (!queued || sig != 0) {
        writes.stop();
        writes.rethrow();
        throw stopped_error(sig != 0 ? sig : g_stop_signal.load());
      }
      if (progress) {
        ExtractionProgress p;
        p.images_done = images_durable.load();
        p.images_total = images_total;
        p.images_before = images_before;
        p.seconds = seconds_since(extract_start);
        progress(p);
      }
    }
    {
      const auto clock = std::chrono::steady_clock::now();
      writes.finish();
      timing.write_seconds += seconds_since(clock);
    }
    if (const int sig = g_stop_signal.load()) throw stopped_error(sig);
    if (progress) {
      ExtractionProgress p;
      p.images_done = state.next_index - first_image;
      p.images_total = images_total;
      p.images_before = images_before;
      p.seconds = seconds_since(extract_start);
      progress(p);
    }
    state.next_index = last_image;
    const auto clock = std::chrono::steady_clock::now();
    journal.append(record_bad(loader->bad_images()) + fmt::format("B {} {}\n", state.next_index, state.rows));
    timing.write_seconds += seconds_since(clock);
  }

  // --- commit ------------------------------------------------------------------------------------
  const std::vector<std::string> all_names = dataset.file_names(!dataset.class_names().empty());
  std::vector<std::string> names;
  for (std::size_t i = first_image; i < last_image; ++i) {
    if (!state.bad.count(i)) names.push_back(all_names[i]);
  }
  if (names.size() != state.rows) {
    throw Error(ErrorKind::internal,
                fmt::format("{} rows written for {} file names (internal error, please report)", state.rows, names.size()));
  }
  const auto commit_clock = std::chrono::steady_clock::now();
  journal.append("C\n");
  for (std::size_t w = 0; w < outputs.size(); ++w) {
    if (!writers[w]) continue;
    if (names.empty()) {
      // A shard without (readable) images is a finished, empty result: no features file, an empty
      // file_names.txt; tv-merge skips it.
      writers[w].reset();
      remove_journal_files(out / outputs[w].directory);
      write_lines(out / outputs[w].directory / "file_names.txt", {});
    } else {
      writers[w]->commit(names);
    }
    journal.append("M " + outputs[w].directory + "\n");
    fault.at("commit", batches_done);
  }
  write_lines(out / "file_names.txt", names);
  timing.write_seconds += seconds_since(commit_clock);
  timing.extract_seconds = seconds_since(extract_start);
  for (std::size_t w = 0; w < outputs.size(); ++w) manifest.modules[w].files = features_files(out, outputs[w].directory);
  manifest.num_images = static_cast<std::int64_t>(names.size());
  for (const auto& [index, bad] : state.bad) manifest.skipped.push_back({bad.first, bad.second});
  manifest.seconds = elapsed();
  manifest.status = "complete";
  write_manifest(out / "manifest.json", manifest);
  journal.remove();

  ExtractionResult result;
  result.output = out;
  result.num_images = names.size();
  for (const auto& o : outputs) result.modules.push_back(o.directory);
  for (const auto& [index, bad] : state.bad) result.skipped.emplace_back(bad.first, bad.second);
  result.seconds = manifest.seconds;
  result.load_seconds = load_seconds;
  result.extract_seconds = timing.extract_seconds;
  result.images_before = std::min(rows_before, names.size());
  return result;
}

// ---------------------------------------------------------------------------------------------
// --list-modules, --show-model
// ---------------------------------------------------------------------------------------------

std::vector<ModuleListing> list_modules(const ExtractionOptions& options) {
  ExtractionOptions plain = options;
  plain.optimize = false;  // one image per module set: optimizing would cost more than it saves
  LoadedModel loaded = load_model(plain, options.num_threads > 0 ? options.num_threads : available_cpus());
  const Transform transform = resolve_transform(options, nullptr, &loaded.model.traits());
  Image grey;
  grey.width = grey.height = 256;
  grey.pixels.assign(256 * 256 * 3, 128);
  const ImageBatch batch = one_image_batch(apply_transform(transform, grey), 0);
  std::vector<ModuleListing> listing;
  std::vector<std::string> names;
  for (const auto& info : loaded.model.modules()) {
    listing.push_back({info.name, info.type, {}});
    names.push_back(info.name);
  }
  const auto fill = [&](const std::vector<Activations>& acts) {
    for (const auto& a : acts) {
      for (auto& l : listing) {
        if (l.name == a.module_name) l.output_shape.assign(a.shape.begin() + (a.shape.empty() ? 0 : 1), a.shape.end());
      }
    }
  };
  try {
    fill(loaded.model.extract(batch, names));
  } catch (const Error&) {
    for (const auto& name : names) {  // one by one: modules whose output is not a tensor stay "-"
      try {
        fill(loaded.model.extract(batch, {name}));
      } catch (const Error&) {
      }
    }
  }
  return listing;
}

std::string show_model(const ExtractionOptions& options) {
  return load_model(options, 1).model.module_tree();
}

// ---------------------------------------------------------------------------------------------
// Progress and summary
// ---------------------------------------------------------------------------------------------

ProgressCallback terminal_progress(int fd) {
  return [fd](const ExtractionProgress& p) {
    const std::size_t images_now = p.images_done - std::min(p.images_before, p.images_done);
    const double rate = p.seconds > 0 ? static_cast<double>(images_now) / p.seconds : 0.0;
    const long eta = rate > 0 ? static_cast<long>(static_cast<double>(p.images_total - p.images_done) / rate + 0.5) : 0;
    std::string line = fmt::format("\r\033[K{:>7}/{} images  {:.1f} images/s  ETA {}:{:02}", p.images_done,
                                   p.images_total, rate, eta / 60, eta % 60);
    if (p.images_done >= p.images_total) line += "\n";
    const ssize_t ignored = ::write(fd, line.data(), line.size());
    (void)ignored;
  };
}

std::string summary_line(const ExtractionResult& r) {
  const char* rows = r.text ? "texts" : "images";
  if (r.already_complete) {
    return fmt::format("'{}' is already complete ({} {}, {} outputs); nothing to do", r.output.string(),
                       r.num_images, rows, r.modules.size());
  }
  // images/s over this run's images and its extraction time (as terminal_progress), without the
  // model load (and optimize), which does not grow with the image count.
  const std::size_t now = r.num_images - std::min(r.images_before, r.num_images);
  const double rate = r.extract_seconds > 0 ? static_cast<double>(now) / r.extract_seconds : 0.0;
  const std::string resumed =
      r.images_before > 0 ? fmt::format(" ({} done before, {} now)", r.images_before, now) : std::string();
  std::string line = fmt::format("extracted {} {}{} × {} output{} in {:.1f} s ({:.1f} {}/s{} after a {:.1f} s "
                                 "model load) → {}",
                                 r.num_images, rows, resumed, r.modules.size(), r.modules.size() == 1 ? "" : "s",
                                 r.seconds, rate, rows,
                                 r.images_before > 0 ? fmt::format(" over the {} new", now) : std::string(),
                                 r.load_seconds, r.output.string());
  if (!r.skipped.empty()) line += fmt::format("; {} skipped (listed in manifest.json)", r.skipped.size());
  return line;
}

// ---------------------------------------------------------------------------------------------
// merge_extractions (tv-merge)
// ---------------------------------------------------------------------------------------------

void merge_extractions(const std::vector<fs::path>& inputs, const fs::path& output, bool overwrite,
                       const std::string& command_line) {
  if (inputs.empty()) throw Error(ErrorKind::usage, "tv-merge needs at least one input directory");
  if (output.empty()) throw Error(ErrorKind::usage, "--out is required");
  std::vector<std::pair<fs::path, Manifest>> parts;
  for (const auto& input : inputs) {
    const fs::path file = input / "manifest.json";
    if (!fs::is_regular_file(file)) {
      throw Error(ErrorKind::input, fmt::format("'{}' holds no manifest.json; is it a tv-extract output directory?",
                                                input.string()));
    }
    Manifest m = read_manifest(file);
    if (m.status != "complete") {
      throw Error(ErrorKind::input, fmt::format("'{}' is an unfinished extraction; finish it with tv-extract --resume",
                                                input.string()));
    }
    if (!parts.empty()) {
      const std::string difference = job_difference(parts.front().second, m, true);
      if (!difference.empty()) {
        throw Error(ErrorKind::usage, fmt::format("'{}' and '{}' differ in {}; only runs of one job can be merged",
                                                  parts.front().first.string(), input.string(), difference));
      }
    }
    parts.emplace_back(input, std::move(m));
  }
  const int shard_count = parts.front().second.shard_count;
  for (const auto& [path, m] : parts) {
    if (m.shard_count != shard_count) {
      throw Error(ErrorKind::usage, fmt::format("'{}' is shard {}/{} but '{}' is of {} shards", path.string(),
                                                m.shard_index, m.shard_count, parts.front().first.string(), shard_count));
    }
  }
  if (shard_count > 1) {
    std::stable_sort(parts.begin(), parts.end(),
                     [](const auto& a, const auto& b) { return a.second.shard_index < b.second.shard_index; });
    for (int i = 0; i < shard_count; ++i) {
      const bool present = i < static_cast<int>(parts.size()) && parts[static_cast<std::size_t>(i)].second.shard_index == i;
      if (!present) {
        const bool twice = i < static_cast<int>(parts.size()) && i > 0 &&
                           parts[static_cast<std::size_t>(i)].second.shard_index == i - 1;
        throw Error(ErrorKind::usage, twice ? fmt::format("shard {}/{} is given twice", i - 1, shard_count)
                                            : fmt::format("shard {}/{} is missing", i, shard_count));
      }
    }
    if (static_cast<int>(parts.size()) > shard_count) {
      throw Error(ErrorKind::usage, fmt::format("shard {}/{} is given twice", shard_count - 1, shard_count));
    }
  }

  if (fs::exists(output / "manifest.json")) {
    if (!overwrite) {
      throw Error(ErrorKind::usage, fmt::format("--out: '{}' already holds an extraction; pass --overwrite to replace it",
                                                output.string()));
    }
    std::vector<std::string> old;
    for (const auto& m : read_manifest(output / "manifest.json").modules) old.push_back(m.directory);
    remove_previous_outputs(output, old);
  }
  for (const auto& [path, m] : parts) {
    // The error_code form: GCC 14's libstdc++ throws when --out does not exist yet.
    std::error_code same_ec;
    if (fs::equivalent(path, output, same_ec)) {
      throw Error(ErrorKind::usage, "--out must differ from every input directory");
    }
  }
  std::error_code ec;
  fs::create_directories(output, ec);
  if (ec) throw Error(ErrorKind::io, fmt::format("--out: cannot create '{}': {}", output.string(), ec.message()));

  Manifest merged = parts.front().second;
  const OutputFormat format = parse_output_format(merged.format);
  std::vector<std::string> directories;
  for (auto& module : merged.modules) {
    std::vector<fs::path> module_inputs;
    for (const auto& part : parts) {
      if (part.second.num_images > 0) module_inputs.push_back(part.first / module.directory);  // empty shards: no file
    }
    fs::create_directories(output / module.directory, ec);
    // merge_features writes the module's file_names.txt too, as a run does
    if (module_inputs.empty()) write_lines(output / module.directory / "file_names.txt", {});
    else merge_features(module_inputs, output / module.directory, format);
    module.files = features_files(output, module.directory);
    directories.push_back(module.directory);
  }
  std::vector<std::string> names;
  merged.skipped.clear();
  merged.num_images = 0;
  merged.seconds = 0;
  merged.timing = ManifestTiming{};
  merged.merged_from.clear();
  for (const auto& [path, m] : parts) {
    const auto lines = read_lines(path / "file_names.txt");
    names.insert(names.end(), lines.begin(), lines.end());
    merged.skipped.insert(merged.skipped.end(), m.skipped.begin(), m.skipped.end());
    merged.num_images += m.num_images;
    merged.seconds += m.seconds;
    merged.timing.load_seconds += m.timing.load_seconds;
    merged.timing.extract_seconds += m.timing.extract_seconds;
    merged.timing.forward_seconds += m.timing.forward_seconds;
    merged.timing.input_wait_seconds += m.timing.input_wait_seconds;
    merged.timing.write_seconds += m.timing.write_seconds;
    merged.timing.runtime_start_seconds += m.timing.runtime_start_seconds;
    merged.timing.runtime_wait_seconds += m.timing.runtime_wait_seconds;
    merged.merged_from.push_back(path.string());
  }
  merged.first_image = parts.front().second.first_image;
  merged.last_image = parts.back().second.last_image;
  merged.shard_index = 0;
  merged.shard_count = 1;
  merged.n_splits = 1;
  merged.command_line = command_line;
  merged.status = "complete";
  write_lines(output / "file_names.txt", names);
  write_manifest(output / "manifest.json", merged);
}

}  // namespace thingsvision
