// image_job.cpp — run_extraction: the tv-extract job over images, as its steps: check the options and
// the output directory, open the images, load the model, probe one image, write the manifest, open
// the writers, extract batch by batch (the journal records each durable batch), commit. The text
// job (--text) is text_job.cpp; the other concerns have a file each in this folder.
#include "thingsvision/extraction.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "extraction/background_worker.hpp"
#include "extraction/job.hpp"
#include "thingsvision/data_loader.hpp"
#include "thingsvision/dataset.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/feature_reader.hpp"
#include "thingsvision/manifest.hpp"
#include "thingsvision/model.hpp"
#include "thingsvision/sha256.hpp"
#include "thingsvision/version.hpp"

namespace thingsvision::detail {

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Without --skip-bad: `e` (a bad image) with the flag that leaves such images out.
Error with_skip_bad_hint(const Error& e) {
  return Error(e.kind(), fmt::format("{}; pass --skip-bad to leave unreadable images out", e.what()));
}

/// Without --skip-bad, before the first forward pass: the header checks of images [first, last) of
/// an image folder (check_image_header). Throws Error(input) naming the bad ones (10 at most) and --skip-bad.
void check_image_headers(const ImageDataset& dataset, std::size_t first, std::size_t last) {
  constexpr std::size_t named = 10;
  std::vector<std::string> bad;
  std::size_t count = 0;
  for (std::size_t i = first; i < last; ++i) {
    try {
      check_image_header(dataset[i].path);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::input && e.kind() != ErrorKind::io) throw;
      if (++count <= named) bad.push_back(e.what());
    }
  }
  if (count == 0) return;
  std::string list;
  for (const auto& text : bad) list += (list.empty() ? "" : "; ") + text;
  if (count > named) list += fmt::format("; and {} more", count - named);
  throw Error(ErrorKind::input, fmt::format("{} of {} images cannot be read: {}; pass --skip-bad to leave them out",
                                            count, last - first, list));
}

/// One forward pass's activations on their way to the writers and the journal.
struct WriteJob {
  std::vector<Activations> acts;
  /// The activations while the device still computes them (Model::extract_async on CUDA): the
  /// writer thread waits for them, so the next batch is queued meanwhile.
  std::future<std::vector<Activations>> pending;
  std::size_t num_images = 0;
  std::size_t first_index = 0, last_index = 0;  // dataset indices of the batch's first/last image
  std::size_t next_index = 0;                   // where the next batch starts (journal)
  std::string bad_lines;                        // journal lines of images found bad meanwhile
};

/// What an image job holds from its first step to its last; each step below fills its part.
/// Members are destroyed in reverse: writers, then the model, then the loader, then the dataset.
struct ImageJob {
  ImageJob(const ExtractionOptions& job_options, const MessageCallback& message_callback,
           std::optional<Manifest> previous_manifest)
      : options(job_options),
        message(message_callback),
        out(job_options.output),
        previous(std::move(previous_manifest)),
        resuming(job_options.resume && previous.has_value()) {}

  /// A notice worth a line on stderr (a skipped image, a stale sidecar).
  void say(const std::string& text) const {
    if (message) message(text);
  }
  Model& model() { return loaded->model; }

  const ExtractionOptions& options;
  const MessageCallback& message;
  const fs::path& out;
  const std::optional<Manifest> previous;  // the manifest of an earlier run in --out
  const bool resuming;                     // --resume of an earlier run
  int threads = 1;
  // open_images
  std::optional<ImageDataset> dataset;
  std::size_t first_image = 0, last_image = 0;  // this shard's images
  Transform transform;
  std::string transform_source;
  DataLoaderOptions loader_options;
  std::optional<DataLoader> loader;
  // load_job_model
  std::optional<LoadedModel> loaded;
  double runtime_start_seconds = 0, runtime_wait_seconds = 0;  // LibTorch's start, the part waited for
  std::string model_label;                                      // the model's file name
  std::string model_sha256;
  std::vector<std::string> modules;
  RowOptions row_options;
  ExtractOptions extract_options;
  // probe_outputs, then the manifest and the journal
  std::vector<Output> outputs;
  Manifest manifest;
  JournalState state;
  std::size_t rows_before = 0, images_before = 0;  // written by the runs --resume continues
  // open_writers, then extract_batches
  std::vector<std::unique_ptr<FeatureWriter>> writers;  // none for an output already committed
  std::vector<std::size_t> skip_rows;                   // rows of the next batches already in its file
  long batches_done = 0;
  std::size_t bad_recorded = 0;  // of the loader's bad images, those in the journal
};

