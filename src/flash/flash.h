// The Flash seam: what the agent's installers and the boot model know of a device's flash memory.
// Real hardware, a file or block device, and the NOR simulator (sim_flash.h) implement it.
//
// NOR rules every user must follow, because real parts enforce them:
// - Erase works on whole erase blocks and sets every byte to 0xFF;
// - Program works on whole write units and can only clear bits (1 -> 0); programming a bit that is
//   0 back to 1 is an error, so a region must be erased before it is written again;
// - an interrupted Erase or Program leaves its region partly done, with bytes nobody can predict.
//
//   FlashGeometry g = flash.geometry();
//   ALOFT_RETURN_IF_ERROR(flash.Erase(slot_offset, g.erase_block));
//   ALOFT_RETURN_IF_ERROR(flash.Program(slot_offset, chunk));   // chunk.size() % g.write_unit == 0
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/encoding.h"
#include "core/error.h"
#include "core/text.h"

namespace aloft::flash {

struct FlashGeometry {
  uint64_t size = 0;         // bytes, a multiple of erase_block
  uint32_t erase_block = 0;  // bytes, a power of two
  uint32_t write_unit = 0;   // bytes, a power of two dividing erase_block

  uint64_t blocks() const { return erase_block ? size / erase_block : 0; }
  // kInvalidArgument naming the broken rule.
  Status Validate() const;
  // "1 MiB, 4 KiB erase blocks, 8-byte write unit"
  std::string Describe() const;
};

class Flash {
 public:
  virtual ~Flash() = default;
  virtual const FlashGeometry& geometry() const = 0;
  // Any range inside the flash.
  virtual Status Read(uint64_t offset, std::span<uint8_t> out) = 0;
  // [offset, offset + length) must be whole erase blocks.
  virtual Status Erase(uint64_t offset, uint64_t length) = 0;
  // [offset, offset + data.size()) must be whole write units, currently erased wherever `data` has
  // a 1 bit that the flash does not.
  virtual Status Program(uint64_t offset, ByteSpan data) = 0;
};

// Checks a range against the geometry; `what` names the operation in the error:
// "Erase at 0x1000 + 100 bytes: not a whole number of 4096-byte erase blocks".
Status CheckRange(const FlashGeometry& g, std::string_view what, uint64_t offset, uint64_t length,
                  uint64_t alignment, std::string_view unit_name);

}  // namespace aloft::flash
