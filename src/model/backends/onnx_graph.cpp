// onnx_graph.cpp — ONNX ModelProto / GraphProto / NodeProto fields (onnx/onnx.proto3) over the
// protobuf wire format, and the Identity-node removal.
#include "model/backends/onnx_graph.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "thingsvision/error.hpp"

namespace thingsvision {

namespace {

using protobuf::Field;
using protobuf::Message;
using protobuf::WireType;

// Field numbers of onnx.proto3.
namespace model_field {
constexpr std::uint32_t opset_import = 8, graph = 7;
}
namespace opset_field {
constexpr std::uint32_t domain = 1, version = 2;
}
namespace graph_field {
constexpr std::uint32_t node = 1, initializer = 5, input = 11, output = 12, value_info = 13;
}
namespace node_field {
constexpr std::uint32_t input = 1, output = 2, name = 3, op_type = 4, attribute = 5, domain = 7;
}
namespace attribute_field {
constexpr std::uint32_t g = 6, graphs = 11;
}
namespace tensor_field {
constexpr std::uint32_t name = 8, data_location = 14;
}
constexpr std::uint32_t kValueInfoName = 1;
constexpr std::uint64_t kExternalDataLocation = 1;

bool is_default_domain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

// Adds to `names` every node input of the GraphProto `graph`, subgraphs of its nodes included.
void collect_graph_inputs(std::string_view graph, std::unordered_set<std::string>& names) {
  protobuf::for_each_field(graph, [&](const Field& g) {
    if (!g.is_bytes(graph_field::node)) return;
    protobuf::for_each_field(g.bytes_value(), [&](const Field& n) {
      if (n.is_bytes(node_field::input)) names.emplace(n.bytes_value());
      if (!n.is_bytes(node_field::attribute)) return;
      protobuf::for_each_field(n.bytes_value(), [&](const Field& a) {
        if (a.is_bytes(attribute_field::g) || a.is_bytes(attribute_field::graphs)) {
          collect_graph_inputs(a.bytes_value(), names);
        }
      });
    });
  });
}

// A NodeProto's names and op; its other fields (attributes, doc string) kept as read. The names
// its subgraphs (If, Loop) read go to `subgraph_inputs`.
OnnxNode parse_node(std::string_view bytes, std::unordered_set<std::string>& subgraph_inputs) {
  OnnxNode node;
  protobuf::for_each_field(bytes, [&](const Field& field) {
    const auto text = [&] { return std::string(field.bytes_value()); };
    if (field.is_bytes(node_field::input)) {
      node.inputs.push_back(text());
    } else if (field.is_bytes(node_field::output)) {
      node.outputs.push_back(text());
    } else if (field.is_bytes(node_field::name)) {
      node.name = text();
    } else if (field.is_bytes(node_field::op_type)) {
      node.op_type = text();
    } else if (field.is_bytes(node_field::domain)) {
      node.domain = text();
    } else {
      if (field.is_bytes(node_field::attribute)) {
        protobuf::for_each_field(field.bytes_value(), [&](const Field& a) {
          if (a.is_bytes(attribute_field::g) || a.is_bytes(attribute_field::graphs)) {
            collect_graph_inputs(a.bytes_value(), subgraph_inputs);
            node.has_subgraphs = true;
          }
        });
      }
      node.other_fields.fields.push_back(field);
    }
  });
  return node;
}

// The NodeProto fields of `node`: inputs, outputs, name, op type, the other fields, domain.
Message node_message(const OnnxNode& node) {
  Message m;
  for (const auto& input : node.inputs) m.fields.push_back(Field::bytes(node_field::input, input));
  for (const auto& output : node.outputs) m.fields.push_back(Field::bytes(node_field::output, output));
  if (!node.name.empty()) m.fields.push_back(Field::bytes(node_field::name, node.name));
  m.fields.push_back(Field::bytes(node_field::op_type, node.op_type));
  m.fields.insert(m.fields.end(), node.other_fields.fields.begin(), node.other_fields.fields.end());
  if (!node.domain.empty()) m.fields.push_back(Field::bytes(node_field::domain, node.domain));
  return m;
}

}  // namespace

std::string read_model_bytes(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  std::string bytes(in ? static_cast<std::size_t>(in.tellg()) : 0, '\0');
  in.seekg(0);
  if (!in || !in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
    throw Error(ErrorKind::io, fmt::format("cannot read model file '{}'", file.string()));
  }
  return bytes;
}

OnnxModel OnnxModel::parse(std::string_view bytes, const std::filesystem::path& file) {
  OnnxModel model;
  try {
    model.model_ = Message::parse(bytes);
    bool has_graph = false;
    for (const Field& field : model.model_.fields) {
      if (field.is_bytes(model_field::opset_import)) {
        std::string domain;
        std::int64_t version = -1;
        protobuf::for_each_field(field.bytes_value(), [&](const Field& f) {
          if (f.is_bytes(opset_field::domain)) domain = std::string(f.bytes_value());
          if (f.number() == opset_field::version && f.wire() == WireType::varint) {
            version = static_cast<std::int64_t>(f.varint_value());
          }
        });
        if (is_default_domain(domain)) model.default_opset_ = version;
      } else if (field.is_bytes(model_field::graph)) {
        has_graph = true;
        protobuf::for_each_field(field.bytes_value(), [&](const Field& g) {
          if (g.is_bytes(graph_field::node)) {
            model.nodes_.push_back(parse_node(g.bytes_value(), model.subgraph_inputs_));
            return;
          }
          model.graph_.fields.push_back(g);
          if (g.is_bytes(graph_field::input) || g.is_bytes(graph_field::output)) {
            auto& names = g.number() == graph_field::input ? model.graph_inputs_ : model.graph_outputs_;
            names.emplace_back(Message::parse(g.bytes_value()).first_bytes(kValueInfoName));
          } else if (g.is_bytes(graph_field::initializer)) {
            protobuf::for_each_field(g.bytes_value(), [&](const Field& t) {
              if (t.is_bytes(tensor_field::name)) model.initializers_.emplace_back(t.bytes_value());
              if (t.number() == tensor_field::data_location && t.varint_value() == kExternalDataLocation) {
                model.has_external_data_ = true;
              }
            });
          }
        });
      }
    }
    if (!has_graph) {
      throw Error(ErrorKind::model, "the ModelProto has no graph (field 7)");
    }
  } catch (const Error& e) {
    throw Error(ErrorKind::model, fmt::format("cannot read ONNX model '{}': {}", file.string(), e.what()));
  }
  return model;
}

std::string OnnxModel::serialize() const {
  std::vector<Message> nodes;
  nodes.reserve(nodes_.size());
  std::size_t graph_size = graph_.serialized_size();
  for (const auto& node : nodes_) {
    nodes.push_back(node_message(node));
    const std::size_t size = nodes.back().serialized_size();
    graph_size += protobuf::varint_size(graph_field::node << 3) + protobuf::varint_size(size) + size;
  }
  Message other_fields = model_;  // views and shared bytes: no weights copied
  other_fields.fields.erase(std::remove_if(other_fields.fields.begin(), other_fields.fields.end(),
                                           [](const Field& f) { return f.is_bytes(model_field::graph); }),
                            other_fields.fields.end());
  std::string out;
  out.reserve(other_fields.serialized_size() + graph_size + 16);
  for (const Field& field : model_.fields) {
    if (!field.is_bytes(model_field::graph)) {
      Message{{field}}.serialize_to(out);
      continue;
    }
    protobuf::write_key(out, model_field::graph, WireType::length_delimited);
    protobuf::write_varint(out, graph_size);
    for (const Message& node : nodes) {
      protobuf::write_key(out, graph_field::node, WireType::length_delimited);
      protobuf::write_varint(out, node.serialized_size());
      node.serialize_to(out);
    }
    graph_.serialize_to(out);
  }
  return out;
}

IdentityRemoval OnnxModel::remove_identity_nodes() {
  IdentityRemoval result;
  const std::unordered_set<std::string> outputs(graph_outputs_.begin(), graph_outputs_.end());
  std::unordered_set<std::string> sources(graph_inputs_.begin(), graph_inputs_.end());
  sources.insert(initializers_.begin(), initializers_.end());
  std::unordered_map<std::string, std::string> alias;   // removed Identity output → its input
  std::unordered_map<std::string, std::string> rename;  // a node output → the graph output it becomes
  std::unordered_set<std::string> produced;             // outputs of the nodes kept
  const auto follow = [&](std::string name) {
    for (auto found = alias.find(name); found != alias.end(); found = alias.find(name)) name = found->second;
    return name;
  };
  std::vector<OnnxNode> kept;
  for (auto& node : nodes_) {
    const bool identity = node.op_type == "Identity" && is_default_domain(node.domain) &&
                          node.inputs.size() == 1 && node.outputs.size() == 1 &&
                          !node.inputs[0].empty() && !node.outputs[0].empty();
    if (identity) {
      const std::string source = follow(node.inputs[0]);
      const std::string& target = node.outputs[0];
      // A name a subgraph reads must stay: the rewiring does not follow names into subgraphs.
      if (!outputs.count(target) && !subgraph_inputs_.count(target)) {
        alias[target] = source;
        ++result.removed;
        continue;
      }
      if (outputs.count(target) && produced.count(source) && !sources.count(source) &&
          !outputs.count(source) && !rename.count(source) && !subgraph_inputs_.count(source)) {
        rename[source] = target;
        ++result.removed;
        continue;
      }
      result.kept.push_back(node.name);
    }
    for (const auto& output : node.outputs) produced.insert(output);
    kept.push_back(std::move(node));
  }
  for (auto& node : kept) {
    for (auto& input : node.inputs) {
      if (input.empty()) continue;
      input = follow(input);
      const auto renamed = rename.find(input);
      if (renamed != rename.end()) input = renamed->second;
    }
    for (auto& output : node.outputs) {
      const auto renamed = rename.find(output);
      if (renamed != rename.end()) output = renamed->second;
    }
  }
  nodes_ = std::move(kept);
  // value_info of tensors that no longer exist
  auto& fields = graph_.fields;
  fields.erase(std::remove_if(fields.begin(), fields.end(),
                              [&](const Field& f) {
                                if (!f.is_bytes(graph_field::value_info)) return false;
                                const std::string name(Message::parse(f.bytes_value()).first_bytes(kValueInfoName));
                                return alias.count(name) > 0 || rename.count(name) > 0;
                              }),
               fields.end());
  return result;
}

namespace {

// The value of a TensorProto that holds one float (data_type FLOAT, at most one element), from
// raw_data or float_data (packed or not); nullopt otherwise.
std::optional<float> scalar_float(std::string_view tensor) {
  constexpr std::uint32_t kDims = 1, kDataType = 2, kFloatData = 4, kRawData = 9;
  std::uint64_t data_type = 0;
  std::uint64_t elements = 1;
  std::string_view data;
  protobuf::for_each_field(tensor, [&](const Field& f) {
    if (f.number() == kDims && f.wire() == WireType::varint) elements *= f.varint_value();
    if (f.number() == kDataType && f.wire() == WireType::varint) data_type = f.varint_value();
    if (f.number() == kRawData || f.number() == kFloatData) data = f.bytes_value();  // packed or fixed32
  });
  if (data_type != 1 || elements != 1 || data.size() != sizeof(float)) return std::nullopt;
  float value = 0.0f;
  std::memcpy(&value, data.data(), sizeof(float));  // little-endian, as ONNX stores it
  return value;
}

// A float AttributeProto `name` = value (type FLOAT).
Field float_attribute(const std::string& name, float value) {
  constexpr std::uint32_t kName = 1, kF = 2, kType = 20;
  constexpr std::uint64_t kFloatType = 1;
  std::uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof(bits));
  const Message attribute{{Field::bytes(kName, name), Field::fixed32(kF, bits), Field::varint(kType, kFloatType)}};
  return Field::bytes(node_field::attribute, attribute.serialize());
}

}  // namespace