/// Throws Error(usage) for a missing or out-of-range option of an image job.
void check_image_options(const ExtractionOptions& options) {
  if (options.output.empty()) throw Error(ErrorKind::usage, "--out is required");
  if (options.images.empty()) throw Error(ErrorKind::usage, "--images is required");
  if (!options.hdf5_key.empty()) {
    if (!fs::is_regular_file(options.images)) {
      throw Error(ErrorKind::usage, fmt::format("--images: no such HDF5 file '{}' (with --hdf5-key)", options.images.string()));
    }
  } else if (!options.indices.empty()) {
    throw Error(ErrorKind::usage, "--indices needs --hdf5-key (it selects images of an HDF5 array)");
  } else if (!fs::is_directory(options.images)) {
    throw Error(ErrorKind::usage, fmt::format("--images: no such directory '{}'", options.images.string()));
  }
  if (options.batch_size == 0) throw Error(ErrorKind::usage, "--batch-size must be at least 1");
  if (options.n_splits < 1) throw Error(ErrorKind::usage, "--n-splits must be at least 1");
  if (options.shard_count < 1 || options.shard_index < 0 || options.shard_index >= options.shard_count) {
    throw Error(ErrorKind::usage, fmt::format("--shard: {}/{} is not I/N with 0 <= I < N",
                                              options.shard_index, options.shard_count));
  }
  if (options.resume && options.overwrite) {
    throw Error(ErrorKind::usage, "--resume and --overwrite exclude each other");
  }
  if (options.random_projection < 0) throw Error(ErrorKind::usage, "--random-projection must be >= 1");
  if (options.num_threads < 0) throw Error(ErrorKind::usage, "--threads must be >= 1 (0 = all available CPUs)");
  if (options.modules.empty()) {
    throw Error(ErrorKind::usage, "--module is required (see --list-modules for the names)");
  }
}

/// The image folder (flat, class folders or a file list) or the HDF5 image store of --images.
ImageDataset open_dataset(const ExtractionOptions& options) {
  DatasetOptions dataset_options;
  dataset_options.file_list = options.file_list;
  dataset_options.class_names = options.class_names;
  if (options.hdf5_key.empty()) return ImageDataset::open(options.images, dataset_options);
  return ImageDataset::open_hdf5(options.images, options.hdf5_key,
                                 options.indices.empty()
                                     ? std::vector<std::size_t>{}
                                     : parse_index_selection(options.indices, ImageDataset::hdf5_image_count(
                                                                                  options.images, options.hdf5_key)));
}

/// Lists the images and this shard's range, checks their headers (without --skip-bad; before
/// anything is written), resolves the preprocessing, and, unless resuming, starts the loader: it
/// decodes the first batches on its threads while the model loads (load_model is mostly one thread).
void open_images(ImageJob& job) {
  const ExtractionOptions& options = job.options;
  const ImageDataset& dataset = job.dataset.emplace(open_dataset(options));
  std::tie(job.first_image, job.last_image) = shard_range(dataset.size(), options.shard_index, options.shard_count);
  if (!options.skip_bad_images && !job.resuming && !dataset.is_hdf5_store()) {
    check_image_headers(dataset, job.first_image, job.last_image);
  }
  job.transform = resolve_transform(options, &job.transform_source);
  DataLoaderOptions& loader_options = job.loader_options;
  loader_options.batch_size = options.batch_size;
  loader_options.num_workers =
      options.decode_threads > 0 ? options.decode_threads : default_decode_threads(job.threads, options.device);
  loader_options.first_index = job.first_image;
  loader_options.last_index = job.last_image;
  loader_options.skip_bad_images = options.skip_bad_images;
  // A resumed run starts where its journal ends (read later): its loader starts there, later.
  if (!job.resuming && job.first_image < job.last_image) job.loader.emplace(dataset, job.transform, loader_options);
}

