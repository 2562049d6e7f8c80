// model.hpp — Model: a TorchScript vision model whose named modules' outputs can be extracted.
#pragma once
#include <cstdint>
#include <filesystem>
#include <future>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "thingsvision/activations.hpp"
#include "thingsvision/device.hpp"
#include "thingsvision/image_batch.hpp"

namespace thingsvision {

/// How Model::load treats archives traced on CUDA in float16, such as OpenAI's published CLIP
/// files RN50.pt and ViT-B-32.pt (docs/model.md), like OpenAI's clip.load(jit=True).
enum class TracedDevicePatch {
  /// When the graphs hold "cuda" device constants or float16 casts/weights: retarget the device
  /// constants to ModelOptions::device; on the CPU also cast to float32 (float16 kept on CUDA).
  automatic,
  float32,  ///< as automatic, and float32 on CUDA too
  off,      ///< run the graphs as saved (such archives then fail on the CPU)
};

/// Which library runs a model file (ModelOptions::backend).
enum class ModelBackendKind {
  automatic,   ///< by extension: .onnx, .pb, .prototxt / .caffemodel → opencv_dnn; else libtorch
  libtorch,    ///< a TorchScript archive (.pt)
  opencv_dnn,  ///< OpenCV DNN (ONNX, TensorFlow frozen graph, Caffe); CPU only
  onnxruntime, ///< ONNX Runtime (ONNX); CPU only; builds with ONNX Runtime only (Debian 13), else Error(model)
};

/// The --backend name: "automatic", "libtorch", "opencv_dnn" or "onnxruntime".
const char* to_string(ModelBackendKind backend) noexcept;
/// The backend Model::load runs `file` with: `backend`, or for automatic the one `file`'s extension picks.
ModelBackendKind resolve_backend(const std::filesystem::path& file, ModelBackendKind backend);

/// The memory layout of an image input or of a 4-D module output (OpenCV DNN models).
enum class TensorLayout {
  automatic,  ///< the file format's own (see ModelOptions::input_layout / native_layout)
  nchw,       ///< batch × channels × height × width (PyTorch, ONNX from PyTorch, Caffe)
  nhwc,       ///< batch × height × width × channels (TensorFlow / Keras)
};

/// Which layout Model::extract returns 4-D outputs in (ExtractOptions::layout).
enum class OutputLayout {
  native,  ///< the model's native layout (ModelOptions::native_layout): NHWC for TensorFlow/Keras
  nchw,    ///< always N × C × H × W, as OpenCV DNN and PyTorch compute it
};

/// Options for Model::load.
struct ModelOptions {
  /// Where the model runs. CUDA without a CUDA LibTorch or GPU is an Error(model), never a fallback.
  Device device = Device::cpu();
  /// The method that takes the image batch ("forward", "encode_image", ...). Empty: "forward", or
  /// "encode_image" for a CLIP archive whose forward also needs text (ModelTraits::clip_archive).
  std::string entry_method;
  /// Intra-op threads for LibTorch; 0 leaves the current setting (see set_num_threads).
  int num_threads = 0;
  /// Freeze + optimize_for_inference after the module taps are added, per module set; kept only
  /// if its outputs on the first batch agree with the plain graph's within 1e-5 relative to max.
  /// Costs a frozen copy of the weights per module set. Off here, on in run_extraction/tv-extract:
  /// a library caller may ask for many module sets or a few images (docs/model.md says why).
  bool optimize = false;
  /// Patching of archives traced on CUDA in float16 (see TracedDevicePatch).
  TracedDevicePatch traced_device_patch = TracedDevicePatch::automatic;
  /// The backend; automatic picks it from the file extension (docs/model.md).
  ModelBackendKind backend = ModelBackendKind::automatic;
  /// OpenCV DNN only: the layout the model's input takes. nhwc for ONNX files converted from
  /// Keras/TensorFlow (tf2onnx without --inputs-as-nchw); automatic = nchw (OpenCV's TensorFlow
  /// importer takes NCHW blobs itself). Error(usage) for a TorchScript model unless automatic/nchw.
  TensorLayout input_layout = TensorLayout::automatic;
  /// OpenCV DNN only: the native layout of 4-D outputs (which OpenCV computes as NCHW); automatic =
  /// nhwc for TensorFlow .pb files (Keras order, as THINGSvision flattens), nchw otherwise. With nhwc,
  /// ExtractOptions::layout native returns them permuted to N × H × W × C.
  TensorLayout native_layout = TensorLayout::automatic;
};

/// Which calls of a module called several times per forward pass to return.
enum class ModuleCalls {
  last,  ///< the last call only (THINGSvision's forward-hook behaviour)
  all,   ///< every call, in call order
};

/// Options for Model::extract.
struct ExtractOptions {
  ModuleCalls calls = ModuleCalls::last;
  /// For modules returning a tuple: which element to return (THINGSvision takes element 0).
  /// Ignored for modules that return a tensor.
  int tuple_index = 0;
  /// The layout of 4-D outputs: the model's native one (default) or NCHW (see OutputLayout).
  OutputLayout layout = OutputLayout::native;
};

/// One named module: its name as in PyTorch's named_modules() and its type ("Conv2d", "ReLU").
struct ModuleInfo {
  std::string name;
  std::string type;
};

/// What ModelOptions::optimize did for one module set (Model::optimization_status).
struct OptimizationStatus {
  enum class State {
    not_requested,  ///< ModelOptions::optimize is off
    not_supported,  ///< requested, but the backend has no graph optimizer (OpenCV DNN)
    unchecked,      ///< frozen + optimized; not yet compared with the plain graph (no extract())
    kept,           ///< agreed within 1e-5 x max |plain| on the first images: extract() runs it
    dropped,        ///< the optimizer failed, its graph failed to run, or its outputs disagreed: the plain graph runs
  };
  State state = State::not_requested;
  /// Why, as a sentence: the agreement measured and the time spent, or the optimizer's error
  /// (the text after "# optimize: STATE: " in extraction_graph()); empty for not_requested.
  std::string reason;
  /// max |optimized - plain| / max |plain| over all outputs on the checked images (infinity for a
  /// shape mismatch); NaN unless kept or dropped after the comparison.
  double max_relative_difference = std::numeric_limits<double>::quiet_NaN();
  /// How many images of the first batch the comparison ran on (0 before it).
  int checked_images = 0;
};

/// What Model::load found in the model file itself, without a sidecar (Model::traits).
struct ModelTraits {
  /// The method that takes the image batch: ModelOptions::entry_method, or the one chosen for it.
  std::string entry_method = "forward";
  /// An OpenAI-style CLIP archive: methods encode_image and encode_text, and a forward that needs
  /// text besides the images (or none), as OpenAI's published RN50.pt ... ViT-L-14-336px.pt.
  bool clip_archive = false;
  /// CLIP archives: the image size the model was made for (its input_resolution attribute, else
  /// the size its positional embedding implies, as OpenAI's build_model computes it); 0 if unknown.
  int input_resolution = 0;
};

class ModelBackend;  // private: src/model/model_impl.hpp

/// A loaded TorchScript model. Move-only: a copy would share the underlying module.
class Model {
 public:
  /// Loads a TorchScript file (scripted or traced) in eval mode, without autograd; .onnx, .pb and
  /// Caffe files through OpenCV DNN (ModelOptions::backend, docs/model.md).
  /// Throws Error(model) naming the file if it cannot be read or lacks the entry method.
  static Model load(const std::filesystem::path& file, const ModelOptions& options = {});

  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  /// The file the model was loaded from.
  const std::filesystem::path& path() const;
  /// The device the model runs on.
  Device device() const;

