// image_decode.cpp — decode_image: PIL's Image.open(f).convert("RGB"), header-first damage checks.
//
// JPEG: libjpeg-turbo directly (the library PIL uses), with a suspending in-memory source as in
// PIL's JpegDecode.c, so running out of data before the last scanline is an error ("truncated").
// PNG: libpng, converting each colour type as PIL's unpackers + convert("RGB") do.
// TIFF, BMP, WebP: OpenCV (IMREAD_COLOR | IMREAD_IGNORE_ORIENTATION), BGR → RGB.
// Every format's header is read here first, so a decompression bomb is refused before allocating.
#include "thingsvision/image.hpp"

#include <fmt/format.h>
#include <jpeglib.h>
#include <png.h>

#include <algorithm>
#include <array>
#include <csetjmp>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <system_error>

#include "thingsvision/error.hpp"

namespace thingsvision {
namespace {

enum class Format { jpeg, png, tiff, bmp, webp, unknown };

const char* format_name(Format format) {
  switch (format) {
    case Format::jpeg: return "JPEG";
    case Format::png: return "PNG";
    case Format::tiff: return "TIFF";
    case Format::bmp: return "BMP";
    case Format::webp: return "WebP";
    case Format::unknown: break;
  }
  return "unknown";
}

[[noreturn]] void fail(const std::string& name, const std::string& reason) {
  throw Error(ErrorKind::input, fmt::format("cannot decode image '{}': {}", name, reason));
}

Format detect_format(const std::uint8_t* d, std::size_t n) {
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return Format::jpeg;
  if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return Format::png;
  if (n >= 4 && (std::memcmp(d, "II*\0", 4) == 0 || std::memcmp(d, "MM\0*", 4) == 0)) return Format::tiff;
  if (n >= 2 && d[0] == 'B' && d[1] == 'M') return Format::bmp;
  if (n >= 12 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0) return Format::webp;
  return Format::unknown;
}

std::uint32_t be16(const std::uint8_t* p) { return std::uint32_t(p[0]) << 8 | p[1]; }
std::uint32_t be32(const std::uint8_t* p) { return be16(p) << 16 | be16(p + 2); }
std::uint32_t le16(const std::uint8_t* p) { return std::uint32_t(p[1]) << 8 | p[0]; }
std::uint32_t le32(const std::uint8_t* p) { return le16(p + 2) << 16 | le16(p); }

/// Width and height as the file's header declares them (before any decoding).
struct HeaderSize {
  std::uint64_t width = 0;
  std::uint64_t height = 0;
};

HeaderSize jpeg_header(const std::uint8_t* d, std::size_t n, const std::string& name) {
  std::size_t i = 2;
  while (i + 1 < n) {
    if (d[i] != 0xFF) {  // junk between segments: skipped, as PIL's and libjpeg's parsers do
      ++i;
      continue;
    }
    while (i < n && d[i] == 0xFF) ++i;  // fill bytes
    if (i >= n) break;
    const std::uint8_t marker = d[i++];
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length
    if (marker == 0xD9 || marker == 0xDA) fail(name, "JPEG has no frame header (SOF) before its data");
    if (i + 2 > n) break;
    const std::size_t length = be16(d + i);
    if (length < 2) fail(name, "corrupt JPEG header (bad segment length)");
    const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      if (i + 7 > n) break;
      return {be16(d + i + 5), be16(d + i + 3)};
    }
    i += length;
  }
  fail(name, "file is truncated (JPEG header incomplete)");
}

HeaderSize png_header(const std::uint8_t* d, std::size_t n, const std::string& name) {
  if (n < 8 + 8 + 13 || std::memcmp(d + 12, "IHDR", 4) != 0) fail(name, "PNG has no IHDR header");
  return {be32(d + 16), be32(d + 20)};
}

HeaderSize tiff_header(const std::uint8_t* d, std::size_t n, const std::string& name) {
  const bool little = d[0] == 'I';
  auto u16 = [&](std::size_t at) { return little ? le16(d + at) : be16(d + at); };
  auto u32 = [&](std::size_t at) { return little ? le32(d + at) : be32(d + at); };
  if (n < 8) fail(name, "file is truncated (TIFF header incomplete)");
  const std::size_t ifd = u32(4);
  if (ifd + 2 > n) fail(name, "file is truncated (TIFF directory missing)");
  const std::size_t count = u16(ifd);
  HeaderSize size;
  for (std::size_t e = 0; e < count; ++e) {
    const std::size_t at = ifd + 2 + 12 * e;
    if (at + 12 > n) fail(name, "file is truncated (TIFF directory incomplete)");
    const std::uint32_t tag = u16(at), type = u16(at + 2);
    const std::uint64_t value = type == 3 ? u16(at + 8) : u32(at + 8);
    if (tag == 256) size.width = value;
    if (tag == 257) size.height = value;
    // ExtraSamples = 2: unassociated alpha. OpenCV (libtiff's RGBA interface) multiplies the colour
    // by alpha, PIL keeps it: refuse rather than silently differ from THINGSvision.
    if (tag == 338 && type == 3 && u16(at + 8) == 2) {
      fail(name, "TIFF with unassociated alpha (RGBA) is not supported: OpenCV's TIFF reader multiplies "
                 "the colour by alpha and PIL does not, so the pixels would differ from PIL's; convert "
                 "the image to PNG");
    }
  }
  if (size.width == 0 || size.height == 0) fail(name, "TIFF directory has no image width or length");
  return size;
}

HeaderSize bmp_header(const std::uint8_t* d, std::size_t n, const std::string& name) {
  if (n < 26) fail(name, "file is truncated (BMP header incomplete)");
  const std::uint32_t header_size = le32(d + 14);
  if (header_size == 12) return {le16(d + 18), le16(d + 20)};
  if (header_size < 40) fail(name, "corrupt BMP header");
  const auto width = static_cast<std::int32_t>(le32(d + 18));
  const auto height = static_cast<std::int32_t>(le32(d + 22));
  return {static_cast<std::uint64_t>(std::abs(std::int64_t(width))),
          static_cast<std::uint64_t>(std::abs(std::int64_t(height)))};
}

HeaderSize webp_header(const std::uint8_t* d, std::size_t n, const std::string& name) {
  if (n < 30) fail(name, "file is truncated (WebP header incomplete)");
  if (std::memcmp(d + 12, "VP8 ", 4) == 0) return {le16(d + 26) & 0x3FFFu, le16(d + 28) & 0x3FFFu};
  if (std::memcmp(d + 12, "VP8L", 4) == 0) {
    const std::uint32_t bits = le32(d + 21);
    return {(bits & 0x3FFFu) + 1, ((bits >> 14) & 0x3FFFu) + 1};
  }
  if (std::memcmp(d + 12, "VP8X", 4) == 0) {
    return {(le32(d + 24) & 0xFFFFFFu) + 1, (le32(d + 27) & 0xFFFFFFu) + 1};
  }
  fail(name, "unknown WebP chunk");
}

void check_size(const HeaderSize& size, const DecodeOptions& options, const std::string& name) {
  if (size.width == 0 || size.height == 0) {
    fail(name, fmt::format("header declares an empty image ({} x {})", size.width, size.height));
  }
  const std::uint64_t pixels = size.width * size.height;
  if (pixels > options.max_image_pixels) {
    fail(name, fmt::format("header declares {} x {} = {} pixels, more than the limit of {} "
                           "(possible decompression bomb; see DecodeOptions::max_image_pixels)",
                           size.width, size.height, pixels, options.max_image_pixels));
  }
}

Image make_image(std::uint64_t width, std::uint64_t height) {
  Image image;
  image.width = static_cast<int>(width);
  image.height = static_cast<int>(height);
  image.pixels.resize(static_cast<std::size_t>(width * height * 3));
  return image;
}

// ---- EXIF orientation (only read when apply_exif_orientation) -----------------------------------

/// The orientation tag (1..8) in a TIFF-structured EXIF block, or 1.
int exif_orientation_from_tiff(const std::uint8_t* d, std::size_t n) {
  if (n < 8) return 1;
  const bool little = d[0] == 'I';
  if (!little && d[0] != 'M') return 1;
  auto u16 = [&](std::size_t at) { return little ? le16(d + at) : be16(d + at); };
  auto u32 = [&](std::size_t at) { return little ? le32(d + at) : be32(d + at); };
  const std::size_t ifd = u32(4);
  if (ifd + 2 > n) return 1;
  const std::size_t count = u16(ifd);
  for (std::size_t e = 0; e < count; ++e) {
    const std::size_t at = ifd + 2 + 12 * e;
    if (at + 12 > n) return 1;
    if (u16(at) == 0x0112) {
      const int value = static_cast<int>(u16(at + 8));
      return value >= 1 && value <= 8 ? value : 1;
    }
  }
  return 1;
}

int jpeg_exif_orientation(const std::uint8_t* d, std::size_t n) {
  std::size_t i = 2;
  while (i + 4 <= n && d[i] == 0xFF) {
    const std::uint8_t marker = d[i + 1];
    if (marker == 0xDA || marker == 0xD9) break;
    const std::size_t length = be16(d + i + 2);
    if (marker == 0xE1 && length >= 8 && i + 2 + length <= n && std::memcmp(d + i + 4, "Exif\0\0", 6) == 0) {
      return exif_orientation_from_tiff(d + i + 10, length - 8);
    }
    i += 2 + length;
  }
  return 1;
}

/// As PIL's ImageOps.exif_transpose.
Image apply_orientation(Image in, int orientation) {
  if (orientation <= 1 || orientation > 8) return in;
  const bool swap = orientation >= 5;
  Image out;
  out.width = swap ? in.height : in.width;
  out.height = swap ? in.width : in.height;
  out.pixels.resize(in.pixels.size());
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = 0, sy = 0;
      switch (orientation) {
        case 2: sx = in.width - 1 - x; sy = y; break;                   // FLIP_LEFT_RIGHT
        case 3: sx = in.width - 1 - x; sy = in.height - 1 - y; break;   // ROTATE_180
        case 4: sx = x; sy = in.height - 1 - y; break;                  // FLIP_TOP_BOTTOM
        case 5: sx = y; sy = x; break;                                  // TRANSPOSE
        case 6: sx = y; sy = in.height - 1 - x; break;                  // ROTATE_270
        case 7: sx = in.width - 1 - y; sy = in.height - 1 - x; break;   // TRANSVERSE
        default: sx = in.width - 1 - y; sy = x; break;                  // 8: ROTATE_90
      }
      std::memcpy(out.row(y) + 3 * x, in.row(sy) + 3 * sx, 3);
    }
  }
  return out;
}

