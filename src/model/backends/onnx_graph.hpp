// onnx_graph.hpp — an ONNX model's main graph read from and written to protobuf wire format, and the
// in-memory rewrites that let OpenCV DNN read plain torch.onnx.export files; private.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "model/backends/protobuf_wire.hpp"

namespace thingsvision {

/// The bytes of the model file `file`; throws Error(io) naming it if it cannot be read.
std::string read_model_bytes(const std::filesystem::path& file);

/// One NodeProto of the main graph: its names and op; attributes and doc string kept as read.
struct OnnxNode {
  std::string name;
  std::string op_type;
  std::string domain;  ///< "" or "ai.onnx" for the default domain
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  protobuf::Message other_fields;  ///< attributes, doc string, ...
  bool has_subgraphs = false;      ///< an attribute holds a graph (If, Loop, Scan)
};

/// What remove_identity_nodes did: Identity nodes dropped, and those it had to keep.
struct IdentityRemoval {
  std::size_t removed = 0;
  std::vector<std::string> kept;  ///< names of Identity nodes that could not be removed
};

/// An ONNX ModelProto: the main graph's nodes, graph inputs, outputs, initializers and opset;
/// every other field (weights included) kept as read and written back unchanged.
class OnnxModel {
 public:
  /// Reads a ModelProto from `bytes`, which must outlive the model (weights are views into it).
  /// Throws Error(model) naming `file` for a malformed message or one without a graph.
  static OnnxModel parse(std::string_view bytes, const std::filesystem::path& file);
  /// A temporary string would leave the model's views dangling.
  static OnnxModel parse(std::string&& bytes, const std::filesystem::path& file) = delete;

  /// The ModelProto in wire format, with the graph as edited.
  std::string serialize() const;

  /// The default-domain ("" / "ai.onnx") opset of opset_import; -1 if none.
  std::int64_t default_opset() const { return default_opset_; }
  const std::vector<OnnxNode>& nodes() const { return nodes_; }
  const std::vector<std::string>& graph_inputs() const { return graph_inputs_; }
  const std::vector<std::string>& graph_outputs() const { return graph_outputs_; }
  const std::vector<std::string>& initializers() const { return initializers_; }
  /// True when some initializer keeps its data in an external file (data_location EXTERNAL).
  bool has_external_data() const { return has_external_data_; }

  /// Drops the default-domain Identity nodes, pointing their consumers at the Identity's input
  /// (chains followed; an initializer input too). An Identity that makes a graph output from
  /// another node's output renames that output instead; one whose input is a graph input,
  /// initializer or another graph output is kept (listed), as is one whose output (or, for a
  /// rename, input) a subgraph of an If / Loop reads: names are not followed into subgraphs.
  IdentityRemoval remove_identity_nodes();

  /// Turns each Clip whose min / max inputs are constant float scalars (initializers or Constant
  /// nodes) into the opset-6 form OpenCV 4.6 reads: one input, attributes min and max. Returns how
  /// many; a Clip with a non-constant bound is left as it is.
  std::size_t clip_bounds_to_attributes();

  /// Writes each default-domain Einsum equation with spaces or capital letters (torchvision's MaxViT:
  /// "B G H I D, B G H J D -> B G H I J") as lowercase labels without spaces ("abcde,abcef->abcdf"),
  /// each label its own letter in order of appearance: OpenCV 4.10 crashes parsing the former.
  /// Returns how many; an equation of more than 26 labels is left as it is.
  std::size_t lowercase_einsum_equations();

  /// Appends a graph output (a ValueInfoProto with only its name) unless `name` is one already.
  void add_graph_output(const std::string& name);

 private:
  protobuf::Message model_;  // every ModelProto field; field 7 (graph) written from graph_ + nodes_
  protobuf::Message graph_;  // every GraphProto field but its nodes
  std::vector<OnnxNode> nodes_;
  std::vector<std::string> graph_inputs_;
  std::vector<std::string> graph_outputs_;
  std::vector<std::string> initializers_;
  std::int64_t default_opset_ = -1;
  bool has_external_data_ = false;
  std::unordered_set<std::string> subgraph_inputs_;  // names the nodes of subgraphs read
};

}  // namespace thingsvision