/// Loads the model (waiting for what is left of LibTorch's start), restarts the loader for a CLIP
/// archive preprocessed at its own resolution, selects the modules, compares the sidecar's SHA-256
/// with the model file's, and sets how activations become rows.
void load_job_model(ImageJob& job, std::future<std::string>& model_sha256_hash) {
  const ExtractionOptions& options = job.options;
  const double runtime_wait_before = torch_runtime_timing().wait_seconds;
  const LoadedModel& loaded = job.loaded.emplace(load_model(options, job.threads));
  const TorchRuntimeTiming runtime_timing = torch_runtime_timing();
  job.runtime_start_seconds = runtime_timing.start_seconds;
  job.runtime_wait_seconds = runtime_timing.wait_seconds - runtime_wait_before;
  Model& model = job.model();
  job.model_label = options.model_file.filename().string();
  // A CLIP archive without a sidecar or --preset is preprocessed as clip.py does at its own
  // input_resolution, known only now: the loader (decoding since before the load) starts again.
  if (model.traits().clip_archive && !loaded.has_sidecar && options.preset.empty()) {
    const bool restart = job.loader.has_value();
    job.loader.reset();
    job.transform = resolve_transform(options, &job.transform_source, &model.traits());
    if (restart) job.loader.emplace(*job.dataset, job.transform, job.loader_options);
  }
  if (model.traits().clip_archive && !loaded.has_sidecar && options.entry_method.empty()) {
    job.say(fmt::format("'{}' is a CLIP archive without a sidecar (encode_image, encode_text, forward(image, text)): "
                        "extracting from encode_image, preprocessing: {} (--entry-method and --preset override)",
                        job.model_label, job.transform_source));
  }
  job.modules = select_modules(options.modules, model.module_names(), job.model_label);
  job.model_sha256 = model_sha256_hash.get();
  if (loaded.has_sidecar && !loaded.sidecar.sha256.empty() && loaded.sidecar.sha256 != job.model_sha256) {
    job.say(fmt::format("warning: sidecar '{}' was written for another file (SHA-256 {}…, model has {}…)",
                        sidecar_path(options.model_file).string(), loaded.sidecar.sha256.substr(0, 12),
                        job.model_sha256.substr(0, 12)));
  }
  job.row_options = row_options_for(options, options.token ? *options.token
                                             : loaded.sidecar.token_mode.empty()
                                                 ? TokenMode::none
                                                 : parse_token_mode(loaded.sidecar.token_mode));
  job.extract_options.calls = options.all_calls ? ModuleCalls::all : ModuleCalls::last;
  // Pooling averages or maxes each channel over dims 2..: take 4-D outputs as N x C x H x W then,
  // whatever the native layout (the pooled N x C rows are the same in both layouts).
  job.extract_options.layout = options.pool != Pooling::none ? OutputLayout::nchw : options.layout;
}

