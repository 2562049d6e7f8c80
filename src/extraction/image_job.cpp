// image_job.cpp — run_extraction: the tv-extract job over images (dataset → loader → model → writers;
// resume, shards, skip-bad, manifest). The text job (--text) is text_job.cpp; the other concerns
// have a file each in this folder.
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

}  // namespace

}  // namespace thingsvision::detail

namespace thingsvision {

namespace fs = std::filesystem;

ExtractionResult run_extraction(const ExtractionOptions& options, const ProgressCallback& progress,
                                const MessageCallback& message) {
  const auto start_time = std::chrono::steady_clock::now();
  const auto elapsed = [&]() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  };
  using namespace detail;
  const auto say = [&](const std::string& text) {
    if (message) message(text);
  };

  // --- arguments --------------------------------------------------------------------------------
  if (!options.text.empty()) return run_text_extraction(options);
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

  const fs::path& out = options.output;
  std::optional<Manifest> previous = check_output_directory(out, options.resume, options.overwrite);
  const bool resuming = options.resume && previous.has_value();
  StopSignals stop_signals(out);
  // LibTorch starts (~0.4 s, one core) on a thread while the images are listed and checked and the
  // loader decodes the first batches; load_model waits for what is left of it.
  if (resolve_backend(options.model_file, options.backend) == ModelBackendKind::libtorch) preload_torch_runtime();
  // The model file's SHA-256 (manifest.json) is computed on another core while the images are
  // checked and the model loads (a ViT-B/16 file: ~0.7 s of hashing).
  std::future<std::string> model_sha256_hash =
      std::async(std::launch::async, [file = options.model_file] { return sha256_file(file); });

  // --- preprocessing and dataset, then the model ---------------------------------------------------
  // The image folder (or HDF5 store) and the sidecar are read before the model: a bad folder fails
  // before a long model load, and a fresh run starts decoding its first batches on the loader's
  // threads while the model loads (load_model is mostly one thread).
  const int threads = options.num_threads > 0 ? options.num_threads : available_cpus();
  const auto load_start = std::chrono::steady_clock::now();
  DatasetOptions dataset_options;
  dataset_options.file_list = options.file_list;
  dataset_options.class_names = options.class_names;
  const ImageDataset dataset =
      options.hdf5_key.empty()
          ? ImageDataset::open(options.images, dataset_options)
          : ImageDataset::open_hdf5(options.images, options.hdf5_key,
                                    options.indices.empty()
                                        ? std::vector<std::size_t>{}
                                        : parse_index_selection(options.indices, ImageDataset::hdf5_image_count(
                                                                                     options.images, options.hdf5_key)));
  const auto [first_image, last_image] =
      shard_range(dataset.size(), options.shard_index, options.shard_count);
  if (!options.skip_bad_images && !resuming && !dataset.is_hdf5_store()) {
    check_image_headers(dataset, first_image, last_image);  // before anything is written
  }
  std::string transform_source;
  Transform transform = resolve_transform(options, &transform_source);
  DataLoaderOptions loader_options;
  loader_options.batch_size = options.batch_size;
  loader_options.num_workers =
      options.decode_threads > 0 ? options.decode_threads : default_decode_threads(threads, options.device);
  loader_options.first_index = first_image;
  loader_options.last_index = last_image;
  loader_options.skip_bad_images = options.skip_bad_images;
  // A resumed run starts where its journal ends (read below): its loader starts there, later.
  std::optional<DataLoader> loader;
  if (!resuming && first_image < last_image) loader.emplace(dataset, transform, loader_options);

