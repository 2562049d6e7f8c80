// torchscript_backend.cpp — ModelBackend for TorchScript archives: loading, module listing, and
// extraction by graph surgery: the entry method's graph is copied, the prim::CallMethod nodes on the
// path to each requested module are inlined, a clone of every call of a requested module becomes an
// extra output of a new method, and dead code elimination then cuts what comes after the last one.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/alias_analysis.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/frozen_graph_optimizations.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/passes/remove_exceptions.h>
#include <c10/core/StreamGuard.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/script.h>
#include <torch/version.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "model/torch/torch_glue.hpp"
#include "model/torch/torchscript_patch.hpp"
#include "model/batch_layout.hpp"
#include "model/model_impl.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/version.hpp"

namespace thingsvision {

namespace {

using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;
using torch::jit::WithInsertPoint;

const char* const kModuleTreeFile = "module_tree.txt";

std::string shape_string(at::IntArrayRef sizes) {
  std::string out = "[";
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(sizes[i]);
  }
  return out + "]";
}

// --- module listing ------------------------------------------------------------------------------

std::string type_name(const torch::jit::Module& module) {
  const auto& name = module.type()->name();
  return name ? name->name() : std::string("Module");
}

// Pre-order walk like Python's named_modules(): each module object once, the root excluded.
void list_modules(const torch::jit::Module& module, const std::string& prefix,
                  std::unordered_set<const void*>& seen, std::vector<ModuleInfo>& out) {
  for (const auto& child : module.named_children()) {
    if (!seen.insert(child.value._ivalue().get()).second) continue;
    const std::string name = prefix.empty() ? child.name : prefix + "." + child.name;
    out.push_back({name, type_name(child.value)});
    list_modules(child.value, name, seen, out);
  }
}

// PyTorch's Module.__repr__ without the extra_repr (unknown to TorchScript): "Type(\n  (a): ...\n)".
std::string module_repr(const torch::jit::Module& module) {
  std::string children;
  for (const auto& child : module.named_children()) {
    std::string text = module_repr(child.value);
    std::string indented;
    for (char c : text) {
      indented += c;
      if (c == '\n') indented += "  ";
    }
    children += "  (" + child.name + "): " + indented + "\n";
  }
  if (children.empty()) return type_name(module) + "()";
  return type_name(module) + "(\n" + children + ")";
}

// --- graph surgery -------------------------------------------------------------------------------

// The dotted module path of `value` if it is a submodule reached from `self` by attribute reads.
c10::optional<std::string> module_path(const Value* value, const Value* self);

// Attributes some method writes (prim::SetAttr), as "<class qualified name>.<attribute>".
using WrittenAttributes = std::unordered_set<std::string>;

void collect_written_attributes(const Block* block, WrittenAttributes& out) {
  for (const Node* node : block->nodes()) {
    for (const Block* sub : node->blocks()) collect_written_attributes(sub, out);
    if (node->kind() != c10::prim::SetAttr) continue;
    const auto cls = node->input(0)->type()->cast<c10::ClassType>();
    if (cls && cls->name()) out.insert(cls->name()->qualifiedName() + "." + node->s(c10::attr::name));
  }
}

torch::jit::Module submodule_at(torch::jit::Module module, const std::string& path) {
  std::size_t start = 0;
  while (start < path.size()) {
    std::size_t end = path.find('.', start);
    if (end == std::string::npos) end = path.size();
    module = module.attr(path.substr(start, end - start)).toModule();
    start = end + 1;
  }
  return module;
}

// The first argument of `method` after self and the images without a default (an input it needs
// besides the images), or nullptr.
const c10::Argument* argument_besides_images(const torch::jit::Method& method) {
  const auto& arguments = method.function().getSchema().arguments();
  for (std::size_t i = 2; i < arguments.size(); ++i) {
    if (!arguments[i].default_value()) return &arguments[i];
  }
  return nullptr;
}

// An integer attribute `name` of `module`, an int or a one-element tensor (OpenAI's traced CLIP
// archives keep input_resolution as a tensor: clip.load calls .item()); 0 if absent or neither.
std::int64_t integer_attribute(const torch::jit::Module& module, const std::string& name) {
  if (!module.hasattr(name)) return 0;
  const c10::IValue value = module.attr(name);
  if (value.isInt()) return value.toInt();
  if (value.isTensor() && value.toTensor().numel() == 1) return value.toTensor().item<std::int64_t>();
  return 0;
}

// The rows of a 2-D tensor attribute `name` of `module`, 0 if absent or not 2-D.
std::int64_t embedding_rows(const torch::jit::Module& module, const std::string& name) {
  if (!module.hasattr(name)) return 0;
  const c10::IValue value = module.attr(name);
  return value.isTensor() && value.toTensor().dim() == 2 ? value.toTensor().size(0) : 0;
}

// A CLIP archive's input_resolution: the root's attribute, the visual tower's, else what the
// positional embedding implies, as OpenAI's build_model computes it: ViT: patch size x
// sqrt(tokens - 1); ModifiedResNet: 32 x sqrt(attnpool tokens - 1). 0 if none applies.
int clip_input_resolution(const torch::jit::Module& root) {
  if (const auto n = integer_attribute(root, "input_resolution"); n > 0) return static_cast<int>(n);
  if (!root.hasattr("visual") || !root.attr("visual").isModule()) return 0;
  const torch::jit::Module visual = root.attr("visual").toModule();
  if (const auto n = integer_attribute(visual, "input_resolution"); n > 0) return static_cast<int>(n);
  const auto grid = [](std::int64_t tokens) {
    const auto side = static_cast<std::int64_t>(std::lround(std::sqrt(static_cast<double>(tokens - 1))));
    return tokens > 1 && side * side == tokens - 1 ? side : std::int64_t{0};
  };
  if (const auto tokens = embedding_rows(visual, "positional_embedding"); tokens > 0 && visual.hasattr("conv1")) {
    const torch::jit::Module conv1 = visual.attr("conv1").toModule();
    if (conv1.hasattr("weight") && conv1.attr("weight").isTensor()) {
      return static_cast<int>(conv1.attr("weight").toTensor().size(-1) * grid(tokens));
    }
  }
  if (visual.hasattr("attnpool") && visual.attr("attnpool").isModule()) {
    return static_cast<int>(32 * grid(embedding_rows(visual.attr("attnpool").toModule(), "positional_embedding")));
  }
  return 0;
}

// What the archive reveals about itself, and the entry method: `requested`, or if empty
// "encode_image" for a CLIP archive (encode_image + encode_text, forward needing text), else "forward".
ModelTraits inspect_archive(const torch::jit::Module& module, const std::string& requested) {
  ModelTraits traits;
  const auto forward = module.find_method("forward");
  traits.clip_archive = module.find_method("encode_image") && module.find_method("encode_text") &&
                        (!forward || argument_besides_images(*forward) != nullptr);
  if (traits.clip_archive) traits.input_resolution = clip_input_resolution(module);
  traits.entry_method = !requested.empty() ? requested : traits.clip_archive ? "encode_image" : "forward";
  return traits;
}

// Replaces reads of `training` by `false` (the model is in eval mode) and reads of bool / int /
// float / string attributes that no method writes by their values (like torch.jit.freeze), so
// that `if self.use_res_connect:` and the like fold away. `self_module` is graph input 0.
void fold_module_attributes(Graph& graph, Block* block, const torch::jit::Module& self_module,
                            const WrittenAttributes& written) {
  std::vector<std::pair<Node*, c10::IValue>> reads;
  for (Node* node : block->nodes()) {
    for (Block* sub : node->blocks()) fold_module_attributes(graph, sub, self_module, written);
    if (node->kind() != c10::prim::GetAttr) continue;
    const auto cls = node->input(0)->type()->cast<c10::ClassType>();
    if (!cls || !cls->is_module()) continue;
    const std::string& name = node->s(c10::attr::name);
    if (name == "training") {
      reads.emplace_back(node, c10::IValue(false));
      continue;
    }
    const auto kind = node->output()->type()->kind();
    if (kind != c10::TypeKind::BoolType && kind != c10::TypeKind::IntType &&
        kind != c10::TypeKind::FloatType && kind != c10::TypeKind::StringType) {
      continue;
    }
    if (!cls->name() || written.count(cls->name()->qualifiedName() + "." + name)) continue;
    const auto path = module_path(node->input(0), graph.inputs().at(0));
    if (!path) continue;
    reads.emplace_back(node, submodule_at(self_module, *path).attr(name));
  }
  for (auto& [node, value] : reads) {
    WithInsertPoint guard(node);
    node->output()->replaceAllUsesWith(graph.insertConstant(value));
    node->destroy();
  }
}

// Folds `training` and constant attributes, drops branches that only raise, folds the resulting
// constant ifs.
void simplify(std::shared_ptr<Graph>& graph, const torch::jit::Module& self_module,
              const WrittenAttributes& written) {
  fold_module_attributes(*graph, graph->block(), self_module, written);
  torch::jit::EliminateExceptions(graph);
  torch::jit::ConstantPropagation(graph);
}

// The dotted module path of `value` if it is a submodule reached from `self` by attribute reads.
c10::optional<std::string> module_path(const Value* value, const Value* self) {
  if (value == self) return std::string();
  const Node* node = value->node();
  if (node->kind() != c10::prim::GetAttr) return c10::nullopt;
  const auto cls = value->type()->cast<c10::ClassType>();
  if (!cls || !cls->is_module()) return c10::nullopt;
  auto parent = module_path(node->input(0), self);
  if (!parent) return c10::nullopt;
  const std::string& name = node->s(c10::attr::name);
  return parent->empty() ? name : *parent + "." + name;
}

// "forward", or "forward1", "forward2"... (a traced module called several times).
bool is_forward_method(const std::string& name) {
  if (name.rfind("forward", 0) != 0) return false;
  return std::all_of(name.begin() + 7, name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Walks the graph in execution order, inlining calls on the way to the targets and tapping
// (cloning) the output of every call of a target.
class Tapper {
 public:
  Tapper(std::shared_ptr<Graph> graph, std::vector<std::string> targets, int tuple_index,
         std::string model_name, const torch::jit::Module& root, const WrittenAttributes& written)
      : root_(root),
        written_(written),
        graph_(std::move(graph)),
        self_(graph_->inputs().at(0)),
        targets_(std::move(targets)),
        tuple_index_(tuple_index),
        model_name_(std::move(model_name)) {}

  void run() { visit(graph_->block()); }

  /// The tapped values of `target`, in call order.
  const std::vector<Value*>& taps(const std::string& target) { return taps_[target]; }

 private:
  bool is_target(const std::string& path) const {
    return std::find(targets_.begin(), targets_.end(), path) != targets_.end();
  }
  bool is_ancestor(const std::string& path) const {
    if (path.empty()) return true;
    return std::any_of(targets_.begin(), targets_.end(),
                       [&](const std::string& t) { return t.rfind(path + ".", 0) == 0; });
  }

  void visit(Block* block) {
    for (Node* node = block->nodes().front(); node != block->return_node();) {
      for (Block* sub : node->blocks()) visit(sub);
      if (node->kind() != c10::prim::CallMethod) {
        node = node->next();
        continue;
      }
      const auto path = module_path(node->input(0), self_);
      if (!path) {
        node = node->next();
        continue;
      }
      Node* last = node;
      if (is_target(*path) && is_forward_method(node->s(c10::attr::name))) last = tap(node, *path);
      if (is_ancestor(*path)) {
        Node* before = node->prev();
        inline_call(node, *path);
        node = before->next();
      } else {
        node = last->next();
      }
    }
  }

  // Inserts clone(output) (of element tuple_index_ for a tuple) after `call`; returns the last
  // node inserted.
  Node* tap(Node* call, const std::string& path) {
    WithInsertPoint guard(call->next());
    Value* value = call->output();
    if (const auto tuple = value->type()->cast<c10::TupleType>()) {
      if (static_cast<std::size_t>(tuple_index_) >= tuple->elements().size()) {
        throw Error(ErrorKind::model,
                    fmt::format("module '{}' of {} returns a tuple of {} elements; tuple index {} "
                                "is out of range",
                                path, model_name_, tuple->elements().size(), tuple_index_));
      }
      Node* unpack = graph_->insertNode(graph_->createTupleUnpack(value));
      value = unpack->outputs()[static_cast<std::size_t>(tuple_index_)];
    }
    if (value->type()->kind() == c10::TypeKind::NoneType && call->inputs().size() == 1) {
      throw Error(ErrorKind::model,
                  fmt::format("module '{}' of {} was traced as a pass-through (e.g. nn.Identity): "
                              "the trace does not record its output; request the module that "
                              "produces its input, or use a scripted export",
                              path, model_name_));
    }
    if (!value->type()->isSubtypeOf(*c10::TensorType::get())) {
      throw Error(ErrorKind::model,
                  fmt::format("module '{}' of {} returns {}, not a tensor{}", path, model_name_,
                              value->type()->repr_str(),
                              value == call->output() ? "" : " (element " +
                                  std::to_string(tuple_index_) + " of its tuple output)"));
    }
    Value* copy = graph_->insert(c10::aten::clone, {value});
    taps_[path].push_back(copy);
    return copy->node();
  }

  void inline_call(Node* call, const std::string& path) {
    torch::jit::GraphFunction* callee = torch::jit::tryToGraphFunction(call);
    if (!callee) {
      throw Error(ErrorKind::model,
                  fmt::format("{}: cannot inline method '{}' (not a TorchScript graph function)",
                              model_name_, call->s(c10::attr::name)));
    }
    // The callee's raw graph (its calls not inlined), simplified like the entry graph.
    auto callee_graph = callee->graph()->copy();
    simplify(callee_graph, submodule_at(root_, path), written_);
    torch::jit::inlineCallTo(call, callee, callee_graph.get());
  }

  const torch::jit::Module& root_;
  const WrittenAttributes& written_;
  std::shared_ptr<Graph> graph_;
  Value* self_;
  std::vector<std::string> targets_;
  int tuple_index_;
  std::string model_name_;
  std::unordered_map<std::string, std::vector<Value*>> taps_;
};

// The graph cut: nothing that runs after the last tapped value can change it (the taps are
// clones), so every node after it goes, side effects (prints, warnings) included.
void cut_after_last_tap(Graph& graph, const std::vector<Value*>& taps) {
  std::unordered_set<const Node*> tap_nodes;
  for (const Value* tap : taps) tap_nodes.insert(tap->node());
  Node* last = nullptr;
  for (Node* node : graph.nodes()) {
    if (tap_nodes.count(node)) last = node;
  }
  if (!last) return;
  // In reverse, so that every use of a node's outputs is destroyed before the node.
  for (Node* node = graph.return_node()->prev(); node != last;) {
    Node* previous = node->prev();
    node->destroy();
    node = previous;
  }
}

// Before the last tap: method calls whose results nobody uses (a module's forward kept for its
// possible side effects) are inlined so that dead code elimination can judge their ops one by one.
void prune_unused_calls(std::shared_ptr<Graph>& graph) {
  for (bool changed = true; changed;) {
    torch::jit::EliminateDeadCode(graph);
    changed = false;
    for (auto it = graph->nodes().rbegin(); it != graph->nodes().rend(); ++it) {
      Node* node = *it;
      if (node->kind() != c10::prim::CallMethod || node->hasUses()) continue;
      torch::jit::GraphFunction* callee = torch::jit::tryToGraphFunction(node);
      if (!callee) continue;
      torch::jit::inlineCallTo(node, callee, /*use_graph=*/true);  // the fully inlined graph
      changed = true;
      break;
    }
  }
}

// --- the image input ------------------------------------------------------------------------------

std::atomic<std::int64_t> input_copies{0};  // torchscript_input_copies()

bool has_set_attr(const Block* block) {
  for (const Node* node : block->nodes()) {
    if (node->kind() == c10::prim::SetAttr) return true;
    for (const Block* sub : node->blocks()) {
      if (has_set_attr(sub)) return true;
    }
  }
  return false;
}

// Whether running `graph` may write into its image input (graph input 1), or keep it past the call
// in a module attribute: alias analysis (torch::jit::AliasDb) of a copy with every method call
// inlined and, given `self_module` (graph input 0; not for a frozen graph), simplified like the
// extraction graph (eval mode: `if self.training: self.num_batches_tracked.add_(1)` goes).
// Conservative: an op without alias information, or a write to any tensor the input may alias (a
// module attribute, a list element), counts as a write.
bool may_write_input(const std::shared_ptr<Graph>& graph, const torch::jit::Module* self_module,
                     const WrittenAttributes& written) {
  std::shared_ptr<Graph> inlined = graph->copy();
  torch::jit::Inline(*inlined);
  if (self_module) simplify(inlined, *self_module, written);
  torch::jit::EliminateDeadCode(inlined);
  if (inlined->inputs().size() < 2 || has_set_attr(inlined->block())) return true;
  const torch::jit::AliasDb alias_db(inlined);
  return alias_db.hasWriters(inlined->inputs()[1]);
}

// The tensor a method runs on: `input` itself (on the CPU, the caller's const pixels) when the
// method never writes into it, else a copy, so that the caller's batch, the optimize check's second
// run and the batch-dimension probe all see the original values.
at::Tensor input_for(bool may_write, const at::Tensor& input) {
  if (!may_write) return input;
  input_copies.fetch_add(1, std::memory_order_relaxed);
  return input.clone();
}

// --- the backend ---------------------------------------------------------------------------------

// One compiled extraction method: which output of its tuple belongs to which module call.
struct Extractor {
  std::string method_name;
  std::shared_ptr<Graph> graph;
  struct Output {
    std::size_t position;  // in the method's output tuple
    int call_index;
    int num_calls;
  };
  std::map<std::string, std::vector<Output>> outputs;  // by module name
  bool plain_writes_input = true;  // may_write_input(graph), computed once
  // ModelOptions::optimize: a frozen + optimized copy holding the same method, used once the
  // first batch showed that its outputs agree with the plain method's.
  enum class Optimized { off, unchecked, kept, dropped };
  Optimized optimized_state = Optimized::off;
  c10::optional<torch::jit::Module> optimized;
  std::string optimize_reason;  // the agreement measured, or why the optimizer failed
  double optimize_seconds = 0;  // freeze + optimize_for_inference
  std::string optimize_passes;  // what add_optimized applied, for the reason
  bool optimized_writes_input = true;  // may_write_input of the optimized method's graph
  double optimize_difference = std::numeric_limits<double>::quiet_NaN();  // relative_difference
  int checked_images = 0;
};

// The heavy operations of a graph, counted through its blocks (both branches of an if): whether
// optimize_for_inference is worth applying (Extractor::add_optimized).
struct GraphKind {
  int convolutions = 0;
  int matrix_products = 0;  // linear layers, matmuls and attention
};

GraphKind count_heavy_ops(const torch::jit::Block& block) {
  static const std::set<std::string> convolutions{
      "aten::conv1d", "aten::conv2d", "aten::conv3d", "aten::_convolution", "aten::convolution",
      "aten::conv_transpose1d", "aten::conv_transpose2d", "aten::conv_transpose3d"};
  static const std::set<std::string> products{
      "aten::linear", "aten::matmul", "aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm",
      "aten::einsum", "aten::_native_multi_head_attention", "aten::scaled_dot_product_attention"};
  GraphKind kind;
  for (const torch::jit::Node* node : block.nodes()) {
    const std::string op = node->kind().toQualString();
    kind.convolutions += static_cast<int>(convolutions.count(op));
    kind.matrix_products += static_cast<int>(products.count(op));
    for (const torch::jit::Block* inner : node->blocks()) {
      const GraphKind nested = count_heavy_ops(*inner);
      kind.convolutions += nested.convolutions;
      kind.matrix_products += nested.matrix_products;
    }
  }
  return kind;
}

// Relative agreement required of the optimized method (issue #9): max |diff| <= 1e-5 max |plain|.
constexpr double kOptimizeTolerance = 1e-5;

// The largest max |optimized - plain| / max |plain| over the outputs (infinity for a shape
// mismatch, NaN for NaN values; 0 / 0 counts as 0).
double relative_difference(const std::vector<at::Tensor>& plain, const std::vector<at::Tensor>& optimized) {
  if (plain.size() != optimized.size()) return std::numeric_limits<double>::infinity();
  double worst = 0.0;
  for (std::size_t i = 0; i < plain.size(); ++i) {
    if (!plain[i].sizes().equals(optimized[i].sizes())) return std::numeric_limits<double>::infinity();
    if (plain[i].numel() == 0) continue;
    const at::Tensor a = plain[i].to(at::kDouble), b = optimized[i].to(at::kDouble);
    const double max_ref = a.abs().max().item<double>();
    const double max_diff = (a - b).abs().max().item<double>();
    if (std::isnan(max_diff) || std::isnan(max_ref)) return std::numeric_limits<double>::quiet_NaN();
    const double relative = max_diff == 0.0 ? 0.0 : max_ref > 0.0 ? max_diff / max_ref
                                                                    : std::numeric_limits<double>::infinity();
    worst = std::max(worst, relative);
  }
  return worst;
}

// The torch version a sidecar (models/export.py's NAME.json beside NAME.pt) records, or "".
// (A plain scan: std::regex trips GCC 12's -Wmaybe-uninitialized under the sanitizers.)
std::string sidecar_torch_version(const std::filesystem::path& file) {
  std::filesystem::path json = file;
  json.replace_extension(".json");
  std::ifstream in(json);
  if (!in) return "";
  std::stringstream text;
  text << in.rdbuf();
  const std::string content = text.str();
  const std::size_t key = content.find("\"torch_version\"");
  if (key == std::string::npos) return "";
  const std::size_t colon = content.find_first_not_of(" \t\r\n", key + 15);
  if (colon == std::string::npos || content[colon] != ':') return "";
  const std::size_t open = content.find_first_not_of(" \t\r\n", colon + 1);
  if (open == std::string::npos || content[open] != '"') return "";
  const std::size_t close = content.find('"', open + 1);
  return close == std::string::npos ? "" : content.substr(open + 1, close - open - 1);
}

// Why torch::jit::load refused `file`: "not a TorchScript archive" only when it is none; for a valid
// archive whose code this LibTorch cannot compile (an op or argument added in a later torch), the
// op, this LibTorch's version, the saver's version where recorded, and what to do.
std::string load_failure_message(const std::filesystem::path& file, const std::string& reason) {
  std::uint64_t format_version = 0;
  try {
    caffe2::serialize::PyTorchStreamReader reader(file.string());
    if (!reader.hasRecord("data.pkl")) throw std::runtime_error("no data.pkl");
    format_version = reader.version();
  } catch (const std::exception&) {
    return fmt::format("cannot load model '{}': not a TorchScript archive written by torch.jit.save ({})",
                       file.string(), reason);
  }
  // "Unknown builtin op: aten::scaled_dot_product_attention." -> the op's name
  static const std::string unknown_op_text = "Unknown builtin op: ";
  std::string op;
  if (const std::size_t at = reason.find(unknown_op_text); at != std::string::npos) {
    for (std::size_t i = at + unknown_op_text.size(); i < reason.size(); ++i) {
      const char c = reason[i];
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':' || c == '.')) break;
      op += c;
    }
    while (!op.empty() && op.back() == '.') op.pop_back();
  }
  const bool op_unknown = op.find("::") != std::string::npos;
  const std::string what = op_unknown ? fmt::format("it calls {}, which LibTorch {} does not have", op,
                                                    torch_version_string())
                                      : fmt::format("LibTorch {} cannot compile its code", torch_version_string());
  const std::string saver = sidecar_torch_version(file);
  const std::string saved_by =
      saver.empty() ? fmt::format("the archive (file format {}) does not record which torch saved it",
                                  format_version)
                    : fmt::format("its sidecar says torch {} saved it", saver);
  return fmt::format(
      "cannot load model '{}': a TorchScript archive, but {}; {}. An archive needs a LibTorch at least as "
      "new as the torch that saved it: build thingsvision-cpp against a newer LibTorch (README, "
      "'Platforms': Debian 13's or PyPI torch's) or save the model again with torch {}.{}{}",
      file.string(), what, saved_by, TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR,
      op_unknown ? std::string() : " (" + reason + ")");
}

class TorchScriptModel final : public ModelBackend {
 public:
  TorchScriptModel(const std::filesystem::path& file, const ModelOptions& options)
      : path_(file),
        device_(options.device),
        torch_device_(to_torch_device(options.device, file)),
        optimize_(options.optimize) {
    if (options.num_threads > 0) set_torch_threads(options.num_threads);
    configure_torchscript_runtime();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) {
      throw Error(ErrorKind::model, fmt::format("model file '{}' does not exist or is not a file",
                                                file.string()));
    }
    torch::jit::ExtraFilesMap extra{{kModuleTreeFile, ""}};
    try {
      module_ = torch::jit::load(file.string(), torch_device_, extra);
    } catch (const std::exception& e) {
      throw Error(ErrorKind::model, load_failure_message(file, torch_message(e)));
    }
    if (options.traced_device_patch != TracedDevicePatch::off) {  // OpenAI's CUDA fp16 traces
      patch_traced_device(module_, torch_device_,
                          torch_device_.is_cpu() ||
                              options.traced_device_patch == TracedDevicePatch::float32);
    }
    module_.eval();
    traits_ = inspect_archive(module_, options.entry_method);
    entry_ = traits_.entry_method;
    tree_ = extra[kModuleTreeFile];
    std::unordered_set<const void*> seen{module_._ivalue().get()};
    list_modules(module_, "", seen, modules_);
    check_entry_method();
    collect_written(module_);
    for (const auto& child : module_.named_modules()) collect_written(child.value);
  }

