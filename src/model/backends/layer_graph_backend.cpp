// layer_graph_backend.cpp — module requests of a graph backend turned into distinct layer reads.
#include "model/backends/layer_graph_backend.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace thingsvision {

LayerGraphBackend::LayerGraphBackend(std::filesystem::path path, std::string backend)
    : path_(std::move(path)), backend_(std::move(backend)) {}

void LayerGraphBackend::set_layers(const std::vector<std::string>& names, std::vector<std::string> types) {
  layer_types_ = std::move(types);
  paths_ = OnnxModulePaths(names);
  modules_ = paths_.modules(layer_types_);
}

namespace {

// Image `i` of `batch` as a batch of one.
ImageBatch one_image(const ImageBatch& batch, std::size_t i) {
  ImageBatch one;
  one.num_images = 1;
  one.channels = batch.channels;
  one.height = batch.height;
  one.width = batch.width;
  const auto size = static_cast<std::size_t>(batch.channels * batch.height * batch.width);
  const auto begin = batch.pixels.begin() + static_cast<std::ptrdiff_t>(i * size);
  one.pixels.assign(begin, begin + static_cast<std::ptrdiff_t>(size));
  if (i < batch.indices.size()) one.indices = {batch.indices[i]};
  return one;
}

// Whether `alone`'s values equal the first values of `batch` (batch_layout::rows_agree).
bool same_rows(const Activations& alone, const Activations& batch) {
  if (alone.values.size() > batch.values.size()) return false;
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < alone.values.size(); ++i) {
    const double b = batch.values[i];
    diff = std::max(diff, std::abs(static_cast<double>(alone.values[i]) - b));
    scale = std::max(scale, std::abs(b));
    if (std::isnan(b) || std::isnan(alone.values[i])) return false;
  }
  return batch_layout::rows_agree(diff, scale);
}

}  // namespace

void LayerGraphBackend::to_batch_first(Activations& a, std::size_t layer, std::int64_t batch_size,
                                       const std::function<const Activations&()>& alone) {
  using batch_layout::Layout;
  const auto known = batch_layouts_.find(layer);
  const std::string model = path_.filename().string();
  std::optional<Layout> layout = batch_layout::from_shape(
      a.shape, batch_size, known != batch_layouts_.end() ? std::optional<Layout>(known->second) : std::nullopt,
      a.module_name, model);
  if (!layout) {
    const Activations& one = alone();
    layout = batch_layout::from_probe(a.shape, batch_size, one.shape, [&] { return same_rows(one, a); },
                                      a.module_name, model);
  }
  if (batch_layout::worth_remembering(a.shape, batch_size, *layout)) batch_layouts_[layer] = *layout;
  if (*layout == Layout::second) {  // (L, N, D) → (N, L, D)
    const auto length = static_cast<std::size_t>(a.shape[0]);
    const auto images = static_cast<std::size_t>(a.shape[1]);
    const auto width = static_cast<std::size_t>(a.shape[2]);
    std::vector<float> moved(a.values.size());
    for (std::size_t l = 0; l < length; ++l) {
      for (std::size_t n = 0; n < images; ++n) {
        std::copy_n(a.values.begin() + static_cast<std::ptrdiff_t>((l * images + n) * width), width,
                    moved.begin() + static_cast<std::ptrdiff_t>((n * length + l) * width));
      }
    }
    a.values = std::move(moved);
  }
  a.shape = batch_layout::batch_first_shape(a.shape, batch_size, *layout);
}

std::vector<Activations> LayerGraphBackend::read_batch_first(const ImageBatch& batch,
                                                             const std::vector<std::size_t>& layers,
                                                             const std::vector<std::string>& modules,
                                                             const ExtractOptions& options) {
  std::vector<Activations> outs = read_layers(batch, layers, modules, options);
  std::optional<std::vector<Activations>> alone;  // the layers' outputs for the first image, if needed
  const auto first_alone = [&]() -> const std::vector<Activations>& {
    if (!alone) alone = read_layers(one_image(batch, 0), layers, modules, options);
    return *alone;
  };
  for (std::size_t j = 0; j < outs.size(); ++j) {
    to_batch_first(outs[j], layers[j], batch.num_images, [&]() -> const Activations& { return first_alone().at(j); });
  }
  // Where a batch may be evaluated wrongly (retry_images_alone), the first batch of each set of
  // layers is checked against its first image alone.
  if (batch.num_images > 1 && retry_images_alone() && checked_layers_.insert(layers).second) {
    for (std::size_t j = 0; j < outs.size(); ++j) {
      Activations one = first_alone().at(j);
      to_batch_first(one, layers[j], 1, {});
      if (one.shape[0] != 1 || !std::equal(one.shape.begin() + 1, one.shape.end(), outs[j].shape.begin() + 1,
                                           outs[j].shape.end()) ||
          !same_rows(one, outs[j])) {
        checked_layers_.erase(layers);
        throw Error(ErrorKind::model,
                    "the output of module '" + modules[j] + "' of " + path_.filename().string() + " for a batch of " +
                        std::to_string(batch.num_images) + " (shape " + batch_layout::shape_text(outs[j].shape) +
                        ") differs from its first image's output alone (shape " +
                        batch_layout::shape_text(one.shape) + ")");
      }
    }
  }
  return outs;
}

