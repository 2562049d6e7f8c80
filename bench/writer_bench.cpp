// writer_bench.cpp — writes SIZE MiB of features with one FeatureWriter backend; reports MB/s for
// appending (journal, fsync per batch), commit (final file) and both, plus RSS sampled per batch.
// Usage: writer_bench FORMAT DIR SIZE_MIB [ROW_FLOATS=25088] [BATCH_ROWS=64]
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "thingsvision/error.hpp"
#include "thingsvision/feature_writer.hpp"

namespace {

long rss_kib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: writer_bench FORMAT DIR SIZE_MIB [ROW_FLOATS] [BATCH_ROWS]\n");
    return 2;
  }
  try {
    const auto format = thingsvision::parse_output_format(argv[1]);
    const std::string dir = argv[2];
    const double size_mib = std::atof(argv[3]);
    const std::int64_t row_floats = argc > 4 ? std::atoll(argv[4]) : 25088;  // VGG16 features.30
    const std::size_t batch_rows = argc > 5 ? std::strtoul(argv[5], nullptr, 10) : 64;
    const std::size_t rows = static_cast<std::size_t>(size_mib * 1048576.0 / (4.0 * row_floats));
    std::vector<float> batch(batch_rows * static_cast<std::size_t>(row_floats));
    for (std::size_t i = 0; i < batch.size(); ++i) batch[i] = static_cast<float>(i % 1000) * 0.001f;
    thingsvision::WriterOptions options;
    auto writer = thingsvision::open_feature_writer(format, dir, {row_floats}, options);
    const long rss_start = rss_kib();
    long rss_max = rss_start;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t r = 0; r < rows; r += batch_rows) {
      writer->append_rows(batch.data(), std::min(batch_rows, rows - r));
      rss_max = std::max(rss_max, rss_kib());
    }
    const double append_s = seconds_since(t0);
    std::vector<std::string> names(rows);
    for (std::size_t i = 0; i < rows; ++i) names[i] = "img/" + std::to_string(i) + ".jpg";
    const auto t1 = std::chrono::steady_clock::now();
    writer->commit(names);
    const double commit_s = seconds_since(t1);
    struct rusage usage {};
    getrusage(RUSAGE_SELF, &usage);
    const double mb = static_cast<double>(rows) * static_cast<double>(row_floats) * 4.0 / 1e6;
    std::printf("%-5s rows=%zu size=%.0fMB append=%.1fMB/s commit=%.1fMB/s total=%.1fMB/s "
                "rss_start=%ldMiB rss_max_during_append=%ldMiB peak_rss=%ldMiB\n",
                argv[1], rows, mb, mb / append_s, mb / commit_s, mb / (append_s + commit_s),
                rss_start / 1024, rss_max / 1024, usage.ru_maxrss / 1024);
    return 0;
  } catch (const thingsvision::Error& e) {
    std::fprintf(stderr, "writer_bench: %s\n", e.what());
    return 1;
  }
}