// ---- JPEG -----------------------------------------------------------------------------------

struct JpegErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* manager = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, manager->message);
  std::longjmp(manager->jump, 1);
}

void jpeg_silent_output(j_common_ptr) {}  // warnings are not printed (as in PIL)

// A suspending source over the whole file: when libjpeg asks for more data there is none, so the
// call suspends and the image is reported as truncated — PIL's behaviour with its chunked source.
void source_init(j_decompress_ptr) {}
boolean source_fill(j_decompress_ptr) { return FALSE; }
void source_skip(j_decompress_ptr cinfo, long count) {
  jpeg_source_mgr* src = cinfo->src;
  if (count <= 0) return;
  if (static_cast<std::size_t>(count) > src->bytes_in_buffer) {
    src->next_input_byte += src->bytes_in_buffer;
    src->bytes_in_buffer = 0;
  } else {
    src->next_input_byte += count;
    src->bytes_in_buffer -= static_cast<std::size_t>(count);
  }
}
void source_term(j_decompress_ptr) {}

enum class JpegStatus { ok, truncated, libjpeg_error, too_large, unsupported_components };

struct JpegResult {
  JpegStatus status = JpegStatus::ok;
  int components = 0;
  std::uint64_t width = 0;
  std::uint64_t height = 0;
};

