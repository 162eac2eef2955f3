#include "agent/storage.h"

#include <algorithm>

#include "core/encoding.h"

namespace aloft::agent {
namespace {

using boot::BootRecord;
using boot::ImageSlot;
using boot::kNoSlot;
using boot::UpdateState;

class FlashStorage : public Storage {
 public:
  FlashStorage(flash::Flash& flash, const boot::Layout& layout, int booted)
      : flash_(flash), layout_(layout), store_(flash, layout.control), booted_(booted) {}

  uint64_t image_capacity() const override { return layout_.image_capacity(); }

 protected:
  Result<BootRecord> Load() { return store_.Load(); }
  Status WriteTo(const boot::Region& region, std::string name) {
    writer_.emplace(flash_, region);
    writing_ = std::move(name);
    return OkStatus();
  }
  Status Write(ByteSpan data) override {
    if (!writer_) return Error(Code::kInternal, "Write before BeginInstall");
    if (Status s = writer_->Write(data); !s.ok())
      return s.error().WithContext("writing " + writing_);
    return OkStatus();
  }
  Status ReadRegion(const boot::Region& region, uint64_t offset, std::span<uint8_t> out,
                    const char* what) {
    if (offset > region.size || out.size() > region.size - offset) {
      return Error(Code::kOutOfRange, std::string("read beyond ") + what);
    }
    return flash_.Read(region.offset + offset, out);
  }
  Status Finish(const boot::Region& region, const ImageSlot& target) {
    if (!writer_) return Error(Code::kInternal, "EndInstall before BeginInstall");
    if (Status s = writer_->Finish(); !s.ok()) return s.error().WithContext("writing " + writing_);
    writer_.reset();
    ALOFT_ASSIGN_OR_RETURN(bool good, boot::ImageMatches(flash_, region, target));
    if (!good) {
      return Error(Code::kIntegrity,
                   "the image read back from flash does not match " + DescribeSlot(target));
    }
    return OkStatus();
  }
  std::string DescribeRecord(const BootRecord& r) const {
    std::string s = layout_.Describe();
    s += "record: seq " + std::to_string(r.seq) + ", state " +
         std::string(boot::UpdateStateName(r.state)) + ", active " + std::to_string(r.active) +
         ", pending " + (r.pending == kNoSlot ? std::string("none") : std::to_string(r.pending)) +
         ", tries left " + std::to_string(r.tries_left) + ", security counter " +
         std::to_string(r.security_counter) + "\n";
    for (int i = 0; i < 2; ++i) {
      s += (layout_.kind == boot::LayoutKind::kAb ? "slot " + std::to_string(i)
                                                  : std::string(i ? "backup" : "running")) +
           ": " + (r.slots[i].valid() ? DescribeSlot(r.slots[i]) : "empty") + "\n";
    }
    return s;
  }

  flash::Flash& flash_;
  boot::Layout layout_;
  boot::RecordStore store_;
  int booted_;
  std::optional<boot::RegionWriter> writer_;
  std::string writing_;
};

class AbStorage final : public FlashStorage {
 public:
  using FlashStorage::FlashStorage;

  Result<StorageStatus> GetStatus() override {
    ALOFT_ASSIGN_OR_RETURN(BootRecord r, Load());
    StorageStatus s;
    s.trial = r.pending != kNoSlot && booted_ == r.pending;
    s.running = r.slots[s.trial ? r.pending : r.active];
    s.confirmed = r.slots[r.active];
    s.security_counter = r.security_counter;
    s.describe = DescribeRecord(r);
    return s;
  }

  Status BeginInstall(const ImageSlot&) override {
    ALOFT_ASSIGN_OR_RETURN(BootRecord r, Load());
    const int target = 1 - r.active;
    if (r.pending != kNoSlot || r.slots[target].valid()) {
      // The slot about to be erased must not be named by the record any more.
      r.pending = kNoSlot;
      r.tries_left = 0;
      r.slots[target] = {};
      ALOFT_RETURN_IF_ERROR(store_.Save(r));
    }
    target_ = target;
    return WriteTo(layout_.slots[target], "slot " + std::to_string(target));
  }

