// A file-backed NOR flash for tests and demos, modelled on real parts: the NOR rules of flash.h
// enforced, a timing model, and fault injection.
//
// Timing: every Erase costs `erase_block_time` per block and every Program costs `program_time`
// per erase block's worth of bytes (pro rata); the default is NXP's C55 flash (a 256 KiB block:
// erase 884 ms, program 552 ms). Nothing sleeps: elapsed() adds the costs up.
//
// Faults, counted in modifying operations (Erase and Program calls, 1-based since Create/Open):
// - CutPowerAfter(n): operation n is left partial (see below) and returns kUnavailable; from then
//   on every call returns kUnavailable ("no power") until PowerOn(), as after a reset;
// - FailOperation(n): operation n is left partial and returns kIo; the flash stays usable;
// - WearOut(block): every Erase or Program touching that block is left partial and returns kIo.
// A partial Program has programmed a prefix of its write units and, in the next unit, only some of
// the bits it should have cleared. A partial Erase has erased a prefix of its blocks, and the next
// block holds each byte's old value with some bits set: neither old nor erased. The choice is
// deterministic from the seed, so a failing case can be replayed.
//
// The file holds the flash's bytes and nothing else: reopening it is a reboot that keeps them.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <set>
#include <string>

#include "core/file.h"
#include "flash/flash.h"

namespace aloft::flash {

struct FlashTiming {
  std::chrono::nanoseconds erase_block_time = std::chrono::milliseconds(884);
  std::chrono::nanoseconds program_time = std::chrono::milliseconds(552);  // per erase block
  uint32_t reference_block = 256 * 1024;  // the block size the two times above are for
};

class SimFlash final : public Flash {
 public:
  // A new flash, all 0xFF, in a new file at `path` (refused when it exists).
  static Result<SimFlash> Create(const std::string& path, const FlashGeometry& geometry,
                                 FlashTiming timing = {}, uint64_t seed = 1);
  // The flash in an existing file, whose size must equal geometry.size.
  static Result<SimFlash> Open(const std::string& path, const FlashGeometry& geometry,
                               FlashTiming timing = {}, uint64_t seed = 1);

  const FlashGeometry& geometry() const override { return geometry_; }
  Status Read(uint64_t offset, std::span<uint8_t> out) override;
  Status Erase(uint64_t offset, uint64_t length) override;
  Status Program(uint64_t offset, ByteSpan data) override;

  void CutPowerAfter(uint64_t operation) { cut_at_ = operation; }
  void FailOperation(uint64_t operation) { fail_at_ = operation; }
  void WearOut(uint64_t block) { worn_.insert(block); }
  // Power back: calls work again; the bytes are what the cut left.
  void PowerOn() {
    powered_ = true;
    cut_at_.reset();
  }
  bool powered() const { return powered_; }

  uint64_t operations() const { return operations_; }  // Erase and Program calls so far
  std::chrono::nanoseconds elapsed() const { return elapsed_; }
  // Erase count per block: the wear a real part would have.
  uint64_t erase_count(uint64_t block) const;

 private:
  SimFlash(File file, FlashGeometry geometry, FlashTiming timing, uint64_t seed);
  // Counts one modifying operation; kUnavailable without power. Sets `partial` and `failure` when
  // this operation is the one to cut, fail or hit a worn block.
  Status Begin(uint64_t offset, uint64_t length, bool& partial, std::optional<Error>& failure);

  File file_;
  FlashGeometry geometry_;
  FlashTiming timing_;
  std::mt19937_64 rng_;
  bool powered_ = true;
  std::optional<uint64_t> cut_at_, fail_at_;
  std::set<uint64_t> worn_;
  std::vector<uint64_t> erase_counts_;
  uint64_t operations_ = 0;
  std::chrono::nanoseconds elapsed_{0};
};

}  // namespace aloft::flash
