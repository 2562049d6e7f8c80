// protobuf_wire.cpp — protobuf wire format: varints, keys, length-delimited and fixed fields.
#include "model/backends/protobuf_wire.hpp"

#include <fmt/format.h>

#include <utility>

#include "thingsvision/error.hpp"

namespace thingsvision::protobuf {

namespace {

[[noreturn]] void malformed(std::size_t offset, const std::string& what) {
  throw Error(ErrorKind::model, fmt::format("malformed protobuf message: {} at byte {}", what, offset));
}

std::uint64_t read_varint(std::string_view bytes, std::size_t& offset) {
  const std::size_t start = offset;
  std::uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (offset >= bytes.size()) malformed(start, "truncated varint");
    const auto byte = static_cast<unsigned char>(bytes[offset++]);
    value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return value;
  }
  malformed(start, "varint longer than 10 bytes");
}

}  // namespace

void write_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out += static_cast<char>((value & 0x7f) | 0x80);
    value >>= 7;
  }
  out += static_cast<char>(value);
}

std::size_t varint_size(std::uint64_t value) {
  std::size_t size = 1;
  for (; value >= 0x80; value >>= 7) ++size;
  return size;
}

void write_key(std::string& out, std::uint32_t number, WireType wire) {
  write_varint(out, (static_cast<std::uint64_t>(number) << 3) | static_cast<std::uint64_t>(wire));
}

Field Field::varint(std::uint32_t number, std::uint64_t value) {
  Field f;
  f.number_ = number;
  f.wire_ = WireType::varint;
  f.varint_ = value;
  return f;
}

Field Field::bytes(std::uint32_t number, std::string bytes) {
  Field f;
  f.number_ = number;
  f.wire_ = WireType::length_delimited;
  f.owned_ = std::make_shared<const std::string>(std::move(bytes));
  f.bytes_ = *f.owned_;
  return f;
}

Field Field::fixed32(std::uint32_t number, std::uint32_t bits) {
  std::string bytes(4, '\0');
  for (std::size_t i = 0; i < 4; ++i) bytes[i] = static_cast<char>((bits >> (8 * i)) & 0xff);
  Field f = Field::bytes(number, std::move(bytes));
  f.wire_ = WireType::fixed32;
  return f;
}

Field Field::view(std::uint32_t number, WireType wire, std::string_view bytes) {
  Field f;
  f.number_ = number;
  f.wire_ = wire;
  f.bytes_ = bytes;
  return f;
}

void read_field(std::string_view bytes, std::size_t& offset, Field& field) {
  const std::size_t start = offset;
  const std::uint64_t key = read_varint(bytes, offset);
  const auto number = key >> 3;
  if (number == 0 || number > 0x1fffffff) malformed(start, fmt::format("field number {}", number));
  const auto wire = static_cast<unsigned>(key & 7);
  const auto n = static_cast<std::uint32_t>(number);
  switch (wire) {
    case 0:
      field = Field::varint(n, read_varint(bytes, offset));
      return;
    case 1:
    case 5: {
      const std::size_t size = wire == 1 ? 8 : 4;
      if (bytes.size() - offset < size) malformed(start, fmt::format("truncated field {}", n));
      field = Field::view(n, wire == 1 ? WireType::fixed64 : WireType::fixed32, bytes.substr(offset, size));
      offset += size;
      return;
    }
    case 2: {
      const std::uint64_t size = read_varint(bytes, offset);
      if (size > bytes.size() - offset) {
        malformed(start, fmt::format("field {} of {} bytes past the end ({} left)", n, size,
                                     bytes.size() - offset));
      }
      field = Field::view(n, WireType::length_delimited, bytes.substr(offset, size));
      offset += size;
      return;
    }
    default:
      malformed(start, fmt::format("field {} of wire type {} (groups are not read)", n, wire));
  }
}

Message Message::parse(std::string_view bytes) {
  Message message;
  for_each_field(bytes, [&](const Field& field) { message.fields.push_back(field); });
  return message;
}

void Message::serialize_to(std::string& out) const {
  for (const Field& field : fields) {
    write_key(out, field.number(), field.wire());
    if (field.wire() == WireType::varint) {
      write_varint(out, field.varint_value());
      continue;
    }
    if (field.wire() == WireType::length_delimited) write_varint(out, field.bytes_value().size());
    out.append(field.bytes_value());
  }
}

std::size_t Message::serialized_size() const {
  std::size_t size = 0;
  for (const Field& field : fields) {
    size += varint_size(static_cast<std::uint64_t>(field.number()) << 3);
    if (field.wire() == WireType::varint) {
      size += varint_size(field.varint_value());
    } else {
      const std::size_t n = field.bytes_value().size();
      size += n + (field.wire() == WireType::length_delimited ? varint_size(n) : 0);
    }
  }
  return size;
}

std::string Message::serialize() const {
  std::string out;
  out.reserve(serialized_size());
  serialize_to(out);
  return out;
}

std::string_view Message::first_bytes(std::uint32_t number) const {
  for (const Field& field : fields) {
    if (field.is_bytes(number)) return field.bytes_value();
  }
  return {};
}

}  // namespace thingsvision::protobuf
