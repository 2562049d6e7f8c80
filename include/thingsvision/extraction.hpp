// extraction.hpp — run_extraction: the whole tv-extract job (dataset → model → writers), resumable and shardable.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "thingsvision/device.hpp"
#include "thingsvision/feature_writer.hpp"
#include "thingsvision/model.hpp"
#include "thingsvision/transforms.hpp"

namespace thingsvision {

/// Global pooling of each channel over the spatial dimensions (dims 2.. of N×C×…).
enum class Pooling { none, avg, max };
/// ViT token selection for (N, T, D) outputs, as THINGSvision's token_extraction.
enum class TokenMode { none, cls, avg, cls_avg };

/// Parses "none", "avg", "max"; throws Error(usage) naming --pool.
Pooling parse_pooling(const std::string& text);
/// Parses "none", "cls", "avg", "cls+avg" (and THINGSvision's "cls_token", "avg_pool",
/// "cls_token+avg_pool"); throws Error(usage) naming --token.
TokenMode parse_token_mode(const std::string& text);
const char* to_string(Pooling pooling) noexcept;
const char* to_string(TokenMode mode) noexcept;

/// Everything tv-extract does, as a struct (each member is one flag; see docs/cli.md).
struct ExtractionOptions {
  std::filesystem::path model_file;                   ///< --model FILE.pt (FILE.json = sidecar)
  /// --module: names, "all", or glob patterns (`*`, `?`, `[...]`) over the module names.
  std::vector<std::string> modules;
  std::filesystem::path images;                        ///< --images DIR (or an HDF5 file with hdf5_key)
  /// --text PROMPTS.txt: CLIP text features instead of images — encode_text of each line (docs/cli.md).
  std::filesystem::path text;
  std::filesystem::path vocabulary;                    ///< --vocab FILE (default: ClipTokenizer's lookup)
  /// --entry-method NAME: the method that takes the images (with --text: the token ids, default
  /// "encode_text"). Empty: the sidecar's, else Model::load's choice (ModelOptions::entry_method).
  std::string entry_method;
  /// --hdf5-key KEY: --images is an HDF5 image store (THINGSvision's HDF5Dataset), this array.
  std::string hdf5_key;
  /// --indices A:B | i,j,k: the images of the HDF5 array to extract (all when empty).
  std::string indices;
  std::filesystem::path output;                        ///< --out DIR
  OutputFormat format = OutputFormat::npy;             ///< --format
  DataType dtype = DataType::float32;                  ///< --dtype
  bool flatten = false;                                ///< --flatten: rows of prod(shape[1:])
  /// --layout native|nchw: 4-D outputs of OpenCV DNN models in their native layout (NHWC for
  /// TensorFlow/Keras; ExtractOptions::layout) or always NCHW.
  OutputLayout layout = OutputLayout::native;
  MatVersion mat_version = MatVersion::v73;            ///< --mat-version 7.3|5
  bool mat_variable_per_image = false;                 ///< --mat-per-image (THINGSvision's .mat layout)
  std::size_t batch_size = 32;                         ///< --batch-size
  Device device = Device::cpu();                       ///< --device
  /// --backend: which library runs the model (ModelOptions::backend; automatic by extension).
  ModelBackendKind backend = ModelBackendKind::automatic;
  int num_threads = 0;                                 ///< --threads: LibTorch intra-op; 0 = available_cpus()
  int decode_threads = 0;                              ///< --decode-threads: image decoding; 0 = automatic
  /// --optimize (default) / --no-optimize: ModelOptions::optimize (freeze + fuse, kept only where
  /// the outputs agree within 1e-5 relative; manifest.json "optimization" says which). On here,
  /// unlike ModelOptions: one module set over many images repays its cost (docs/model.md).
  bool optimize = true;
  std::filesystem::path file_list;                     ///< --file-names LIST.txt
  std::vector<std::string> class_names;                ///< --class-names a,b,c
  // Preprocessing: sidecar (or the "thingsvision" preset) < --preset < the single flags.
  std::string preset;                                  ///< --preset
  std::optional<int> resize_size;                      ///< --resize S (shorter side; 0 = none)
  std::optional<int> crop_size;                        ///< --crop C (0 = no crop)
  std::optional<Interpolation> interpolation;          ///< --interpolation
  std::optional<std::array<float, 3>> mean_rgb;        ///< --mean r,g,b
  std::optional<std::array<float, 3>> std_rgb;         ///< --std r,g,b
  bool all_calls = false;                              ///< --all-calls: every call of a module
  int n_splits = 1;                                    ///< --n-splits K
  int shard_index = 0;                                 ///< --shard I/N (0-based)
  int shard_count = 1;
  bool resume = false;                                 ///< --resume
  bool overwrite = false;                              ///< --overwrite
  bool skip_bad_images = false;                        ///< --skip-bad
  Pooling pool = Pooling::none;                        ///< --pool avg|max
  std::optional<TokenMode> token;                      ///< --token (default: the sidecar's token_mode)
  std::int64_t random_projection = 0;                  ///< --random-projection K (0 = off)
  std::uint64_t seed = 0;                              ///< --seed S
  bool check_disk_space = true;                        ///< --no-space-check turns it off
  std::string command_line;                            ///< recorded in the manifest
};

/// Progress of a running extraction, passed to the progress callback after every batch.
struct ExtractionProgress {
  std::size_t images_done = 0;    ///< of this shard, including those of the runs --resume continues
  std::size_t images_total = 0;
  std::size_t images_before = 0;  ///< of images_done, done by the runs --resume continues
  double seconds = 0.0;           ///< since this run's extraction began (after the model load)
};
using ProgressCallback = std::function<void(const ExtractionProgress&)>;
/// Receives notices worth a line on stderr (a skipped image, a stale sidecar), one at a time.
using MessageCallback = std::function<void(const std::string&)>;

/// What a finished run_extraction did.
struct ExtractionResult {
  std::filesystem::path output;
  std::size_t num_images = 0;                          ///< rows written per module
  std::vector<std::string> modules;                    ///< output directories (escaped names)
  std::vector<std::pair<std::string, std::string>> skipped;  ///< (relative path, reason)
  double seconds = 0.0;                                ///< in total (manifest.json "seconds")
  double load_seconds = 0.0;                           ///< of which model load + optimize
  double extract_seconds = 0.0;                        ///< of which extraction and commit (rates use it)
  std::size_t images_before = 0;                       ///< of num_images, written by the runs --resume continued
  bool already_complete = false;                       ///< --resume found nothing left to do
  bool text = false;                                   ///< the rows are prompts (--text), not images
};

/// Runs the whole job described by `options`: writes OUT/file_names.txt, OUT/<module>/features.<ext>
/// and OUT/manifest.json (with options.text: OUT/encode_text/features.<ext>, one row per prompt).
/// Resumes from the journals with options.resume; stops cleanly on SIGTERM/SIGINT
/// (Error(io) saying --resume continues). Throws Error (usage, input, model, io) naming the cause.
/// **Example**: `ExtractionOptions o; o.model_file = "resnet18.pt"; o.modules = {"avgpool"};
/// o.images = "imgs"; o.output = "out"; run_extraction(o);`
ExtractionResult run_extraction(const ExtractionOptions& options, const ProgressCallback& progress = {},
                                const MessageCallback& message = {});

/// The preprocessing run_extraction uses: sidecar (else CLIP's at the archive's input_resolution
/// for a CLIP archive per `model`, else "thingsvision") < preset < single options.
/// `source` (if given) receives where the base came from ("sidecar FILE.json", "preset NAME").
Transform resolve_transform(const ExtractionOptions& options, std::string* source = nullptr,
                            const ModelTraits* model = nullptr);

/// One row of --list-modules.
struct ModuleListing {
  std::string name;
  std::string type;
  /// Output shape for one image (batch dimension removed); empty if it is not a tensor.
  std::vector<std::int64_t> output_shape;
};
/// Every module of the model with its type and output shape for one (mid-grey) image.
std::vector<ModuleListing> list_modules(const ExtractionOptions& options);
/// The module tree as PyTorch prints the model (--show-model).
std::string show_model(const ExtractionOptions& options);

/// Expands --module requests ("all", exact names, glob patterns) against `module_names`, keeping
/// request order and dropping repeats. Throws Error(usage) for an unknown name (listing the closest)
/// and for a pattern that matches nothing.
std::vector<std::string> select_modules(const std::vector<std::string>& requests,
                                        const std::vector<std::string>& module_names,
                                        const std::string& model_name = "the model");

/// Reversibly escapes a module name into one directory name: bytes outside [A-Za-z0-9._-] and a
/// leading '.' become %XX (upper-case hex). "layer4.1.relu" stays; "/conv/Conv_output_0" → "%2Fconv%2FConv_output_0".
std::string escape_module_name(const std::string& module_name);
/// The inverse of escape_module_name; throws Error(usage) for a malformed escape.
std::string unescape_module_name(const std::string& directory_name);

/// Parses --shard "I/N" (0 ≤ I < N); throws Error(usage) naming --shard.
std::pair<int, int> parse_shard(const std::string& text);
/// Images [first, last) of shard `index` of `count` over `num_images` images: contiguous, balanced by
/// images (sizes differ by at most one, whatever the batch size); with more shards than images some are empty.
std::pair<std::size_t, std::size_t> shard_range(std::size_t num_images, int index, int count);

/// The CPUs this process may use: min(affinity mask, cgroup CPU quota, SLURM_CPUS_PER_TASK,
/// OMP_NUM_THREADS), at least 1.
int available_cpus();

/// Projects `values` (num_rows × input_dim, C order) onto `output_dim` dimensions with a seeded
/// Rademacher matrix R[d][k] = ±1/sqrt(output_dim), sign = bit (d·K + k) mod 64 of
/// splitmix64(seed + (d·K + k) / 64); the same seed gives the same bytes on every platform.
std::vector<float> random_projection(const std::vector<float>& values, std::size_t num_rows,
                                     std::size_t input_dim, std::size_t output_dim, std::uint64_t seed);

/// A progress printer for a terminal: "\r  640/26107 images  41.2 images/s  ETA 10:18" on `fd`; the
/// rate counts this run's images over ExtractionProgress::seconds, as summary_line does.
ProgressCallback terminal_progress(int fd = 2);
/// The one summary line printed at the end ("extracted 7 images × 2 outputs in 1.3 s (…) → out/"); after
/// --resume it says how many were done before and gives the rate over the new ones only.
std::string summary_line(const ExtractionResult& result);

/// Merges the output directories of shards (or of any runs of the same job) into `output`:
/// features of each module bit for bit (merge_features), file_names.txt, and a manifest.
/// Shards of one job are put in shard order; a missing or repeated shard is an Error(usage).
void merge_extractions(const std::vector<std::filesystem::path>& inputs,
                       const std::filesystem::path& output, bool overwrite = false,
                       const std::string& command_line = "");

}  // namespace thingsvision
