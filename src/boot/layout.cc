#include "boot/layout.h"

#include <algorithm>
#include <cstdio>

#include "core/hash.h"
#include "core/text.h"

namespace aloft::boot {
namespace {

std::string Line(const char* name, uint64_t offset, uint64_t size) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%-9s 0x%08llx  0x%08llx  (%s)\n", name,
                static_cast<unsigned long long>(offset), static_cast<unsigned long long>(size),
                SizeText(size).c_str());
  return buf;
}

constexpr size_t kCopyChunk = 64 * 1024;

}  // namespace

Result<LayoutKind> ParseLayoutKind(std::string_view name) {
  if (name == "ab") return LayoutKind::kAb;
  if (name == "backup") return LayoutKind::kBackup;
  return Error(Code::kInvalidArgument,
               "layout '" + std::string(name) + "': expected ab or backup (or file)");
}

Result<Layout> Layout::Compute(LayoutKind kind, const flash::FlashGeometry& g) {
  ALOFT_RETURN_IF_ERROR(g.Validate());
  Layout l;
  l.kind = kind;
  l.geometry = g;
  const uint64_t eb = g.erase_block, blocks = g.blocks();
  if (kind == LayoutKind::kAb) {
    if (blocks < 4) {
      return Error(Code::kInvalidArgument,
                   "ab layout needs at least 4 erase blocks, flash has " + std::to_string(blocks));
    }
    const uint64_t slot_blocks = (blocks - 2) / 2;
    l.control = {0, eb};
    l.slots[0] = {2 * eb, slot_blocks * eb};
    l.slots[1] = {(2 + slot_blocks) * eb, slot_blocks * eb};
    return l;
  }
  if (blocks < 6) {
    return Error(Code::kInvalidArgument, "backup layout needs at least 6 erase blocks, flash has " +
                                             std::to_string(blocks));
  }
  const uint64_t third = (blocks - 3) / 3;
  l.loader = {0, eb};
  l.control = {eb, 2 * eb};
  l.slots[0] = {3 * eb, third * eb};
  l.slots[1] = {(3 + third) * eb, third * eb};
  l.download = {(3 + 2 * third) * eb, (blocks - 3 - 2 * third) * eb};
  return l;
}

std::string Layout::Describe() const {
  std::string s = std::string(LayoutName(kind)) + " layout on " + geometry.Describe() + "\n";
  s += "region    offset      size\n";
  const uint64_t eb = geometry.erase_block;
  if (kind == LayoutKind::kAb) {
    s += Line("control 0", control[0], eb);
    s += Line("control 1", control[1], eb);
    s += Line("slot 0", slots[0].offset, slots[0].size);
    s += Line("slot 1", slots[1].offset, slots[1].size);
  } else {
    s += Line("loader", loader.offset, loader.size);
    s += Line("flag 0", control[0], eb);
    s += Line("flag 1", control[1], eb);
    s += Line("running", slots[0].offset, slots[0].size);
    s += Line("backup", slots[1].offset, slots[1].size);
    s += Line("download", download.offset, download.size);
  }
  return s;
}

Result<bool> ImageMatches(flash::Flash& flash, const Region& region, const ImageSlot& slot) {
  if (!slot.valid() || slot.size > region.size) return false;
  Hasher h(HashAlgorithm::kSha256);
  Bytes buf(kCopyChunk);
  for (uint64_t done = 0; done < slot.size;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), slot.size - done));
    ALOFT_RETURN_IF_ERROR(flash.Read(region.offset + done, std::span(buf.data(), n)));
    h.Update(ByteSpan(buf.data(), n));
    done += n;
  }
  Bytes d = h.Finish();
  return std::equal(d.begin(), d.end(), slot.sha256.begin());
}