std::size_t OnnxModel::clip_bounds_to_attributes() {
  // Constant tensors by name: initializers and the "value" of Constant nodes.
  std::unordered_map<std::string, std::string_view> constants;
  for (const Field& g : graph_.fields) {
    if (!g.is_bytes(graph_field::initializer)) continue;
    const std::string name(Message::parse(g.bytes_value()).first_bytes(tensor_field::name));
    constants[name] = g.bytes_value();
  }
  for (const auto& node : nodes_) {
    if (node.op_type != "Constant" || node.outputs.size() != 1) continue;
    for (const Field& f : node.other_fields.fields) {
      if (!f.is_bytes(node_field::attribute)) continue;
      const Message attribute = Message::parse(f.bytes_value());
      if (attribute.first_bytes(1) == "value") constants[node.outputs[0]] = attribute.first_bytes(5);
    }
  }
  std::size_t changed = 0;
  for (auto& node : nodes_) {
    if (node.op_type != "Clip" || !is_default_domain(node.domain) || node.inputs.size() < 2) continue;
    std::vector<std::pair<std::string, float>> bounds;
    bool constant = true;
    for (std::size_t i = 1; i < node.inputs.size() && i < 3; ++i) {
      if (node.inputs[i].empty()) continue;  // an absent bound
      const auto found = constants.find(node.inputs[i]);
      const auto value = found == constants.end() ? std::nullopt : scalar_float(found->second);
      if (!value) constant = false;
      if (value) bounds.emplace_back(i == 1 ? "min" : "max", *value);
    }
    if (!constant) continue;
    node.inputs.resize(1);
    for (const auto& [name, value] : bounds) node.other_fields.fields.push_back(float_attribute(name, value));
    ++changed;
  }
  return changed;
}

