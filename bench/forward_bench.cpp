// forward_bench.cpp — the forward-only limit of extraction: Model::extract (graph cut at the
// module) and Model::forward (the full entry method) on a batch already in memory, images/s.
//
//   ./forward_bench MODEL.pt MODULE [batch=32] [threads=1] [seconds=3] [optimize=0|1]
// Prints one JSON line; reported, not asserted (scripts/bench.sh puts it in bench/RESULTS.md).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <string>

#include "thingsvision/model.hpp"

namespace tv = thingsvision;

namespace {

/// Images per second of `step` (one batch of `batch` images per call), after one warm-up call,
/// repeated until `seconds` have passed (at least once).
template <class Step>
double images_per_second(Step step, std::int64_t batch, double seconds) {
  step();
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  long calls = 0;
  double elapsed = 0.0;
  do {
    step();
    ++calls;
    elapsed = std::chrono::duration<double>(clock::now() - start).count();
  } while (elapsed < seconds);
  return static_cast<double>(calls * batch) / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL.pt MODULE [batch=32] [threads=1] [seconds=3] [optimize=0|1]\n", argv[0]);
    return 2;
  }
  const std::string model_file = argv[1];
  const std::string module = argv[2];
  const std::int64_t batch = argc > 3 ? std::atoll(argv[3]) : 32;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 1;
  const double seconds = argc > 5 ? std::atof(argv[5]) : 3.0;
  const bool optimize = argc > 6 && std::atoi(argv[6]) != 0;
  try {
    tv::ModelOptions options;
    options.num_threads = threads;
    options.optimize = optimize;
    tv::Model model = tv::Model::load(model_file, options);
    tv::ImageBatch images;
    images.num_images = batch;
    images.channels = 3;
    images.height = 224;
    images.width = 224;
    images.pixels.resize(images.image_size() * static_cast<std::size_t>(batch));
    std::mt19937 rng(0);
    std::normal_distribution<float> normal;
    for (float& v : images.pixels) v = normal(rng);
    for (std::int64_t i = 0; i < batch; ++i) images.indices.push_back(static_cast<std::size_t>(i));
    const double extract = images_per_second([&] { model.extract(images, {module}); }, batch, seconds);
    const double forward = images_per_second([&] { model.forward(images); }, batch, seconds);
    std::printf("{\"module\": \"%s\", \"batch\": %lld, \"threads\": %d, \"optimize\": %s, "
                "\"extract_images_per_second\": %.3f, \"forward_images_per_second\": %.3f}\n",
                module.c_str(), static_cast<long long>(batch), threads, optimize ? "true" : "false", extract,
                forward);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "forward_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
