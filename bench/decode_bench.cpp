// decode_bench.cpp — decode + preprocess throughput (images/s per thread) of thingsvision-cpp.
//
// The same images and pipelines as bench/decode_python.py (PIL + torchvision), so the two numbers
// compare directly: ./decode_bench [--benchmark_filter=...]   (TV_BENCH_IMAGES=DIR to change images)
// Rates are images per second of this thread's CPU time (robust on a shared machine); the Python
// script prints the same measure ("CPU time") next to wall-clock rates.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "thingsvision/image.hpp"
#include "thingsvision/transforms.hpp"

namespace tv = thingsvision;

namespace {

/// The .jpg/.jpeg/.png files of the benchmark folder, sorted (as decode_python.py lists them).
std::vector<std::filesystem::path> bench_images(const std::string& kind) {
  const char* env = std::getenv("TV_BENCH_IMAGES");
  const std::filesystem::path dir = env ? env : TV_BENCH_IMAGES;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    const bool jpeg = ext == ".jpg" || ext == ".jpeg";
    if (jpeg || (kind == "all" && ext == ".png")) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

void run(benchmark::State& state, const std::string& kind, const std::string& preset) {
  const auto files = bench_images(kind);
  if (files.empty()) {
    state.SkipWithError("no images found (set TV_BENCH_IMAGES)");
    return;
  }
  const tv::Transform transform = tv::Transform::preset(preset);
  std::vector<float> out(3 * 224 * 224);
  std::size_t images = 0;
  for (auto _ : state) {
    for (const auto& file : files) {
      const tv::Image image = tv::decode_image(file);
      tv::apply_transform(transform, image, out.data());
      benchmark::DoNotOptimize(out.data());
      ++images;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(images));
  state.counters["images_per_s"] = benchmark::Counter(double(images), benchmark::Counter::kIsRate);
}

void BM_DecodeOnly(benchmark::State& state) {
  const auto files = bench_images("jpeg");
  if (files.empty()) {
    state.SkipWithError("no images found (set TV_BENCH_IMAGES)");
    return;
  }
  std::size_t images = 0;
  for (auto _ : state) {
    for (const auto& file : files) {
      const tv::Image image = tv::decode_image(file);
      benchmark::DoNotOptimize(image.pixels.data());
      ++images;
    }
  }
  state.counters["images_per_s"] = benchmark::Counter(double(images), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK_CAPTURE(run, jpeg_thingsvision, std::string("jpeg"), std::string("thingsvision"))
    ->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK_CAPTURE(run, jpeg_clip, std::string("jpeg"), std::string("clip"))->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK_CAPTURE(run, all_thingsvision, std::string("all"), std::string("thingsvision"))
    ->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK(BM_DecodeOnly)->Unit(benchmark::kMillisecond)->MinTime(3.0);

BENCHMARK_MAIN();