/// Runs the shard's first readable image through the model: each output's directory and its
/// activation and row shapes (the disk-space estimate and the writers need them).
std::vector<Output> probe_outputs(ImageJob& job) {
  const ExtractionOptions& options = job.options;
  const ImageDataset& dataset = *job.dataset;
  std::vector<Activations> probe;
  std::string first_error;
  for (std::size_t i = job.first_image < job.last_image ? job.first_image : 0; i < dataset.size(); ++i) {
    try {
      const TransformedImage image = apply_transform(job.transform, dataset.load_image(i));
      probe = job.model().extract(one_image_batch(image, i), job.modules, job.extract_options);
      break;
    } catch (const Error& e) {
      const bool skippable = e.kind() == ErrorKind::input || e.kind() == ErrorKind::io;
      if (!skippable) throw;
      if (!options.skip_bad_images) throw with_skip_bad_hint(e);
      if (first_error.empty()) first_error = e.what();
    }
  }
  if (probe.empty()) {
    throw Error(ErrorKind::input, fmt::format("no readable image in '{}' ({})", options.images.string(), first_error));
  }
  std::vector<Output> outputs;
  for (auto& a : probe) {
    if (a.shape.size() < 2 || a.shape[0] != 1) {
      throw Error(ErrorKind::model, fmt::format("module '{}' of {} gives an output of shape {} for one image; "
                                                "rows need a batch dimension first", a.module_name, job.model_label,
                                                shape_text(a.shape)));
    }
    Output o;
    o.module_name = a.module_name;
    o.call_index = options.all_calls ? a.call_index : -1;
    o.directory = escape_module_name(a.module_name);
    if (options.all_calls) o.directory += "/call_" + std::to_string(a.call_index);
    o.activation_shape.assign(a.shape.begin() + 1, a.shape.end());
    shape_rows(a, job.row_options);
    o.row_shape.assign(a.shape.begin() + 1, a.shape.end());
    outputs.push_back(std::move(o));
  }
  return outputs;
}

/// The manifest of the running job: the common fields, the images, the outputs, the preprocessing
/// and `optimization`.
Manifest running_manifest(ImageJob& job, ManifestOptimization optimization) {
  const ExtractionOptions& options = job.options;
  const LoadedModel& loaded = *job.loaded;
  Manifest manifest = job_manifest(options, loaded, job.model_sha256, job.row_options, job.threads);
  manifest.entry_method = job.model().traits().entry_method;
  manifest.images_root = options.images.string();
  manifest.file_list = options.file_list.string();
  manifest.hdf5_key = options.hdf5_key;
  manifest.indices = options.indices;
  manifest.class_names = job.dataset->class_names();
  manifest.module_requests = options.modules;
  for (const auto& o : job.outputs) {
    ManifestModule m;
    m.name = o.module_name;
    m.directory = o.directory;
    m.call_index = o.call_index;
    m.activation_shape = o.activation_shape;
    m.row_shape = o.row_shape;
    manifest.modules.push_back(m);
  }
  manifest.all_calls = options.all_calls;
  manifest.shard_index = options.shard_index;
  manifest.shard_count = options.shard_count;
  manifest.first_image = static_cast<std::int64_t>(job.first_image);
  manifest.last_image = static_cast<std::int64_t>(job.last_image);
  manifest.dataset_images = static_cast<std::int64_t>(job.dataset->size());
  describe_transform(job.transform, manifest);
  manifest.preprocessing_source = job.transform_source;
  manifest.layout = options.layout == OutputLayout::nchw ? "nchw" : "native";
  if (!loaded.sidecar.input_layout.empty()) manifest.input_layout = loaded.sidecar.input_layout;
  if (!loaded.sidecar.native_layout.empty()) manifest.native_layout = loaded.sidecar.native_layout;
  manifest.optimization = {std::move(optimization)};
  return manifest;
}

/// With --resume: throws Error(usage) when the earlier run was another job; returns what it did
/// when it had finished (nothing left to do).
std::optional<ExtractionResult> check_resume(const ImageJob& job) {
  const Manifest& previous = *job.previous;
  const bool complete = previous.status == "complete";
  const std::string difference = job_difference(previous, job.manifest, false);
  if (!difference.empty()) {
    throw Error(ErrorKind::usage,
                fmt::format("--resume: the {} run in '{}' differs in {}; pass the same options, "
                            "or --overwrite to start again", complete ? "finished" : "unfinished",
                            job.out.string(), difference));
  }
  if (!complete) return std::nullopt;
  ExtractionResult done;
  done.output = job.out;
  done.num_images = static_cast<std::size_t>(previous.num_images);
  for (const auto& m : previous.modules) done.modules.push_back(m.directory);
  for (const auto& s : previous.skipped) done.skipped.emplace_back(s.path, s.reason);
  done.already_complete = true;
  return done;
}