  const std::filesystem::path& path() const override { return path_; }
  Device device() const override { return device_; }
  const ModelTraits& traits() const override { return traits_; }
  const std::vector<ModuleInfo>& modules() const override { return modules_; }

  std::string module_tree() const override {
    if (!tree_.empty()) return tree_;
    return module_repr(module_);
  }

  std::vector<Activations> extract(const ImageBatch& batch, const std::vector<std::string>& modules,
                                   const ExtractOptions& options) override {
    return guarded([&] {
      Extractor& extractor = extractor_for(modules, options);
      const at::Tensor input = batch_to_tensor(batch, torch_device_, /*copy=*/false);  // see run()
      Outputs outputs = outputs_of(extractor, input, modules, batch.num_images);
      for (std::size_t i = 0; i < outputs.tensors.size(); ++i) {
        const Activations& about = outputs.about[i];
        outputs.about[i] = with_values(tensor_to_activations(outputs.tensors[i], about.module_name), about);
      }
      return std::move(outputs.about);
    });
  }

  // On CUDA: the batch goes up through the pipeline's pinned staging and copy stream, the forward
  // pass and the copies back are queued on its compute stream, and the future's get() waits for
  // them (in the caller's writer thread). Elsewhere: extract(), done before returning.
  std::future<std::vector<Activations>> extract_async(const ImageBatch& batch,
                                                      const std::vector<std::string>& modules,
                                                      const ExtractOptions& options) override {
    if (!torch_device_.is_cuda()) return ModelBackend::extract_async(batch, modules, options);
    return guarded([&] {
      if (!pipeline_) pipeline_ = std::make_unique<CudaPipeline>(torch_device_);
      const c10::StreamGuard on_compute(pipeline_->compute_stream());
      Extractor& extractor = extractor_for(modules, options);
      Outputs outputs = outputs_of(extractor, pipeline_->upload(batch), modules, batch.num_images);
      return std::async(std::launch::deferred,
                        [copy = pipeline_->download(outputs.tensors), about = std::move(outputs.about),
                         path = path_]() mutable {
                          try {
                            const std::vector<at::Tensor>& host = copy.wait();
                            for (std::size_t i = 0; i < host.size(); ++i) {
                              about[i] = with_values(tensor_to_activations(host[i], about[i].module_name), about[i]);
                            }
                            return std::move(about);
                          } catch (const std::exception& e) {
                            throw Error(ErrorKind::model, fmt::format("model '{}': {}", path.string(), torch_message(e)));
                          }
                        });
    });
  }

