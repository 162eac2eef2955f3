#include "flash/sim_flash.h"

#include <unistd.h>

#include <algorithm>
#include <vector>

namespace aloft::flash {
namespace {
constexpr size_t kSimChunk = 16 * 1024;  // the simulator's buffer, whatever the operation's size
}  // namespace

SimFlash::SimFlash(File file, FlashGeometry geometry, FlashTiming timing, uint64_t seed)
    : file_(std::move(file)),
      geometry_(geometry),
      timing_(timing),
      rng_(seed),
      erase_counts_(geometry.blocks(), 0) {}

Result<SimFlash> SimFlash::Create(const std::string& path, const FlashGeometry& geometry,
                                  FlashTiming timing, uint64_t seed) {
  ALOFT_RETURN_IF_ERROR(geometry.Validate());
  ALOFT_ASSIGN_OR_RETURN(File file, File::OpenReadWrite(path, File::Creation::kExclusive));
  SimFlash flash(std::move(file), geometry, timing, seed);
  std::vector<uint8_t> erased(std::min<uint64_t>(geometry.size, 1 << 20), 0xFF);
  for (uint64_t at = 0; at < geometry.size; at += erased.size()) {
    uint64_t n = std::min<uint64_t>(erased.size(), geometry.size - at);
    Status s = flash.file_.WriteAt(at, ByteSpan(erased.data(), n));
    if (!s.ok()) {
      ::unlink(path.c_str());
      return std::move(s).error();
    }
  }
  return flash;
}

Result<SimFlash> SimFlash::Open(const std::string& path, const FlashGeometry& geometry,
                                FlashTiming timing, uint64_t seed) {
  ALOFT_RETURN_IF_ERROR(geometry.Validate());
  ALOFT_ASSIGN_OR_RETURN(File file, File::OpenReadWrite(path, File::Creation::kMustExist));
  ALOFT_ASSIGN_OR_RETURN(uint64_t size, file.Size());
  if (size != geometry.size) {
    return Error(Code::kInvalidArgument, path + ": holds " + std::to_string(size) +
                                             " bytes, the geometry says " +
                                             std::to_string(geometry.size));
  }
  return SimFlash(std::move(file), geometry, timing, seed);
}

Status SimFlash::Read(uint64_t offset, std::span<uint8_t> out) {
  if (!powered_) return Error(Code::kUnavailable, "flash: no power (read)");
  ALOFT_RETURN_IF_ERROR(CheckRange(geometry_, "Read", offset, out.size(), 1, "byte"));
  return file_.ReadAt(offset, out);
}

Status SimFlash::Begin(uint64_t offset, uint64_t length, bool& partial,
                       std::optional<Error>& failure) {
  const uint64_t n = ++operations_;
  partial = false;
  if (cut_at_ && n == *cut_at_) {
    partial = true;
    powered_ = false;
    failure = Error(Code::kUnavailable, "flash: power cut during operation " + std::to_string(n));
    return OkStatus();
  }
  if (fail_at_ && n == *fail_at_) {
    partial = true;
    failure = Error(Code::kIo, "flash: operation " + std::to_string(n) + " failed (injected)");
    return OkStatus();
  }
  const uint64_t first = offset / geometry_.erase_block;
  const uint64_t last = length ? (offset + length - 1) / geometry_.erase_block : first;
  for (uint64_t b = first; b <= last; ++b) {
    if (worn_.count(b)) {
      partial = true;
      failure = Error(Code::kIo, "flash: erase block " + std::to_string(b) + " is worn out");
      return OkStatus();
    }
  }
  return OkStatus();
}

Status SimFlash::Erase(uint64_t offset, uint64_t length) {
  if (!powered_) return Error(Code::kUnavailable, "flash: no power (erase)");
  ALOFT_RETURN_IF_ERROR(
      CheckRange(geometry_, "Erase", offset, length, geometry_.erase_block, "erase block"));
  bool partial = false;
  std::optional<Error> failure;
  ALOFT_RETURN_IF_ERROR(Begin(offset, length, partial, failure));
  const uint64_t blocks = length / geometry_.erase_block;
  // A partial erase completes `whole` blocks and leaves the next one in between.
  const uint64_t whole = partial ? (blocks ? rng_() % blocks : 0) : blocks;
  std::vector<uint8_t> buf(std::min<uint64_t>(geometry_.erase_block, kSimChunk), 0xFF);
  for (uint64_t i = 0; i < whole; ++i) {
    const uint64_t at = offset + i * geometry_.erase_block;
    for (uint64_t o = 0; o < geometry_.erase_block; o += buf.size()) {
      const size_t n = std::min<uint64_t>(buf.size(), geometry_.erase_block - o);
      ALOFT_RETURN_IF_ERROR(file_.WriteAt(at + o, ByteSpan(buf.data(), n)));
    }
    ++erase_counts_[at / geometry_.erase_block];
    elapsed_ += timing_.erase_block_time * geometry_.erase_block / timing_.reference_block;
  }
  if (partial && whole < blocks) {
    const uint64_t at = offset + whole * geometry_.erase_block;
    for (uint64_t o = 0; o < geometry_.erase_block; o += buf.size()) {
      std::span<uint8_t> part(buf.data(),
                              std::min<uint64_t>(buf.size(), geometry_.erase_block - o));
      ALOFT_RETURN_IF_ERROR(file_.ReadAt(at + o, part));
      for (auto& byte : part) byte |= static_cast<uint8_t>(rng_());  // some bits on the way to 1
      ALOFT_RETURN_IF_ERROR(file_.WriteAt(at + o, part));
    }
    ++erase_counts_[at / geometry_.erase_block];
    elapsed_ += timing_.erase_block_time * geometry_.erase_block / timing_.reference_block / 2;
  }
  if (failure) return std::move(*failure);
  return OkStatus();
}

Status SimFlash::Program(uint64_t offset, ByteSpan data) {
  if (!powered_) return Error(Code::kUnavailable, "flash: no power (program)");
  ALOFT_RETURN_IF_ERROR(
      CheckRange(geometry_, "Program", offset, data.size(), geometry_.write_unit, "write unit"));
  // Memory stays at one chunk whatever the length: the range is checked whole first (a refused
  // Program changes nothing), then applied chunk by chunk.
  std::vector<uint8_t> current(std::min<size_t>(data.size(), kSimChunk));
  for (size_t at = 0; at < data.size(); at += current.size()) {
    ByteSpan want = data.subspan(at, std::min(current.size(), data.size() - at));
    std::span<uint8_t> have(current.data(), want.size());
    ALOFT_RETURN_IF_ERROR(file_.ReadAt(offset + at, have));
    for (size_t i = 0; i < want.size(); ++i) {
      if (want[i] & ~have[i]) {
        char where[96];
        std::snprintf(where, sizeof where,
                      "Program at 0x%llx: byte 0x%02x over 0x%02x would set bits that are 0; "
                      "erase first",
                      static_cast<unsigned long long>(offset + at + i), want[i], have[i]);
        return Error(Code::kInvalidArgument, where);
      }
    }
  }
  bool partial = false;
  std::optional<Error> failure;
  ALOFT_RETURN_IF_ERROR(Begin(offset, data.size(), partial, failure));
  const uint64_t units = data.size() / geometry_.write_unit;
  const uint64_t whole = partial ? (units ? rng_() % units : 0) : units;
  const size_t done = static_cast<size_t>(whole * geometry_.write_unit);
  const size_t touched = partial && whole < units ? done + geometry_.write_unit : done;
  for (size_t at = 0; at < touched; at += current.size()) {
    std::span<uint8_t> have(current.data(), std::min(current.size(), touched - at));
    ALOFT_RETURN_IF_ERROR(file_.ReadAt(offset + at, have));
    for (size_t i = 0; i < have.size(); ++i) {
      if (at + i < done) {
        have[i] &= data[at + i];
      } else {  // the interrupted unit: only some of the bits to clear were cleared
        have[i] &= static_cast<uint8_t>(data[at + i] | rng_());
      }
    }
    ALOFT_RETURN_IF_ERROR(file_.WriteAt(offset + at, have));
  }
  elapsed_ += timing_.program_time * touched / timing_.reference_block;
  if (failure) return std::move(*failure);
  return OkStatus();
}

uint64_t SimFlash::erase_count(uint64_t block) const {
  return block < erase_counts_.size() ? erase_counts_[block] : 0;
}

}  // namespace aloft::flash
