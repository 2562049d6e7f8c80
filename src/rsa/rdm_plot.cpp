// rdm_plot.cpp — colour-mapped RDM heat maps via OpenCV, with a colour bar and a recorded DPI.
#include "thingsvision/rdm_plot.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <system_error>
#include <utility>

#include "core/atomic_file.hpp"
#include "thingsvision/error.hpp"

namespace thingsvision {

namespace {

const std::array<std::pair<const char*, int>, 22> kColormaps = {{
    {"autumn", cv::COLORMAP_AUTUMN},     {"bone", cv::COLORMAP_BONE},
    {"jet", cv::COLORMAP_JET},           {"winter", cv::COLORMAP_WINTER},
    {"rainbow", cv::COLORMAP_RAINBOW},   {"ocean", cv::COLORMAP_OCEAN},
    {"summer", cv::COLORMAP_SUMMER},     {"spring", cv::COLORMAP_SPRING},
    {"cool", cv::COLORMAP_COOL},         {"hsv", cv::COLORMAP_HSV},
    {"pink", cv::COLORMAP_PINK},         {"hot", cv::COLORMAP_HOT},
    {"parula", cv::COLORMAP_PARULA},     {"magma", cv::COLORMAP_MAGMA},
    {"inferno", cv::COLORMAP_INFERNO},   {"plasma", cv::COLORMAP_PLASMA},
    {"viridis", cv::COLORMAP_VIRIDIS},   {"cividis", cv::COLORMAP_CIVIDIS},
    {"twilight", cv::COLORMAP_TWILIGHT}, {"twilight_shifted", cv::COLORMAP_TWILIGHT_SHIFTED},
    {"turbo", cv::COLORMAP_TURBO},       {"deepgreen", cv::COLORMAP_DEEPGREEN},
}};
constexpr int kGray = -1;  // "gray": no colour map

int colormap_code(const std::string& name) {
  if (name == "gray" || name == "grey") return kGray;
  for (const auto& [n, code] : kColormaps)
    if (name == n) return code;
  std::vector<std::string> names = colormap_names();
  throw Error(ErrorKind::usage, fmt::format("unknown colour map '{}'; closest: {}", name, closest_names(name, names, 3)));
}

cv::Mat colourise(const cv::Mat& gray8, int code) {
  cv::Mat out;
  if (code == kGray) cv::cvtColor(gray8, out, cv::COLOR_GRAY2BGR);
  else cv::applyColorMap(gray8, out, code);
  return out;
}

std::uint32_t crc32(const unsigned char* data, std::size_t size) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

void put_be32(std::vector<unsigned char>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<unsigned char>(v >> shift));
}

/// Inserts a pHYs chunk (pixels per metre, unit = metre) right after IHDR.
void add_png_dpi(std::vector<unsigned char>& png, int dpi) {
  constexpr std::size_t kAfterIhdr = 8 + 4 + 4 + 13 + 4;
  if (png.size() < kAfterIhdr || std::memcmp(&png[12], "IHDR", 4) != 0) {
    throw Error(ErrorKind::internal, "plot_rdm: OpenCV wrote an unexpected PNG header; please report");
  }
  const auto ppm = static_cast<std::uint32_t>(std::lround(dpi / 0.0254));
  std::vector<unsigned char> chunk;
  put_be32(chunk, 9);
  const std::size_t type_at = chunk.size();
  for (const char c : {'p', 'H', 'Y', 's'}) chunk.push_back(static_cast<unsigned char>(c));
  put_be32(chunk, ppm);
  put_be32(chunk, ppm);
  chunk.push_back(1);
  put_be32(chunk, crc32(chunk.data() + type_at, chunk.size() - type_at));
  png.insert(png.begin() + static_cast<std::ptrdiff_t>(kAfterIhdr), chunk.begin(), chunk.end());
}

/// Sets the JFIF APP0 density to `dpi` dots per inch (OpenCV writes an aspect ratio only).
void add_jpeg_dpi(std::vector<unsigned char>& jpeg, int dpi) {
  if (jpeg.size() < 18 || jpeg[2] != 0xFF || jpeg[3] != 0xE0 || std::memcmp(&jpeg[6], "JFIF", 5) != 0) return;
  jpeg[13] = 1;
  jpeg[14] = jpeg[16] = static_cast<unsigned char>((dpi >> 8) & 0xff);
  jpeg[15] = jpeg[17] = static_cast<unsigned char>(dpi & 0xff);
}

std::string short_number(double v) { return fmt::format("{:.4g}", v); }

/// `text` cut to `max_chars` characters ("…" marks the cut; ASCII "..." as OpenCV's fonts are ASCII).
std::string shortened(const std::string& text, std::size_t max_chars) {
  return text.size() <= max_chars ? text : text.substr(0, max_chars - 3) + "...";
}

/// Draws the labels of every `step`-th condition: right-aligned left of the map for the rows,
/// bottom-to-top below it for the columns.
void draw_labels(cv::Mat& canvas, const std::vector<std::string>& labels, const std::vector<std::int64_t>& order,
                 const cv::Rect& map, int font_px, int max_chars) {
  const int n = static_cast<int>(order.size());
  const double scale = font_px / 22.0;
  const int thickness = 1;
  const int step = std::max(1, static_cast<int>(std::ceil(n * font_px * 1.3 / map.height)));
  for (int k = 0; k < n; k += step) {
    const std::string text = shortened(labels[static_cast<std::size_t>(order[static_cast<std::size_t>(k)])],
                                       static_cast<std::size_t>(max_chars));
    int baseline = 0;
    const cv::Size size = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, thickness, &baseline);
    const int centre_y = map.y + static_cast<int>((k + 0.5) * map.height / n);
    cv::putText(canvas, text, cv::Point(map.x - size.width - font_px / 2, centre_y + size.height / 2),
                cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(0, 0, 0), thickness, cv::LINE_AA);
    // the column label: drawn horizontally on a strip, turned to read bottom to top
    cv::Mat strip(size.height + baseline + 2, size.width + 2, CV_8UC3, cv::Scalar(255, 255, 255));
    cv::putText(strip, text, cv::Point(1, size.height + 1), cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(0, 0, 0),
                thickness, cv::LINE_AA);
    cv::Mat turned;
    cv::rotate(strip, turned, cv::ROTATE_90_COUNTERCLOCKWISE);
    const int centre_x = map.x + static_cast<int>((k + 0.5) * map.width / n);
    const cv::Rect at(centre_x - turned.cols / 2, map.y + map.height + font_px / 2, turned.cols, turned.rows);
    const cv::Rect inside = at & cv::Rect(0, 0, canvas.cols, canvas.rows);
    if (inside.area() > 0) turned(cv::Rect(inside.x - at.x, inside.y - at.y, inside.width, inside.height)).copyTo(canvas(inside));
  }
}

}  // namespace