  Activations forward(const ImageBatch& batch) override {
    return guarded([&] {
      if (!entry_writes_input_) {
        entry_writes_input_ = may_write_input(
            torch::jit::toGraphFunction(module_.get_method(entry_).function()).graph(), &module_,
            written_);
      }
      const at::Tensor input = batch_to_tensor(batch, torch_device_, /*copy=*/false);
      auto run_entry = [&](const at::Tensor& x) {
        const at::Tensor own = input_for(*entry_writes_input_, x);
        c10::InferenceMode inference;
        return first_tensor(module_.get_method(entry_)({own}), entry_);
      };
      at::Tensor out = run_entry(input);
      at::Tensor probe;
      out = to_batch_first(out, entry_, batch.num_images, [&]() -> const at::Tensor& {
        if (!probe.defined()) probe = run_entry(input.narrow(0, 0, 1));
        return probe;
      });
      return tensor_to_activations(out, entry_);
    });
  }

  std::string extraction_graph(const std::vector<std::string>& modules,
                               const ExtractOptions& options) override {
    return guarded([&] {
      const Extractor& extractor = extractor_for(modules, options);
      // With ModelOptions::optimize, a first line says which graph runs and why:
      // "# optimize: kept|dropped|unchecked: REASON" (also optimization_status()).
      std::string header;
      using Optimized = Extractor::Optimized;
      if (extractor.optimized_state != Optimized::off) {
        const char* state = extractor.optimized_state == Optimized::kept      ? "kept"
                            : extractor.optimized_state == Optimized::dropped ? "dropped"
                                                                                : "unchecked";
        header = fmt::format("# optimize: {}: {}\n", state, extractor.optimize_reason);
      }
      // The optimized graph only once the first batch kept it: until then the plain graph's
      // outputs are the ones extract() stands by (unchecked: both run on the first images).
      if (extractor.optimized_state == Optimized::kept) {
        return header + extractor.optimized->get_method(extractor.method_name).graph()->toString();
      }
      return header + extractor.graph->toString();
    });
  }