  const double runtime_wait_before = torch_runtime_timing().wait_seconds;
  LoadedModel loaded = load_model(options, threads);
  const TorchRuntimeTiming runtime_timing = torch_runtime_timing();
  Model& model = loaded.model;
  const std::string model_label = options.model_file.filename().string();
  // A CLIP archive without a sidecar or --preset is preprocessed as clip.py does at its own
  // input_resolution, known only now: the loader (decoding since before the load) starts again.
  if (model.traits().clip_archive && !loaded.has_sidecar && options.preset.empty()) {
    const bool restart = loader.has_value();
    loader.reset();
    transform = resolve_transform(options, &transform_source, &model.traits());
    if (restart) loader.emplace(dataset, transform, loader_options);
  }
  if (model.traits().clip_archive && !loaded.has_sidecar && options.entry_method.empty()) {
    say(fmt::format("'{}' is a CLIP archive without a sidecar (encode_image, encode_text, forward(image, text)): "
                    "extracting from encode_image, preprocessing: {} (--entry-method and --preset override)",
                    model_label, transform_source));
  }
  const std::vector<std::string> modules = select_modules(options.modules, model.module_names(), model_label);
  const std::string model_sha256 = model_sha256_hash.get();
  if (loaded.has_sidecar && !loaded.sidecar.sha256.empty() && loaded.sidecar.sha256 != model_sha256) {
    say(fmt::format("warning: sidecar '{}' was written for another file (SHA-256 {}…, model has {}…)",
                    sidecar_path(options.model_file).string(), loaded.sidecar.sha256.substr(0, 12),
                    model_sha256.substr(0, 12)));
  }
  RowOptions row_options;
  row_options.token = options.token ? *options.token
                      : loaded.sidecar.token_mode.empty() ? TokenMode::none
                                                          : parse_token_mode(loaded.sidecar.token_mode);
  row_options.pool = options.pool;
  row_options.flatten = options.flatten;
  row_options.projection = options.random_projection;
  row_options.seed = options.seed;
  ExtractOptions extract_options;
  extract_options.calls = options.all_calls ? ModuleCalls::all : ModuleCalls::last;
  // Pooling averages or maxes each channel over dims 2..: take 4-D outputs as N x C x H x W then,
  // whatever the native layout (the pooled N x C rows are the same in both layouts).
  extract_options.layout = options.pool != Pooling::none ? OutputLayout::nchw : options.layout;