// PIL's Convert.c cmyk2rgb on "CMYK;I" data (Adobe's inverted CMYK, which PIL assumes).
inline std::uint8_t cmyk_channel(int value, int nk) {
  const int tmp = value * nk + 128;
  const int v = nk - (((tmp >> 8) + tmp) >> 8);
  return static_cast<std::uint8_t>(std::clamp(v, 0, 255));
}

// Plain C-style function: no objects with destructors live across setjmp/longjmp here.
void jpeg_decode_raw(const std::uint8_t* data, std::size_t size, std::uint64_t max_pixels,
                     std::vector<std::uint8_t>& pixels, std::vector<std::uint8_t>& row_buffer,
                     JpegResult& result, char* message) {
  jpeg_decompress_struct cinfo;
  JpegErrorManager errors;
  jpeg_source_mgr source;
  cinfo.err = jpeg_std_error(&errors.pub);
  errors.pub.error_exit = jpeg_error_exit;
  errors.pub.output_message = jpeg_silent_output;
  errors.message[0] = '\0';
  if (setjmp(errors.jump)) {
    std::snprintf(message, JMSG_LENGTH_MAX, "%s", errors.message);
    result.status = JpegStatus::libjpeg_error;
    jpeg_destroy_decompress(&cinfo);
    return;
  }
  jpeg_create_decompress(&cinfo);
  source.init_source = source_init;
  source.fill_input_buffer = source_fill;
  source.skip_input_data = source_skip;
  source.resync_to_restart = jpeg_resync_to_restart;
  source.term_source = source_term;
  source.next_input_byte = data;
  source.bytes_in_buffer = size;
  cinfo.src = &source;
  if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK) {
    result.status = JpegStatus::truncated;
    jpeg_destroy_decompress(&cinfo);
    return;
  }
  result.components = cinfo.num_components;
  result.width = cinfo.image_width;
  result.height = cinfo.image_height;
  if (result.width * result.height > max_pixels || result.width == 0 || result.height == 0) {
    result.status = JpegStatus::too_large;
    jpeg_destroy_decompress(&cinfo);
    return;
  }
  // PIL's modes: 1 component → L, 3 → RGB, 4 → CMYK (read as "CMYK;I").
  if (cinfo.num_components == 1) {
    cinfo.out_color_space = JCS_GRAYSCALE;
  } else if (cinfo.num_components == 3) {
    cinfo.out_color_space = JCS_RGB;
  } else if (cinfo.num_components == 4) {
    cinfo.out_color_space = JCS_CMYK;
  } else {
    result.status = JpegStatus::unsupported_components;
    jpeg_destroy_decompress(&cinfo);
    return;
  }
  if (!jpeg_start_decompress(&cinfo)) {
    result.status = JpegStatus::truncated;
    jpeg_destroy_decompress(&cinfo);
    return;
  }
  const std::size_t width = cinfo.output_width;
  const int channels = cinfo.output_components;
  pixels.resize(width * cinfo.output_height * 3);
  row_buffer.resize(width * static_cast<std::size_t>(channels));
  while (cinfo.output_scanline < cinfo.output_height) {
    std::uint8_t* out = pixels.data() + std::size_t(cinfo.output_scanline) * width * 3;
    JSAMPROW row = channels == 3 ? out : row_buffer.data();
    if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
      result.status = JpegStatus::truncated;
      jpeg_destroy_decompress(&cinfo);
      return;
    }
    if (channels == 1) {
      for (std::size_t x = 0; x < width; ++x) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = row_buffer[x];
    } else if (channels == 4) {
      for (std::size_t x = 0; x < width; ++x) {
        const std::uint8_t* in = row_buffer.data() + 4 * x;
        const int nk = in[3];  // inverted K (255 - K of "CMYK;I")
        out[3 * x + 0] = cmyk_channel(255 - in[0], nk);
        out[3 * x + 1] = cmyk_channel(255 - in[1], nk);
        out[3 * x + 2] = cmyk_channel(255 - in[2], nk);
      }
    }
  }
  // PIL ignores a failing finish once every scanline is read (a missing EOI is accepted).
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
}