  /// The entry method in use and what the file revealed about itself (see ModelTraits).
  const ModelTraits& traits() const;

  /// Every named module, in the order of PyTorch's named_modules(), the root excluded.
  std::vector<std::string> module_names() const;
  /// Every named module with its type, in module_names() order.
  std::vector<ModuleInfo> modules() const;
  /// The module tree as PyTorch prints the model (the eager repr stored at export when present).
  std::string module_tree() const;

  /// Returns each requested module's output for `batch`, all from one forward pass that stops
  /// after the last requested module where the graph allows. Results are in request order (with
  /// ModuleCalls::all: every call of the first module, then of the second, ...).
  /// Throws Error(model) for an unknown name; the message lists the closest valid names.
  std::vector<Activations> extract(const ImageBatch& batch, const std::vector<std::string>& modules,
                                   const ExtractOptions& options = {});

  /// extract() without waiting for the device: checks the arguments and queues the forward pass
  /// and the copy of its outputs to host memory, then returns; get() on the result waits for them
  /// (any thread; it throws Error(model) for a failure on the device). On the CPU the work is done
  /// before it returns. `batch` may be reused at once; each pending result holds its outputs.
  std::future<std::vector<Activations>> extract_async(const ImageBatch& batch,
                                                      const std::vector<std::string>& modules,
                                                      const ExtractOptions& options = {});