/// Without --resume: removes what an earlier run wrote into --out and creates --out.
void prepare_fresh_output(const ImageJob& job) {
  if (job.previous) {
    std::vector<std::string> old_directories;
    for (const auto& m : job.previous->modules) old_directories.push_back(m.directory);
    remove_previous_outputs(job.out, old_directories);
  }
  std::error_code ec;
  fs::create_directories(job.out, ec);
  if (ec || !fs::is_directory(job.out)) {
    throw Error(ErrorKind::io, fmt::format("--out: cannot create '{}': {}", job.out.string(), ec.message()));
  }
}

/// Opens a writer for each output not committed yet (resumed: its file as the last durable batch
/// left it; rows it holds beyond the journal's are skipped when their batch comes again).
void open_writers(ImageJob& job) {
  const ExtractionOptions& options = job.options;
  const JournalState& state = job.state;
  WriterOptions writer_options = writer_options_for(options);
  writer_options.resume = job.resuming;
  job.writers.resize(job.outputs.size());
  job.skip_rows.assign(job.outputs.size(), 0);
  for (std::size_t w = 0; w < job.outputs.size(); ++w) {
    const Output& output = job.outputs[w];
    if (state.committed.count(output.directory)) continue;
    if (state.committing && committed_without_record(job.out / output.directory)) continue;
    WriterOptions wo = writer_options;
    wo.attributes = {{"model", job.model_label},
                     {"model_sha256", job.model_sha256},
                     {"module", output.module_name},
                     {"thingsvision_cpp_version", version_string()},
                     {"torch_version", torch_version_string()},
                     {"preprocessing", job.transform.describe()}};
    job.writers[w] = open_feature_writer(options.format, job.out / output.directory, output.row_shape, wo);
    const std::size_t have = job.writers[w]->rows_written();
    if (have < state.rows) {
      throw Error(ErrorKind::input,
                  fmt::format("--resume: '{}' holds {} rows but the run journal records {}; pass --overwrite "
                              "to start again", (job.out / output.directory).string(), have, state.rows));
    }
    job.skip_rows[w] = have - state.rows;
  }
}

/// The journal lines of the images the loader left out since the last call; each is said once.
std::string record_bad(ImageJob& job, const std::vector<BadImage>& bad) {
  std::string text;
  for (; job.bad_recorded < bad.size(); ++job.bad_recorded) {
    const BadImage& b = bad[job.bad_recorded];
    if (job.state.bad.count(b.index)) continue;
    job.say(fmt::format("skipped '{}': {}", b.relative_path, b.reason));
    job.state.bad[b.index] = {b.relative_path, b.reason};
    std::string reason = b.reason;
    std::replace(reason.begin(), reason.end(), '\n', ' ');
    text += fmt::format("S {}\t{}\t{}\n", b.index, b.relative_path, reason);
  }
  return text;
}

/// The Error(io) that ends a run stopped by signal `sig` after its last durable batch.
Error stopped_error(const ImageJob& job, int sig) {
  return Error(ErrorKind::io,
               fmt::format("stopped by {} after {} of {} images; the finished batches are saved in '{}': "
                           "run the same command with --resume to continue",
                           sig == SIGTERM ? "SIGTERM" : "SIGINT", job.state.next_index - job.first_image,
                           job.last_image - job.first_image, job.out.string()));
}

/// Calls `progress` (if set) with `images_done` of this shard's images.
void report_progress(const ImageJob& job, const ProgressCallback& progress, std::size_t images_done,
                     std::chrono::steady_clock::time_point extract_start) {
  if (!progress) return;
  ExtractionProgress p;
  p.images_done = images_done;
  p.images_total = job.last_image - job.first_image;
  p.images_before = job.images_before;
  p.seconds = seconds_since(extract_start);
  progress(p);
}

/// Output index of each (module, call) the writers expect.
using OutputIndex = std::map<std::pair<std::string, int>, std::size_t>;