  OptimizationStatus optimization_status(const std::vector<std::string>& modules,
                                         const ExtractOptions& options) override {
    return guarded([&] {
      const Extractor& extractor = extractor_for(modules, options);
      using Optimized = Extractor::Optimized;
      using State = OptimizationStatus::State;
      OptimizationStatus status;
      switch (extractor.optimized_state) {
        case Optimized::off: return status;
        case Optimized::unchecked: status.state = State::unchecked; break;
        case Optimized::kept: status.state = State::kept; break;
        case Optimized::dropped: status.state = State::dropped; break;
      }
      status.reason = extractor.optimize_reason;
      status.max_relative_difference = extractor.optimize_difference;
      status.checked_images = extractor.checked_images;
      return status;
    });
  }

  Activations encode_text(const std::vector<std::int64_t>& token_ids, std::int64_t num_texts,
                          std::int64_t context_length, const std::string& method) override {
    return guarded([&] {
      if (!module_.find_method(method)) {
        std::vector<std::string> names;
        for (const auto& m : module_.get_methods()) names.push_back(m.name());
        throw Error(ErrorKind::model,
                    fmt::format("model '{}' has no method '{}' (a CLIP text encoder); methods: {}",
                                path_.string(), method, closest_names(method, names, 10)));
      }
      const at::Tensor tokens =
          at::from_blob(const_cast<std::int64_t*>(token_ids.data()), {num_texts, context_length},
                        at::TensorOptions().dtype(at::kLong))
              .clone()
              .to(torch_device_);
      c10::InferenceMode inference;
      const at::Tensor out = first_tensor(module_.get_method(method)({tokens}), method);
      if (out.dim() < 1 || out.size(0) != num_texts) {
        throw Error(ErrorKind::model,
                    fmt::format("method '{}' of model '{}' returned shape {} for {} texts "
                                "(expected one row per text)",
                                method, path_.string(), shape_string(out.sizes()), num_texts));
      }
      return tensor_to_activations(out, method);
    });
  }

