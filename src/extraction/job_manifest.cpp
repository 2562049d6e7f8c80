// job_manifest.cpp — the manifest fields a job fills from its options and model, and the comparison
// of two manifests that --resume and tv-merge make.
#include <fmt/format.h>

#include <cstdlib>
#include <string>

#include "extraction/job.hpp"
#include "thingsvision/manifest.hpp"
#include "thingsvision/version.hpp"

namespace thingsvision::detail {

namespace {

/// A float as the shortest decimal that reads back as it (0.485f → 0.485, not 0.48500001430511475).
double shortest_decimal(float v) { return std::strtod(fmt::format("{}", v).c_str(), nullptr); }

}  // namespace

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

}  // namespace thingsvision::detail