/// On the writer thread: shapes the rows of batch `write`, appends them to every output, then
/// records the batch in the journal (so a batch is in the journal only once all its rows are
/// written). False after a stop signal: the run ends after this durable batch.
bool write_batch(ImageJob& job, WriteJob& write, const OutputIndex& output_of, Journal& journal,
                 const FaultHook& fault, std::atomic<std::size_t>& images_durable) {
  JournalState& state = job.state;
  if (write.pending.valid()) write.acts = write.pending.get();
  const std::size_t n = write.num_images;
  if (n > 0) {
    std::vector<bool> written(job.outputs.size(), false);
    for (auto& a : write.acts) {
      const auto it = output_of.find({a.module_name, job.options.all_calls ? a.call_index : -1});
      if (it == output_of.end()) {
        throw Error(ErrorKind::model, fmt::format("module '{}' gave a call {} that the first image did not; "
                                                  "its call count varies between inputs", a.module_name, a.call_index));
      }
      const std::size_t w = it->second;
      if (a.shape.empty()) throw Error(ErrorKind::model, fmt::format("module '{}' gave an empty shape", a.module_name));
      shape_rows(a, job.row_options);
      const std::vector<std::int64_t> row_shape(a.shape.begin() + 1, a.shape.end());
      if (a.num_rows() != static_cast<std::int64_t>(n) || row_shape != job.outputs[w].row_shape) {
        throw Error(ErrorKind::model,
                    fmt::format("module '{}' gave rows of shape {} for images {}..{}, but {} for the first image",
                                a.module_name, shape_text(row_shape), write.first_index, write.last_index,
                                shape_text(job.outputs[w].row_shape)));
      }
      written[w] = true;
      FeatureWriter* writer = job.writers[w].get();
      if (!writer) continue;
      const std::size_t skip = std::min(job.skip_rows[w], n);
      job.skip_rows[w] -= skip;
      if (skip < n) writer->append_rows(a.values.data() + skip * writer->row_size(), n - skip);
      fault.at("module", job.batches_done);
    }
    if (std::find(written.begin(), written.end(), false) != written.end()) {
      throw Error(ErrorKind::model, "a module was not called for this batch; its call count varies between inputs");
    }
    state.rows += n;
  }
  state.next_index = write.next_index;
  journal.append(write.bad_lines + fmt::format("B {} {}\n", state.next_index, state.rows));
  ++job.batches_done;
  images_durable.store(state.next_index - job.first_image);
  fault.at("batch", job.batches_done);
  return stop_signal() == 0;  // a stop signal: end after this durable batch
}

