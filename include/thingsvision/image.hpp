// image.hpp — Image (8-bit RGB) and decode_image: PIL's Image.open(f).convert("RGB"), with damage checks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace thingsvision {

/// An 8-bit RGB image, rows top to bottom, pixels interleaved R,G,B (PIL's "RGB" mode).
struct Image {
  int width = 0;
  int height = 0;
  /// height × width × 3 bytes.
  std::vector<std::uint8_t> pixels;

  /// Pointer to the first byte of row `y`.
  const std::uint8_t* row(int y) const noexcept { return pixels.data() + std::size_t(y) * width * 3; }
  std::uint8_t* row(int y) noexcept { return pixels.data() + std::size_t(y) * width * 3; }
};

/// How 16-bit images become 8-bit.
enum class SixteenBitMode {
  /// As PIL's convert("RGB") (default; warns once): 16-bit grey clips above 255, 16-bit RGB, RGBA
  /// and LA keep the high byte of each sample.
  clip_like_pil,
  scale,          ///< scale 0..65535 to 0..255 (value / 257, rounded), every colour type
};

/// Options for decode_image.
struct DecodeOptions {
  /// Rotate/flip by the EXIF orientation tag. Off by default: PIL does not apply it.
  bool apply_exif_orientation = false;
  /// Images with more pixels are refused before decoding; = 2 × PIL.Image.MAX_IMAGE_PIXELS.
  std::uint64_t max_image_pixels = 2ull * 89478485ull;
  SixteenBitMode sixteen_bit = SixteenBitMode::clip_like_pil;
};

/// Decodes the image file at `path` to RGB exactly as PIL's Image.open(path).convert("RGB").
/// The format is detected from the content, not the extension. Throws Error(input) naming the
/// file for a missing, empty, truncated, corrupt or non-image file and for a decompression bomb.
Image decode_image(const std::filesystem::path& path, const DecodeOptions& options = {});

/// What is cheap to check without decoding, reading at most 16 KiB: the file is readable, not empty,
/// an image by its content, with a header size within options.max_image_pixels. Throws as decode_image;
/// a truncated or corrupt image body passes (decode_image finds it).
void check_image_header(const std::filesystem::path& path, const DecodeOptions& options = {});

/// As decode_image, for an encoded image already in memory; `name` is used in error messages.
Image decode_image(const std::uint8_t* data, std::size_t size, const std::string& name,
                   const DecodeOptions& options = {});

}  // namespace thingsvision
