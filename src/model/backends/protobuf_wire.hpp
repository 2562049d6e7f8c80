// protobuf_wire.hpp — protobuf messages in wire format: fields read in order, edited, written back;
// no schema and no protobuf library (the ONNX loader's ModelProto rewrite); private.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace thingsvision::protobuf {

/// How a field's value is encoded (groups, wire types 3 and 4, are not read).
enum class WireType : std::uint8_t { varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5 };

/// One field as it was read or set: a varint value, or the bytes of a fixed or length-delimited
/// one (a view into the parsed buffer, or into bytes the field owns; copies share them).
class Field {
 public:
  Field() = default;
  /// A varint field.
  static Field varint(std::uint32_t number, std::uint64_t value);
  /// A length-delimited field (string, bytes, message) that owns a copy of `bytes`.
  static Field bytes(std::uint32_t number, std::string bytes);
  /// A fixed32 field holding `bits` (a float's bits for a float field), little-endian.
  static Field fixed32(std::uint32_t number, std::uint32_t bits);
  /// A field of `wire` type whose bytes are a view into a buffer the caller keeps alive.
  static Field view(std::uint32_t number, WireType wire, std::string_view bytes);

  std::uint32_t number() const { return number_; }
  WireType wire() const { return wire_; }
  /// The value of a varint field (0 for others).
  std::uint64_t varint_value() const { return varint_; }
  /// The payload of a fixed or length-delimited field (empty for a varint).
  std::string_view bytes_value() const { return bytes_; }
  /// True for a length-delimited field `number` (a string, bytes or sub-message).
  bool is_bytes(std::uint32_t number) const {
    return number_ == number && wire_ == WireType::length_delimited;
  }

 private:
  std::uint32_t number_ = 0;
  WireType wire_ = WireType::varint;
  std::uint64_t varint_ = 0;
  std::string_view bytes_;
  std::shared_ptr<const std::string> owned_;  // what bytes_ views, when the field owns its bytes
};

/// A message as its fields, in the order read; unknown fields are kept and written back as read.
struct Message {
  std::vector<Field> fields;

  /// Reads the fields of `bytes`, which must outlive the message (fields view into it). Throws
  /// Error(model) "malformed protobuf message: ..." with the byte offset for a truncated or bad field.
  static Message parse(std::string_view bytes);
  /// The message in wire format: each field's key, then its value, in order.
  std::string serialize() const;
  /// Appends serialize() to `out`.
  void serialize_to(std::string& out) const;
  /// How many bytes serialize() writes.
  std::size_t serialized_size() const;
  /// The bytes of the first length-delimited field `number` ("" if none).
  std::string_view first_bytes(std::uint32_t number) const;
};

/// Calls `visit(field)` for each field of `bytes` without storing them (the same checks as
/// Message::parse); for large messages read once.
template <typename Visit>
void for_each_field(std::string_view bytes, Visit&& visit);

/// Appends a field key (number and wire type) to `out`.
void write_key(std::string& out, std::uint32_t number, WireType wire);
/// Appends `value` as a varint to `out`.
void write_varint(std::string& out, std::uint64_t value);
/// How many bytes write_varint writes for `value`.
std::size_t varint_size(std::uint64_t value);

/// Reads one field at `offset` of `bytes` into `field`, advancing `offset`; throws like Message::parse.
void read_field(std::string_view bytes, std::size_t& offset, Field& field);

template <typename Visit>
void for_each_field(std::string_view bytes, Visit&& visit) {
  std::size_t offset = 0;
  Field field;
  while (offset < bytes.size()) {
    read_field(bytes, offset, field);
    visit(field);
  }
}

}  // namespace thingsvision::protobuf
