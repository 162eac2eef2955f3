#include "flash/flash.h"

#include <bit>

namespace aloft::flash {
namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

Status FlashGeometry::Validate() const {
  auto bad = [this](const std::string& why) {
    return Error(Code::kInvalidArgument, "flash geometry (" + Describe() + "): " + why);
  };
  if (erase_block == 0 || !std::has_single_bit(erase_block)) {
    return bad("the erase block must be a power of two");
  }
  if (write_unit == 0 || !std::has_single_bit(write_unit) || write_unit > erase_block) {
    return bad("the write unit must be a power of two no larger than the erase block");
  }
  if (size == 0 || size % erase_block != 0) {
    return bad("the size must be a non-zero multiple of the erase block");
  }
  return OkStatus();
}

std::string FlashGeometry::Describe() const {
  return SizeText(size) + ", " + SizeText(erase_block) + " erase blocks, " +
         std::to_string(write_unit) + "-byte write unit";
}

Status CheckRange(const FlashGeometry& g, std::string_view what, uint64_t offset, uint64_t length,
                  uint64_t alignment, std::string_view unit_name) {
  const std::string where =
      std::string(what) + " at " + Hex(offset) + " + " + std::to_string(length) + " bytes";
  if (offset > g.size || length > g.size - offset) {
    return Error(Code::kOutOfRange,
                 where + ": beyond the flash's " + std::to_string(g.size) + " bytes");
  }
  if (offset % alignment != 0 || length % alignment != 0) {
    return Error(Code::kInvalidArgument, where + ": not whole " + std::to_string(alignment) +
                                             "-byte " + std::string(unit_name) + "s");
  }
  return OkStatus();
}

}  // namespace aloft::flash
