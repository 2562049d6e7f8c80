// opencv_dnn_backend.cpp — ModelBackend through OpenCV DNN (ONNX, TensorFlow .pb, Caffe): the net is
// read with fusion off, so that every layer's output is its own; a module's output is a layer's
// output, several of them from one net.forward(outs, names). ONNX layers ("onnx_node!/layer1/
// layer1.0/relu_1/Relu") are also listed under the PyTorch module path their exporter scope names
// ("layer1.0.relu", last call), a module's output being the last layer inside its scope.
#include "model/backends/opencv_dnn_backend.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/dnn.hpp>
#include <utility>

#include "model/backends/onnx_graph.hpp"
#include "model/backends/layer_graph_backend.hpp"
#include "model/backends/onnxruntime_backend.hpp"
#include "model/model_file_kind.hpp"
#include "thingsvision/error.hpp"

namespace thingsvision {

namespace {

std::string lower_extension(const std::filesystem::path& file) {
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

struct Layer {
  std::string name;
  std::string type;
};

class OpenCvDnnModel final : public LayerGraphBackend {
 public:
  OpenCvDnnModel(std::filesystem::path path, cv::dnn::Net net, TensorLayout input_layout,
                 TensorLayout native_layout)
      : LayerGraphBackend(std::move(path), "OpenCV DNN"),
        net_(std::move(net)),
        input_nhwc_(input_layout == TensorLayout::nhwc),
        native_nhwc_(native_layout == TensorLayout::nhwc) {
    const std::vector<cv::String> names = net_.getLayerNames();
    for (const auto& name : names) {
      const cv::Ptr<cv::dnn::Layer> layer = net_.getLayer(net_.getLayerId(name));
      layers_.push_back({name, layer ? layer->type : std::string("Layer")});
    }
    std::vector<std::string> names_only;
    std::vector<std::string> types;
    for (const auto& layer : layers_) {
      names_only.push_back(layer.name);
      types.push_back(layer.type);
    }
    set_layers(names_only, std::move(types));
  }

  Activations forward(const ImageBatch& batch) override {
    const cv::Mat out = forward_layers(batch, {}).at(0);
    const bool last_nhwc = !layers_.empty() && computed_nhwc(layers_.size() - 1);
    Activations a = to_activations(out, layers_.empty() ? std::string("output") : layers_.back().name,
                                   last_nhwc ? OutputLayout::nchw : OutputLayout::native);
    check_batch_dimension(a.shape, batch.num_images, a.module_name, path_);
    return a;
  }

 private:
  std::vector<Activations> read_layers(const ImageBatch& batch, const std::vector<std::size_t>& layers,
                                       const std::vector<std::string>& modules,
                                       const ExtractOptions& options) override {
    std::vector<cv::String> names;
    for (const std::size_t layer : layers) names.push_back(layers_[layer].name);
    const std::vector<cv::Mat> outs = forward_layers(batch, names);
    std::vector<Activations> result;
    result.reserve(layers.size());
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const OutputLayout layout = computed_nhwc(layers[i]) ? OutputLayout::nchw : options.layout;
      result.push_back(to_activations(outs.at(i), modules[i], layout));
    }
    return result;
  }

  bool retry_images_alone() const override { return true; }

  std::string graph_summary() const override {
    return fmt::format("OpenCV DNN net of {} ({} layers, fusion off); forward to:\n",
                       path_.filename().string(), layers_.size());
  }

  // True for the Permute layers OpenCV's TensorFlow importer inserts before a Reshape of a 4-D
  // tensor ("flatten/nhwc"): their output is already N × H × W × C.
  bool computed_nhwc(std::size_t layer) const {
    const std::string& name = layers_[layer].name;
    const std::string suffix = "/nhwc";
    return layers_[layer].type == "Permute" && name.size() > suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  }

  // The outputs of the layers `names` (none: the net's output) for `batch`. Where OpenCV cannot run
  // the batch at once (4.6 sizes a per-sample Mul, as in squeeze-excitation blocks, for one image),
  // each image runs alone and the outputs are stacked; later batches then go image by image.
  std::vector<cv::Mat> forward_layers(const ImageBatch& batch, const std::vector<cv::String>& names) {
    const auto forward_blob = [&](const cv::Mat& blob) {
      std::vector<cv::Mat> outs;
      net_.setInput(blob);
      if (names.empty()) {
        outs.push_back(net_.forward());
      } else {
        net_.forward(outs, names);
      }
      return outs;
    };
    const cv::Mat blob = to_blob(batch);
    std::vector<cv::Mat> outs;
    if (batch.num_images == 1) {
      run([&] { outs = forward_blob(blob); });
      return outs;
    }
    if (!per_image_) {
      try {
        return forward_blob(blob);
      } catch (const cv::Exception&) {
        per_image_ = true;  // the error of one image, if any, is reported below
      }
    }
    std::vector<std::vector<cv::Mat>> per_image;  // [image][layer], copied out of the net's buffers
    for (int i = 0; i < blob.size[0]; ++i) {
      const cv::Range ranges[] = {cv::Range(i, i + 1), cv::Range::all(), cv::Range::all(), cv::Range::all()};
      run([&] { per_image.push_back(forward_blob(blob(ranges).clone())); });
      for (auto& m : per_image.back()) m = m.clone();
    }
    for (std::size_t k = 0; k < per_image.front().size(); ++k) {
      std::vector<cv::Mat> rows;
      for (const auto& image_outs : per_image) rows.push_back(image_outs[k]);
      outs.push_back(stack_images(rows));
    }
    return outs;
  }

  // One-image outputs (1 × ...) stacked into N × ...; a non-batched output is an Error naming the file.
  cv::Mat stack_images(const std::vector<cv::Mat>& rows) const {
    const cv::Mat& first = rows.front();
    if (first.dims < 1 || first.size[0] != 1) {
      throw Error(ErrorKind::model,
                  fmt::format("OpenCV DNN cannot run {} on a batch of {} images, and an output of one "
                              "image has no batch dimension of 1; use --batch-size 1",
                              path_.string(), rows.size()));
    }
    std::vector<int> sizes(first.size.p, first.size.p + first.dims);
    sizes[0] = static_cast<int>(rows.size());
    cv::Mat out(first.dims, sizes.data(), first.type());
    const std::size_t row_bytes = first.total() * first.elemSize();
    for (std::size_t i = 0; i < rows.size(); ++i) {
      std::memcpy(out.data + i * row_bytes, rows[i].data, row_bytes);
    }
    return out;
  }

  // The NCHW batch as the net's input blob: NCHW, or permuted to NHWC (input_layout nhwc).
  cv::Mat to_blob(const ImageBatch& batch) const {
    const int n = static_cast<int>(batch.num_images);
    const int c = static_cast<int>(batch.channels);
    const int h = static_cast<int>(batch.height);
    const int w = static_cast<int>(batch.width);
    if (!input_nhwc_) {
      const int sizes[] = {n, c, h, w};
      return cv::Mat(4, sizes, CV_32F, const_cast<float*>(batch.pixels.data())).clone();
    }
    const int sizes[] = {n, h, w, c};
    cv::Mat blob(4, sizes, CV_32F);
    permute_nchw_to_nhwc(batch.pixels.data(), blob.ptr<float>(), n, c, h, w);
    return blob;
  }

  static void permute_nchw_to_nhwc(const float* in, float* out, int n, int c, int h, int w) {
    const auto channels = static_cast<std::size_t>(c);
    const std::size_t plane = static_cast<std::size_t>(h) * static_cast<std::size_t>(w);
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
      const float* src = in + i * channels * plane;
      float* dst = out + i * channels * plane;
      for (std::size_t ch = 0; ch < channels; ++ch) {
        for (std::size_t p = 0; p < plane; ++p) dst[p * channels + ch] = src[ch * plane + p];
      }
    }
  }

