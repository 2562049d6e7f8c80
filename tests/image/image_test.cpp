// image_test.cpp — decode_image equals PIL's Image.open(f).convert("RGB") byte for byte (issue #3).
#include "thingsvision/image.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <jpeglib.h>

#include <cstdio>
#include <cstdlib>

#include "image_reference.hpp"
#include "thingsvision/error.hpp"

namespace tv = thingsvision;
using ::testing::HasSubstr;
using tv_test::image_data_dir;

namespace {

/// Expects decode_image(path) to throw Error(input) whose message names the file and contains `reason`.
void expect_decode_error(const std::filesystem::path& path, const std::string& reason,
                         const tv::DecodeOptions& options = {}) {
  try {
    tv::decode_image(path, options);
    ADD_FAILURE() << "no error for " << path;
  } catch (const tv::Error& e) {
    EXPECT_EQ(e.kind(), tv::ErrorKind::input) << e.what();
    EXPECT_THAT(e.what(), HasSubstr("'" + path.string() + "'"));
    EXPECT_THAT(e.what(), HasSubstr(reason)) << "for " << path;
  }
}

}  // namespace

TEST(DecodeImage, OpencvDocCorpusIsInstalled) {
  ASSERT_TRUE(std::filesystem::is_directory(tv_test::opencv_doc_data()))
      << tv_test::opencv_doc_data() << " is missing: install Debian's opencv-doc package (the PIL parity "
      << "tests decode every image in it)";
}

TEST(DecodeImage, EqualsPilConvertRgbOnEveryImage) {
  const auto index = tv_test::load_image_index();
  ASSERT_FALSE(index.is_null());
  int from_opencv_doc = 0, compared = 0;
  for (const auto& entry : index["images"]) {
    const std::string path = entry["path"];
    const int width = entry["width"], height = entry["height"];
    SCOPED_TRACE(path + " (" + entry["format"].get<std::string>() + " " + entry["mode"].get<std::string>() + ")");
    tv::Image image;
    try {
      image = tv::decode_image(path);
    } catch (const tv::Error& e) {
      ADD_FAILURE() << "PIL decodes it, we fail: " << e.what();
      continue;
    }
    ASSERT_EQ(image.width, width);
    ASSERT_EQ(image.height, height);
    const auto ref = tv_test::read_reference<std::uint8_t>(entry["rgb"], std::size_t(width) * height * 3);
    EXPECT_EQ(tv_test::first_difference(image.pixels, ref, width), "");
    ++compared;
    if (!entry["generated"].get<bool>()) ++from_opencv_doc;
  }
  // Debian's opencv-doc 4.6 ships 91 images PIL can open; all must have been compared.
  EXPECT_GE(from_opencv_doc, 85);
  EXPECT_GE(compared, from_opencv_doc + 40);
}

TEST(DecodeImage, ExifOrientationIgnoredByDefaultAppliedOnRequest) {
  const auto index = tv_test::load_image_index();
  ASSERT_FALSE(index.is_null());
  int checked = 0;
  for (const auto& entry : index["images"]) {
    if (!entry.contains("exif")) continue;
    const std::string path = entry["path"];
    SCOPED_TRACE(path);
    tv::DecodeOptions options;
    options.apply_exif_orientation = true;
    const tv::Image image = tv::decode_image(path, options);
    const int width = entry["exif"]["width"], height = entry["exif"]["height"];
    ASSERT_EQ(image.width, width);
    ASSERT_EQ(image.height, height);
    const auto ref = tv_test::read_reference<std::uint8_t>(entry["exif"]["rgb"], std::size_t(width) * height * 3);
    EXPECT_EQ(tv_test::first_difference(image.pixels, ref, width), "");
    ++checked;
  }
  EXPECT_EQ(checked, 7);  // orientations 2..8 of the generated JPEGs
}

TEST(DecodeImage, EveryFilePilRefusesIsAnErrorNamingTheFile) {
  const auto index = tv_test::load_image_index();
  ASSERT_FALSE(index.is_null());
  int damaged = 0;
  for (const auto& entry : index["unreadable"]) {
    const std::filesystem::path path = entry["path"].get<std::string>();
    SCOPED_TRACE(path.string() + " — PIL: " + entry["pil_error"].get<std::string>());
    expect_decode_error(path, "cannot decode image");
    if (path.parent_path().filename() == "damaged") ++damaged;
  }
  EXPECT_EQ(damaged, 8);
}

TEST(DecodeImage, DamagedFilesGiveTheirReason) {
  const auto damaged = image_data_dir() / "damaged";
  expect_decode_error(damaged / "zero_bytes.jpg", "file is empty");
  expect_decode_error(damaged / "truncated.jpg", "file is truncated");
  expect_decode_error(damaged / "truncated_progressive.jpg", "file is truncated");
  expect_decode_error(damaged / "text.png", "not a supported image");
  expect_decode_error(damaged / "bomb_60000x60000.png", "header declares 60000 x 60000 = 3600000000 pixels");
  expect_decode_error(damaged / "corrupt_idat.png", "corrupt PNG data");
  expect_decode_error(damaged / "truncated.png", "truncated");
  expect_decode_error(damaged / "jpeg_magic_only.jpg", "JPEG");
}