 private:
  // The requested modules' outputs of one forward pass, batch first, in request order (with
  // ModuleCalls::all: every call of each module), and for each its name and call (no values yet).
  struct Outputs {
    std::vector<at::Tensor> tensors;
    std::vector<Activations> about;
  };

  Outputs outputs_of(Extractor& extractor, const at::Tensor& input, const std::vector<std::string>& modules,
                     std::int64_t num_images) {
    const std::vector<at::Tensor> outputs = run(extractor, input);
    std::vector<at::Tensor> probe;  // outputs for the first image alone, if ever needed
    Outputs result;
    for (const auto& name : modules) {
      for (const auto& out : extractor.outputs.at(name)) {
        result.tensors.push_back(
            to_batch_first(outputs.at(out.position), name, num_images, [&]() -> const at::Tensor& {
              if (probe.empty()) probe = run(extractor, input.narrow(0, 0, 1));
              return probe.at(out.position);
            }));
        Activations about;
        about.module_name = name;
        about.call_index = out.call_index;
        about.num_calls = out.num_calls;
        result.about.push_back(std::move(about));
      }
    }
    return result;
  }

  // `values` (shape and values) with the module name and call of `about`.
  static Activations with_values(Activations values, const Activations& about) {
    values.call_index = about.call_index;
    values.num_calls = about.num_calls;
    return values;
  }

