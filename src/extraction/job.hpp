// job.hpp — private declarations the files of src/extraction/ share: row shaping, the output
// directory and its journal, stop signals, CPUs, the model with its preprocessing, the manifest.
#pragma once

#include <signal.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "thingsvision/activations.hpp"
#include "thingsvision/dataset.hpp"
#include "thingsvision/device.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/extraction.hpp"
#include "thingsvision/feature_writer.hpp"
#include "thingsvision/image_batch.hpp"
#include "thingsvision/manifest.hpp"
#include "thingsvision/model.hpp"
#include "thingsvision/transforms.hpp"

namespace thingsvision::detail {

// --- text_job.cpp ---------------------------------------------------------------------------------

/// tv-extract --text: encode_text of each prompt → OUT/encode_text/features.<ext>, manifest.json.
/// run_extraction calls it when options.text is set.
ExtractionResult run_text_extraction(const ExtractionOptions& options);

// --- row_shaping.cpp ------------------------------------------------------------------------------

/// How a module's activations become rows (--token, --pool, --flatten, --random-projection/--seed).
struct RowOptions {
  TokenMode token = TokenMode::none;
  Pooling pool = Pooling::none;
  bool flatten = false;
  std::int64_t projection = 0;
  std::uint64_t seed = 0;
};
/// The row options of `options`, with `token` (--token, else the sidecar's or none) for tokens.
RowOptions row_options_for(const ExtractionOptions& options, TokenMode token);
/// Turns a module's activations into rows: token selection, pooling, flattening, projection.
void shape_rows(Activations& a, const RowOptions& o);
/// "(1, 512, 7, 7)": a shape as Python prints a tuple of two or more.
std::string shape_text(const std::vector<std::int64_t>& shape);

// --- output_directory.cpp -------------------------------------------------------------------------

/// One output of a job: a module (and call, with --all-calls), its directory and shapes.
struct Output {
  std::string module_name;
  int call_index = -1;
  std::string directory;
  std::vector<std::int64_t> activation_shape;
  std::vector<std::int64_t> row_shape;
};

/// The run journal: OUT/.tv-extract.journal, appended and fsync'd after each durable batch.
constexpr const char* journal_name = ".tv-extract.journal";

/// What the run journal records: where the next batch starts, the rows written, skipped images,
/// and how far the commit went.
struct JournalState {
  std::size_t next_index = 0;  // dataset index where the next batch starts
  std::size_t rows = 0;        // rows every output holds
  std::map<std::size_t, std::pair<std::string, std::string>> bad;  // index → (path, reason)
  bool committing = false;
  std::set<std::string> committed;  // output directories already committed
};
/// Reads the run journal `file` (an incomplete last line is ignored); without one, a state that
/// starts at `start_index`.
JournalState read_journal(const std::filesystem::path& file, std::size_t start_index);

/// The run journal open for appending; every append is fsync'd. Throws Error(io) naming the file.
class Journal {
 public:
  explicit Journal(std::filesystem::path file);
  ~Journal();
  /// Appends `text` and fsyncs the file.
  void append(const std::string& text);
  /// Closes and deletes the journal (the run is complete).
  void remove();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