namespace {

// `equation` with its labels renamed a, b, c... in order of appearance and its spaces dropped; ""
// when that would change nothing or it has more than 26 labels.
std::string lowercase_equation(std::string_view equation) {
  std::string out;
  std::unordered_map<char, char> label;
  bool changed = false;
  for (const char c : equation) {
    if (c == ' ') {
      changed = true;
      continue;
    }
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!letter) {
      out += c;
      continue;
    }
    const auto [found, added] = label.emplace(c, static_cast<char>('a' + label.size()));
    if (added && label.size() > 26) return {};
    changed = changed || (c >= 'A' && c <= 'Z');
    out += found->second;
  }
  return changed ? out : std::string();
}

}  // namespace

std::size_t OnnxModel::lowercase_einsum_equations() {
  constexpr std::uint32_t kName = 1, kS = 4;
  std::size_t changed = 0;
  for (auto& node : nodes_) {
    if (node.op_type != "Einsum" || !is_default_domain(node.domain)) continue;
    for (Field& field : node.other_fields.fields) {
      if (!field.is_bytes(node_field::attribute)) continue;
      Message attribute = Message::parse(field.bytes_value());
      if (attribute.first_bytes(kName) != "equation") continue;
      const std::string equation = lowercase_equation(attribute.first_bytes(kS));
      if (equation.empty()) continue;
      for (Field& a : attribute.fields) {
        if (a.is_bytes(kS)) a = Field::bytes(kS, equation);
      }
      field = Field::bytes(node_field::attribute, attribute.serialize());
      ++changed;
    }
  }
  return changed;
}

void OnnxModel::add_graph_output(const std::string& name) {
  if (std::find(graph_outputs_.begin(), graph_outputs_.end(), name) != graph_outputs_.end()) return;
  graph_.fields.push_back(Field::bytes(graph_field::output, Message{{Field::bytes(kValueInfoName, name)}}.serialize()));
  graph_outputs_.push_back(name);
}

}  // namespace thingsvision