  Status ReadBase(uint64_t offset, std::span<uint8_t> out) override {
    return ReadRegion(layout_.slots[1 - target_], offset, out, "the active slot");
  }

  Status EndInstall(const ImageSlot& target) override {
    return Finish(layout_.slots[target_], target);
  }

  Status Activate(const ImageSlot& target, uint8_t tries) override {
    ALOFT_ASSIGN_OR_RETURN(BootRecord r, Load());
    const int slot = 1 - r.active;
    ALOFT_ASSIGN_OR_RETURN(bool good, boot::ImageMatches(flash_, layout_.slots[slot], target));
    if (!good)
      return Error(Code::kIntegrity, "activate: slot " + std::to_string(slot) + " does not hold " +
                                         DescribeSlot(target));
    r.slots[slot] = target;
    r.pending = static_cast<uint8_t>(slot);
    r.tries_left = tries;
    return store_.Save(r);
  }

  Result<bool> BootedNew(const ImageSlot& target) override {
    ALOFT_ASSIGN_OR_RETURN(BootRecord r, Load());
    if (r.pending == kNoSlot) return booted_ == r.active && r.slots[r.active] == target;
    return booted_ == r.pending && r.slots[r.pending] == target;
  }

  Status Commit(const ImageSlot& target, uint64_t counter) override {
    ALOFT_ASSIGN_OR_RETURN(BootRecord r, Load());
    if (r.pending == kNoSlot && r.slots[r.active] == target && r.security_counter >= counter) {
      return OkStatus();  // done before a power cut
    }
    if (r.pending == kNoSlot || r.slots[r.pending] != target || booted_ != r.pending) {
      return Error(Code::kInternal, "commit: " + DescribeSlot(target) + " is not on trial");
    }
    r.active = r.pending;
    r.pending = kNoSlot;
    r.tries_left = 0;
    r.confirmed = true;
    r.security_counter = std::max(r.security_counter, counter);
    return store_.Save(r);
  }

  Result<bool> Rollback() override {
    ALOFT_ASSIGN_OR_RETURN(BootRecord r, Load());
    if (r.pending != kNoSlot) {
      r.pending = kNoSlot;
      r.tries_left = 0;
      ALOFT_RETURN_IF_ERROR(store_.Save(r));
    }
    return booted_ != r.active;
  }

 private:
  int target_ = 1;
};

class BackupStorage final : public FlashStorage {
 public:
  using FlashStorage::FlashStorage;

  std::optional<boot::Region> staging_region() const override { return layout_.download; }

  Result<StorageStatus> GetStatus() override {
    ALOFT_ASSIGN_OR_RETURN(BootRecord r, Load());
    StorageStatus s;
    s.running = r.slots[0];
    s.trial = r.state == UpdateState::kTrial;
    s.confirmed = r.state == UpdateState::kIdle || r.state == UpdateState::kBackingUp ? r.slots[0]
                                                                                      : r.slots[1];
    s.security_counter = r.security_counter;
    s.describe = DescribeRecord(r);
    return s;
  }

  Status BeginInstall(const ImageSlot& target) override {
    ALOFT_ASSIGN_OR_RETURN(BootRecord r, Load());
    if (r.state == UpdateState::kRestoring || r.state == UpdateState::kTrial) {
      ALOFT_RETURN_IF_ERROR(boot::RestoreFromBackup(flash_, layout_, store_, r));
    }
    if (r.state == UpdateState::kIdle || r.state == UpdateState::kBackingUp) {
      if (r.state != UpdateState::kBackingUp || r.slots[1].valid()) {
        r.state = UpdateState::kBackingUp;
        r.slots[1] = {};
        ALOFT_RETURN_IF_ERROR(store_.Save(r));
      }
      if (Status s = boot::CopyImage(flash_, layout_.slots[0], layout_.slots[1], r.slots[0]);
          !s.ok()) {
        return s.error().WithContext("backing up the running image");
      }
      r.slots[1] = r.slots[0];
      r.slots[0] = target;
      r.state = UpdateState::kWriting;
      r.confirmed = false;
      ALOFT_RETURN_IF_ERROR(store_.Save(r));
    } else if (r.slots[0] != target) {  // kWriting, for another image
      r.slots[0] = target;
      ALOFT_RETURN_IF_ERROR(store_.Save(r));
    }
    return WriteTo(layout_.slots[0], "the running region");
  }

