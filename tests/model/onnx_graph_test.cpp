// onnx_graph_test.cpp — the protobuf wire reader/writer and the ONNX graph rewrites (Identity nodes
// on an initializer, on an activation, chained, making a graph output; Clip bounds; Einsum
// equations), and Model::load of such a
// file through OpenCV DNN, the file on disk unchanged; the graphs are built here, field by field.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "model/backends/onnx_graph.hpp"
#include "model/backends/protobuf_wire.hpp"
#include "test_support.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/model.hpp"

namespace {

using thingsvision::Error;
using thingsvision::ErrorKind;
using thingsvision::OnnxModel;
using thingsvision::OnnxNode;
using thingsvision::protobuf::Field;
using thingsvision::protobuf::Message;
using thingsvision::protobuf::WireType;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string bytes_of(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out += static_cast<char>(v);
  return out;
}

TEST(ProtobufWire, ReadsAndWritesEachWireType) {
  // field 1 varint 150, field 2 "hi", field 3 fixed32, field 4 fixed64 (protobuf's documented bytes)
  const std::string bytes = bytes_of({0x08, 0x96, 0x01, 0x12, 0x02, 'h', 'i', 0x1d, 1, 2, 3, 4,
                                      0x21, 1, 2, 3, 4, 5, 6, 7, 8});
  const Message m = Message::parse(bytes);
  ASSERT_EQ(m.fields.size(), 4u);
  EXPECT_EQ(m.fields[0].number(), 1u);
  EXPECT_EQ(m.fields[0].varint_value(), 150u);
  EXPECT_EQ(m.first_bytes(2), "hi");
  EXPECT_EQ(m.fields[2].wire(), WireType::fixed32);
  EXPECT_EQ(m.fields[2].bytes_value(), bytes_of({1, 2, 3, 4}));
  EXPECT_EQ(m.fields[3].wire(), WireType::fixed64);
  EXPECT_EQ(m.serialize(), bytes);
  EXPECT_EQ(m.serialized_size(), bytes.size());
  // A field that owns its bytes survives copies of it; a 300-byte payload has a 2-byte length.
  Message built;
  {
    const Field owned = Field::bytes(5, std::string(300, 'x'));
    built.fields.push_back(owned);
  }
  built.fields.push_back(Field::varint(1, 1ull << 40));
  const std::string out = built.serialize();
  EXPECT_EQ(out.substr(0, 3), bytes_of({0x2a, 0xac, 0x02}));
  EXPECT_EQ(Message::parse(out).first_bytes(5), std::string(300, 'x'));
  EXPECT_EQ(Message::parse(out).fields[1].varint_value(), 1ull << 40);
  EXPECT_EQ(built.serialized_size(), out.size());
}

TEST(ProtobufWire, MalformedMessagesAreErrors) {
  const auto message = [](const std::string& bytes) {
    return std::string(tv_test::catch_error([&] { Message::parse(bytes); }).what());
  };
  EXPECT_THAT(message(bytes_of({0x12, 0x05, 'a'})),
              HasSubstr("malformed protobuf message: field 2 of 5 bytes past the end (1 left) at byte 0"));
  EXPECT_THAT(message(bytes_of({0x08, 0x96})), HasSubstr("truncated varint at byte 1"));
  EXPECT_THAT(message(bytes_of({0x0b})), HasSubstr("field 1 of wire type 3 (groups are not read)"));
  EXPECT_THAT(message(bytes_of({0x1d, 1})), HasSubstr("truncated field 3 at byte 0"));
}

// ---------------------------------------------------------------------------- ONNX test graphs
std::string text_field(std::uint32_t number, const std::string& text) {
  return Message{{Field::bytes(number, text)}}.serialize();
}

Field node(const std::string& name, const std::string& op, std::vector<std::string> inputs,
           std::vector<std::string> outputs) {
  Message m;
  for (const auto& i : inputs) m.fields.push_back(Field::bytes(1, i));
  for (const auto& o : outputs) m.fields.push_back(Field::bytes(2, o));
  m.fields.push_back(Field::bytes(3, name));
  m.fields.push_back(Field::bytes(4, op));
  return Field::bytes(1, m.serialize());
}

// A float tensor [N, 3, 2, 2] (N symbolic) as a ValueInfoProto, for field `number` of the graph.
Field value_info(std::uint32_t number, const std::string& name) {
  Message shape;
  shape.fields.push_back(Field::bytes(1, text_field(2, "N")));  // dim_param
  for (int d : {3, 2, 2}) shape.fields.push_back(Field::bytes(1, Message{{Field::varint(1, static_cast<std::uint64_t>(d))}}.serialize()));
  Message tensor_type{{Field::varint(1, 1), Field::bytes(2, shape.serialize())}};  // elem_type float
  Message type{{Field::bytes(1, tensor_type.serialize())}};
  return Field::bytes(number, Message{{Field::bytes(1, name), Field::bytes(2, type.serialize())}}.serialize());
}

// The initializer `name`: float [1, 3, 1, 1] holding `values`.
Field initializer(const std::string& name, const std::vector<float>& values) {
  Message t;
  for (int d : {1, 3, 1, 1}) t.fields.push_back(Field::varint(1, static_cast<std::uint64_t>(d)));
  t.fields.push_back(Field::varint(2, 1));
  t.fields.push_back(Field::bytes(8, name));
  std::string raw(values.size() * sizeof(float), '\0');
  std::memcpy(raw.data(), values.data(), raw.size());
  t.fields.push_back(Field::bytes(9, raw));
  return Field::bytes(5, t.serialize());
}

// input → Mul by w2 (= Identity(Identity(w0)), an initializer) → two chained Identities → Relu →
// Identity making the graph output "output": relu(input * [1, -2, 3]).
std::string identity_model(bool with_value_info = true) {
  Message graph;
  graph.fields.push_back(node("id_w1", "Identity", {"w0"}, {"w1"}));
  graph.fields.push_back(node("id_w2", "Identity", {"w1"}, {"w2"}));
  graph.fields.push_back(node("/scale/Mul", "Mul", {"input", "w2"}, {"m"}));
  graph.fields.push_back(node("id_m1", "Identity", {"m"}, {"m1"}));
  graph.fields.push_back(node("id_m2", "Identity", {"m1"}, {"m2"}));
  graph.fields.push_back(node("/act/Relu", "Relu", {"m2"}, {"r"}));
  graph.fields.push_back(node("id_out", "Identity", {"r"}, {"output"}));
  graph.fields.push_back(Field::bytes(2, "g"));
  graph.fields.push_back(initializer("w0", {1.0f, -2.0f, 3.0f}));
  graph.fields.push_back(value_info(11, "input"));
  graph.fields.push_back(value_info(12, "output"));
  if (with_value_info) graph.fields.push_back(value_info(13, "m1"));
  Message model;
  model.fields.push_back(Field::varint(1, 8));  // ir_version
  model.fields.push_back(Field::bytes(2, "onnx_graph_test"));
  model.fields.push_back(Field::bytes(7, graph.serialize()));
  model.fields.push_back(Field::bytes(8, Message{{Field::bytes(1, ""), Field::varint(2, 13)}}.serialize()));
  return model.serialize();
}

std::vector<std::string> op_types(const OnnxModel& model) {
  std::vector<std::string> ops;
  for (const auto& n : model.nodes()) ops.push_back(n.op_type);
  return ops;
}

TEST(OnnxGraph, ReadsNodesInputsOutputsInitializersAndOpset) {
  const std::string bytes = identity_model();
  const OnnxModel model = OnnxModel::parse(bytes, "m.onnx");
  EXPECT_EQ(model.default_opset(), 13);
  EXPECT_THAT(model.graph_inputs(), ElementsAre("input"));
  EXPECT_THAT(model.graph_outputs(), ElementsAre("output"));
  EXPECT_THAT(model.initializers(), ElementsAre("w0"));
  EXPECT_FALSE(model.has_external_data());
  ASSERT_EQ(model.nodes().size(), 7u);
  EXPECT_EQ(model.nodes()[2].name, "/scale/Mul");
  EXPECT_THAT(model.nodes()[2].inputs, ElementsAre("input", "w2"));
  // Unchanged, it is written back byte for byte.
  EXPECT_EQ(model.serialize(), bytes);
}

TEST(OnnxGraph, RemovesIdentityNodesAndRewiresTheirConsumers) {
  const std::string bytes = identity_model();
  OnnxModel model = OnnxModel::parse(bytes, "m.onnx");
  const auto removal = model.remove_identity_nodes();
  EXPECT_EQ(removal.removed, 5u);
  EXPECT_TRUE(removal.kept.empty());
  EXPECT_THAT(op_types(model), ElementsAre("Mul", "Relu"));
  // Identity of an initializer, twice: the Mul reads the initializer itself.
  EXPECT_THAT(model.nodes()[0].inputs, ElementsAre("input", "w0"));
  // Chained Identities on an activation: the Relu reads the Mul's output.
  EXPECT_THAT(model.nodes()[1].inputs, ElementsAre("m"));
  // The Identity that made the graph output: the Relu writes "output" itself.
  EXPECT_THAT(model.nodes()[1].outputs, ElementsAre("output"));
  // Re-read from its bytes: the same graph, the value_info of the removed "m1" gone.
  const std::string written = model.serialize();
  const OnnxModel again = OnnxModel::parse(written, "m.onnx");
  EXPECT_THAT(op_types(again), ElementsAre("Mul", "Relu"));
  EXPECT_THAT(again.nodes()[1].outputs, ElementsAre("output"));
  const std::string without_value_info = identity_model(false);
  OnnxModel other = OnnxModel::parse(without_value_info, "m.onnx");
  other.remove_identity_nodes();
  EXPECT_EQ(written, other.serialize());
}

TEST(OnnxGraph, KeepsAnIdentityFromAGraphInputToAGraphOutput) {
  Message graph;
  graph.fields.push_back(node("pass", "Identity", {"input"}, {"output"}));
  graph.fields.push_back(value_info(11, "input"));
  graph.fields.push_back(value_info(12, "output"));
  const std::string bytes = Message{{Field::bytes(7, graph.serialize())}}.serialize();
  OnnxModel model = OnnxModel::parse(bytes, "m.onnx");
  EXPECT_EQ(model.default_opset(), -1);
  const auto removal = model.remove_identity_nodes();
  EXPECT_EQ(removal.removed, 0u);
  EXPECT_THAT(removal.kept, ElementsAre("pass"));
  EXPECT_EQ(model.serialize(), bytes);
}

TEST(OnnxGraph, KeepsIdentityOutputsASubgraphReads) {
  Message branch;  // the If's then_branch reads m1
  branch.fields.push_back(node("inner", "Relu", {"m1"}, {"t"}));
  const Field if_field = node("/pool/If", "If", {"cond"}, {"i"});  // owns the bytes if_node views
  Message if_node = Message::parse(if_field.bytes_value());
  if_node.fields.push_back(Field::bytes(5, Message{{Field::bytes(1, "then_branch"),
                                                    Field::bytes(6, branch.serialize()),
                                                    Field::varint(20, 5)}}.serialize()));
  Message graph;
  graph.fields.push_back(node("id_w1", "Identity", {"w0"}, {"w1"}));
  graph.fields.push_back(node("/scale/Mul", "Mul", {"input", "w1"}, {"m"}));
  graph.fields.push_back(node("id_m1", "Identity", {"m"}, {"m1"}));
  graph.fields.push_back(Field::bytes(1, if_node.serialize()));
  graph.fields.push_back(node("/act/Relu", "Relu", {"m1"}, {"output"}));
  graph.fields.push_back(initializer("w0", {1.0f, 2.0f, 3.0f}));
  graph.fields.push_back(value_info(11, "input"));
  graph.fields.push_back(value_info(12, "output"));
  const std::string bytes = Message{{Field::bytes(7, graph.serialize())}}.serialize();
  OnnxModel model = OnnxModel::parse(bytes, "if.onnx");
  const auto removal = model.remove_identity_nodes();
  EXPECT_EQ(removal.removed, 1u);
  EXPECT_THAT(removal.kept, ElementsAre("id_m1"));
  EXPECT_THAT(op_types(model), ElementsAre("Mul", "Identity", "If", "Relu"));
  EXPECT_THAT(model.nodes()[0].inputs, ElementsAre("input", "w0"));
  EXPECT_THAT(model.nodes()[3].inputs, ElementsAre("m1"));
}

TEST(OnnxGraph, AddsAGraphOutputByName) {
  const std::string bytes = identity_model();
  OnnxModel model = OnnxModel::parse(bytes, "m.onnx");
  model.add_graph_output("m");
  model.add_graph_output("output");  // already one
  const std::string written = model.serialize();
  EXPECT_THAT(OnnxModel::parse(written, "m.onnx").graph_outputs(), ElementsAre("output", "m"));
}

TEST(OnnxGraph, ErrorsNameTheFile) {
  const std::string bad = bytes_of({0x3a, 0x09});
  const Error e = tv_test::catch_error([&] { OnnxModel::parse(bad, "dir/bad.onnx"); });
  EXPECT_EQ(e.kind(), ErrorKind::model);
  EXPECT_THAT(e.what(), HasSubstr("cannot read ONNX model 'dir/bad.onnx': malformed protobuf message"));
  const std::string graphless = bytes_of({0x08, 0x07});
  const Error no_graph = tv_test::catch_error([&] { OnnxModel::parse(graphless, "g.onnx"); });
  EXPECT_THAT(no_graph.what(), HasSubstr("cannot read ONNX model 'g.onnx': the ModelProto has no graph"));
}

// A float scalar TensorProto (no dims) holding `value` in raw_data.
std::string scalar_tensor(const std::string& name, float value) {
  std::string raw(sizeof(float), '\0');
  std::memcpy(raw.data(), &value, sizeof(float));
  Message t{{Field::varint(2, 1), Field::bytes(8, name), Field::bytes(9, raw)}};
  return t.serialize();
}

// input → Clip(input, lo, hi) → Clip(.., "", hi2) → output, as a default export's ReLU6: lo an
// initializer, hi a Constant node's value, hi2 an initializer, the second Clip without a min.
std::string clip_model() {
  Message graph;
  Message constant{{Field::bytes(2, "hi"), Field::bytes(3, "hi_const"), Field::bytes(4, "Constant"),
                    Field::bytes(5, Message{{Field::bytes(1, "value"), Field::bytes(5, scalar_tensor("", 6.0f)),
                                             Field::varint(20, 4)}}.serialize())}};
  graph.fields.push_back(Field::bytes(1, constant.serialize()));
  graph.fields.push_back(node("/act/Clip", "Clip", {"input", "lo", "hi"}, {"c"}));
  graph.fields.push_back(node("/act2/Clip", "Clip", {"c", "", "hi2"}, {"output"}));
  graph.fields.push_back(Field::bytes(5, scalar_tensor("lo", 0.0f)));
  graph.fields.push_back(Field::bytes(5, scalar_tensor("hi2", 4.5f)));
  graph.fields.push_back(value_info(11, "input"));
  graph.fields.push_back(value_info(12, "output"));
  Message model{{Field::varint(1, 8), Field::bytes(7, graph.serialize()),
                 Field::bytes(8, Message{{Field::bytes(1, ""), Field::varint(2, 13)}}.serialize())}};
  return model.serialize();
}

TEST(OnnxGraph, ClipBoundsBecomeAttributes) {
  const std::string bytes = clip_model();
  OnnxModel model = OnnxModel::parse(bytes, "clip.onnx");
  EXPECT_EQ(model.clip_bounds_to_attributes(), 2u);
  ASSERT_EQ(model.nodes().size(), 3u);
  EXPECT_THAT(model.nodes()[1].inputs, ElementsAre("input"));
  EXPECT_THAT(model.nodes()[2].inputs, ElementsAre("c"));
  // attributes min 0 and max 6 (FLOAT), then max 4.5 alone
  const auto attribute = [](const OnnxNode& n, std::size_t i) {
    const Message a = Message::parse(n.other_fields.fields.at(i).bytes_value());
    float value = 0.0f;
    std::memcpy(&value, a.fields.at(1).bytes_value().data(), sizeof(float));
    return std::make_pair(std::string(a.first_bytes(1)), value);
  };
  EXPECT_EQ(attribute(model.nodes()[1], 0), std::make_pair(std::string("min"), 0.0f));
  EXPECT_EQ(attribute(model.nodes()[1], 1), std::make_pair(std::string("max"), 6.0f));
  ASSERT_EQ(model.nodes()[2].other_fields.fields.size(), 1u);
  EXPECT_EQ(attribute(model.nodes()[2], 0), std::make_pair(std::string("max"), 4.5f));
  // A bound that is another node's output: left alone.
  Message graph;
  graph.fields.push_back(node("relu", "Relu", {"input"}, {"r"}));
  graph.fields.push_back(node("clip", "Clip", {"input", "r"}, {"output"}));
  const std::string dynamic = Message{{Field::bytes(7, graph.serialize())}}.serialize();
  OnnxModel other = OnnxModel::parse(dynamic, "clip.onnx");
  EXPECT_EQ(other.clip_bounds_to_attributes(), 0u);
  EXPECT_EQ(other.serialize(), dynamic);
}

// The ONNX model `bytes` written to DIR/`name` and loaded by Model::load (OpenCV DNN).
thingsvision::Model load_written(const tv_test::TempDir& dir, const std::string& name, const std::string& bytes) {
  const auto file = dir.path() / name;
  std::ofstream(file, std::ios::binary) << bytes;
  return thingsvision::Model::load(file);
}

// `n` images of 3 × 2 × 2 pixels, pixel i (over the whole batch) = `value`(i).
template <typename F>
thingsvision::ImageBatch small_batch(int n, F value) {
  thingsvision::ImageBatch batch;
  batch.num_images = n;
  batch.channels = 3;
  batch.height = 2;
  batch.width = 2;
  for (int i = 0; i < n * 12; ++i) batch.pixels.push_back(value(i));
  return batch;
}

// The equation attribute (field 5 of the NodeProto) of `node`.
std::string einsum_equation(const OnnxNode& node) {
  for (const Field& f : node.other_fields.fields) {
    const Message attribute = Message::parse(f.bytes_value());
    if (f.is_bytes(5) && attribute.first_bytes(1) == "equation") return std::string(attribute.first_bytes(4));
  }
  return "(none)";
}

// MaxViT's einsums as torch.onnx.export writes them (capital labels, spaces), one with an ellipsis,
// and one already in OpenCV's form, which stays byte-identical.
TEST(OnnxGraph, EinsumEquationsBecomeLowercaseWithoutSpaces) {
  const auto einsum = [](const std::string& name, const std::string& equation, const std::string& out) {
    const Message attribute{{Field::bytes(1, "equation"), Field::bytes(4, equation), Field::varint(20, 3)}};
    const Message n{{Field::bytes(1, "input"), Field::bytes(1, "input"), Field::bytes(2, out), Field::bytes(3, name),
                     Field::bytes(4, "Einsum"), Field::bytes(5, attribute.serialize())}};
    return Field::bytes(1, n.serialize());
  };
  Message graph;
  graph.fields.push_back(einsum("attn", "B G H I D, B G H J D -> B G H I J", "a"));
  graph.fields.push_back(einsum("ellipsis", "...I J, ...J k -> ...I k", "b"));
  graph.fields.push_back(einsum("plain", "nchw,nchw->nc", "c"));
  const std::string bytes = Message{{Field::bytes(7, graph.serialize())}}.serialize();
  OnnxModel model = OnnxModel::parse(bytes, "einsum.onnx");
  EXPECT_EQ(model.lowercase_einsum_equations(), 2u);
  const std::string written_bytes = model.serialize();  // OnnxModel views into the bytes it parses
  const OnnxModel written = OnnxModel::parse(written_bytes, "einsum.onnx");
  ASSERT_EQ(written.nodes().size(), 3u);
  EXPECT_EQ(einsum_equation(written.nodes()[0]), "abcde,abcfe->abcdf");
  EXPECT_EQ(einsum_equation(written.nodes()[1]), "...ab,...bc->...ac");
  EXPECT_EQ(einsum_equation(written.nodes()[2]), "nchw,nchw->nc");
  EXPECT_THAT(written.nodes()[0].inputs, ElementsAre("input", "input"));
  const std::string plain_bytes =
      Message{{Field::bytes(7, Message{{einsum("p", "ij,jk->ik", "o")}}.serialize())}}.serialize();
  OnnxModel plain = OnnxModel::parse(plain_bytes, "plain.onnx");
  EXPECT_EQ(plain.lowercase_einsum_equations(), 0u);
}

TEST(OnnxGraph, ModelLoadsAClipWithBoundInputs) {
  tv_test::TempDir dir;
  const std::string bytes = clip_model();
  thingsvision::Model model = load_written(dir, "clip.onnx", bytes);
  const auto batch = small_batch(1, [](int i) { return static_cast<float>(i) - 3.0f; });
  const auto out = model.forward(batch);
  ASSERT_EQ(out.values.size(), 12u);
  for (std::size_t i = 0; i < 12; ++i) {
    EXPECT_FLOAT_EQ(out.values[i], std::min(std::max(batch.pixels[i], 0.0f), 4.5f)) << i;
  }
  EXPECT_EQ(tv_test::read_file(dir.path() / "clip.onnx"), bytes);
}

// Model::load reads the rewritten graph; the file stays byte-identical.
TEST(OnnxGraph, ModelLoadsAFileWithIdentityNodesAndLeavesItUnchanged) {
  tv_test::TempDir dir;
  const std::string bytes = identity_model();
  thingsvision::Model model = load_written(dir, "identity.onnx", bytes);
  const auto batch = small_batch(2, [](int i) { return static_cast<float>(i % 5) - 2.0f; });
  const auto out = model.extract(batch, {"act", "scale"});
  ASSERT_EQ(out.size(), 2u);
  const float scale[] = {1.0f, -2.0f, 3.0f};
  for (std::size_t i = 0; i < 24; ++i) {
    const float m = batch.pixels[i] * scale[(i / 4) % 3];
    EXPECT_FLOAT_EQ(out[1].values[i], m) << i;
    EXPECT_FLOAT_EQ(out[0].values[i], std::max(m, 0.0f)) << i;
  }
  EXPECT_EQ(tv_test::read_file(dir.path() / "identity.onnx"), bytes);
}

}  // namespace