Image decode_jpeg(const std::uint8_t* data, std::size_t size, const std::string& name,
                  const DecodeOptions& options) {
  Image image;
  std::vector<std::uint8_t> row_buffer;
  JpegResult result;
  std::array<char, JMSG_LENGTH_MAX> message{};
  jpeg_decode_raw(data, size, options.max_image_pixels, image.pixels, row_buffer, result, message.data());
  switch (result.status) {
    case JpegStatus::ok: break;
    case JpegStatus::truncated: fail(name, "file is truncated (libjpeg: premature end of data)");
    case JpegStatus::libjpeg_error: fail(name, fmt::format("corrupt JPEG data (libjpeg: {})", message.data()));
    case JpegStatus::too_large: check_size({result.width, result.height}, options, name); break;
    case JpegStatus::unsupported_components:
      fail(name, fmt::format("JPEG with {} colour components is not supported (PIL reads 1, 3 or 4)",
                             result.components));
  }
  image.width = static_cast<int>(result.width);
  image.height = static_cast<int>(result.height);
  if (options.apply_exif_orientation) image = apply_orientation(std::move(image), jpeg_exif_orientation(data, size));
  return image;
}

// ---- PNG ------------------------------------------------------------------------------------

struct PngReader {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t offset;
};

struct PngErrorState {
  std::jmp_buf jump;
  char message[256];
};

