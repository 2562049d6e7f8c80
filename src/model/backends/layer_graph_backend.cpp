// layer_graph_backend.cpp — module requests of a graph backend turned into distinct layer reads.
#include "model/backends/layer_graph_backend.hpp"

#include <utility>

namespace thingsvision {

LayerGraphBackend::LayerGraphBackend(std::filesystem::path path, std::string backend)
    : path_(std::move(path)), backend_(std::move(backend)) {}

void LayerGraphBackend::set_layers(const std::vector<std::string>& names, std::vector<std::string> types) {
  layer_types_ = std::move(types);
  paths_ = OnnxModulePaths(names);
  modules_ = paths_.modules(layer_types_);
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
  std::vector<Activations> outs = read_layers(batch, layers, layer_modules, options);
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