  // --- probe one image: output shapes and the disk-space estimate --------------------------------
  std::vector<Output> outputs;
  {
    std::vector<Activations> probe;
    std::string first_error;
    for (std::size_t i = first_image < last_image ? first_image : 0; i < dataset.size(); ++i) {
      try {
        const TransformedImage image = apply_transform(transform, dataset.load_image(i));
        probe = model.extract(one_image_batch(image, i), modules, extract_options);
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
    for (auto& a : probe) {
      if (a.shape.size() < 2 || a.shape[0] != 1) {
        throw Error(ErrorKind::model, fmt::format("module '{}' of {} gives an output of shape {} for one image; "
                                                  "rows need a batch dimension first", a.module_name, model_label,
                                                  shape_text(a.shape)));
      }
      Output o;
      o.module_name = a.module_name;
      o.call_index = options.all_calls ? a.call_index : -1;
      o.directory = escape_module_name(a.module_name);
      if (options.all_calls) o.directory += "/call_" + std::to_string(a.call_index);
      o.activation_shape.assign(a.shape.begin() + 1, a.shape.end());
      shape_rows(a, row_options);
      o.row_shape.assign(a.shape.begin() + 1, a.shape.end());
      outputs.push_back(std::move(o));
    }
  }
  // Model load, graph cut and (with optimize) freezing and its check, all done by the probe.
  const double load_seconds = seconds_since(load_start);
  const ManifestOptimization optimization = optimization_record(model, modules, extract_options, options.optimize);

  // --- manifest (running) ------------------------------------------------------------------------
  Manifest manifest = job_manifest(options, loaded, model_sha256, row_options, threads);
  manifest.entry_method = model.traits().entry_method;
  manifest.images_root = options.images.string();
  manifest.file_list = options.file_list.string();
  manifest.hdf5_key = options.hdf5_key;
  manifest.indices = options.indices;
  manifest.class_names = dataset.class_names();
  manifest.module_requests = options.modules;
  for (const auto& o : outputs) {
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
  manifest.first_image = static_cast<std::int64_t>(first_image);
  manifest.last_image = static_cast<std::int64_t>(last_image);
  manifest.dataset_images = static_cast<std::int64_t>(dataset.size());
  describe_transform(transform, manifest);
  manifest.preprocessing_source = transform_source;
  manifest.layout = options.layout == OutputLayout::nchw ? "nchw" : "native";
  if (!loaded.sidecar.input_layout.empty()) manifest.input_layout = loaded.sidecar.input_layout;
  if (!loaded.sidecar.native_layout.empty()) manifest.native_layout = loaded.sidecar.native_layout;
  manifest.optimization = {optimization};

  stop_signals.writing_starts();  // a stop signal now ends the run after its next durable batch
  if (resuming) {
    const bool complete = previous->status == "complete";
    const std::string difference = job_difference(*previous, manifest, false);
    if (!difference.empty()) {
      throw Error(ErrorKind::usage,
                  fmt::format("--resume: the {} run in '{}' differs in {}; pass the same options, "
                              "or --overwrite to start again", complete ? "finished" : "unfinished",
                              out.string(), difference));
    }
    if (complete) {
      ExtractionResult done;
      done.output = out;
      done.num_images = static_cast<std::size_t>(previous->num_images);
      for (const auto& m : previous->modules) done.modules.push_back(m.directory);
      for (const auto& s : previous->skipped) done.skipped.emplace_back(s.path, s.reason);
      done.already_complete = true;
      return done;
    }
  } else {
    if (previous) {
      std::vector<std::string> old_directories;
      for (const auto& m : previous->modules) old_directories.push_back(m.directory);
      remove_previous_outputs(out, old_directories);
    }
    std::error_code ec;
    fs::create_directories(out, ec);
    if (ec || !fs::is_directory(out)) {
      throw Error(ErrorKind::io, fmt::format("--out: cannot create '{}': {}", out.string(), ec.message()));
    }
  }

  JournalState state = resuming ? read_journal(out / journal_name, first_image) : JournalState{};
  if (!resuming) state.next_index = first_image;

  // --- disk space --------------------------------------------------------------------------------
  if (options.check_disk_space) {
    check_free_space(out, outputs, options.format, options.dtype, last_image - std::min(last_image, state.next_index));
  }
  write_manifest(out / "manifest.json", manifest);

  // --- writers -----------------------------------------------------------------------------------
  WriterOptions writer_options;
  writer_options.dtype = options.dtype;
  writer_options.n_splits = options.n_splits;
  writer_options.mat_version = options.mat_version;
  writer_options.mat_variable_per_image = options.mat_variable_per_image;
  writer_options.resume = resuming;
  std::vector<std::unique_ptr<FeatureWriter>> writers(outputs.size());
  std::vector<std::size_t> skip_rows(outputs.size(), 0);
  for (std::size_t w = 0; w < outputs.size(); ++w) {
    if (state.committed.count(outputs[w].directory)) continue;
    if (state.committing && committed_without_record(out / outputs[w].directory)) continue;
    WriterOptions wo = writer_options;
    wo.attributes = {{"model", model_label},
                     {"model_sha256", model_sha256},
                     {"module", outputs[w].module_name},
                     {"thingsvision_cpp_version", version_string()},
                     {"torch_version", torch_version_string()},
                     {"preprocessing", transform.describe()}};
    writers[w] = open_feature_writer(options.format, out / outputs[w].directory, outputs[w].row_shape, wo);
    const std::size_t have = writers[w]->rows_written();
    if (have < state.rows) {
      throw Error(ErrorKind::input,
                  fmt::format("--resume: '{}' holds {} rows but the run journal records {}; pass --overwrite "
                              "to start again", (out / outputs[w].directory).string(), have, state.rows));
    }
    skip_rows[w] = have - state.rows;
  }

  // --- the loop ----------------------------------------------------------------------------------
  const FaultHook fault;
  Journal journal(out / journal_name);
  std::map<std::pair<std::string, int>, std::size_t> output_of;
  for (std::size_t w = 0; w < outputs.size(); ++w) output_of[{outputs[w].module_name, outputs[w].call_index}] = w;
  const std::size_t images_total = last_image - first_image;
  std::size_t bad_recorded = 0;
  long batches_done = 0;
  const auto record_bad = [&](const std::vector<BadImage>& bad) {
    std::string text;
    for (; bad_recorded < bad.size(); ++bad_recorded) {
      const BadImage& b = bad[bad_recorded];
      if (state.bad.count(b.index)) continue;
      say(fmt::format("skipped '{}': {}", b.relative_path, b.reason));
      state.bad[b.index] = {b.relative_path, b.reason};
      std::string reason = b.reason;
      std::replace(reason.begin(), reason.end(), '\n', ' ');
      text += fmt::format("S {}\t{}\t{}\n", b.index, b.relative_path, reason);
    }
    return text;
  };

  ManifestTiming& timing = manifest.timing;
  timing.load_seconds = load_seconds;
  timing.runtime_start_seconds = runtime_timing.start_seconds;
  timing.runtime_wait_seconds = runtime_timing.wait_seconds - runtime_wait_before;
  const auto extract_start = std::chrono::steady_clock::now();
  const std::size_t rows_before = state.rows, images_before = state.next_index - first_image;
  if (!state.committing && state.next_index < last_image) {
    if (!loader) {  // resumed: from the journal's next image
      loader_options.first_index = state.next_index;
      loader.emplace(dataset, transform, loader_options);
    }
    std::atomic<std::size_t> images_durable{state.next_index - first_image};
    const auto stopped_error = [&](int sig) {
      return Error(ErrorKind::io,
                   fmt::format("stopped by {} after {} of {} images; the finished batches are saved in '{}': "
                               "run the same command with --resume to continue",
                               sig == SIGTERM ? "SIGTERM" : "SIGINT", state.next_index - first_image,
                               images_total, out.string()));
    };
    // The writer thread: shapes the rows, appends them to every output, then records the batch
    // in the journal (so a batch is in the journal only once all its rows are written).
    const auto write_batch = [&](WriteJob& job) {
      if (job.pending.valid()) job.acts = job.pending.get();
      const std::size_t n = job.num_images;
      if (n > 0) {
        std::vector<bool> written(outputs.size(), false);
        for (auto& a : job.acts) {
          const auto it = output_of.find({a.module_name, options.all_calls ? a.call_index : -1});
          if (it == output_of.end()) {
            throw Error(ErrorKind::model, fmt::format("module '{}' gave a call {} that the first image did not; "
                                                      "its call count varies between inputs", a.module_name, a.call_index));
          }
          const std::size_t w = it->second;
          if (a.shape.empty()) throw Error(ErrorKind::model, fmt::format("module '{}' gave an empty shape", a.module_name));
          shape_rows(a, row_options);
          const std::vector<std::int64_t> row_shape(a.shape.begin() + 1, a.shape.end());
          if (a.num_rows() != static_cast<std::int64_t>(n) || row_shape != outputs[w].row_shape) {
            throw Error(ErrorKind::model,
                        fmt::format("module '{}' gave rows of shape {} for images {}..{}, but {} for the first image",
                                    a.module_name, shape_text(row_shape), job.first_index, job.last_index,
                                    shape_text(outputs[w].row_shape)));
          }
          written[w] = true;
          if (!writers[w]) continue;
          const std::size_t skip = std::min(skip_rows[w], n);
          skip_rows[w] -= skip;
          if (skip < n) writers[w]->append_rows(a.values.data() + skip * writers[w]->row_size(), n - skip);
          fault.at("module", batches_done);
        }
        if (std::find(written.begin(), written.end(), false) != written.end()) {
          throw Error(ErrorKind::model, "a module was not called for this batch; its call count varies between inputs");
        }
        state.rows += n;
      }
      state.next_index = job.next_index;
      journal.append(job.bad_lines + fmt::format("B {} {}\n", state.next_index, state.rows));
      ++batches_done;
      images_durable.store(state.next_index - first_image);
      fault.at("batch", batches_done);
      return stop_signal() == 0;  // a stop signal: end after this durable batch
    };
    // One batch waiting besides the one being written: two batches of activations at most.
    BackgroundWorker<WriteJob> writes(1, write_batch);
    std::size_t next_index = state.next_index;
    ImageBatch batch;
    for (;;) {
      auto clock = std::chrono::steady_clock::now();
      bool more = false;
      try {
        more = loader->next(batch);
      } catch (const Error& e) {
        const bool skippable = e.kind() == ErrorKind::input || e.kind() == ErrorKind::io;
        if (!skippable || options.skip_bad_images) throw;
        throw with_skip_bad_hint(e);
      }
      timing.input_wait_seconds += seconds_since(clock);
      if (!more) break;
      WriteJob job;
      job.num_images = static_cast<std::size_t>(batch.num_images);
      if (job.num_images > 0) {
        clock = std::chrono::steady_clock::now();
        // On CUDA this only queues the batch (forward_seconds is then the time to queue it; the
        // wait for the GPU shows as write_seconds); on the CPU it runs the forward pass.
        job.pending = model.extract_async(batch, modules, extract_options);
        timing.forward_seconds += seconds_since(clock);
      }
      // The loader cuts fixed windows of batch_size images from its first index (a window whose
      // images all failed is skipped): the next batch starts at the end of this one's window.
      if (!batch.indices.empty()) {
        job.first_index = batch.indices.front();
        job.last_index = batch.indices.back();
        const std::size_t window = (batch.indices.back() - loader_options.first_index) / options.batch_size;
        next_index = std::min(last_image, loader_options.first_index + (window + 1) * options.batch_size);
      }
      job.next_index = next_index;
      job.bad_lines = record_bad(loader->bad_images());
      clock = std::chrono::steady_clock::now();
      const bool queued = writes.push(std::move(job));
      timing.write_seconds += seconds_since(clock);
      const int sig = stop_signal();
      if (!queued || sig != 0) {
        writes.stop();
        writes.rethrow();
        throw stopped_error(sig != 0 ? sig : stop_signal());
      }
      if (progress) {
        ExtractionProgress p;
        p.images_done = images_durable.load();
        p.images_total = images_total;
        p.images_before = images_before;
        p.seconds = seconds_since(extract_start);
        progress(p);
      }
    }
    {
      const auto clock = std::chrono::steady_clock::now();
      writes.finish();
      timing.write_seconds += seconds_since(clock);
    }
    if (const int sig = stop_signal()) throw stopped_error(sig);
    if (progress) {
      ExtractionProgress p;
      p.images_done = state.next_index - first_image;
      p.images_total = images_total;
      p.images_before = images_before;
      p.seconds = seconds_since(extract_start);
      progress(p);
    }
    state.next_index = last_image;
    const auto clock = std::chrono::steady_clock::now();
    journal.append(record_bad(loader->bad_images()) + fmt::format("B {} {}\n", state.next_index, state.rows));
    timing.write_seconds += seconds_since(clock);
  }

  // --- commit ------------------------------------------------------------------------------------
  const std::vector<std::string> all_names = dataset.file_names(!dataset.class_names().empty());
  std::vector<std::string> names;
  for (std::size_t i = first_image; i < last_image; ++i) {
    if (!state.bad.count(i)) names.push_back(all_names[i]);
  }
  if (names.size() != state.rows) {
    throw Error(ErrorKind::internal,
                fmt::format("{} rows written for {} file names (internal error, please report)", state.rows, names.size()));
  }
  const auto commit_clock = std::chrono::steady_clock::now();
  journal.append("C\n");
  for (std::size_t w = 0; w < outputs.size(); ++w) {
    if (!writers[w]) continue;
    if (names.empty()) {
      // A shard without (readable) images is a finished, empty result: no features file, an empty
      // file_names.txt; tv-merge skips it.
      writers[w].reset();
      remove_journal_files(out / outputs[w].directory);
      write_lines(out / outputs[w].directory / "file_names.txt", {});
    } else {
      writers[w]->commit(names);
    }
    journal.append("M " + outputs[w].directory + "\n");
    fault.at("commit", batches_done);
  }
  write_lines(out / "file_names.txt", names);
  timing.write_seconds += seconds_since(commit_clock);
  timing.extract_seconds = seconds_since(extract_start);
  for (std::size_t w = 0; w < outputs.size(); ++w) manifest.modules[w].files = features_files(out, outputs[w].directory);
  manifest.num_images = static_cast<std::int64_t>(names.size());
  for (const auto& [index, bad] : state.bad) manifest.skipped.push_back({bad.first, bad.second});
  manifest.seconds = elapsed();
  manifest.status = "complete";
  write_manifest(out / "manifest.json", manifest);
  journal.remove();

  ExtractionResult result;
  result.output = out;
  result.num_images = names.size();
  for (const auto& o : outputs) result.modules.push_back(o.directory);
  for (const auto& [index, bad] : state.bad) result.skipped.emplace_back(bad.first, bad.second);
  result.seconds = manifest.seconds;
  result.load_seconds = load_seconds;
  result.extract_seconds = timing.extract_seconds;
  result.images_before = std::min(rows_before, names.size());
  return result;
}


}  // namespace thingsvision
