// forward_bench.cpp — the forward-only limit of tv-extract: the same forward passes (same images,
// batch size, module set, optimize setting, threads, device) on tensors already in memory.
//
//   ./forward_bench --model MODEL.pt --module NAME [--module NAME ...] --images DIR
//                   [--batch-size 32] [--threads 1] [--optimize 0|1] [--device cpu]
//                   [--backend automatic|libtorch|opencv_dnn|onnxruntime]
// --backend is tv-extract's (ModelOptions::backend): an .onnx file through OpenCV DNN or ONNX Runtime
// (scripts/bench.sh table 8 compares them with the TorchScript file of the same weights). Decodes and preprocesses every image of DIR first (the model's sidecar preprocessing, as
// tv-extract resolves it), runs Model::extract on the first batch once untimed (warm-up; with
// optimize, the freeze + check that tv-extract counts as model load), then times Model::extract
// over all batches. Prints one JSON line (wall and process-CPU seconds of the decoding and of the
// timed forward passes); reported, not asserted (scripts/bench.sh).
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "thingsvision/data_loader.hpp"
#include "thingsvision/dataset.hpp"
#include "thingsvision/extraction.hpp"
#include "thingsvision/model.hpp"

namespace tv = thingsvision;

namespace {

[[noreturn]] void usage(const char* program) {
  std::fprintf(stderr,
               "usage: %s --model MODEL.pt --module NAME [--module NAME ...] --images DIR\n"
               "          [--batch-size 32] [--threads 1] [--optimize 0|1] [--device cpu]\n"
               "          [--backend automatic|libtorch|opencv_dnn|onnxruntime]\n",
               program);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  tv::ExtractionOptions run;  // only for resolve_transform (sidecar preprocessing)
  std::vector<std::string> modules;
  std::size_t batch_size = 32;
  int threads = 1;
  bool optimize = false;
  std::string device = "cpu";
  tv::ModelBackendKind backend = tv::ModelBackendKind::automatic;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) usage(argv[0]);
    const std::string value = argv[++i];
    if (flag == "--model") run.model_file = value;
    else if (flag == "--module") modules.push_back(value);
    else if (flag == "--images") run.images = value;
    else if (flag == "--batch-size") batch_size = static_cast<std::size_t>(std::atoll(value.c_str()));
    else if (flag == "--threads") threads = std::atoi(value.c_str());
    else if (flag == "--optimize") optimize = std::atoi(value.c_str()) != 0;
    else if (flag == "--device") device = value;
    else if (flag == "--backend") {
      bool known = false;
      for (const auto kind : {tv::ModelBackendKind::automatic, tv::ModelBackendKind::libtorch,
                              tv::ModelBackendKind::opencv_dnn, tv::ModelBackendKind::onnxruntime}) {
        if (value == tv::to_string(kind)) {
          backend = kind;
          known = true;
        }
      }
      if (!known) usage(argv[0]);
    } else usage(argv[0]);
  }
  if (run.model_file.empty() || run.images.empty() || modules.empty() || batch_size == 0 || threads < 1) {
    usage(argv[0]);
  }
  try {
    using clock = std::chrono::steady_clock;
    const auto seconds_since = [](clock::time_point start) {
      return std::chrono::duration<double>(clock::now() - start).count();
    };
    // 1. Every image decoded and preprocessed, in tv-extract's order and batches.
    // Process CPU seconds (all threads) since `start`: decoding's CPU cost, and how busy the forward
    // passes keep the cores (scripts/bench.sh derives the floor of end to end from both).
    const auto cpu_seconds_since = [](std::clock_t start) { return double(std::clock() - start) / CLOCKS_PER_SEC; };
    const std::clock_t decode_cpu_start = std::clock();
    const auto decode_start = clock::now();
    const tv::ImageDataset dataset = tv::ImageDataset::open(run.images);
    tv::DataLoaderOptions loader_options;
    loader_options.batch_size = batch_size;
    loader_options.num_workers = threads;
    std::vector<tv::ImageBatch> batches;
    {
      tv::DataLoader loader(dataset, tv::resolve_transform(run), loader_options);
      tv::ImageBatch batch;
      while (loader.next(batch)) batches.push_back(batch);
    }
    const double decode_seconds = seconds_since(decode_start);
    const double decode_cpu_seconds = cpu_seconds_since(decode_cpu_start);
    std::size_t images = 0;
    for (const tv::ImageBatch& b : batches) images += static_cast<std::size_t>(b.num_images);

    // 2. The model as tv-extract loads it; the warm-up batch is not timed.
    tv::ModelOptions options;
    options.num_threads = threads;
    options.optimize = optimize;
    options.device = tv::Device::parse(device);
    options.backend = backend;
    tv::Model model = tv::Model::load(run.model_file, options);
    const auto warm_start = clock::now();
    model.extract(batches.front(), modules);
    const double warmup_seconds = seconds_since(warm_start);

    // 3. The timed forward passes: every batch once.
    const std::clock_t cpu_start = std::clock();
    const auto start = clock::now();
    for (const tv::ImageBatch& b : batches) model.extract(b, modules);
    const double seconds = seconds_since(start);
    const double cpu_seconds = cpu_seconds_since(cpu_start);
    std::printf("{\"images\": %zu, \"batches\": %zu, \"batch_size\": %zu, \"threads\": %d, \"optimize\": %s, "
                "\"device\": \"%s\", \"backend\": \"%s\", \"decode_seconds\": %.4f, \"decode_cpu_seconds\": %.4f, \"warmup_seconds\": %.4f, "
                "\"seconds\": %.4f, \"cpu_seconds\": %.4f, \"images_per_second\": %.3f}\n",
                images, batches.size(), batch_size, threads, optimize ? "true" : "false", device.c_str(),
                tv::to_string(tv::resolve_backend(run.model_file, backend)),
                decode_seconds, decode_cpu_seconds, warmup_seconds, seconds, cpu_seconds,
                static_cast<double>(images) / seconds);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "forward_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