  /// Runs the plain entry method on `batch` and returns its (first) output; for benchmarks.
  Activations forward(const ImageBatch& batch);

  /// The TorchScript graph extract() runs for `modules` (what the graph cut keeps), as text;
  /// for debugging and tests. With ModelOptions::optimize: a first line "# optimize: STATE:
  /// REASON" (see optimization_status), and the frozen graph only once kept. Throws like extract().
  std::string extraction_graph(const std::vector<std::string>& modules,
                               const ExtractOptions& options = {});

  /// Whether extract() for `modules` runs the frozen + optimized graph (ModelOptions::optimize),
  /// and why; builds the extraction method if needed and throws like extraction_graph().
  OptimizationStatus optimization_status(const std::vector<std::string>& modules,
                                         const ExtractOptions& options = {});

  /// Runs `method` (CLIP's "encode_text") on `token_ids`, num_texts × context_length int64 ids
  /// (row-major, e.g. ClipTokenizer::tokenize), and returns its (first) output, one row per text.
  /// Throws Error(usage) for a size mismatch, Error(model) if the model lacks `method`.
  Activations encode_text(const std::vector<std::int64_t>& token_ids, std::int64_t num_texts,
                          std::int64_t context_length, const std::string& method = "encode_text");

 private:
  explicit Model(std::unique_ptr<ModelBackend> impl);
  std::unique_ptr<ModelBackend> impl_;
};

/// Sets LibTorch's intra-op thread count for the process (Debian's LibTorch defaults to 1), and
/// OpenBLAS's to blas_threads_for(num_threads) when that is not 0. Loads LibTorch if not yet loaded.
void set_num_threads(int num_threads);

/// OpenBLAS threads that go with `torch_threads` LibTorch threads: 0 (leave OpenBLAS alone) when
/// OPENBLAS_NUM_THREADS is set; `torch_threads` when OMP_WAIT_POLICY=passive (idle OpenMP threads
/// sleep); else 1 (spinning OpenMP threads would take the cores from OpenBLAS's).
int blas_threads_for(int torch_threads);

/// True when LibTorch was built with CUDA and at least one GPU is visible. Loads LibTorch.
bool cuda_available();

/// LibTorch lives in a plugin of this library (libthingsvision_torch.so), loaded when a TorchScript
/// model is first loaded. This starts loading it on a background thread, so that its start (~0.4 s
/// of operator registration) overlaps the caller's other work; optional, errors surface in Model::load.
void preload_torch_runtime();

/// Seconds LibTorch's start took (on the thread that loaded the plugin; 0 until it is loaded) and
/// seconds callers have waited for it in total (process-wide).
struct TorchRuntimeTiming {
  double start_seconds = 0.0;
  double wait_seconds = 0.0;
};
/// The current TorchRuntimeTiming; loads nothing.
TorchRuntimeTiming torch_runtime_timing();

}  // namespace thingsvision