TEST(DecodeImage, RgbaTiffWithUnassociatedAlphaIsRefused) {
  // PIL decodes it (its colour is not multiplied by alpha); OpenCV would premultiply it.
  expect_decode_error(image_data_dir() / "refused" / "rgba_unassociated.tif", "TIFF with unassociated alpha");
}

TEST(DecodeImage, MissingAndUnreadablePathsAreErrors) {
  tv_test::TempDir dir;
  expect_decode_error(dir / "absent.jpg", "does not exist");
  std::filesystem::create_directory(dir / "folder.jpg");
  expect_decode_error(dir / "folder.jpg", "directory");
}

TEST(DecodeImage, PixelLimitIsCheckedOnTheHeaderOfEveryFormat) {
  const auto generated = image_data_dir() / "generated";
  tv::DecodeOptions options;
  options.max_image_pixels = 317 * 211 - 1;  // the generated images are 317 × 211
  for (const char* name : {"rgb_420.jpg", "progressive.jpg", "grey.png", "rgb.tif", "rgb.bmp", "rgb_lossless.webp"}) {
    SCOPED_TRACE(name);
    expect_decode_error(generated / name, "header declares 317 x 211 = 66887 pixels, more than the limit of 66886",
                        options);
  }
  options.max_image_pixels = 317 * 211;
  EXPECT_NO_THROW(tv::decode_image(generated / "rgb.bmp", options));
}

TEST(DecodeImage, FormatComesFromContentNotExtension) {
  const auto generated = image_data_dir() / "generated";
  const tv::Image a = tv::decode_image(generated / "png_named.jpg");
  const std::string bytes = tv_test::read_file(generated / "png_named.jpg");
  const tv::Image b = tv::decode_image(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), "memory.png");
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_THAT([] { tv::decode_image(reinterpret_cast<const std::uint8_t*>("GIF89a...."), 10, "anim.gif"); },
              ::testing::ThrowsMessage<tv::Error>(HasSubstr("cannot decode image 'anim.gif': not a supported image")));
}

TEST(DecodeImage, SixteenBitScaleOptionRoundsValueOver257) {
  tv::DecodeOptions options;
  options.sixteen_bit = tv::SixteenBitMode::scale;
  for (const char* name : {"rgb16.png", "la16.png", "grey16_full.png"}) {
    SCOPED_TRACE(name);
    const tv::Image image = tv::decode_image(image_data_dir() / "generated" / name, options);
    const std::string ref = tv_test::read_file(image_data_dir() / "expected" / (std::string(name) + ".scaled.rgb"));
    EXPECT_EQ(tv_test::first_difference(image.pixels, std::vector<std::uint8_t>(ref.begin(), ref.end()), image.width),
              "");
  }
}

namespace {

/// Writes a 4-component JPEG with libjpeg: YCCK (Adobe marker) or plain CMYK without any Adobe marker.
void write_cmyk_jpeg(const std::filesystem::path& path, bool ycck) {
  const int width = 71, height = 45;
  std::vector<std::uint8_t> cmyk(std::size_t(width) * height * 4);
  for (std::size_t i = 0; i < cmyk.size(); ++i) cmyk[i] = std::uint8_t((i * 37 + (i / 284) * 11 + (i % 4) * 60) % 256);
  jpeg_compress_struct c;
  jpeg_error_mgr errors;
  c.err = jpeg_std_error(&errors);
  jpeg_create_compress(&c);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buffer, &size);
  c.image_width = width;
  c.image_height = height;
  c.input_components = 4;
  c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_set_colorspace(&c, ycck ? JCS_YCCK : JCS_CMYK);
  if (!ycck) c.write_Adobe_marker = FALSE;
  jpeg_set_quality(&c, 90, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = cmyk.data() + std::size_t(c.next_scanline) * width * 4;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  FILE* out = std::fopen(path.c_str(), "wb");
  ASSERT_NE(out, nullptr);
  std::fwrite(buffer, 1, size, out);
  std::fclose(out);
  std::free(buffer);
}

}  // namespace

// PIL reads every 4-component JPEG as Adobe-inverted CMYK ("CMYK;I"), YCCK converted by libjpeg.
TEST(DecodeImage, YcckAndPlainCmykJpegsEqualPil) {
  tv_test::TempDir dir;
  for (const bool ycck : {true, false}) {
    const auto path = dir / (ycck ? "ycck.jpg" : "cmyk_no_adobe.jpg");
    write_cmyk_jpeg(path, ycck);
    const auto ref_path = dir / "ref.rgb";
    tv_test::run_capture(tv_test::python() +
                         " -c \"import sys; from PIL import Image; im = Image.open(sys.argv[1]); "
                         "assert im.mode == 'CMYK', im.mode; open(sys.argv[2], 'wb').write(im.convert('RGB').tobytes())\" " +
                         path.string() + " " + ref_path.string());
    const std::string ref = tv_test::read_file(ref_path);
    const tv::Image image = tv::decode_image(path);
    SCOPED_TRACE(path.string());
    EXPECT_EQ(tv_test::first_difference(image.pixels, std::vector<std::uint8_t>(ref.begin(), ref.end()), image.width),
              "");
  }
}