void png_error_handler(png_structp png, png_const_charp text) {
  auto* state = static_cast<PngErrorState*>(png_get_error_ptr(png));
  std::snprintf(state->message, sizeof state->message, "%s", text ? text : "unknown error");
  std::longjmp(state->jump, 1);
}
void png_warning_handler(png_structp, png_const_charp) {}

void png_read_memory(png_structp png, png_bytep out, png_size_t count) {
  auto* reader = static_cast<PngReader*>(png_get_io_ptr(png));
  if (count > reader->size - reader->offset) png_error(png, "file is truncated");
  std::memcpy(out, reader->data + reader->offset, count);
  reader->offset += count;
}

std::once_flag sixteen_bit_warning;

/// One 8-bit value from a big-endian 16-bit sample, per the 16-bit mode.
inline std::uint8_t from16(const std::uint8_t* p, bool grey_clip, SixteenBitMode mode) {
  const std::uint32_t v = be16(p);
  if (mode == SixteenBitMode::scale) return static_cast<std::uint8_t>((v * 255 + 32767) / 65535);
  // PIL: 16-bit grey is mode "I" and convert("RGB") clips; RGB/RGBA/LA ";16B" unpackers keep the MSB.
  return grey_clip ? static_cast<std::uint8_t>(std::min<std::uint32_t>(v, 255)) : p[0];
}

struct PngInfo {
  std::uint32_t width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0, passes = 1;
  std::size_t rowbytes = 0;
  std::array<std::uint8_t, 256 * 3> palette{};
  int exif_orientation = 1;
};

void png_row_to_rgb(const PngInfo& info, const std::uint8_t* in, std::uint8_t* out, SixteenBitMode mode) {
  const std::size_t w = info.width;
  const bool sixteen = info.bit_depth == 16;
  switch (info.color_type) {
    case PNG_COLOR_TYPE_GRAY:
    case PNG_COLOR_TYPE_GRAY_ALPHA: {
      const std::size_t step = (info.color_type == PNG_COLOR_TYPE_GRAY ? 1 : 2) * (sixteen ? 2 : 1);
      const bool clip = info.color_type == PNG_COLOR_TYPE_GRAY;
      for (std::size_t x = 0; x < w; ++x) {
        const std::uint8_t v = sixteen ? from16(in + step * x, clip, mode) : in[step * x];
        out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = v;
      }
      break;
    }
    case PNG_COLOR_TYPE_RGB:
    case PNG_COLOR_TYPE_RGB_ALPHA: {
      const std::size_t channels = info.color_type == PNG_COLOR_TYPE_RGB ? 3 : 4;
      if (!sixteen && channels == 3) {
        std::memcpy(out, in, 3 * w);
        break;
      }
      const std::size_t bytes = sixteen ? 2 : 1;
      for (std::size_t x = 0; x < w; ++x) {
        for (std::size_t c = 0; c < 3; ++c) {
          const std::uint8_t* p = in + (channels * x + c) * bytes;
          out[3 * x + c] = sixteen ? from16(p, false, mode) : *p;
        }
      }
      break;
    }
    default: {  // palette: indices (one per byte after png_set_packing)
      for (std::size_t x = 0; x < w; ++x) std::memcpy(out + 3 * x, info.palette.data() + 3 * in[x], 3);
      break;
    }
  }
}