  // Runs `body`, translating LibTorch exceptions into Error(model) naming the file.
  template <typename F>
  auto guarded(F&& body) -> decltype(body()) {
    try {
      return body();
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(ErrorKind::model,
                  fmt::format("model '{}': {}", path_.string(), torch_message(e)));
    }
  }

  void collect_written(const torch::jit::Module& module) {
    for (const auto& method : module.get_methods()) {
      const auto* function = dynamic_cast<const torch::jit::GraphFunction*>(&method.function());
      if (function) collect_written_attributes(function->graph()->block(), written_);
    }
  }

  std::string model_name() const { return "'" + path_.filename().string() + "'"; }

  // The entry method must exist and take one tensor (further arguments need defaults).
  void check_entry_method() {
    const auto method = module_.find_method(entry_);
    if (!method) {
      std::vector<std::string> names;
      for (const auto& m : module_.get_methods()) names.push_back(m.name());
      throw Error(ErrorKind::model,
                  fmt::format("model '{}' has no method '{}'; methods: {}", path_.string(), entry_,
                              closest_names(entry_, names, 10)));
    }
    const auto& arguments = method->function().getSchema().arguments();
    if (arguments.size() < 2) {
      throw Error(ErrorKind::model, fmt::format("method '{}' of model '{}' takes no input",
                                                entry_, path_.string()));
    }
    if (!arguments[1].type()->isSubtypeOf(*c10::TensorType::get()) &&
        !c10::TensorType::get()->isSubtypeOf(*arguments[1].type())) {
      throw Error(ErrorKind::model,
                  fmt::format("method '{}' of model '{}' takes '{}: {}', not an image tensor",
                              entry_, path_.string(), arguments[1].name(),
                              arguments[1].type()->repr_str()));
    }
    if (const c10::Argument* needed = argument_besides_images(*method)) {
      throw Error(ErrorKind::model,
                  fmt::format("method '{}' of model '{}' needs other inputs besides the images "
                              "(argument '{}' has no default){}",
                              entry_, path_.string(), needed->name(),
                              traits_.clip_archive ? "; a CLIP archive takes images through "
                                                     "'encode_image' (the default; --entry-method encode_image)"
                                                   : "; name the method that takes the images "
                                                     "with --entry-method"));
    }
  }