  // `mat` as Activations; a 4-D output is permuted to N × H × W × C when the native layout is
  // nhwc and `layout` asks for it.
  Activations to_activations(const cv::Mat& mat, const std::string& module, OutputLayout layout) const {
    cv::Mat values = mat.isContinuous() ? mat : mat.clone();
    if (values.depth() != CV_32F) values.convertTo(values, CV_32F);
    Activations a;
    a.module_name = module;
    for (int d = 0; d < values.dims; ++d) a.shape.push_back(values.size[d]);
    if (values.dims == 4 && values.channels() == 1 && native_nhwc_ &&
        layout == OutputLayout::native) {
      const int n = values.size[0], c = values.size[1], h = values.size[2], w = values.size[3];
      a.shape = {n, h, w, c};
      a.values.resize(values.total());
      permute_nchw_to_nhwc(values.ptr<float>(), a.values.data(), n, c, h, w);
      return a;
    }
    const auto* data = values.ptr<float>();
    a.values.assign(data, data + values.total() * static_cast<std::size_t>(values.channels()));
    return a;
  }

  template <typename F>
  void run(F&& f) const {
    try {
      f();
    } catch (const cv::Exception& e) {
      throw Error(ErrorKind::model, fmt::format("OpenCV DNN failed to run {}: {}",
                                                path_.string(), e.err));
    }
  }