Status CopyImage(flash::Flash& flash, const Region& from, const Region& to,
                 const ImageSlot& expect) {
  if (expect.size > to.size) {
    return Error(Code::kOutOfRange, "image of " + std::to_string(expect.size) +
                                        " bytes does not fit a region of " +
                                        std::to_string(to.size));
  }
  RegionWriter w(flash, to);
  Bytes buf(kCopyChunk);
  for (uint64_t done = 0; done < expect.size;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), expect.size - done));
    ALOFT_RETURN_IF_ERROR(flash.Read(from.offset + done, std::span(buf.data(), n)));
    ALOFT_RETURN_IF_ERROR(w.Write(ByteSpan(buf.data(), n)));
    done += n;
  }
  ALOFT_RETURN_IF_ERROR(w.Finish());
  ALOFT_ASSIGN_OR_RETURN(bool ok, ImageMatches(flash, to, expect));
  if (!ok) return Error(Code::kIntegrity, "copied image does not match its SHA-256");
  return OkStatus();
}

Status RestoreFromBackup(flash::Flash& flash, const Layout& layout, RecordStore& store,
                         BootRecord& record) {
  if (!record.slots[1].valid()) {
    return Error(Code::kIntegrity, "restore: the backup region holds no image");
  }
  if (record.state != UpdateState::kRestoring) {
    record.state = UpdateState::kRestoring;
    ALOFT_RETURN_IF_ERROR(store.Save(record));
  }
  ALOFT_RETURN_IF_ERROR(CopyImage(flash, layout.slots[1], layout.slots[0], record.slots[1]));
  record.state = UpdateState::kIdle;
  record.slots[0] = record.slots[1];
  record.confirmed = true;
  record.tries_left = 0;
  return store.Save(record);
}

Status Provision(flash::Flash& flash, const Layout& layout, ByteSpan image,
                 const std::string& version, uint64_t security_counter) {
  if (image.empty() || image.size() > layout.image_capacity()) {
    return Error(Code::kOutOfRange, "provision: image of " + std::to_string(image.size()) +
                                        " bytes, the slot holds 1 to " +
                                        std::to_string(layout.image_capacity()));
  }
  RegionWriter w(flash, layout.slots[0]);
  ALOFT_RETURN_IF_ERROR(w.Write(image));
  ALOFT_RETURN_IF_ERROR(w.Finish());
  BootRecord r;
  r.layout = layout.kind;
  r.security_counter = security_counter;
  r.slots[0].size = image.size();
  Bytes d = Sha256(image);
  std::copy(d.begin(), d.end(), r.slots[0].sha256.begin());
  r.slots[0].version = version;
  RecordStore store(flash, layout.control);
  return store.Format(r);
}

RegionWriter::RegionWriter(flash::Flash& flash, const Region& region, uint64_t start)
    : flash_(flash), region_(region), written_(start), flushed_(start) {
  block_.reserve(flash.geometry().erase_block);
}

Status RegionWriter::Write(ByteSpan data) {
  if (data.size() > region_.size - written_) {
    return Error(Code::kOutOfRange, "no space: " + std::to_string(written_ + data.size()) +
                                        " bytes do not fit a region of " +
                                        std::to_string(region_.size));
  }
  const size_t eb = flash_.geometry().erase_block;
  while (!data.empty()) {
    size_t n = std::min(data.size(), eb - block_.size());
    block_.insert(block_.end(), data.begin(), data.begin() + n);
    data = data.subspan(n);
    written_ += n;
    if (block_.size() == eb) ALOFT_RETURN_IF_ERROR(FlushBlock(false));
  }
  return OkStatus();
}

Status RegionWriter::FlushBlock(bool final) {
  if (block_.empty()) return OkStatus();
  const uint64_t at = region_.offset + flushed_;
  const auto& g = flash_.geometry();
  ALOFT_RETURN_IF_ERROR(flash_.Erase(at, g.erase_block));
  if (final) block_.resize((block_.size() + g.write_unit - 1) / g.write_unit * g.write_unit, 0xFF);
  ALOFT_RETURN_IF_ERROR(flash_.Program(at, block_));
  flushed_ += g.erase_block;
  block_.clear();
  return OkStatus();
}

Status RegionWriter::Finish() { return FlushBlock(true); }

}  // namespace aloft::boot
