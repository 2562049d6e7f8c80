// tv_extract.cpp — tv-extract: CLI11 declarations → thingsvision::run_extraction(); nothing else.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>

#include "cli_support.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/extraction.hpp"

namespace tv = thingsvision;

int main(int argc, char** argv) {
  const int status = tv_cli::run_tool("tv-extract", [&]() -> int {
    tv::ExtractionOptions o;
    std::string device = "cpu", shard = "0/1";
    std::string class_names, mean, stdev, token;
    int resize = -1, crop = -1;
    bool list = false, show = false, quiet = false, no_space_check = false;

    CLI::App app{"Extract the activations of named modules of a TorchScript vision model for a folder of "
                 "images, as THINGSvision does. See docs/cli.md."};
    app.set_version_flag("--version", tv_cli::version_text("tv-extract"));
    app.footer(tv_cli::exit_code_footer());
    app.add_option("--model", o.model_file, "model file: FILE.pt (TorchScript) or FILE.onnx / FILE.pb / FILE.prototxt "
                   "(OpenCV DNN; plain torch.onnx.export files too, their Identity nodes removed in memory); preprocessing and "
                   "layouts from FILE.json if present")
        ->required();
    app.add_option("--module", o.modules, "module to extract (repeatable): a name, 'all', or a glob like 'layer*'");
    auto* images_option = app.add_option("--images", o.images, "image folder (flat, or one sub-folder per class)");
    app.add_option("--text", o.text, "CLIP text features: encode_text of each line of PROMPTS.txt (no --images)")
        ->excludes(images_option);
    app.add_option("--vocab", o.vocabulary, "CLIP BPE vocabulary for --text (default: bpe_simple_vocab_16e6.txt.gz lookup)");
    app.add_option("--entry-method", o.entry_method,
                   "the model's method that takes the images (--text: the token ids, default encode_text); default: "
                   "the sidecar's, else forward, or encode_image for a CLIP archive");
    app.add_option("--out", o.output, "output directory");
    tv_cli::add_choice(app, "--format", o.format,
                       std::vector<std::pair<std::string, tv::OutputFormat>>{{"npy", tv::OutputFormat::npy},
                           {"hdf5", tv::OutputFormat::hdf5}, {"mat", tv::OutputFormat::mat}, {"txt", tv::OutputFormat::txt}},
                       "output format", "npy");
    tv_cli::add_choice(app, "--dtype", o.dtype,
                       std::vector<std::pair<std::string, tv::DataType>>{{"float32", tv::DataType::float32},
                           {"float16", tv::DataType::float16}, {"float64", tv::DataType::float64}},
                       "stored number type", "float32");
    app.add_flag("--flatten", o.flatten, "store each image's activations as one row");
    tv_cli::add_choice(app, "--mat-version", o.mat_version,
                       std::vector<std::pair<std::string, tv::MatVersion>>{{"7.3", tv::MatVersion::v73}, {"5", tv::MatVersion::v5}},
                       "MAT-file version for --format mat (7.3 is HDF5-based: h5py/MATLAB read it, scipy.io.loadmat "
                       "does not; use 5 for scipy.io.loadmat)", "7.3");
    app.add_flag("--mat-per-image", o.mat_variable_per_image,
                 "--format mat: one variable per image named from its file name (THINGSvision's layout)");
    app.add_option("--batch-size", o.batch_size, "images per forward pass (default 32)")->check(CLI::Range(1, 1 << 20));
    app.add_option("--device", device, "cpu | cuda | cuda:N (default cpu). On CUDA, batches go up from pinned memory on a copy stream while the previous one runs, and the writer thread collects the outputs");
    app.add_option("--threads", o.num_threads,
                   "LibTorch intra-op threads of the forward pass, and OpenBLAS's (default: the CPUs this process "
                   "may use; tv-extract restarts itself with OMP_WAIT_POLICY=PASSIVE if unset, see docs/cli.md)")
        ->check(CLI::Range(1, 4096));
    app.add_option("--decode-threads", o.decode_threads,
                   "image decoding + preprocessing threads (default: automatic, see docs/cli.md)")
        ->check(CLI::Range(1, 64));
    app.add_flag("--optimize,!--no-optimize", o.optimize,
                 "freeze + optimize_for_inference the cut graph, kept only if it agrees (default on)");
    app.add_option("--hdf5-key", o.hdf5_key, "--images is an HDF5 file; extract the uint8 image array KEY");
    app.add_option("--indices", o.indices, "images of the HDF5 array: A:B or i,j,k (default all)");
    app.add_option("--file-names", o.file_list, "text file listing the images (relative to --images) in order");
    app.add_option("--class-names", class_names, "class folders in this order: a,b,c");
    app.add_option("--preset", o.preset, "preprocessing preset: thingsvision | clip | net2brain | brainscore | "
                   "keras_caffe | keras_tf | keras_torch | keras_none (Keras: 224 x 224, keras_tf:299 = 299 x 299)");
    app.add_option("--resize", resize, "resize the shorter side to S (0 = no resize)");
    app.add_option("--crop", crop, "center-crop to C x C (0 = no crop)");
    tv_cli::add_choice(app, "--interpolation", o.interpolation,
                       std::vector<std::pair<std::string, tv::Interpolation>>{{"bilinear", tv::Interpolation::bilinear},
                           {"bicubic", tv::Interpolation::bicubic}, {"tf_bilinear", tv::Interpolation::tf_bilinear}},
                       "resize filter (bilinear, bicubic: PIL's; tf_bilinear: tf.image.resize)", "the preset's");
    tv_cli::add_choice(app, "--backend", o.backend,
                       std::vector<std::pair<std::string, tv::ModelBackendKind>>{
                           {"automatic", tv::ModelBackendKind::automatic}, {"libtorch", tv::ModelBackendKind::libtorch},
                           {"opencv_dnn", tv::ModelBackendKind::opencv_dnn},
                           {"onnxruntime", tv::ModelBackendKind::onnxruntime}},
                       "library that runs the model (automatic: .pt LibTorch, .onnx/.pb/Caffe OpenCV DNN; onnxruntime: "
                       "ONNX files, where the build has ONNX Runtime, Debian 13)", "automatic");
    tv_cli::add_choice(app, "--layout", o.layout,
                       std::vector<std::pair<std::string, tv::OutputLayout>>{{"native", tv::OutputLayout::native},
                           {"nchw", tv::OutputLayout::nchw}},
                       "4-D outputs of OpenCV DNN models (native: NHWC for TensorFlow/Keras)", "native");
    app.add_option("--mean", mean, "normalization mean r,g,b (0-1 scale)");
    app.add_option("--std", stdev, "normalization standard deviation r,g,b");
    app.add_flag("--all-calls", o.all_calls, "every call of a module called several times (OUT/<module>/call_<i>)");
    app.add_option("--n-splits", o.n_splits, "write each module's rows as K files features_01 ...")->check(CLI::Range(1, 100000));
    app.add_option("--shard", shard, "process part I of N (0-based) of the sorted image list; parts are balanced "
                   "by images, an empty part is a finished, empty result that tv-merge skips");
    auto* resume = app.add_flag("--resume", o.resume, "continue an interrupted run in --out");
    app.add_flag("--overwrite", o.overwrite, "replace a finished or unfinished run in --out")->excludes(resume);
    app.add_flag("--skip-bad", o.skip_bad_images, "leave unreadable images out (listed in manifest.json)");
    tv_cli::add_choice(app, "--pool", o.pool,
                       std::vector<std::pair<std::string, tv::Pooling>>{{"none", tv::Pooling::none},
                           {"avg", tv::Pooling::avg}, {"max", tv::Pooling::max}},
                       "global pooling per channel", "none");
    app.add_option("--token", token, "ViT tokens: none | cls | avg | cls+avg (default: the sidecar's)");
    app.add_option("--random-projection", o.random_projection, "project rows onto K dimensions")->check(CLI::Range(1, 1 << 30));
    app.add_option("--seed", o.seed, "seed of --random-projection (default 0)");
    app.add_flag("--no-space-check", no_space_check, "do not refuse when the disk looks too small");
    app.add_flag("--quiet", quiet, "no progress and no summary line");
    auto* modes = app.add_option_group("mode");
    modes->add_flag("--list-modules", list, "print module names, types and output shapes for one image");
    modes->add_flag("--show-model", show, "print the module tree as PyTorch prints the model");
    modes->require_option(0, 1);
    if (const auto exit_code = tv_cli::parse_command_line(app, argc, argv, "tv-extract")) return *exit_code;

    o.class_names = tv_cli::split_list(class_names);
    o.command_line = tv_cli::command_line(argc, argv);
    o.check_disk_space = !no_space_check;
    if (!token.empty()) o.token = tv::parse_token_mode(token);
    if (resize >= 0) o.resize_size = resize;
    if (crop >= 0) o.crop_size = crop;
    if (!mean.empty()) o.mean_rgb = tv_cli::parse_rgb("--mean", mean);
    if (!stdev.empty()) o.std_rgb = tv_cli::parse_rgb("--std", stdev);
    try {
      o.device = tv::Device::parse(device);
    } catch (const tv::Error& e) {
      throw tv::Error(tv::ErrorKind::usage, std::string("--device: ") + e.what());
    }
    std::tie(o.shard_index, o.shard_count) = tv::parse_shard(shard);

    if (show) {
      std::cout << tv::show_model(o) << "\n";
      return 0;
    }
    if (list) {
      for (const auto& m : tv::list_modules(o)) {
        std::string shape = "-";
        if (!m.output_shape.empty()) {
          shape = "(";
          for (std::size_t i = 0; i < m.output_shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(m.output_shape[i]);
          shape += ")";
        }
        std::cout << m.name << "\t" << m.type << "\t" << shape << "\n";
      }
      return 0;
    }
    if (o.text.empty() && o.modules.empty() && tv_cli::is_terminal(0) && tv_cli::is_terminal(2)) {
      std::cerr << tv::show_model(o) << "\nmodule(s) to extract (space-separated; names, 'all' or globs): ";
      std::string line, name;
      std::getline(std::cin, line);
      std::istringstream words(line);
      while (words >> name) o.modules.push_back(name);
    }
    const auto result = tv::run_extraction(
        o, quiet || !tv_cli::is_terminal(2) ? tv::ProgressCallback{} : tv::terminal_progress(2),
        [](const std::string& text) { std::cerr << "tv-extract: " << text << "\n"; });
    if (!quiet) std::cerr << "tv-extract: " << tv::summary_line(result) << "\n";
    return 0;
  });
  // Every output is final (renamed) or cleaned up by now: end without LibTorch's static teardown
  // (thread pools, operator registries), which the OS does at once.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(status);
}