  cv::dnn::Net net_;
  bool input_nhwc_;   // the input blob is N × H × W × C (ModelOptions::input_layout)
  bool native_nhwc_;  // 4-D outputs are native N × H × W × C (ModelOptions::native_layout)
  bool per_image_ = false;  // OpenCV failed on a whole batch: forward_layers runs image by image
  std::vector<Layer> layers_;
};

// The other file of a Caffe model: the same stem with `partner_ext` beside `file`, else the only
// file with that extension in the same folder (a model zoo's "deploy.prototxt" beside its weights).
std::filesystem::path caffe_partner(const std::filesystem::path& file,
                                    const std::string& partner_ext) {
  std::filesystem::path same_stem = file;
  same_stem.replace_extension(partner_ext);
  std::error_code ec;
  if (std::filesystem::is_regular_file(same_stem, ec)) return same_stem;
  const std::filesystem::path folder =
      file.parent_path().empty() ? std::filesystem::path(".") : file.parent_path();
  std::vector<std::filesystem::path> candidates;
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    if (entry.is_regular_file(ec) && lower_extension(entry.path()) == partner_ext) {
      candidates.push_back(entry.path());
    }
  }
  if (candidates.size() == 1) return candidates.front();
  std::sort(candidates.begin(), candidates.end());
  std::string found;
  for (const auto& c : candidates) found += (found.empty() ? "" : ", ") + c.filename().string();
  throw Error(ErrorKind::model,
              fmt::format("Caffe model '{}': no {} file '{}' beside it{}", file.string(),
                          partner_ext, same_stem.filename().string(),
                          candidates.empty()
                              ? fmt::format(" nor any other {} file in that folder", partner_ext)
                              : fmt::format(", and {} other {} files there ({}): give the one "
                                            "to use the same stem",
                                            candidates.size(), partner_ext, found)));
}

// A node name as OpenCV prints it, without its "onnx_node!" prefix.
std::string node_name(const std::string& printed) {
  static const std::string prefix = "onnx_node!";
  return printed.rfind(prefix, 0) == 0 ? printed.substr(prefix.size()) : printed;
}

// `text` on one line: each line break, with the spaces and "> " quoting around it, becomes a space.
std::string one_line(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n') {
      out += text[i];
      continue;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    while (i + 1 < text.size() && (text[i + 1] == ' ' || text[i + 1] == '>')) ++i;
    out += ' ';
  }
  return out;
}

// OpenCV's parse error for an ONNX node, with the node, its op, the file's opset and what to try
// (another opset: 13 for a file of opset 17 or later, else 17; OpenCV 4.10 reads ConvNeXt at 17,
// not 13); `opset` -1 when the file could not be read as a ModelProto.
std::string onnx_failure_message(const std::filesystem::path& file, std::int64_t opset,
                                 const std::string& reason) {
  // OpenCV says "Node [OP@DOMAIN]:(onnx_node!NAME) parse error: ..."
  const std::string opset_text = opset >= 0 ? fmt::format("ONNX opset {}", opset) : "no readable opset";
  const std::size_t node_at = reason.find("Node [");
  const std::size_t op_end = node_at == std::string::npos ? node_at : reason.find_first_of("@]", node_at);
  const std::size_t name_at = op_end == std::string::npos ? op_end : reason.find("]:(", op_end);
  const std::size_t name_end = name_at == std::string::npos ? name_at : reason.find(')', name_at);
  if (name_end == std::string::npos) {
    return fmt::format("cannot read model '{}' ({}) with OpenCV DNN {}: {}", file.string(), opset_text,
                       CV_VERSION, reason);
  }
  return fmt::format(
      "cannot read model '{}' ({}) with OpenCV DNN {}: node '{}' (op {}) cannot be read (Identity "
      "nodes already removed in memory); try {}another opset (torch.onnx.export(..., opset_version={})), "
      "models/export.py --format onnx, or the model's TorchScript file (OpenCV: {})",
      file.string(), opset_text, CV_VERSION, node_name(reason.substr(name_at + 3, name_end - name_at - 3)),
      reason.substr(node_at + 6, op_end - node_at - 6),
      have_onnxruntime() ? "--backend onnxruntime (ModelBackendKind::onnxruntime), " : "",
      opset >= 0 && opset < 17 ? 17 : 13, reason);
}