/// The batch loop: the loader decodes, the model runs each batch (on CUDA it only queues it), and
/// the writer thread writes the one before meanwhile. Ends after the shard's last image, or throws
/// stopped_error after a stop signal.
void extract_batches(ImageJob& job, Journal& journal, const FaultHook& fault, const ProgressCallback& progress,
                     std::chrono::steady_clock::time_point extract_start) {
  const ExtractionOptions& options = job.options;
  JournalState& state = job.state;
  ManifestTiming& timing = job.manifest.timing;
  OutputIndex output_of;
  for (std::size_t w = 0; w < job.outputs.size(); ++w) output_of[{job.outputs[w].module_name, job.outputs[w].call_index}] = w;
  if (!job.loader) {  // resumed: from the journal's next image
    job.loader_options.first_index = state.next_index;
    job.loader.emplace(*job.dataset, job.transform, job.loader_options);
  }
  DataLoader& loader = *job.loader;
  std::atomic<std::size_t> images_durable{state.next_index - job.first_image};
  // One batch waiting besides the one being written: two batches of activations at most.
  BackgroundWorker<WriteJob> writes(1, [&](WriteJob& write) {
    return write_batch(job, write, output_of, journal, fault, images_durable);
  });
  std::size_t next_index = state.next_index;
  ImageBatch batch;
  for (;;) {
    auto clock = std::chrono::steady_clock::now();
    bool more = false;
    try {
      more = loader.next(batch);
    } catch (const Error& e) {
      const bool skippable = e.kind() == ErrorKind::input || e.kind() == ErrorKind::io;
      if (!skippable || options.skip_bad_images) throw;
      throw with_skip_bad_hint(e);
    }
    timing.input_wait_seconds += seconds_since(clock);
    if (!more) break;
    WriteJob write;
    write.num_images = static_cast<std::size_t>(batch.num_images);
    if (write.num_images > 0) {
      clock = std::chrono::steady_clock::now();
      // On CUDA this only queues the batch (forward_seconds is then the time to queue it; the
      // wait for the GPU shows as write_seconds); on the CPU it runs the forward pass.
      write.pending = job.model().extract_async(batch, job.modules, job.extract_options);
      timing.forward_seconds += seconds_since(clock);
    }
    // The loader cuts fixed windows of batch_size images from its first index (a window whose
    // images all failed is skipped): the next batch starts at the end of this one's window.
    if (!batch.indices.empty()) {
      write.first_index = batch.indices.front();
      write.last_index = batch.indices.back();
      const std::size_t window = (batch.indices.back() - job.loader_options.first_index) / options.batch_size;
      next_index = std::min(job.last_image, job.loader_options.first_index + (window + 1) * options.batch_size);
    }
    write.next_index = next_index;
    write.bad_lines = record_bad(job, loader.bad_images());
    clock = std::chrono::steady_clock::now();
    const bool queued = writes.push(std::move(write));
    timing.write_seconds += seconds_since(clock);
    const int sig = stop_signal();
    if (!queued || sig != 0) {
      writes.stop();
      writes.rethrow();
      throw stopped_error(job, sig != 0 ? sig : stop_signal());
    }
    report_progress(job, progress, images_durable.load(), extract_start);
  }
  {
    const auto clock = std::chrono::steady_clock::now();
    writes.finish();
    timing.write_seconds += seconds_since(clock);
  }
  if (const int sig = stop_signal()) throw stopped_error(job, sig);
  report_progress(job, progress, state.next_index - job.first_image, extract_start);
  state.next_index = job.last_image;
  const auto clock = std::chrono::steady_clock::now();
  journal.append(record_bad(job, loader.bad_images()) + fmt::format("B {} {}\n", state.next_index, state.rows));
  timing.write_seconds += seconds_since(clock);
}

/// Commits every output (temporary file → final name) with the file names of the rows, writes
/// file_names.txt and the complete manifest, and removes the journal. Returns the file names.
std::vector<std::string> commit_outputs(ImageJob& job, Journal& journal, const FaultHook& fault,
                                        std::chrono::steady_clock::time_point start_time,
                                        std::chrono::steady_clock::time_point extract_start) {
  const JournalState& state = job.state;
  Manifest& manifest = job.manifest;
  ManifestTiming& timing = manifest.timing;
  const std::vector<std::string> all_names = job.dataset->file_names(!job.dataset->class_names().empty());
  std::vector<std::string> names;
  for (std::size_t i = job.first_image; i < job.last_image; ++i) {
    if (!state.bad.count(i)) names.push_back(all_names[i]);
  }
  if (names.size() != state.rows) {
    throw Error(ErrorKind::internal,
                fmt::format("{} rows written for {} file names (internal error, please report)", state.rows, names.size()));
  }
  const auto commit_clock = std::chrono::steady_clock::now();
  journal.append("C\n");
  for (std::size_t w = 0; w < job.outputs.size(); ++w) {
    if (!job.writers[w]) continue;
    const fs::path directory = job.out / job.outputs[w].directory;
    if (names.empty()) {
      // A shard without (readable) images is a finished, empty result: no features file, an empty
      // file_names.txt; tv-merge skips it.
      job.writers[w].reset();
      remove_journal_files(directory);
      write_lines(directory / "file_names.txt", {});
    } else {
      job.writers[w]->commit(names);
    }
    journal.append("M " + job.outputs[w].directory + "\n");
    fault.at("commit", job.batches_done);
  }
  write_lines(job.out / "file_names.txt", names);
  timing.write_seconds += seconds_since(commit_clock);
  timing.extract_seconds = seconds_since(extract_start);
  for (std::size_t w = 0; w < job.outputs.size(); ++w) {
    manifest.modules[w].files = features_files(job.out, job.outputs[w].directory);
  }
  manifest.num_images = static_cast<std::int64_t>(names.size());
  for (const auto& [index, bad] : state.bad) manifest.skipped.push_back({bad.first, bad.second});
  manifest.seconds = seconds_since(start_time);
  manifest.status = "complete";
  write_manifest(job.out / "manifest.json", manifest);
  journal.remove();
  return names;
}

