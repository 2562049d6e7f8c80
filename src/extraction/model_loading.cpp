// model_loading.cpp — the model a job runs, with its sidecar, and the preprocessing its images get
// (sidecar, CLIP archive, preset, single flags); one-image batches; the optimization record.
#include <fmt/format.h>

#include <optional>
#include <string>
#include <utility>

#include "extraction/job.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/extraction.hpp"
#include "thingsvision/manifest.hpp"

namespace thingsvision {

namespace fs = std::filesystem;

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

}  // namespace thingsvision

namespace thingsvision::detail {

void preload_model_runtime(const ExtractionOptions& options) {
  if (resolve_backend(options.model_file, options.backend) == ModelBackendKind::libtorch) preload_torch_runtime();
}

std::optional<ModelSidecar> read_sidecar_of(const ExtractionOptions& options) {
  const fs::path json = sidecar_path(options.model_file);
  if (options.model_file.empty() || !fs::is_regular_file(json)) return std::nullopt;
  return read_model_sidecar(json);
}

LoadedModel load_model(const ExtractionOptions& options, int threads, bool text) {
  return load_model(options, threads, text, read_sidecar_of(options));
}

LoadedModel load_model(const ExtractionOptions& options, int threads, bool text,
                       std::optional<ModelSidecar> sidecar_file) {
  if (options.model_file.empty()) throw Error(ErrorKind::usage, "--model is required");
  if (!fs::is_regular_file(options.model_file)) {
    throw Error(ErrorKind::usage, fmt::format("--model: no such file '{}'", options.model_file.string()));
  }
  const bool has_sidecar = sidecar_file.has_value();
  ModelSidecar sidecar = has_sidecar ? std::move(*sidecar_file) : ModelSidecar{};
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

}  // namespace thingsvision::detail