std::vector<Activations> LayerGraphBackend::read_images_alone(const ImageBatch& batch,
                                                              const std::vector<std::size_t>& layers,
                                                              const std::vector<std::string>& modules,
                                                              const ExtractOptions& options) {
  std::vector<Activations> outs;
  for (std::size_t i = 0; i < static_cast<std::size_t>(batch.num_images); ++i) {
    std::vector<Activations> image = read_batch_first(one_image(batch, i), layers, modules, options);
    if (i == 0) {
      outs = std::move(image);
      for (auto& a : outs) a.values.reserve(a.values.size() * static_cast<std::size_t>(batch.num_images));
      continue;
    }
    for (std::size_t j = 0; j < outs.size(); ++j) {
      if (image[j].shape != outs[j].shape) {  // (1, ...) after read_batch_first; only the rest may differ
        throw Error(ErrorKind::model,
                    "the output of module '" + modules[j] + "' of " + path_.filename().string() + " has shape " +
                        batch_layout::shape_text(image[j].shape) + " for image " + std::to_string(i + 1) +
                        " of the batch and " + batch_layout::shape_text(outs[j].shape) + " for the first");
      }
      outs[j].values.insert(outs[j].values.end(), image[j].values.begin(), image[j].values.end());
    }
  }
  for (auto& a : outs) a.shape[0] = batch.num_images;
  return outs;
}

std::vector<Activations> LayerGraphBackend::extract(const ImageBatch& batch, const std::vector<std::string>& modules,
                                                    const ExtractOptions& options) {
  const std::vector<OnnxLayerRequest> wants = paths_.requests(modules, options.calls);
  std::vector<std::size_t> layers;          // the distinct layers to read (OnnxLayerRequest::output)
  std::vector<std::string> layer_modules;   // the first module read from each
  std::vector<std::size_t> last_use;        // per layer: the last request that reads it
  for (std::size_t i = 0; i < wants.size(); ++i) {
    if (wants[i].output == layers.size()) {
      layers.push_back(wants[i].layer);
      layer_modules.push_back(wants[i].module);
      last_use.push_back(i);
    }
    last_use[wants[i].output] = i;
  }
  std::vector<Activations> outs;
  bool read = false;
  if (!images_alone_ || batch.num_images == 1) {
    try {
      outs = read_batch_first(batch, layers, layer_modules, options);
      read = true;
    } catch (const Error&) {
      if (batch.num_images == 1 || !retry_images_alone()) throw;
      images_alone_ = true;  // the error of one image, if any, is reported below
    }
  }
  if (!read) outs = read_images_alone(batch, layers, layer_modules, options);
  std::vector<Activations> result;
  result.reserve(wants.size());
  for (std::size_t i = 0; i < wants.size(); ++i) {
    Activations a;
    if (last_use[wants[i].output] == i) {
      a = std::move(outs.at(wants[i].output));
    } else {
      a = outs.at(wants[i].output);
    }
    a.module_name = wants[i].module;
    a.call_index = wants[i].call_index;
    a.num_calls = wants[i].num_calls;
    result.push_back(std::move(a));
  }
  return result;
}

std::string LayerGraphBackend::extraction_graph(const std::vector<std::string>& modules,
                                                const ExtractOptions& options) {
  return graph_summary() + paths_.forward_to(modules, options.calls);
}

Activations LayerGraphBackend::encode_text(const std::vector<std::int64_t>& /*token_ids*/, std::int64_t /*num_texts*/,
                                           std::int64_t /*context_length*/, const std::string& method) {
  throw_no_text_method(path_, backend_, method);
}

}  // namespace thingsvision
