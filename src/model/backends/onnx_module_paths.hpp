// onnx_module_paths.hpp — PyTorch module paths from the scopes torch.onnx.export writes into node
// names ("/layer1/layer1.0/relu_1/Relu" → layer1.0.relu, second call); shared by the ONNX backends; private.
#pragma once
#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

#include "thingsvision/model.hpp"

namespace thingsvision {

/// The prefix OpenCV DNN gives ONNX layer names; the ONNX Runtime backend names its layers the same.
inline const std::string kOnnxLayerPrefix = "onnx_node!";

/// One module path with the layer that ends each of its calls, in call order.
struct OnnxModuleCalls {
  std::vector<std::string> call_scopes;  ///< raw scopes ("/layer1/layer1.0/relu_1")
  std::vector<std::size_t> last_layer;   ///< per call: index into the layer list
  std::vector<std::size_t> layer_count;  ///< per call: how many layers the scope holds
};

/// One output to return: the module as requested, the layer that ends the call, which call of how many.
struct OnnxLayerRequest {
  std::string module;
  std::size_t layer = 0;
  int call_index = 0;
  int num_calls = 1;
  /// Which of the distinct layers to read holds it: requests that share a layer share it; numbered
  /// in first-request order, so a request with `output` == the layers listed so far lists a new one.
  std::size_t output = 0;
};

/// The module paths of a list of layers ("onnx_node!" + node name, in graph order): every prefix of
/// a layer's scope is a module call; a component "name_N" is a later call of "name" when a scope
/// ".../name" exists too; a Sequential's child "layer1.0" inside scope "layer1" is layer1.0.
class OnnxModulePaths {
 public:
  explicit OnnxModulePaths(const std::vector<std::string>& layer_names);

  /// Module paths then layer names with their types (`layer_types`: one per layer, as given to
  /// the constructor), as ModelBackend::modules() lists them; a module of one layer has its type.
  std::vector<ModuleInfo> modules(const std::vector<std::string>& layer_types) const;
  /// The layers that end each call of `name` (a module path or a layer name), in call order;
  /// empty if unknown.
  std::vector<std::size_t> resolve(const std::string& name) const;
  /// The layers to read for `modules` (names modules() lists), each call or the last (`calls`);
  /// throws Error(internal) for an unknown name (Model checks names first).
  std::vector<OnnxLayerRequest> requests(const std::vector<std::string>& modules, ModuleCalls calls) const;
  /// "  module -> layer layer ...\n" per module: the layers requests() reads (extraction_graph).
  std::string forward_to(const std::vector<std::string>& modules, ModuleCalls calls) const;
  /// "layer (type)  [module path]" per layer, one a line (ModelBackend::module_tree()).
  std::string tree(const std::vector<std::string>& layer_types) const;

 private:
  std::vector<std::string> layers_;
  std::unordered_map<std::string, std::size_t> layer_index_;
  std::unordered_map<std::string, OnnxModuleCalls> calls_;
  std::vector<std::string> order_;                             // module paths, first seen first
  std::unordered_map<std::string, std::string> layer_module_;  // layer → innermost module path
};

}  // namespace thingsvision