// C-style as jpeg_decode_raw: nothing with a destructor is created after setjmp.
void png_decode_raw(const std::uint8_t* data, std::size_t size, SixteenBitMode mode, bool want_exif,
                    PngInfo& info, std::vector<std::uint8_t>& pixels, std::vector<std::uint8_t>& raw,
                    char* message, bool& ok) {
  ok = false;
  PngErrorState state;
  state.message[0] = '\0';
  PngReader reader{data, size, 0};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, png_error_handler, png_warning_handler);
  if (!png) {
    std::snprintf(message, 256, "libpng cannot start");
    return;
  }
  png_infop png_info = png_create_info_struct(png);
  if (!png_info || setjmp(state.jump)) {
    std::snprintf(message, 256, "%s", state.message);
    png_destroy_read_struct(&png, &png_info, nullptr);
    return;
  }
  png_set_read_fn(png, &reader, png_read_memory);
  png_set_user_limits(png, 0x7FFFFFFF, 0x7FFFFFFF);  // our own limit was checked on the header
  png_read_info(png, png_info);
  info.width = png_get_image_width(png, png_info);
  info.height = png_get_image_height(png, png_info);
  info.bit_depth = png_get_bit_depth(png, png_info);
  info.color_type = png_get_color_type(png, png_info);
  info.interlace = png_get_interlace_type(png, png_info);
  if (info.color_type == PNG_COLOR_TYPE_PALETTE) {
    // Entries a short PLTE lacks are black, as Pillow >= 10 shows them (THINGSvision's users get a
    // current Pillow from PyPI; Pillow 9 and older showed them as the grey ramp i, i, i).
    info.palette.fill(0);
    png_colorp colors = nullptr;
    int count = 0;
    if (png_get_PLTE(png, png_info, &colors, &count) == PNG_INFO_PLTE) {
      for (int i = 0; i < count && i < 256; ++i) {
        info.palette[3 * i] = colors[i].red;
        info.palette[3 * i + 1] = colors[i].green;
        info.palette[3 * i + 2] = colors[i].blue;
      }
    }
    png_set_packing(png);
  } else if (info.color_type == PNG_COLOR_TYPE_GRAY && info.bit_depth < 8) {
    png_set_expand_gray_1_2_4_to_8(png);  // 1 → 0/255, 2 → ×85, 4 → ×17: PIL's "1", "L;2", "L;4"
  }
  if (want_exif) {
    png_bytep exif = nullptr;
    png_uint_32 exif_size = 0;
    if (png_get_eXIf_1(png, png_info, &exif_size, &exif) != 0 && exif) {
      info.exif_orientation = exif_orientation_from_tiff(exif, exif_size);
    }
  }
  info.passes = png_set_interlace_handling(png);
  png_read_update_info(png, png_info);
  info.rowbytes = png_get_rowbytes(png, png_info);
  pixels.resize(std::size_t(info.width) * info.height * 3);
  if (info.passes == 1) {
    raw.resize(info.rowbytes);
    for (std::uint32_t y = 0; y < info.height; ++y) {
      png_read_row(png, raw.data(), nullptr);
      png_row_to_rgb(info, raw.data(), pixels.data() + std::size_t(y) * info.width * 3, mode);
    }
  } else {
    raw.resize(info.rowbytes * info.height);
    for (int pass = 0; pass < info.passes; ++pass) {
      for (std::uint32_t y = 0; y < info.height; ++y) png_read_row(png, raw.data() + y * info.rowbytes, nullptr);
    }
    for (std::uint32_t y = 0; y < info.height; ++y) {
      png_row_to_rgb(info, raw.data() + y * info.rowbytes, pixels.data() + std::size_t(y) * info.width * 3, mode);
    }
  }
  png_destroy_read_struct(&png, &png_info, nullptr);
  ok = true;
}

Image decode_png(const std::uint8_t* data, std::size_t size, const std::string& name, const DecodeOptions& options) {
  Image image;
  PngInfo info;
  std::vector<std::uint8_t> raw;
  std::array<char, 256> message{};
  bool ok = false;
  png_decode_raw(data, size, options.sixteen_bit, options.apply_exif_orientation, info, image.pixels, raw,
                 message.data(), ok);
  if (!ok) {
    const std::string text = message.data();
    if (text == "file is truncated") fail(name, "file is truncated (PNG data ends early)");
    fail(name, fmt::format("corrupt PNG data (libpng: {})", text));
  }
  if (info.bit_depth == 16 && options.sixteen_bit == SixteenBitMode::clip_like_pil) {
    std::call_once(sixteen_bit_warning, [&] {
      std::fprintf(stderr,
                   "thingsvision: warning: 16-bit image '%s' converted to 8 bits as PIL's convert(\"RGB\") "
                   "does (grey values clip at 255, colour keeps the high byte); "
                   "SixteenBitMode::scale maps 0..65535 to 0..255 instead (reported once)\n",
                   name.c_str());
    });
  }
  image.width = static_cast<int>(info.width);
  image.height = static_cast<int>(info.height);
  if (options.apply_exif_orientation) image = apply_orientation(std::move(image), info.exif_orientation);
  return image;
}

// ---- TIFF, BMP, WebP through OpenCV ----------------------------------------------------------