 private:
  std::filesystem::path file_;
  int fd_ = -1;
};

/// Checks the output directory's state; returns the existing manifest when one is there. Throws
/// Error(usage) for a finished run without --resume/--overwrite and for an unfinished one (with
/// something durable) without either.
std::optional<Manifest> check_output_directory(const std::filesystem::path& output, bool resume, bool overwrite);
/// Removes what an earlier run wrote into `output` (only our own names).
void remove_previous_outputs(const std::filesystem::path& output, const std::vector<std::string>& directories);
/// Removes the writer journals (names holding ".journal") in a module directory.
void remove_journal_files(const std::filesystem::path& directory);
/// The final features files of output `directory` ("DIR/features.npy", …), sorted.
std::vector<std::string> features_files(const std::filesystem::path& output, const std::string& directory);
/// True when `directory` holds final features files and no writer journal: its commit finished
/// although the run journal did not record it (killed in between).
bool committed_without_record(const std::filesystem::path& directory);
/// The writer settings of `options` (--dtype, --n-splits, --mat-version, --mat-per-image).
WriterOptions writer_options_for(const ExtractionOptions& options);
/// Throws Error(io) when `outputs` need more than the free space of `output` for `num_images`
/// more images (twice the features: journal and final file while committing).
void check_free_space(const std::filesystem::path& output, const std::vector<Output>& outputs,
                      OutputFormat format, DataType dtype, std::size_t num_images);

// --- stop_signals.cpp -----------------------------------------------------------------------------

/// The SIGTERM/SIGINT a run received (0: none).
int stop_signal() noexcept;

/// Installs SIGTERM/SIGINT handlers for the duration of a run and restores the previous ones.
/// Until writing_starts(), a signal ends the process at once (nothing is written yet).
class StopSignals {
 public:
  explicit StopSignals(const std::filesystem::path& output);
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  /// From now on a signal only sets stop_signal(): the run ends after its next durable batch.
  void writing_starts();

 private:
  std::string stop_now_term_;
  std::string stop_now_int_;
  struct sigaction old_term_ {};
  struct sigaction old_int_ {};
};

/// Test hook: TV_FAULT_AFTER_BATCHES=k kills the process (SIGKILL, as kill -9) at stage
/// TV_FAULT_STAGE: "batch" (after batch k is durable), "module" (batch k+1 written to the first
/// output only), "commit" (after the first output is committed); "sigterm" sends SIGTERM to the
/// process after batch k instead, to test the clean stop.
struct FaultHook {
  long after_batches = -1;
  std::string stage = "batch";
  FaultHook();
  void at(const std::string& here, long batches_done) const;
};

// --- cpus.cpp -------------------------------------------------------------------------------------

/// Decoding threads when --decode-threads is not given (the reasons are in cpus.cpp).
int default_decode_threads(int threads, const Device& device);

// --- model_loading.cpp ----------------------------------------------------------------------------

/// --model loaded, with its sidecar (if it has one).
struct LoadedModel {
  Model model;
  ModelSidecar sidecar;
  bool has_sidecar = false;
};
/// Starts LibTorch's start (~0.4 s, one core) on a thread when the job's model needs it, so that it
/// runs while the job does its other first steps; load_model waits for what is left of it.
void preload_model_runtime(const ExtractionOptions& options);
/// The sidecar of --model (FILE.json beside it), or nothing when it has none.
std::optional<ModelSidecar> read_sidecar_of(const ExtractionOptions& options);
/// Loads --model with `sidecar` (read_sidecar_of, read once by the caller). The entry method:
/// --entry-method, else (--text) "encode_text", else the sidecar's, else Model::load's choice.
LoadedModel load_model(const ExtractionOptions& options, int threads, bool text,
                       std::optional<ModelSidecar> sidecar);
/// load_model with the sidecar read here.
LoadedModel load_model(const ExtractionOptions& options, int threads, bool text = false);
/// A batch of one transformed image, dataset index `index`.
ImageBatch one_image_batch(const TransformedImage& image, std::size_t index);
/// Whether the probe kept the optimized graph for `modules` (Model::optimization_status).
ManifestOptimization optimization_record(Model& model, const std::vector<std::string>& modules,
                                         const ExtractOptions& extract_options, bool optimize);

// --- job_manifest.cpp -----------------------------------------------------------------------------

/// The manifest fields that image and text runs fill alike: versions, command line, model, device,
/// row shaping, output format, batch size and threads.
Manifest job_manifest(const ExtractionOptions& options, const LoadedModel& loaded, const std::string& model_sha256,
                      const RowOptions& row_options, int threads);
/// Records the preprocessing `t` in the manifest (its description and each setting).
void describe_transform(const Transform& t, Manifest& m);
/// The first setting in which two manifests of one job differ (empty if none). With `merge`, the
/// settings that legitimately differ between shards are not compared.
std::string job_difference(const Manifest& a, const Manifest& b, bool merge);

}  // namespace thingsvision::detail