// The bytes OpenCV reads for the ONNX file `file` (`bytes`, its content): the graph rewritten in
// memory without Identity nodes and with Clip bounds as attributes (OpenCV 4.6 parses neither a
// default export's Identity nor its opset-11+ Clip with min/max inputs), and Einsum equations in
// lowercase without spaces (OpenCV 4.10 crashes on MaxViT's "B G H I D, ..."), or `bytes` itself when
// there is nothing to rewrite or the file is no ModelProto we can read (OpenCV then says why).
// Sets `opset` to the file's default-domain opset (-1 if unreadable).
std::string onnx_bytes_for_opencv(const std::filesystem::path& file, std::string bytes,
                                  std::int64_t& opset) {
  opset = -1;
  OnnxModel model;
  try {
    model = OnnxModel::parse(bytes, file);
  } catch (const Error&) {
    return bytes;
  }
  opset = model.default_opset();
  if (model.has_external_data()) {
    throw Error(ErrorKind::model,
                fmt::format("cannot read model '{}' with OpenCV DNN {}: its weights are in external "
                            "data files (a model over 2 GB), which OpenCV DNN does not read; use {}the "
                            "model's TorchScript file",
                            file.string(), CV_VERSION,
                            have_onnxruntime() ? "--backend onnxruntime (ModelBackendKind::onnxruntime) or " : ""));
  }
#if CV_VERSION_MAJOR == 4 && CV_VERSION_MINOR < 7
  // OpenCV 4.6 crashes (SIGSEGV) reading some graphs with control flow, e.g. CLIP's attention
  // pooling exported with an If: refused here with the node named.
  for (const auto& node : model.nodes()) {
    if (!node.has_subgraphs) continue;
    throw Error(ErrorKind::model,
                fmt::format("cannot read model '{}' (ONNX opset {}) with OpenCV DNN {}: node '{}' (op {}) "
                            "holds a subgraph (control flow), which OpenCV DNN {} does not run; try {}the "
                            "model's TorchScript file",
                            file.string(), opset, CV_VERSION, node.name, node.op_type, CV_VERSION,
                            have_onnxruntime() ? "--backend onnxruntime or " : ""));
  }
#endif
  const std::size_t identities = model.remove_identity_nodes().removed;
  const std::size_t clips = model.clip_bounds_to_attributes();
  const std::size_t einsums = model.lowercase_einsum_equations();
  if (identities + clips + einsums == 0) return bytes;
  return model.serialize();
}

}  // namespace

bool is_opencv_dnn_file(const std::filesystem::path& file) {
  return is_opencv_dnn_extension(file.extension().string());
}

std::unique_ptr<ModelBackend> load_opencv_dnn_model(const std::filesystem::path& file,
                                                    const ModelOptions& options) {
  check_cpu_graph_options(file, options, "OpenCV DNN");
  std::filesystem::path model = file;
  std::filesystem::path config;
  const std::string ext = lower_extension(file);
  if (ext == ".caffemodel" || ext == ".prototxt") {
    const std::filesystem::path other =
        caffe_partner(file, ext == ".caffemodel" ? ".prototxt" : ".caffemodel");
    model = ext == ".caffemodel" ? file : other;
    config = ext == ".caffemodel" ? other : file;
  }
  cv::dnn::Net net;
  // OpenCV >= 4.7 also logs an importer failure on stderr; the Error below says it once, on one line.
  const auto log_level = cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  struct RestoreLogLevel {
    cv::utils::logging::LogLevel level;
    ~RestoreLogLevel() { cv::utils::logging::setLogLevel(level); }
  } restore_log_level{log_level};
  // readNet goes by extension; any other file (backend forced by ModelOptions) is read as ONNX.
  const bool onnx = ext == ".onnx" || !is_opencv_dnn_file(file);
  std::int64_t opset = -1;
  try {
    if (onnx) {
      const std::string bytes = onnx_bytes_for_opencv(file, read_model_bytes(file), opset);
      net = cv::dnn::readNetFromONNX(bytes.data(), bytes.size());
    } else {
      net = cv::dnn::readNet(model.string(), config.string());
    }
  } catch (const cv::Exception& ex) {
    const std::string reason = one_line(ex.err);  // OpenCV's message may span lines ("> ...")
    if (onnx) throw Error(ErrorKind::model, onnx_failure_message(file, opset, reason));
    const std::string what = config.empty() ? fmt::format("model '{}'", file.string())
                                            : fmt::format("Caffe model '{}' (weights '{}')",
                                                          config.string(), model.string());
    throw Error(ErrorKind::model, fmt::format("cannot read {} with OpenCV DNN: {}", what, reason));
  }
  if (net.empty()) {
    throw Error(ErrorKind::model,
                fmt::format("cannot read model '{}' with OpenCV DNN: empty network", file.string()));
  }
  net.enableFusion(false);
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  const TensorLayout native =
      options.native_layout != TensorLayout::automatic ? options.native_layout
      : ext == ".pb"                                   ? TensorLayout::nhwc
                                                       : TensorLayout::nchw;
  return std::make_unique<OpenCvDnnModel>(file, std::move(net), options.input_layout, native);
}

}  // namespace thingsvision
