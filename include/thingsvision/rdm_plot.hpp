// rdm_plot.hpp — plot_rdm: an RDM as a colour-mapped PNG/JPEG heat map with a colour bar (OpenCV).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "thingsvision/rsa.hpp"

namespace thingsvision {

/// How plot_rdm draws; the defaults follow THINGSvision's plot_rdm (10×4 in at 200 dpi, cividis,
/// rank-transformed values).
struct RdmPlotOptions {
  /// An OpenCV colour map name: cividis, viridis, magma, inferno, plasma, jet, hot, bone, gray, ...
  std::string colormap = "cividis";
  /// Show the ranks of the off-diagonal pairs (scipy.stats.rankdata of the upper triangle, average
  /// ties; 1 … N(N−1)/2) instead of the values; the diagonal is not ranked and takes the lowest colour.
  bool rank_transform = true;
  /// Condition order (a permutation of 0..N−1, e.g. from a clustering); empty = as given.
  std::vector<std::int64_t> order;
  bool colour_bar = true;
  /// Image size in pixels (THINGSvision: figsize (10, 4) at dpi 200).
  int width = 2000;
  int height = 800;
  /// Recorded in the PNG pHYs chunk / JPEG JFIF density.
  int dpi = 200;
  /// Condition names (one per condition, in the RDM's order) beside the rows and below the columns,
  /// every k-th one when they would overlap; empty = none.
  std::vector<std::string> labels;
  /// A line above the map (e.g. the file and the method); empty = none.
  std::string title;
};

/// Throws what plot_rdm throws for `path` and `options` alone (extension, colour map, size, dpi), so a
/// caller can check them before writing anything else.
void check_plot_options(const std::filesystem::path& path, const RdmPlotOptions& options);

/// Writes `rdm` as a heat map to `path` (.png or .jpg/.jpeg, by extension): a square map centred in
/// the image, NaN in grey, a colour bar labelled with the value (or rank) range at its right.
/// Written to a temporary name, then renamed. Throws Error(usage) for a bad colour map, order,
/// extension or size, Error(io) naming the path if it cannot be written.
void plot_rdm(const std::filesystem::path& path, const Eigen::Ref<const RdmMatrix>& rdm,
              const RdmPlotOptions& options = {});

/// The OpenCV colour map names plot_rdm accepts.
std::vector<std::string> colormap_names();

}  // namespace thingsvision
