// rdm_plot_test.cpp — plot_rdm: a block-structured RDM shows its blocks, pHYs/JFIF DPI, options, errors.
#include <gmock/gmock.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "test_support.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/rdm_plot.hpp"

using namespace thingsvision;
using tv_test::expect_error;

namespace {

/// Three blocks of conditions (0–9, 10–19, 20–29): 0.1 within a block, 0.9 between blocks.
RdmMatrix block_rdm() {
  RdmMatrix rdm(30, 30);
  for (int i = 0; i < 30; ++i)
    for (int j = 0; j < 30; ++j) rdm(i, j) = i == j ? 0.0 : (i / 10 == j / 10 ? 0.1 : 0.9);
  return rdm;
}

/// Finds the heat map: the bounding box of non-white pixels in the left part of the image.
cv::Rect heat_map_box(const cv::Mat& image) {
  cv::Mat gray, mask;
  cv::cvtColor(image, gray, cv::COLOR_BGR2GRAY);
  mask = gray < 250;
  std::vector<cv::Point> points;
  cv::findNonZero(mask, points);
  return cv::boundingRect(points);
}

}  // namespace

TEST(PlotRdm, BlockStructuredRdmShowsItsBlocks) {
  tv_test::TempDir dir;
  RdmPlotOptions options;
  options.colour_bar = false;
  plot_rdm(dir / "blocks.png", block_rdm(), options);
  const cv::Mat image = cv::imread((dir / "blocks.png").string(), cv::IMREAD_COLOR);
  ASSERT_EQ(image.cols, 2000);
  ASSERT_EQ(image.rows, 800);
  const cv::Rect box = heat_map_box(image);
  EXPECT_EQ(box.width, box.height) << "square heat map";
  EXPECT_NEAR(box.x + box.width / 2, 1000, 2) << "centred";
  auto pixel = [&](double row, double col) {  // condition coordinates → pixel
    return image.at<cv::Vec3b>(box.y + static_cast<int>((row + 0.5) / 30 * box.height),
                               box.x + static_cast<int>((col + 0.5) / 30 * box.width));
  };
  const cv::Vec3b within = pixel(2, 5), between = pixel(2, 15), other_within = pixel(25, 22);
  EXPECT_EQ(within, other_within) << "all within-block cells share a colour";
  EXPECT_EQ(between, pixel(25, 5));
  EXPECT_GT(cv::norm(cv::Vec3d(within) - cv::Vec3d(between)), 100.0) << "blocks stand out";
  // cividis: low values dark blue, high values yellow (B < R)
  EXPECT_GT(between[2], between[0]);
  EXPECT_LT(within[2] + within[1], between[2] + between[1]);
}

TEST(PlotRdm, PngHasA200DpiPhysChunkAndJpegAJfifDensity) {
  tv_test::TempDir dir;
  plot_rdm(dir / "rdm.png", block_rdm());
  const std::string png = tv_test::read_file(dir / "rdm.png");
  const auto at = png.find("pHYs");
  ASSERT_NE(at, std::string::npos);
  EXPECT_LT(at, png.find("IDAT"));
  const std::string expected_ppm("\x00\x00\x1e\xc2", 4);  // 7874 pixels per metre = 200 dpi
  EXPECT_EQ(png.substr(at + 4, 4), expected_ppm);
  EXPECT_EQ(png.substr(at + 8, 4), expected_ppm);
  EXPECT_EQ(png[at + 12], '\x01');
  // PIL reads the chunk back (and checks its CRC)
  EXPECT_EQ(tv_test::run_capture(tv_test::python() + " -c \"from PIL import Image; im = Image.open('" +
                                 (dir / "rdm.png").string() + "'); im.load(); print(im.size, [round(d) for d in im.info['dpi']])\""),
            "(2000, 800) [200, 200]\n");
  RdmPlotOptions small;
  small.width = 300;
  small.height = 200;
  small.dpi = 300;
  small.colormap = "viridis";
  plot_rdm(dir / "rdm.jpg", block_rdm(), small);
  EXPECT_EQ(tv_test::run_capture(tv_test::python() + " -c \"from PIL import Image; im = Image.open('" +
                                 (dir / "rdm.jpg").string() + "'); print(im.format, im.size, im.info['dpi'])\""),
            "JPEG (300, 200) (300, 300)\n");
}

TEST(PlotRdm, OrderRearrangesConditionsAndNanIsGrey) {
  tv_test::TempDir dir;
  // interleave the blocks; the order (0, 3, 6, ..., 1, 4, ...) restores them
  RdmMatrix mixed(30, 30);
  std::vector<std::int64_t> order;
  for (int r = 0; r < 3; ++r)
    for (int k = r; k < 30; k += 3) order.push_back(k);
  for (int i = 0; i < 30; ++i)
    for (int j = 0; j < 30; ++j) mixed(i, j) = i == j ? 0.0 : (i % 3 == j % 3 ? 0.1 : 0.9);
  mixed(0, 3) = mixed(3, 0) = std::nan("");
  RdmPlotOptions options;
  options.order = order;
  options.rank_transform = false;
  plot_rdm(dir / "ordered.png", mixed, options);
  const cv::Mat image = cv::imread((dir / "ordered.png").string(), cv::IMREAD_COLOR);
  options.order.clear();
  plot_rdm(dir / "plain.png", block_rdm(), options);
  const cv::Mat plain = cv::imread((dir / "plain.png").string(), cv::IMREAD_COLOR);
  cv::Mat diff;
  cv::absdiff(image, plain, diff);
  // only the two NaN cells (grey) differ from the block picture
  const cv::Rect box = heat_map_box(plain);
  const int cell = box.width / 30;
  const cv::Vec3b nan_pixel = image.at<cv::Vec3b>(box.y + cell / 2, box.x + cell + cell / 2);
  EXPECT_EQ(nan_pixel, cv::Vec3b(160, 160, 160));
  cv::Mat gray_diff;
  cv::cvtColor(diff, gray_diff, cv::COLOR_BGR2GRAY);
  EXPECT_LE(cv::countNonZero(gray_diff), 2 * (cell + 1) * (cell + 1));
}

