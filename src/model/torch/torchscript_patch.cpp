// torchscript_patch.cpp — retargets archives traced on CUDA in float16 (OpenAI's CLIP files): the
// same patches as clip.load(jit=True), applied to every function of the archive's compilation unit
// (forward, forward1..., encode_image, encode_text of every module), inserting new constants
// where OpenAI's loader edits shared constant nodes in place.
#include "model/torch/torchscript_patch.hpp"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>

#include <unordered_set>
#include <vector>

namespace thingsvision {

namespace {

using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;

bool is_constant(const torch::jit::Value* value) {
  return value->node()->kind() == c10::prim::Constant;
}

// One graph block (and its sub-blocks): counts, and when `apply`, patches.
void visit(Graph& graph, Block* block, const c10::Device* target, bool to_float,
           TracedDevicePatchReport& report) {
  std::vector<Node*> replaced;
  for (Node* node : block->nodes()) {
    for (Block* sub : node->blocks()) visit(graph, sub, target, to_float, report);
    if (node->kind() == c10::prim::Constant) {
      const auto value = torch::jit::toIValue(node->output());
      if (!value) continue;
      if (value->isDevice() && value->toDevice().is_cuda()) {
        ++report.cuda_device_constants;
        if (target && value->toDevice() != *target) {
          torch::jit::WithInsertPoint guard(node);
          node->output()->replaceAllUsesWith(graph.insertConstant(c10::IValue(*target)));
          replaced.push_back(node);
        }
      } else if (value->isTensor() && value->toTensor().scalar_type() == at::kHalf) {
        ++report.half_tensors;
        if (target && to_float) {
          torch::jit::WithInsertPoint guard(node);
          node->output()->replaceAllUsesWith(
              graph.insertConstant(c10::IValue(value->toTensor().to(at::kFloat))));
          replaced.push_back(node);
        }
      }
      continue;
    }
    const c10::FunctionSchema* schema = node->maybeSchema();
    if (!schema) continue;
    const auto& arguments = schema->arguments();
    for (std::size_t i = 0; i < arguments.size() && i < node->inputs().size(); ++i) {
      if (arguments[i].name() != "dtype" || !is_constant(node->input(i))) continue;
      const auto value = torch::jit::toIValue(node->input(i));
      if (!value || !value->isInt() || value->toInt() != static_cast<int64_t>(at::kHalf)) continue;
      ++report.half_dtype_arguments;
      if (target && to_float) {
        // A new constant for this use only: the half constant may feed other nodes.
        torch::jit::WithInsertPoint guard(node);
        node->replaceInput(i, graph.insertConstant(static_cast<int64_t>(at::kFloat)));
      }
    }
  }
  for (Node* node : replaced) node->destroy();
}

TracedDevicePatchReport walk(const torch::jit::Module& module, const c10::Device* target,
                             bool to_float) {
  TracedDevicePatchReport report;
  for (torch::jit::Function* function : module._ivalue()->compilation_unit()->get_functions()) {
    torch::jit::GraphFunction* graph_function = torch::jit::tryToGraphFunction(*function);
    if (!graph_function) continue;
    const std::shared_ptr<Graph> graph = graph_function->graph();
    visit(*graph, graph->block(), target, to_float, report);
  }
  std::unordered_set<const void*> seen;
  auto tensor = [&](const at::Tensor& t) {
    if (!t.defined() || t.scalar_type() != at::kHalf) return;
    if (!seen.insert(t.unsafeGetTensorImpl()).second) return;
    ++report.half_tensors;
    if (target && to_float) {
      at::Tensor variable = t;  // shares the TensorImpl: set_data converts it in place
      variable.set_data(t.to(at::kFloat));
    }
  };
  torch::NoGradGuard no_grad;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) tensor(p.value);
  for (const auto& b : module.named_buffers(/*recurse=*/true)) tensor(b.value);
  return report;
}

}  // namespace

TracedDevicePatchReport inspect_traced_device(const torch::jit::Module& module) {
  return walk(module, nullptr, false);
}

TracedDevicePatchReport patch_traced_device(torch::jit::Module& module, const c10::Device& device,
                                            bool to_float32) {
  return walk(module, &device, to_float32);
}

}  // namespace thingsvision