  Status ReadBase(uint64_t offset, std::span<uint8_t> out) override {
    return ReadRegion(layout_.slots[1], offset, out, "the backup region");
  }

  Status EndInstall(const ImageSlot& target) override { return Finish(layout_.slots[0], target); }

  Status Activate(const ImageSlot& target, uint8_t tries) override {
    ALOFT_ASSIGN_OR_RETURN(BootRecord r, Load());
    if (r.state != UpdateState::kWriting || r.slots[0] != target) {
      return Error(Code::kIntegrity, "activate: the running region is not being written with " +
                                         DescribeSlot(target) + " (state " +
                                         std::string(boot::UpdateStateName(r.state)) + ")");
    }
    ALOFT_ASSIGN_OR_RETURN(bool good, boot::ImageMatches(flash_, layout_.slots[0], target));
    if (!good)
      return Error(Code::kIntegrity, "activate: running does not hold " + DescribeSlot(target));
    r.state = UpdateState::kTrial;
    r.tries_left = tries;
    return store_.Save(r);
  }

  Result<bool> BootedNew(const ImageSlot& target) override {
    ALOFT_ASSIGN_OR_RETURN(BootRecord r, Load());
    return (r.state == UpdateState::kTrial || r.state == UpdateState::kIdle) &&
           r.slots[0] == target;
  }

  Status Commit(const ImageSlot& target, uint64_t counter) override {
    ALOFT_ASSIGN_OR_RETURN(BootRecord r, Load());
    if (r.slots[0] != target || (r.state != UpdateState::kTrial && r.state != UpdateState::kIdle)) {
      return Error(Code::kInternal, "commit: " + DescribeSlot(target) + " is not on trial");
    }
    if (r.state == UpdateState::kIdle && r.security_counter >= counter) return OkStatus();
    r.state = UpdateState::kIdle;
    r.confirmed = true;
    r.tries_left = 0;
    r.security_counter = std::max(r.security_counter, counter);
    return store_.Save(r);
  }

  Result<bool> Rollback() override {
    ALOFT_ASSIGN_OR_RETURN(BootRecord r, Load());
    switch (r.state) {
      case UpdateState::kIdle:
        return false;
      case UpdateState::kBackingUp:
        r.state = UpdateState::kIdle;
        ALOFT_RETURN_IF_ERROR(store_.Save(r));
        return false;
      case UpdateState::kWriting:
      case UpdateState::kRestoring:
      case UpdateState::kTrial: {
        const bool was_running_new = r.state == UpdateState::kTrial;
        ALOFT_RETURN_IF_ERROR(boot::RestoreFromBackup(flash_, layout_, store_, r));
        return was_running_new;
      }
    }
    return false;
  }
};

}  // namespace

std::unique_ptr<Storage> MakeFlashStorage(flash::Flash& flash, const boot::Layout& layout,
                                          int booted_slot) {
  if (layout.kind == boot::LayoutKind::kAb) {
    return std::make_unique<AbStorage>(flash, layout, booted_slot);
  }
  return std::make_unique<BackupStorage>(flash, layout, 0);
}

std::string SlotSha256(const ImageSlot& s) { return HexEncode(s.sha256); }

std::string DescribeSlot(const ImageSlot& s) {
  return (s.version.empty() ? std::string("?") : s.version) + " (" + std::to_string(s.size) +
         " bytes, sha256 " + SlotSha256(s).substr(0, 12) + "…)";
}

ImageSlot SlotFrom(const std::string& version, uint64_t size, const std::string& sha256_hex) {
  ImageSlot s;
  s.size = size;
  s.version = version;
  auto d = HexDecode(sha256_hex);
  if (d.ok() && d->size() == 32) std::copy(d->begin(), d->end(), s.sha256.begin());
  return s;
}

}  // namespace aloft::agent
