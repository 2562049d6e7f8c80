// layer_graph_backend.hpp — what the graph backends (OpenCV DNN, ONNX Runtime) share: a net run on
// the CPU whose modules are its layers and the PyTorch module paths their names hold; private.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "model/backends/onnx_module_paths.hpp"
#include "model/batch_layout.hpp"
#include "model/model_impl.hpp"

namespace thingsvision {

/// A ModelBackend for a graph file (entry "forward", CPU) whose modules are its layers, listed by
/// OnnxModulePaths: the bookkeeping and the methods that only read it. A backend sets its layers
/// (set_layers) and reads layer outputs (read_layers); extract() turns module requests into layers.
class LayerGraphBackend : public ModelBackend {
 public:
  const std::filesystem::path& path() const override { return path_; }
  Device device() const override { return Device::cpu(); }
  const ModelTraits& traits() const override { return traits_; }
  const std::vector<ModuleInfo>& modules() const override { return modules_; }
  std::string module_tree() const override { return paths_.tree(layer_types_); }
  /// Reads each distinct layer that `modules` end on once (read_layers), its images moved to
  /// dimension 0 (batch_layout.hpp); one Activations per module call, in request order.
  std::vector<Activations> extract(const ImageBatch& batch, const std::vector<std::string>& modules,
                                   const ExtractOptions& options) final;
  /// graph_summary() followed by the layers each module is read from.
  std::string extraction_graph(const std::vector<std::string>& modules, const ExtractOptions& options) final;
  /// Throws Error(model): an image graph has no text method.
  Activations encode_text(const std::vector<std::int64_t>& token_ids, std::int64_t num_texts,
                          std::int64_t context_length, const std::string& method) final;

 protected:
  /// `backend` names the runtime in messages ("OpenCV DNN").
  LayerGraphBackend(std::filesystem::path path, std::string backend);
  /// Sets the layers modules() lists: names in graph order ("onnx_node!/layer1/layer1.0/relu_1/Relu")
  /// and one type per name.
  void set_layers(const std::vector<std::string>& names, std::vector<std::string> types);
  /// The outputs of `layers` (indices into the set_layers list) for `batch`, in that order;
  /// `modules[i]` is the module read from layers[i], for messages.
  virtual std::vector<Activations> read_layers(const ImageBatch& batch, const std::vector<std::size_t>& layers,
                                               const std::vector<std::string>& modules,
                                               const ExtractOptions& options) = 0;
  /// The first line of extraction_graph, naming the net and how it is run, ending in ":\n".
  virtual std::string graph_summary() const = 0;
  /// Whether a batch whose run fails, or whose outputs do not hold its images in any layout, is
  /// run again image by image (and later batches straight away): OpenCV DNN evaluates some graphs
  /// for one image only.
  virtual bool retry_images_alone() const { return false; }

  std::filesystem::path path_;
  ModelTraits traits_;

 private:
  std::string backend_;
  OnnxModulePaths paths_{{}};
  std::vector<ModuleInfo> modules_;
  std::vector<std::string> layer_types_;  // per layer, as set_layers
  std::map<std::size_t, batch_layout::Layout> batch_layouts_;  // per layer: where its images were
  bool images_alone_ = false;  // a batch failed: batches run image by image (retry_images_alone)
  std::set<std::vector<std::size_t>> checked_layers_;  // layer sets whose batch agreed with an image alone

  /// read_layers with each output's images moved to dimension 0 (to_batch_first); with
  /// retry_images_alone, the first batch of `layers` checked against its first image alone.
  std::vector<Activations> read_batch_first(const ImageBatch& batch, const std::vector<std::size_t>& layers,
                                            const std::vector<std::string>& modules, const ExtractOptions& options);
  /// read_batch_first of each image alone, stacked.
  std::vector<Activations> read_images_alone(const ImageBatch& batch, const std::vector<std::size_t>& layers,
                                             const std::vector<std::string>& modules, const ExtractOptions& options);

  /// Moves the images of `a` (layer `layer`'s output for a batch of `batch_size`) to dimension 0 by
  /// the rule of batch_layout.hpp; `alone()` is the layer's output for the batch's first image.
  void to_batch_first(Activations& a, std::size_t layer, std::int64_t batch_size,
                      const std::function<const Activations&()>& alone);
};

}  // namespace thingsvision