TEST(PlotRdm, RanksOffDiagonalPairsOnlyAndTheDiagonalTakesTheLowestColour) {
  tv_test::TempDir dir;
  RdmMatrix rdm(3, 3);  // pairs 1 < 2 < 3: ranks 1, 2, 3 (the zero diagonal is not ranked)
  rdm << 0, 1, 2, 1, 0, 3, 2, 3, 0;
  RdmPlotOptions options;
  options.colour_bar = false;
  plot_rdm(dir / "ranks.png", rdm, options);
  const cv::Mat image = cv::imread((dir / "ranks.png").string(), cv::IMREAD_COLOR);
  const cv::Rect box = heat_map_box(image);
  auto pixel = [&](int row, int col) {
    return image.at<cv::Vec3b>(box.y + (2 * row + 1) * box.height / 6, box.x + (2 * col + 1) * box.width / 6);
  };
  EXPECT_EQ(pixel(0, 0), pixel(0, 1)) << "the diagonal shows the lowest rank's colour";
  EXPECT_EQ(pixel(1, 1), pixel(1, 0));
  EXPECT_EQ(pixel(0, 2), pixel(2, 0)) << "both cells of a pair";
  EXPECT_NE(pixel(0, 2), pixel(0, 1));
  EXPECT_NE(pixel(1, 2), pixel(0, 2));
  // rank 2 of 1..3 sits halfway: its colour is the colour map's middle (cividis grey-ish), with
  // green between the lowest's and the highest's
  EXPECT_GT(pixel(0, 2)[1], pixel(0, 1)[1]);
  EXPECT_LT(pixel(0, 2)[1], pixel(1, 2)[1]);
}

TEST(PlotRdm, LabelsAndTitleAreDrawnOnlyWhenGiven) {
  tv_test::TempDir dir;
  RdmPlotOptions options;
  options.colour_bar = false;
  const auto black_pixels = [&](const std::string& name) {
    plot_rdm(dir / name, block_rdm(), options);
    cv::Mat image = cv::imread((dir / name).string(), cv::IMREAD_COLOR), channels_max;
    cv::Mat planes[3];
    cv::split(image, planes);
    channels_max = cv::max(cv::max(planes[0], planes[1]), planes[2]);
    return cv::countNonZero(channels_max < 40);  // text is black; cividis is never that dark
  };
  EXPECT_EQ(black_pixels("plain.png"), 0);
  options.title = "features.npy: correlation RDM";
  const int with_title = black_pixels("title.png");
  EXPECT_GT(with_title, 0);
  for (int i = 0; i < 30; ++i) options.labels.push_back("image_" + std::to_string(i) + ".jpg");
  EXPECT_GT(black_pixels("labels.png"), with_title);
  options.labels.pop_back();
  expect_error([&] { plot_rdm(dir / "bad.png", block_rdm(), options); }, ErrorKind::usage,
               "plot_rdm: 29 labels for an RDM of 30 conditions");
  // check_plot_options: what plot_rdm would refuse for the path and options alone
  RdmPlotOptions bad;
  bad.colormap = "nosuch";
  EXPECT_THROW(check_plot_options(dir / "a.png", bad), Error);
  EXPECT_THROW(check_plot_options(dir / "a.pdf", RdmPlotOptions{}), Error);
  EXPECT_NO_THROW(check_plot_options(dir / "a.jpg", RdmPlotOptions{}));
}

TEST(PlotRdm, BadOptionsAreUsageErrors) {
  tv_test::TempDir dir;
  RdmPlotOptions options;
  options.colormap = "civids";
  expect_error([&] { plot_rdm(dir / "a.png", block_rdm(), options); }, ErrorKind::usage,
               "unknown colour map 'civids'; closest: cividis, viridis, winter");
  expect_error([&] { plot_rdm(dir / "a.bmp", block_rdm()); }, ErrorKind::usage,
               "plot_rdm: cannot tell the image format of '" + (dir / "a.bmp").string() + "'; use .png, .jpg or .jpeg");
  RdmPlotOptions order;
  order.order = {0, 1, 1};
  expect_error([&] { plot_rdm(dir / "a.png", block_rdm(), order); }, ErrorKind::usage,
               "plot_rdm: the condition order must be a permutation of 0..29 (3 entries given)");
  expect_error([&] { plot_rdm(dir / "missing" / "a.png", block_rdm()); }, ErrorKind::io,
               "cannot write '" + (dir / "missing" / "a.png").string() + "': No such file or directory");
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(PlotRdm, FailedRenameNamesItsCauseAndLeavesNoTemporaryFile) {
  tv_test::TempDir dir;
  std::filesystem::create_directories(dir / "a.png" / "x");  // the target is a non-empty directory
  expect_error([&] { plot_rdm(dir / "a.png", block_rdm()); }, ErrorKind::io,
               "cannot write '" + (dir / "a.png").string() + "': Is a directory");
  std::size_t entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    ++entries;
    EXPECT_EQ(entry.path().filename(), "a.png");
  }
  EXPECT_EQ(entries, 1u);
}
