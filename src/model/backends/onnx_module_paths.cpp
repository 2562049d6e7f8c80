// onnx_module_paths.cpp — module paths from torch.onnx.export scopes (see the header).
#include "model/backends/onnx_module_paths.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include <fmt/format.h>

#include "thingsvision/error.hpp"

namespace thingsvision {

namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find(sep, start);
    parts.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

// "relu_1" → "relu" (the exporter's suffix for a module's second, third... call); else "".
std::string strip_call_suffix(const std::string& component) {
  const std::size_t underscore = component.rfind('_');
  if (underscore == std::string::npos || underscore == 0 || underscore + 1 == component.size()) {
    return {};
  }
  for (std::size_t i = underscore + 1; i < component.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(component[i]))) return {};
  }
  return component.substr(0, underscore);
}

// The scope components of an ONNX layer name: "onnx_node!/layer1/layer1.0/conv1/Conv" →
// {layer1, layer1.0, conv1}; empty for other names and for top-level ops ("onnx_node!/Flatten").
std::vector<std::string> onnx_scope(const std::string& layer_name) {
  if (layer_name.rfind(kOnnxLayerPrefix + "/", 0) != 0) return {};
  auto parts = split(layer_name.substr(kOnnxLayerPrefix.size() + 1), '/');
  parts.pop_back();  // the op ("Conv")
  for (const auto& part : parts) {
    if (part.empty()) return {};
  }
  return parts;
}

std::string join_scope(const std::vector<std::string>& parts, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) out += "/" + parts[i];
  return out;
}

}  // namespace

OnnxModulePaths::OnnxModulePaths(const std::vector<std::string>& layer_names) : layers_(layer_names) {
  std::set<std::string> scopes;
  std::vector<std::vector<std::string>> layer_scopes;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    layer_index_[layers_[i]] = i;
    layer_scopes.push_back(onnx_scope(layers_[i]));
    const auto& parts = layer_scopes.back();
    for (std::size_t d = 1; d <= parts.size(); ++d) scopes.insert(join_scope(parts, d));
  }
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const auto& parts = layer_scopes[i];
    std::string module;    // the PyTorch module path so far
    std::string previous;  // the previous scope component, call suffix removed
    for (std::size_t d = 0; d < parts.size(); ++d) {
      std::string component = parts[d];
      const std::string base = strip_call_suffix(component);
      if (!base.empty() && scopes.count(join_scope(parts, d) + "/" + base)) component = base;
      // The exporter names a Sequential's child "layer1.0" inside scope "layer1".
      if (!previous.empty() && component.rfind(previous + ".", 0) == 0) {
        module += component.substr(previous.size());
      } else {
        module += (module.empty() ? "" : ".") + component;
      }
      previous = component;
      const std::string call_scope = join_scope(parts, d + 1);
      auto [it, inserted] = calls_.try_emplace(module);
      if (inserted) order_.push_back(module);
      OnnxModuleCalls& info = it->second;
      const auto call = std::find(info.call_scopes.begin(), info.call_scopes.end(), call_scope);
      if (call == info.call_scopes.end()) {
        info.call_scopes.push_back(call_scope);
        info.last_layer.push_back(i);
        info.layer_count.push_back(1);
      } else {
        const auto c = static_cast<std::size_t>(call - info.call_scopes.begin());
        info.last_layer[c] = i;
        ++info.layer_count[c];
      }
    }
    if (!parts.empty()) layer_module_[layers_[i]] = module;
  }
}

std::vector<ModuleInfo> OnnxModulePaths::modules(const std::vector<std::string>& layer_types) const {
  std::vector<ModuleInfo> out;
  for (const auto& module : order_) {
    const auto& info = calls_.at(module);
    const bool single = std::all_of(info.layer_count.begin(), info.layer_count.end(),
                                    [](std::size_t n) { return n == 1; });
    out.push_back({module, single ? layer_types.at(info.last_layer.back()) : "Module"});
  }
  for (std::size_t i = 0; i < layers_.size(); ++i) out.push_back({layers_[i], layer_types.at(i)});
  return out;
}

std::vector<std::size_t> OnnxModulePaths::resolve(const std::string& name) const {
  const auto found = calls_.find(name);
  if (found != calls_.end()) return found->second.last_layer;
  const auto layer = layer_index_.find(name);
  if (layer != layer_index_.end()) return {layer->second};
  return {};
}

std::vector<OnnxLayerRequest> OnnxModulePaths::requests(const std::vector<std::string>& modules,
                                                        ModuleCalls calls) const {
  std::vector<OnnxLayerRequest> out;
  std::unordered_map<std::size_t, std::size_t> output_of;  // layer → its index among the distinct layers
  for (const auto& module : modules) {
    const auto layers = resolve(module);
    if (layers.empty()) {
      throw Error(ErrorKind::internal, fmt::format("module '{}' passed the name check but is unknown", module));
    }
    const int n = static_cast<int>(layers.size());
    for (int c = calls == ModuleCalls::last ? n - 1 : 0; c < n; ++c) {
      const std::size_t layer = layers[static_cast<std::size_t>(c)];
      const std::size_t output = output_of.emplace(layer, output_of.size()).first->second;
      out.push_back({module, layer, c, n, output});
    }
  }
  return out;
}

std::string OnnxModulePaths::forward_to(const std::vector<std::string>& modules, ModuleCalls calls) const {
  std::string out;
  for (const auto& module : modules) {
    out += "  " + module + " ->";
    for (const auto& request : requests({module}, calls)) out += " " + layers_[request.layer];
    out += "\n";
  }
  return out;
}

std::string OnnxModulePaths::tree(const std::vector<std::string>& layer_types) const {
  std::string out;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    out += layers_[i] + " (" + layer_types.at(i) + ")";
    const auto found = layer_module_.find(layers_[i]);
    if (found != layer_module_.end()) out += "  [" + found->second + "]";
    out += "\n";
  }
  return out;
}

}  // namespace thingsvision