Image decode_opencv(const std::uint8_t* data, std::size_t size, const std::string& name, Format format,
                    const DecodeOptions& options) {
  cv::Mat decoded;
  try {
    const cv::Mat buffer(1, static_cast<int>(size), CV_8U, const_cast<std::uint8_t*>(data));
    const int flags = cv::IMREAD_COLOR | (options.apply_exif_orientation ? 0 : cv::IMREAD_IGNORE_ORIENTATION);
    decoded = cv::imdecode(buffer, flags);
  } catch (const cv::Exception& e) {
    fail(name, fmt::format("corrupt {} data (OpenCV: {})", format_name(format), e.err));
  }
  if (decoded.empty() || decoded.type() != CV_8UC3) {
    fail(name, fmt::format("corrupt or unsupported {} data (OpenCV could not decode it)", format_name(format)));
  }
  Image image = make_image(static_cast<std::uint64_t>(decoded.cols), static_cast<std::uint64_t>(decoded.rows));
  for (int y = 0; y < decoded.rows; ++y) {
    const std::uint8_t* in = decoded.ptr<std::uint8_t>(y);
    std::uint8_t* out = image.row(y);
    for (int x = 0; x < decoded.cols; ++x) {
      out[3 * x] = in[3 * x + 2];
      out[3 * x + 1] = in[3 * x + 1];
      out[3 * x + 2] = in[3 * x];
    }
  }
  return image;
}

/// The format of an encoded image, after the header checks: not empty, a known format, a
/// header whose size is within options.max_image_pixels. Throws as decode_image.
Format checked_header(const std::uint8_t* data, std::size_t size, const std::string& name,
                      const DecodeOptions& options) {
  if (size == 0) fail(name, "file is empty (0 bytes)");
  const Format format = detect_format(data, size);
  switch (format) {
    case Format::jpeg: check_size(jpeg_header(data, size, name), options, name); break;
    case Format::png: check_size(png_header(data, size, name), options, name); break;
    case Format::tiff: check_size(tiff_header(data, size, name), options, name); break;
    case Format::bmp: check_size(bmp_header(data, size, name), options, name); break;
    case Format::webp: check_size(webp_header(data, size, name), options, name); break;
    case Format::unknown:
      fail(name, "not a supported image (the content is not JPEG, PNG, TIFF, BMP or WebP, whatever the extension)");
  }
  return format;
}

/// The first `max_bytes` bytes of the file at `path` (all of it by default); `whole` (if given)
/// says whether that is the whole file. Throws Error(input) naming the file as decode_image.
std::vector<std::uint8_t> read_image_file(const std::filesystem::path& path,
                                          std::size_t max_bytes = std::numeric_limits<std::size_t>::max(),
                                          bool* whole = nullptr) {
  const std::string name = path.string();
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(name, "it is a directory, not a file");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    const bool exists = std::filesystem::exists(path, ec);
    fail(name, exists ? "file cannot be opened for reading (permission denied?)" : "file does not exist");
  }
  const std::streamsize size = in.tellg();
  if (size < 0) fail(name, "file cannot be read");
  const std::size_t n = std::min(static_cast<std::size_t>(size), max_bytes);
  if (whole) *whole = n == static_cast<std::size_t>(size);
  std::vector<std::uint8_t> bytes(n);
  in.seekg(0);
  if (n > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(n))) {
    fail(name, "file cannot be read");
  }
  return bytes;
}

}  // namespace

Image decode_image(const std::uint8_t* data, std::size_t size, const std::string& name,
                   const DecodeOptions& options) {
  const Format format = checked_header(data, size, name, options);
  if (format == Format::jpeg) return decode_jpeg(data, size, name, options);
  if (format == Format::png) return decode_png(data, size, name, options);
  return decode_opencv(data, size, name, format, options);
}

Image decode_image(const std::filesystem::path& path, const DecodeOptions& options) {
  const std::vector<std::uint8_t> bytes = read_image_file(path);
  return decode_image(bytes.data(), bytes.size(), path.string(), options);
}

void check_image_header(const std::filesystem::path& path, const DecodeOptions& options) {
  bool whole = false;
  const std::vector<std::uint8_t> bytes = read_image_file(path, 16 * 1024, &whole);
  if (whole || detect_format(bytes.data(), bytes.size()) == Format::unknown) {
    checked_header(bytes.data(), bytes.size(), path.string(), options);
    return;
  }
  try {
    checked_header(bytes.data(), bytes.size(), path.string(), options);
  } catch (const Error&) {
    // the header may lie beyond the bytes read (a large EXIF block): decode_image decides
  }
}

}  // namespace thingsvision