/// What the finished job did, for the caller and summary_line.
ExtractionResult image_result(const ImageJob& job, std::size_t num_images, double load_seconds) {
  ExtractionResult result;
  result.output = job.out;
  result.num_images = num_images;
  for (const auto& o : job.outputs) result.modules.push_back(o.directory);
  for (const auto& [index, bad] : job.state.bad) result.skipped.emplace_back(bad.first, bad.second);
  result.seconds = job.manifest.seconds;
  result.load_seconds = load_seconds;
  result.extract_seconds = job.manifest.timing.extract_seconds;
  result.images_before = std::min(job.rows_before, num_images);
  return result;
}

}  // namespace

}  // namespace thingsvision::detail

namespace thingsvision {

ExtractionResult run_extraction(const ExtractionOptions& options, const ProgressCallback& progress,
                                const MessageCallback& message) {
  using namespace detail;
  if (!options.text.empty()) return run_text_extraction(options);
  const auto start_time = std::chrono::steady_clock::now();
  check_image_options(options);
  std::optional<Manifest> previous = check_output_directory(options.output, options.resume, options.overwrite);
  StopSignals stop_signals(options.output);
  // LibTorch starts while the images are listed and checked and the loader decodes the first batches.
  preload_model_runtime(options);
  // The model file's SHA-256 (manifest.json) is computed on another core while the images are
  // checked and the model loads (a ViT-B/16 file: ~0.7 s of hashing).
  std::future<std::string> model_sha256_hash =
      std::async(std::launch::async, [file = options.model_file] { return sha256_file(file); });
  ImageJob job(options, message, std::move(previous));

  // The images and the sidecar are read before the model: a bad folder fails before a long model
  // load, and a fresh run decodes its first batches while the model loads.
  job.threads = options.num_threads > 0 ? options.num_threads : available_cpus();
  const auto load_start = std::chrono::steady_clock::now();
  open_images(job);
  load_job_model(job, model_sha256_hash);
  job.outputs = probe_outputs(job);
  // Model load, graph cut and (with optimize) freezing and its check, all done by the probe.
  const double load_seconds = seconds_since(load_start);
  job.manifest = running_manifest(
      job, optimization_record(job.model(), job.modules, job.extract_options, options.optimize));

  stop_signals.writing_starts();  // a stop signal now ends the run after its next durable batch
  if (job.resuming) {
    if (std::optional<ExtractionResult> done = check_resume(job)) return *done;
  } else {
    prepare_fresh_output(job);
  }
  job.state = job.resuming ? read_journal(job.out / journal_name, job.first_image) : JournalState{};
  if (!job.resuming) job.state.next_index = job.first_image;
  if (options.check_disk_space) {
    check_free_space(job.out, job.outputs, options.format, options.dtype,
                     job.last_image - std::min(job.last_image, job.state.next_index));
  }
  write_manifest(job.out / "manifest.json", job.manifest);
  open_writers(job);

  const FaultHook fault;
  Journal journal(job.out / journal_name);
  ManifestTiming& timing = job.manifest.timing;
  timing.load_seconds = load_seconds;
  timing.runtime_start_seconds = job.runtime_start_seconds;
  timing.runtime_wait_seconds = job.runtime_wait_seconds;
  const auto extract_start = std::chrono::steady_clock::now();
  job.rows_before = job.state.rows;
  job.images_before = job.state.next_index - job.first_image;
  if (!job.state.committing && job.state.next_index < job.last_image) {
    extract_batches(job, journal, fault, progress, extract_start);
  }
  const std::vector<std::string> names = commit_outputs(job, journal, fault, start_time, extract_start);
  return image_result(job, names.size(), load_seconds);
}

}  // namespace thingsvision
