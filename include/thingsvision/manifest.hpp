// manifest.hpp — Manifest (provenance of an extraction run, DIR/manifest.json) and ModelSidecar (FILE.json).
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace thingsvision {

/// The keys of a model's JSON sidecar (FILE.json beside FILE.pt) that tv-extract uses besides the
/// preprocessing (which Transform::from_sidecar reads). Unknown keys are ignored.
struct ModelSidecar {
  int schema_version = 1;
  std::string architecture;
  std::string weights;
  /// SHA-256 of the .pt file the sidecar was written for (may be empty).
  std::string sha256;
  /// The method that takes the image batch ("forward", "encode_image" for CLIP); empty (the key
  /// absent) lets Model::load choose (ModelOptions::entry_method).
  std::string entry_method;
  /// "cls", "avg", "cls+avg" or empty.
  std::string token_mode;
  std::vector<std::string> suggested_modules;
  /// OpenCV DNN models: "nchw" or "nhwc" (ModelOptions::input_layout / native_layout); empty = automatic.
  std::string input_layout;
  std::string native_layout;
  /// Text towers (open_clip): "clip_bpe" (tv-extract --text works) or "unsupported" with a
  /// `tokenizer_note` saying why; empty where the sidecar has no such key.
  std::string tokenizer;
  std::string tokenizer_note;
  /// The text tower's tokens per prompt (77 for CLIP's BPE); 0 where the sidecar has no such key.
  std::int64_t context_length = 0;
};

/// Reads a model sidecar; throws Error(input) naming the file for malformed JSON or wrong types.
ModelSidecar read_model_sidecar(const std::filesystem::path& json_file);

/// The sidecar path of a model file: FILE.pt → FILE.json.
std::filesystem::path sidecar_path(const std::filesystem::path& model_file);

/// One output of an extraction: a module (or one call of it with --all-calls) and where it went.
struct ManifestModule {
  std::string name;
  /// The directory (relative to the output directory) holding its features files.
  std::string directory;
  /// Which call of the module (with --all-calls), else -1 for the last call.
  int call_index = -1;
  /// The module's output shape for one image (batch dimension removed).
  std::vector<std::int64_t> activation_shape;
  /// The shape of one stored row after token selection, pooling, flattening or projection.
  std::vector<std::int64_t> row_shape;
  /// The features files, relative to the output directory.
  std::vector<std::string> files;
};

/// An image left out of every output (--skip-bad).
struct ManifestSkipped {
  std::string path;
  std::string reason;
};

/// Where an extraction's time went (manifest.json "timing"; docs/formats.md), in seconds.
struct ManifestTiming {
  double load_seconds = 0.0;        ///< model load, graph cut, optimize and its check (first image)
  double extract_seconds = 0.0;     ///< first batch request → end of the commit (load excluded)
  double forward_seconds = 0.0;     ///< inside Model::extract_async (the main thread; on CUDA: queueing only)
  double input_wait_seconds = 0.0;  ///< the main thread waiting for decoded batches
  double write_seconds = 0.0;       ///< the main thread waiting for the writer thread (writes, journal)
  /// LibTorch's start (loading the TorchScript plugin) on the thread that loads it from the job's
  /// start, beside listing and decoding; 0 for models that do not need LibTorch
  double runtime_start_seconds = 0.0;
  double runtime_wait_seconds = 0.0;  ///< of load_seconds: the model load waiting for that start
};

/// Whether a module set ran the optimized graph (ModelOptions::optimize) and why.
struct ManifestOptimization {
  std::vector<std::string> modules;
  std::string graph = "plain";  ///< "optimized" (kept) or "plain" (off or dropped)
  std::string reason;           ///< "--no-optimize", the agreement measured, or the optimizer's error
};

/// The provenance record of one extraction (or merge) written to DIR/manifest.json.
struct Manifest {
  static constexpr int current_schema_version = 1;
  int schema_version = current_schema_version;
  /// "running" while the job works (resumable), "complete" when every file is final.
  std::string status = "running";
  std::string tool_version;
  std::string torch_version;
  std::string command_line;
  std::string model_path;
  std::string model_sha256;
  std::string architecture;
  std::string entry_method = "forward";
  std::string device = "cpu";
  /// The library that ran the model (--backend resolved: libtorch, opencv_dnn or onnxruntime); empty in
  /// manifests written before it was recorded (then not compared on --resume).
  std::string backend;
  std::string images_root;
  std::string file_list;
  /// --text: the prompts file and its SHA-256 (empty for image extractions).
  std::string text_file;
  std::string text_sha256;
  /// The HDF5 image array (--hdf5-key) and its selection (--indices), when images come from a store.
  std::string hdf5_key;
  std::string indices;
  std::vector<std::string> class_names;
  std::vector<std::string> module_requests;
  std::vector<ManifestModule> modules;
  std::string format = "npy";
  std::string dtype = "float32";
  bool flatten = false;
  std::string pool = "none";
  std::string token = "none";
  bool all_calls = false;
  std::int64_t random_projection = 0;
  std::uint64_t seed = 0;
  int n_splits = 1;
  /// --shard I/N (shard_count 1 = the whole list); [first_image, last_image) of the sorted list.
  int shard_index = 0;
  int shard_count = 1;
  std::int64_t first_image = 0;
  std::int64_t last_image = 0;
  /// Images in the whole dataset (before sharding) and rows written (after skipping).
  std::int64_t dataset_images = 0;
  std::int64_t num_images = 0;
  std::vector<ManifestSkipped> skipped;
  /// Transform::describe() of the preprocessing and its fields.
  std::string preprocessing;
  std::string resize_mode;
  int resize_size = 0;
  int resize_height = 0;
  int resize_width = 0;
  std::string interpolation;
  int crop_height = 0;
  int crop_width = 0;
  std::vector<double> mean_rgb;
  std::vector<double> std_rgb;
  std::string preprocessing_source;
  /// --layout ("native" or "nchw") and the sidecar's input_layout / native_layout ("automatic" if unset).
  std::string layout = "native";
  std::string input_layout = "automatic";
  std::string native_layout = "automatic";
  std::int64_t batch_size = 32;
  int threads = 1;
  /// OpenBLAS threads set for the run (blas_threads_for; 0 = left as they were).
  int blas_threads = 0;
  /// OMP_WAIT_POLICY of the process ("" if unset; tv-extract restarts itself with PASSIVE).
  std::string openmp_wait_policy;
  double seconds = 0.0;
  ManifestTiming timing;
  /// One entry per module set run (one for tv-extract); empty for --text.
  std::vector<ManifestOptimization> optimization;
  /// Inputs of a tv-merge (empty for an extraction).
  std::vector<std::string> merged_from;
};

/// Writes `manifest` as JSON to `file` through a temporary file renamed when complete.
/// Throws Error(io) naming the file.
void write_manifest(const std::filesystem::path& file, const Manifest& manifest);

/// Reads a manifest.json; throws Error(input) naming the file (and the key) if it is malformed or
/// from a newer schema_version.
Manifest read_manifest(const std::filesystem::path& file);

}  // namespace thingsvision
