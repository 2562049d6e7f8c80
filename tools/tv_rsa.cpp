// tv_rsa.cpp — tv-rsa: RDMs from feature files, RDM comparisons (with statistics) and CKA.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include "cli_support.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/feature_reader.hpp"
#include "thingsvision/rdm_plot.hpp"
#include "thingsvision/rsa.hpp"

namespace tv = thingsvision;

namespace {

/// Features as N × (product of the other dimensions) rows, float64.
tv::FeatureMatrixD read_rows(const std::string& file, const std::string& dataset, std::vector<std::string>* names) {
  tv::FeatureArray array = tv::read_features(file, dataset);
  if (names) *names = tv::row_names(file, array);
  return Eigen::Map<const tv::FeatureMatrixD>(array.values.data(), array.num_rows(), array.row_size());
}

/// The RDMs in an npy/mat/hdf5 file: `dataset` if given, else the first of the usual names.
std::vector<tv::RdmMatrix> read_rdms(const std::string& file, const std::string& dataset) {
  const std::vector<std::string> names =
      dataset.empty() ? std::vector<std::string>{"dissimilarities", "rdm", "RDM", "rdms", "features"}
                      : std::vector<std::string>{dataset};
  std::string first_error;
  for (const auto& name : names) {
    tv::FeatureArray array;
    try {
      array = tv::read_features(file, name);
    } catch (const tv::Error& e) {
      if (names.size() == 1) throw;
      if (first_error.empty()) first_error = e.what();
      continue;
    }
    // A MAT file without the name has no RDM under it, even if its variables read as per-image rows.
    if (array.mat_variable_per_image) {
      if (names.size() == 1) {
        throw tv::Error(tv::ErrorKind::input, "'" + file + "': no variable '" + name + "' (--dataset)");
      }
      if (first_error.empty()) first_error = "'" + file + "': no variable '" + name + "'";
      continue;
    }
    return tv::rdms_from_array(array.shape, array.values, file);
  }
  throw tv::Error(tv::ErrorKind::input, "'" + file + "': no RDM found (tried dissimilarities, rdm, RDM, rdms, "
                                        "features; choose one with --dataset): " + first_error);
}

std::int64_t nan_pairs(const tv::RdmMatrix& rdm) {
  const Eigen::VectorXd v = tv::strict_upper_triangle(rdm);
  return static_cast<std::int64_t>(v.array().isNaN().count());
}

/// The pairs correlate_rdms uses: those of the upper triangles where neither RDM is NaN.
std::int64_t used_pairs(const tv::RdmMatrix& a, const tv::RdmMatrix& b) {
  const Eigen::VectorXd va = tv::strict_upper_triangle(a), vb = tv::strict_upper_triangle(b);
  if (va.size() != vb.size()) return 0;
  return static_cast<std::int64_t>((!va.array().isNaN() && !vb.array().isNaN()).count());
}

/// The shortest of %.15g/%.16g/%.17g that reads back as `v`.
std::string number(double v) {
  char text[32];
  for (int precision = 15; precision <= 17; ++precision) {
    std::snprintf(text, sizeof text, "%.*g", precision, v);
    if (std::strtod(text, nullptr) == v) break;
  }
  return text;
}

/// `v` with `format` ("%.4f" for correlations, "%.2g" for p-values), for the labelled lines.
std::string rounded(const char* format, double v) {
  char text[32];
  std::snprintf(text, sizeof text, format, v);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  return tv_cli::run_tool("tv-rsa", [&]() -> int {
    CLI::App app{"RSA and CKA on feature files written by tv-extract (npy, hdf5, mat). See docs/rsa.md."};
    app.set_version_flag("--version", tv_cli::version_text("tv-rsa"));
    app.footer(tv_cli::exit_code_footer());
    app.require_subcommand(1);
    std::string dataset, out, plot, title, rdm_a, rdm_b, x_file, y_file, sigma = "1.0";
    tv::RdmMethod method = tv::RdmMethod::correlation;
    tv::RdmCorrelation correlation = tv::RdmCorrelation::pearson;
    tv::CkaKernel kernel = tv::CkaKernel::linear;
    tv::RdmPlotOptions plot_options;
    bool center = false, normalize = false, no_rank = false, no_labels = false, unbiased = false;
    int permutations = 0, bootstrap = 0, threads = 0;
    double level = 0.95;
    std::uint64_t seed = 0;

    CLI::App* rdm = app.add_subcommand("rdm", "compute an RDM from a feature file");
    rdm->add_option("features", x_file, "feature file (rows = conditions)")->required()->check(CLI::ExistingFile);
    tv_cli::add_choice(*rdm, "--method", method,
                       std::vector<std::pair<std::string, tv::RdmMethod>>{{"correlation", tv::RdmMethod::correlation},
                           {"cosine", tv::RdmMethod::cosine}, {"euclidean", tv::RdmMethod::euclidean},
                           {"gaussian", tv::RdmMethod::gaussian}, {"sqeuclidean", tv::RdmMethod::sqeuclidean}},
                       "dissimilarity", "correlation");
    rdm->add_option("--out", out, "RDM file: .npy (square float64) or .h5/.hdf5 (rsatoolbox layout)")->required();
    rdm->add_option("--plot", plot, "also draw the RDM as .png/.jpg (checked before anything is written)");
    rdm->add_option("--colormap", plot_options.colormap, "OpenCV colour map of --plot (default cividis)");
    rdm->add_flag("--no-rank", no_rank, "plot values instead of the ranks of the off-diagonal pairs");
    rdm->add_option("--title", title, "title of --plot (default: 'FEATURES: METHOD RDM')");
    rdm->add_flag("--no-labels", no_labels,
                  "no image names beside the rows and columns of --plot (default: the feature file's names, thinned)");
    rdm->add_flag("--center", center, "subtract each feature's mean first (center_features)");
    rdm->add_flag("--normalize", normalize, "scale each row to unit L2 norm first (normalize_features)");

    CLI::App* compare = app.add_subcommand("compare", "correlate RDMs (each file may hold several: a table)");
    compare->add_option("rdm_a", rdm_a, "RDM file(s) A: npy, mat or hdf5; square or vector form")->required()->check(CLI::ExistingFile);
    compare->add_option("rdm_b", rdm_b, "RDM file(s) B")->required()->check(CLI::ExistingFile);
    tv_cli::add_choice(*compare, "--method", correlation,
                       std::vector<std::pair<std::string, tv::RdmCorrelation>>{{"pearson", tv::RdmCorrelation::pearson},
                           {"spearman", tv::RdmCorrelation::spearman}, {"kendall", tv::RdmCorrelation::kendall},
                           {"cosine", tv::RdmCorrelation::cosine}},
                       "RDM correlation", "pearson");
    compare->add_option("--permutations", permutations, "permutation test with N permutations (default none)")
        ->check(CLI::Range(1, 100000000));
    compare->add_option("--bootstrap", bootstrap, "bootstrap CI over conditions with N samples (default none)")
        ->check(CLI::Range(1, 100000000));
    compare->add_option("--level", level, "bootstrap CI level (default 0.95)")->check(CLI::Range(0.5, 0.9999));
    compare->add_option("--seed", seed, "random seed of --permutations / --bootstrap (default 0)");

    CLI::App* cka = app.add_subcommand("cka", "centered kernel alignment of two feature files");
    cka->add_option("x", x_file, "feature file X")->required()->check(CLI::ExistingFile);
    cka->add_option("y", y_file, "feature file Y (same rows)")->required()->check(CLI::ExistingFile);
    tv_cli::add_choice(*cka, "--kernel", kernel,
                       std::vector<std::pair<std::string, tv::CkaKernel>>{{"linear", tv::CkaKernel::linear},
                           {"rbf", tv::CkaKernel::rbf}},
                       "kernel", "linear");
    cka->add_option("--sigma", sigma, "RBF bandwidth: a number or 'median' (THINGSvision's median heuristic)");
    cka->add_flag("--unbiased", unbiased, "unbiased HSIC (Székely–Rizzo), needs N >= 4");
    for (CLI::App* sub : {rdm, compare, cka}) {
      sub->add_option("--dataset", dataset, "HDF5 dataset / MAT variable to read");
      sub->add_option("--threads", threads, "threads (0 = all)")->check(CLI::NonNegativeNumber);
    }
    if (const auto exit_code = tv_cli::parse_command_line(app, argc, argv, "tv-rsa")) return *exit_code;

    if (rdm->parsed()) {
      plot_options.rank_transform = !no_rank;
      if (!plot.empty()) tv::check_plot_options(plot, plot_options);  // before anything is written
      std::vector<std::string> names;
      tv::FeatureMatrixD x = read_rows(x_file, dataset.empty() ? "features" : dataset, &names);
      if (center) tv::center_features(x);
      if (normalize) tv::normalize_features(x);
      const tv::RdmMatrix result = tv::compute_rdm(x, method, threads);
      const std::string ext = std::filesystem::path(out).extension().string();
      if (ext == ".npy") tv::write_rdm_npy(out, result);
      else if (ext == ".h5" || ext == ".hdf5") {
        if (names.size() != static_cast<std::size_t>(result.rows())) names.clear();
        tv::write_rdms_hdf5(out, {result}, tv::to_string(method), names);
      } else {
        throw tv::Error(tv::ErrorKind::usage, "--out '" + out + "': use .npy, .h5 or .hdf5");
      }
      if (!plot.empty()) {
        if (!no_labels && names.size() == static_cast<std::size_t>(result.rows())) plot_options.labels = names;
        plot_options.title = title.empty() ? std::filesystem::path(x_file).filename().string() + ": " +
                                                 tv::to_string(method) + " RDM" + (no_rank ? "" : " (ranks)")
                                           : title;
        tv::plot_rdm(plot, result, plot_options);
      }
      std::cout << "tv-rsa: " << tv::to_string(method) << " RDM of " << result.rows() << " conditions → " << out << "\n";
      return 0;
    }
    if (compare->parsed()) {
      const auto as = read_rdms(rdm_a, dataset), bs = read_rdms(rdm_b, dataset);
      for (const auto& [label, file, list] : {std::tuple{"A", rdm_a, &as}, std::tuple{"B", rdm_b, &bs}}) {
        std::int64_t nans = 0;
        for (const auto& r : *list) nans += nan_pairs(r);
        std::cout << label << ": " << file << ": " << list->size() << " RDM(s) of " << list->front().rows()
                  << " conditions, " << nans << " NaN pair(s) dropped\n";
      }
      if (as.size() == 1 && bs.size() == 1) {
        const double r = tv::correlate_rdms(as[0], bs[0], correlation);
        std::cout << tv::to_string(correlation) << " r = " << rounded("%.4f", r) << " over "
                  << used_pairs(as[0], bs[0]) << " pairs\n";
        if (permutations > 0) {
          const auto p = tv::permutation_test(as[0], bs[0], correlation, permutations, seed);
          std::cout << "permutation p = " << rounded("%.2g", p.p_value) << " (" << permutations
                    << " permutations, seed " << seed << ")\n";
        }
        if (bootstrap > 0) {
          const auto b = tv::bootstrap_ci(as[0], bs[0], correlation, bootstrap, level, seed);
          std::cout << "bootstrap " << level * 100 << "% CI = [" << rounded("%.4f", b.lower) << ", "
                    << rounded("%.4f", b.upper) << "] (" << b.samples.size() << " valid samples of " << bootstrap
                    << ", seed " << seed << ")\n";
        }
        std::cout << number(r) << "\n";  // last line: r with full precision, for scripts
        return 0;
      }
      if (permutations > 0 || bootstrap > 0) {
        throw tv::Error(tv::ErrorKind::usage, "--permutations/--bootstrap need one RDM in each file");
      }
      std::cout << tv::to_string(correlation) << " r of A's RDMs (rows) with B's (columns):\n";
      std::cout << "A\\B";
      for (std::size_t j = 0; j < bs.size(); ++j) std::cout << "\t" << j;
      std::cout << "\n";
      for (std::size_t i = 0; i < as.size(); ++i) {
        std::cout << i;
        for (const auto& b : bs) std::cout << "\t" << number(tv::correlate_rdms(as[i], b, correlation));
        std::cout << "\n";
      }
      return 0;
    }
    tv::CkaOptions options;
    options.kernel = kernel;
    options.unbiased = unbiased;
    options.num_threads = threads;
    if (sigma == "median") {
      options.median_sigma = true;
    } else {
      try {
        std::size_t used = 0;
        options.sigma = std::stod(sigma, &used);
        if (used != sigma.size()) throw std::invalid_argument(sigma);
      } catch (const std::exception&) {
        throw tv::Error(tv::ErrorKind::usage, "--sigma '" + sigma + "': expected a positive number or 'median'");
      }
    }
    const std::string name = dataset.empty() ? "features" : dataset;
    std::cout << number(tv::cka(read_rows(x_file, name, nullptr), read_rows(y_file, name, nullptr), options)) << "\n";
    return 0;
  });
}