  // The extraction method for this set of modules and options, built on first use.
  Extractor& extractor_for(const std::vector<std::string>& modules, const ExtractOptions& options) {
    std::vector<std::string> unique;
    for (const auto& name : modules) {
      if (std::find(unique.begin(), unique.end(), name) == unique.end()) unique.push_back(name);
    }
    std::string key = options.calls == ModuleCalls::all ? "all" : "last";
    key += "/" + std::to_string(options.tuple_index);
    for (const auto& name : unique) key += "/" + name;
    auto found = extractors_.find(key);
    if (found != extractors_.end()) return found->second;
    Extractor extractor = build_extractor(unique, options);
    return extractors_.emplace(key, std::move(extractor)).first->second;
  }

  Extractor build_extractor(const std::vector<std::string>& modules, const ExtractOptions& options) {
    const torch::jit::Method entry_method = module_.get_method(entry_);  // named: GCC 14 -Wdangling-reference
    const auto& entry_function = torch::jit::toGraphFunction(entry_method.function());
    auto graph = entry_function.graph()->copy();
    // Arguments after the image tensor become their default values.
    const auto& arguments = entry_function.getSchema().arguments();
    for (std::size_t i = graph->inputs().size(); i-- > 2;) {
      Value* constant = nullptr;
      {
        WithInsertPoint guard(graph->block()->nodes().front());
        constant = graph->insertConstant(*arguments.at(i).default_value());
      }
      graph->inputs()[i]->replaceAllUsesWith(constant);
      graph->eraseInput(i);
    }
    simplify(graph, module_, written_);

    Tapper tapper(graph, modules, options.tuple_index, model_name(), module_, written_);
    tapper.run();

    Extractor extractor;
    std::vector<Value*> values;
    for (const auto& name : modules) {
      const auto& taps = tapper.taps(name);
      if (taps.empty()) {
        throw Error(ErrorKind::model,
                    fmt::format("module '{}' is never called by method '{}' of {} (in eval mode), "
                                "so it has no output to extract",
                                name, entry_, model_name()));
      }
      for (Value* tap : taps) {
        if (tap->node()->owningBlock() != graph->block()) {
          throw Error(ErrorKind::model,
                      fmt::format("module '{}' of {} is called inside a loop or a branch of the "
                                  "TorchScript graph; its output cannot be extracted (export the "
                                  "model with torch.jit.trace instead)",
                                  name, model_name()));
        }
      }
      const int num_calls = static_cast<int>(taps.size());
      const int first = options.calls == ModuleCalls::all ? 0 : num_calls - 1;
      for (int call = first; call < num_calls; ++call) {
        extractor.outputs[name].push_back({values.size(), call, num_calls});
        values.push_back(taps[static_cast<std::size_t>(call)]);
      }
    }
    for (std::size_t i = graph->outputs().size(); i-- > 0;) graph->eraseOutput(i);
    cut_after_last_tap(*graph, values);
    {
      WithInsertPoint guard(graph->return_node());
      Node* tuple = graph->insertNode(graph->createTuple(values));
      graph->registerOutput(tuple->output());
    }
    prune_unused_calls(graph);

    extractor.method_name = fmt::format("__tv_extract_{:x}_{}", std::hash<std::string>{}(
                                                                   fmt::format("{}", fmt::join(
                                                                                         modules, ","))),
                                        extractors_.size());
    auto type = module_.type();
    auto* function = module_._ivalue()->compilation_unit()->create_function(
        c10::QualifiedName(*type->name(), extractor.method_name), graph);
    type->addMethod(function);
    extractor.graph = graph;
    extractor.plain_writes_input = may_write_input(graph, &module_, written_);
    if (optimize_) add_optimized(extractor);
    return extractor;
  }

  std::vector<at::Tensor> run(Extractor& extractor, const at::Tensor& input) {
    using Optimized = Extractor::Optimized;
    if (extractor.optimized_state == Optimized::kept) {
      return run_method(*extractor.optimized, extractor.method_name,
                        input_for(extractor.optimized_writes_input, input));
    }
    if (extractor.optimized_state == Optimized::unchecked) {
      // Keep the optimized method only if it gives the same values as the plain one on the
      // first images of the first batch (two: cheap, and a batch dimension above 1).
      const auto start = std::chrono::steady_clock::now();
      const std::int64_t n = std::min<std::int64_t>(2, input.size(0));
      const at::Tensor head = n == input.size(0) ? input : input.narrow(0, 0, n);
      std::vector<at::Tensor> plain =
          run_method(module_, extractor.method_name, input_for(extractor.plain_writes_input, head));
      std::vector<at::Tensor> optimized;
      std::string failure;  // an optimized graph that fails to run is dropped too (timm maxvit: mkldnn_gelu)
      try {
        optimized = run_method(*extractor.optimized, extractor.method_name,
                               input_for(extractor.optimized_writes_input, head));
      } catch (const std::exception& e) {
        failure = torch_message(e);
        failure = failure.substr(0, failure.find('\n'));
      }
      const double difference = failure.empty() ? relative_difference(plain, optimized)
                                                : std::numeric_limits<double>::infinity();
      const bool agree = difference <= kOptimizeTolerance;  // NaN fails too
      extractor.optimized_state = agree ? Optimized::kept : Optimized::dropped;
      extractor.optimize_difference = failure.empty() ? difference : std::numeric_limits<double>::quiet_NaN();
      extractor.checked_images = static_cast<int>(n);
      const double check_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      extractor.optimize_reason =
          failure.empty()
              ? fmt::format("max |optimized - plain| = {:.3g} x max |plain| on {} image{} ({} 1e-05); {} in "
                            "{:.2f} s, checked in {:.2f} s", difference, n, n == 1 ? "" : "s",
                            agree ? "within" : "above", extractor.optimize_passes, extractor.optimize_seconds,
                            check_seconds)
              : fmt::format("the optimized graph failed on {} image{}: {}; {} in {:.2f} s", n,
                            n == 1 ? "" : "s", failure, extractor.optimize_passes, extractor.optimize_seconds);
      if (!agree) extractor.optimized.reset();
      if (n == input.size(0)) return agree ? optimized : plain;
      return run(extractor, input);
    }
    return run_method(module_, extractor.method_name, input_for(extractor.plain_writes_input, input));
  }