std::vector<std::string> colormap_names() {
  std::vector<std::string> names;
  for (const auto& entry : kColormaps) names.emplace_back(entry.first);
  names.emplace_back("gray");
  return names;
}

void check_plot_options(const std::filesystem::path& path, const RdmPlotOptions& options) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(), [](unsigned char c) { return std::tolower(c); });
  if (extension != ".png" && extension != ".jpg" && extension != ".jpeg") {
    throw Error(ErrorKind::usage,
                fmt::format("plot_rdm: cannot tell the image format of '{}'; use .png, .jpg or .jpeg", path.string()));
  }
  if (options.width < 64 || options.height < 64 || options.width > 20000 || options.height > 20000) {
    throw Error(ErrorKind::usage, fmt::format("plot_rdm: image size {}×{} pixels is outside 64..20000",
                                              options.width, options.height));
  }
  if (options.dpi < 1 || options.dpi > 65535) {
    throw Error(ErrorKind::usage, fmt::format("plot_rdm: dpi {} is outside 1..65535", options.dpi));
  }
  colormap_code(options.colormap);
}

void plot_rdm(const std::filesystem::path& path, const Eigen::Ref<const RdmMatrix>& rdm,
              const RdmPlotOptions& options) {
  const Eigen::Index n = rdm.rows();
  if (n == 0 || rdm.cols() != n) {
    throw Error(ErrorKind::usage, fmt::format("plot_rdm: the RDM must be square and non-empty, got {}×{}",
                                              rdm.rows(), rdm.cols()));
  }
  check_plot_options(path, options);
  if (!options.labels.empty() && static_cast<Eigen::Index>(options.labels.size()) != n) {
    throw Error(ErrorKind::usage, fmt::format("plot_rdm: {} labels for an RDM of {} conditions", options.labels.size(), n));
  }
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(), [](unsigned char c) { return std::tolower(c); });
  const bool png = extension == ".png";
  const int code = colormap_code(options.colormap);
  std::vector<std::int64_t> order = options.order;
  if (order.empty()) {
    order.resize(static_cast<std::size_t>(n));
    for (Eigen::Index i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
  } else {
    std::vector<bool> seen(static_cast<std::size_t>(n), false);
    bool ok = static_cast<Eigen::Index>(order.size()) == n;
    for (const auto o : order) {
      ok = ok && o >= 0 && o < n && !seen[static_cast<std::size_t>(o)];
      if (ok) seen[static_cast<std::size_t>(o)] = true;
    }
    if (!ok) {
      throw Error(ErrorKind::usage,
                  fmt::format("plot_rdm: the condition order must be a permutation of 0..{} ({} entries given)", n - 1,
                              order.size()));
    }
  }
  // values in display order, column-major n² vector; NaN marked
  Eigen::VectorXd values(n * n);
  for (Eigen::Index j = 0; j < n; ++j)
    for (Eigen::Index i = 0; i < n; ++i)
      values[j * n + i] = rdm(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  std::vector<Eigen::Index> finite;
  for (Eigen::Index k = 0; k < values.size(); ++k)
    if (!std::isnan(values[k])) finite.push_back(k);
  if (options.rank_transform) {
    // ranks of the off-diagonal pairs, each pair once (upper triangle), given to both of its cells
    std::vector<std::pair<Eigen::Index, Eigen::Index>> pairs;
    for (Eigen::Index j = 0; j < n; ++j)
      for (Eigen::Index i = 0; i < j; ++i)
        if (!std::isnan(values[j * n + i])) pairs.emplace_back(i, j);
    Eigen::VectorXd kept(static_cast<Eigen::Index>(pairs.size()));
    for (std::size_t k = 0; k < pairs.size(); ++k) kept[static_cast<Eigen::Index>(k)] = values[pairs[k].second * n + pairs[k].first];
    const Eigen::VectorXd ranks = pairs.empty() ? Eigen::VectorXd() : average_ranks(kept);
    for (std::size_t k = 0; k < pairs.size(); ++k) {
      const auto [i, j] = pairs[k];
      values[j * n + i] = values[i * n + j] = ranks[static_cast<Eigen::Index>(k)];
    }
  }
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto k : finite) {
    if (options.rank_transform && k % (n + 1) == 0) continue;  // the diagonal is not ranked
    lo = std::min(lo, values[k]);
    hi = std::max(hi, values[k]);
  }
  if (lo > hi) lo = hi = 0;
  if (options.rank_transform) {
    for (Eigen::Index i = 0; i < n; ++i)
      if (!std::isnan(values[i * n + i])) values[i * n + i] = lo;  // the lowest colour
  }
  const double span = hi > lo ? hi - lo : 1.0;

  cv::Mat level(static_cast<int>(n), static_cast<int>(n), CV_32F), nan_mask(static_cast<int>(n), static_cast<int>(n), CV_8U);
  for (Eigen::Index i = 0; i < n; ++i) {
    for (Eigen::Index j = 0; j < n; ++j) {
      const double v = values[j * n + i];
      const bool missing = std::isnan(v);
      level.at<float>(static_cast<int>(i), static_cast<int>(j)) = missing ? 0.f : static_cast<float>((v - lo) / span * 255.0);
      nan_mask.at<unsigned char>(static_cast<int>(i), static_cast<int>(j)) = missing ? 255 : 0;
    }
  }

  // layout: a square heat map and, to its right, a colour bar with its labels; centred together
  const int width = options.width, height = options.height;
  const int margin = std::max(8, height / 20);
  const int font_px = std::max(10, height / 40);
  const double font_scale = font_px / 22.0;
  const int label_width = options.colour_bar ? static_cast<int>(font_px * 0.6 * 12) : 0;
  // condition labels (cut to 24 characters) left of and below the map; a title above it
  const int names_px = std::max(8, font_px * 4 / 5);
  int longest = 0;
  for (const auto& label : options.labels) {
    int baseline = 0;
    longest = std::max(longest, cv::getTextSize(shortened(label, 24), cv::FONT_HERSHEY_SIMPLEX, names_px / 22.0, 1,
                                                &baseline).width);
  }
  const int names_space = options.labels.empty() ? 0 : longest + names_px;
  const int title_space = options.title.empty() ? 0 : font_px * 2;
  int side = height - 2 * margin - names_space - title_space;
  auto bar_space = [&](int s) { return options.colour_bar ? s / 25 + s / 20 + label_width : 0; };
  while (side > 8 && names_space + side + bar_space(side) > width - 2 * margin) --side;
  const int x0 = (width - names_space - side - bar_space(side)) / 2 + names_space;
  const int y0 = title_space + (height - title_space - names_space - side) / 2;

  cv::Mat canvas(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  cv::Mat scaled, scaled_mask;
  cv::resize(level, scaled, cv::Size(side, side), 0, 0, n > side ? cv::INTER_AREA : cv::INTER_NEAREST);
  cv::resize(nan_mask, scaled_mask, cv::Size(side, side), 0, 0, cv::INTER_NEAREST);
  cv::Mat gray8;
  scaled.convertTo(gray8, CV_8U);  // rounds and saturates
  cv::Mat heat = colourise(gray8, code);
  heat.setTo(cv::Scalar(160, 160, 160), scaled_mask);
  heat.copyTo(canvas(cv::Rect(x0, y0, side, side)));

  if (options.colour_bar) {
    const int bar_x = x0 + side + side / 25, bar_w = std::max(4, side / 20);
    cv::Mat ramp(side, 1, CV_8U);
    for (int r = 0; r < side; ++r) {
      ramp.at<unsigned char>(r, 0) = static_cast<unsigned char>(std::lround(255.0 * (side - 1 - r) / std::max(1, side - 1)));
    }
    cv::Mat bar = colourise(ramp, code);
    cv::resize(bar, bar, cv::Size(bar_w, side), 0, 0, cv::INTER_NEAREST);
    bar.copyTo(canvas(cv::Rect(bar_x, y0, bar_w, side)));
    cv::rectangle(canvas, cv::Rect(bar_x, y0, bar_w, side), cv::Scalar(0, 0, 0), 1);
    const std::string prefix = options.rank_transform ? "rank " : "";
    const int text_x = bar_x + bar_w + font_px / 2;
    cv::putText(canvas, prefix + short_number(hi), cv::Point(text_x, y0 + font_px), cv::FONT_HERSHEY_SIMPLEX,
                font_scale, cv::Scalar(0, 0, 0), std::max(1, font_px / 12), cv::LINE_AA);
    cv::putText(canvas, prefix + short_number(lo), cv::Point(text_x, y0 + side), cv::FONT_HERSHEY_SIMPLEX,
                font_scale, cv::Scalar(0, 0, 0), std::max(1, font_px / 12), cv::LINE_AA);
  }

  if (!options.labels.empty()) draw_labels(canvas, options.labels, order, cv::Rect(x0, y0, side, side), names_px, 24);
  if (!options.title.empty()) {
    int baseline = 0;
    const std::string title = shortened(options.title, 120);
    const int thickness = std::max(1, font_px / 12);
    const cv::Size size = cv::getTextSize(title, cv::FONT_HERSHEY_SIMPLEX, font_scale, thickness, &baseline);
    cv::putText(canvas, title, cv::Point(std::max(0, x0 + side / 2 - size.width / 2), y0 - font_px / 2),
                cv::FONT_HERSHEY_SIMPLEX, font_scale, cv::Scalar(0, 0, 0), thickness, cv::LINE_AA);
  }

  std::vector<unsigned char> bytes;
  bool encoded = false;
  try {
    encoded = png ? cv::imencode(".png", canvas, bytes)
                  : cv::imencode(".jpg", canvas, bytes, {cv::IMWRITE_JPEG_QUALITY, 95});
  } catch (const cv::Exception& e) {
    throw Error(ErrorKind::io, fmt::format("cannot encode '{}': {}", path.string(), e.what()));
  }
  if (!encoded) throw Error(ErrorKind::io, fmt::format("cannot encode '{}'", path.string()));
  if (png) add_png_dpi(bytes, options.dpi);
  else add_jpeg_dpi(bytes, options.dpi);

  const std::filesystem::path temporary = detail::temporary_name(path);
  std::FILE* file = std::fopen(temporary.c_str(), "wb");
  if (!file) throw Error(ErrorKind::io, fmt::format("cannot write '{}': {}", path.string(), std::strerror(errno)));
  // The first failure's errno is the cause reported; the clean-up below never replaces it.
  errno = 0;
  int cause = 0;
  if (std::fwrite(bytes.data(), 1, bytes.size(), file) != bytes.size()) cause = errno != 0 ? errno : EIO;
  if (std::fclose(file) != 0 && cause == 0) cause = errno != 0 ? errno : EIO;
  if (cause != 0) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw Error(ErrorKind::io, fmt::format("cannot write '{}': {}", path.string(), std::strerror(cause)));
  }
  detail::commit_file(temporary, path);  // on failure: removes `temporary`, throws naming the rename's cause
}

}  // namespace thingsvision