  static std::vector<at::Tensor> run_method(torch::jit::Module& module, const std::string& method,
                                            const at::Tensor& input) {
    c10::InferenceMode inference;
    const c10::IValue out = module.get_method(method)({input});
    std::vector<at::Tensor> tensors;
    for (const auto& element : out.toTupleRef().elements()) tensors.push_back(element.toTensor());
    return tensors;
  }

  // Freezes a copy of the module with the extraction method preserved (optimize_for_inference
  // alone would freeze it away), folds conv-batchnorm etc. and, for a graph with more convolutions
  // than matrix products, applies optimize_for_inference. Its MKLDNN convolutions speed convnets
  // up (resnet18 1.4x), while on transformers its MKLDNN conversions and transposed linear weights
  // slow the graph down (LibTorch 1.13, 2 threads, batch 32: vit_b_16 +8 %, swin_t +17 %,
  // convnext_tiny +37 % against the frozen graph; bench/optimize_passes.py measures it).
  void add_optimized(Extractor& extractor) {
    const auto start = std::chrono::steady_clock::now();
    const auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    try {
      torch::jit::Module frozen =
          torch::jit::freeze(module_, std::vector<std::string>{extractor.method_name});
      auto graph = frozen.get_method(extractor.method_name).graph();
      torch::jit::OptimizeFrozenGraph(graph, /*optimize_numerics=*/true);
      const GraphKind kind = count_heavy_ops(*graph->block());
      const bool convolutional = kind.convolutions > kind.matrix_products;
      extractor.optimize_passes = convolutional
                                      ? "frozen + optimize_for_inference"
                                      : fmt::format("frozen only ({} convolutions, {} matrix products)",
                                                    kind.convolutions, kind.matrix_products);
      extractor.optimized =
          convolutional ? torch::jit::optimize_for_inference(frozen, {extractor.method_name}) : frozen;
      extractor.optimized_writes_input =
          may_write_input(extractor.optimized->get_method(extractor.method_name).graph(), nullptr,
                          written_);
      extractor.optimized_state = Extractor::Optimized::unchecked;
      extractor.optimize_seconds = seconds();
      extractor.optimize_reason = fmt::format("not run yet; {} in {:.2f} s", extractor.optimize_passes,
                                              extractor.optimize_seconds);
    } catch (const std::exception& e) {
      // A graph the optimizer cannot handle runs as it is (optimization is never required).
      extractor.optimized.reset();
      extractor.optimized_state = Extractor::Optimized::dropped;
      std::string what = torch_message(e);
      what = what.substr(0, what.find('\n'));
      extractor.optimize_reason = "the optimizer failed: " + what;
    }
  }

  // The entry method's output: a tensor, or the first element of a tuple or list.
  at::Tensor first_tensor(const c10::IValue& value, const std::string& what) const {
    if (value.isTensor()) return value.toTensor();
    if (value.isTuple() && !value.toTupleRef().elements().empty() &&
        value.toTupleRef().elements()[0].isTensor()) {
      return value.toTupleRef().elements()[0].toTensor();
    }
    if (value.isTensorList() && !value.toTensorList().empty()) return value.toTensorList().get(0);
    throw Error(ErrorKind::model, fmt::format("method '{}' of {} returns {}, not a tensor", what,
                                              model_name(), value.tagKind()));
  }

  // Whether `alone` (the first image's output by itself) equals the first rows of `batch`
  // (batch_layout::rows_agree).
  static bool same_rows(const at::Tensor& alone, const at::Tensor& batch) {
    const at::Tensor rows = batch.narrow(0, 0, alone.size(0));
    if (rows.numel() == 0) return true;
    const at::Tensor a = alone.to(at::kDouble);
    const at::Tensor b = rows.to(at::kDouble);
    return batch_layout::rows_agree((a - b).abs().max().item<double>(), b.abs().max().item<double>());
  }

  // Moves the images of a batch to dimension 0 by the rule of batch_layout.hpp: for merged rows, and
  // where the shape allows more than one layout, what this module showed before decides, else a
  // one-image probe.
  at::Tensor to_batch_first(const at::Tensor& t, const std::string& name, std::int64_t batch_size,
                            const std::function<const at::Tensor&()>& probe) {
    using batch_layout::Layout;
    const std::vector<std::int64_t> shape = t.sizes().vec();
    const auto known = batch_dims_.find(name);
    std::optional<Layout> layout = batch_layout::from_shape(
        shape, batch_size, known != batch_dims_.end() ? std::optional<Layout>(known->second) : std::nullopt, name,
        model_name());
    if (!layout) {
      const at::Tensor& alone = probe();
      layout = batch_layout::from_probe(shape, batch_size, alone.sizes().vec(),
                                        [&] { return same_rows(alone, t); }, name, model_name());
    }
    if (batch_layout::worth_remembering(shape, batch_size, *layout)) batch_dims_[name] = *layout;
    switch (*layout) {
      case Layout::merged: return t.reshape(batch_layout::batch_first_shape(shape, batch_size, *layout));
      case Layout::second: return t.permute({1, 0, 2});
      case Layout::first: break;
    }
    return t;
  }

  std::filesystem::path path_;
  Device device_;
  c10::Device torch_device_;
  ModelTraits traits_;
  std::string entry_;  // traits_.entry_method
  bool optimize_;
  torch::jit::Module module_;
  std::string tree_;
  std::vector<ModuleInfo> modules_;
  std::map<std::string, Extractor> extractors_;
  std::map<std::string, batch_layout::Layout> batch_dims_;  // module → where its images were
  std::unique_ptr<CudaPipeline> pipeline_;  // CUDA only, from the first extract_async()
  c10::optional<bool> entry_writes_input_;  // may_write_input of the entry method, once forward() ran
  WrittenAttributes written_;  // attributes some method writes: never folded
};

}  // namespace

std::int64_t count_torchscript_input_copies() { return input_copies.load(std::memory_order_relaxed); }

std::unique_ptr<ModelBackend> load_torchscript_archive(const std::filesystem::path& file,
                                                       const ModelOptions& options) {
  return std::make_unique<TorchScriptModel>(file, options);
}

}  // namespace thingsvision
