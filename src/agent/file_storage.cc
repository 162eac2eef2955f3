#include "agent/file_storage.h"

#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "agent/command.h"
#include "core/encoding.h"
#include "core/file.h"
#include "core/hash.h"
#include "core/text.h"

namespace aloft::agent {
namespace {

using boot::ImageSlot;
using json = nlohmann::json;

constexpr size_t kChunk = 64 * 1024;

// What the agent knows of the slots, kept in FileSlots::record.
struct SlotRecord {
  int active = 0;
  std::optional<int> pending;  // the slot on trial
  uint64_t security_counter = 0;
  std::array<ImageSlot, 2> slots;
};

json SlotJson(const ImageSlot& s) {
  if (!s.valid()) return nullptr;
  return {{"version", s.version}, {"size", s.size}, {"sha256", SlotSha256(s)}};
}

Result<SlotRecord> LoadRecord(const std::string& path) {
  auto text = ReadFile(path, 1 << 16);
  if (!text.ok()) {
    if (text.error().code() == Code::kNotFound) {
      return Error(Code::kNotFound,
                   path + ": no slot record (run `aloft-agent provision` once on this device)");
    }
    return text.error();
  }
  try {
    json j = json::parse(*text);
    SlotRecord r;
    r.active = j.at("active").get<int>();
    if (!j.at("pending").is_null()) r.pending = j.at("pending").get<int>();
    r.security_counter = j.at("security_counter").get<uint64_t>();
    for (int i = 0; i < 2; ++i) {
      const json& s = j.at("slots").at(i);
      if (s.is_null()) continue;
      r.slots[i] = SlotFrom(s.at("version").get<std::string>(), s.at("size").get<uint64_t>(),
                            s.at("sha256").get<std::string>());
    }
    if (r.active < 0 || r.active > 1 || (r.pending && (*r.pending < 0 || *r.pending > 1))) {
      return Error(Code::kMalformed, path + ": slot numbers must be 0 or 1");
    }
    return r;
  } catch (const json::exception& e) {
    return Error(Code::kMalformed, path + ": " + e.what());
  }
}

Status SaveRecord(const std::string& path, const SlotRecord& r) {
  json j = {{"active", r.active},
            {"pending", r.pending ? json(*r.pending) : json(nullptr)},
            {"security_counter", r.security_counter},
            {"slots", {SlotJson(r.slots[0]), SlotJson(r.slots[1])}}};
  return WriteFileAtomic(path, j.dump(2) + "\n", 0600);
}

// SHA-256 of the first `size` bytes of `f`.
Result<std::string> HashPrefix(File& f, uint64_t size) {
  Hasher h(HashAlgorithm::kSha256);
  std::vector<uint8_t> buf(kChunk);
  for (uint64_t at = 0; at < size;) {
    std::span<uint8_t> part(buf.data(), std::min<uint64_t>(buf.size(), size - at));
    ALOFT_RETURN_IF_ERROR(f.ReadAt(at, part));
    h.Update(part);
    at += part.size();
  }
  return h.FinishHex();
}

// A slot's capacity: the block device's size, or slot_size.
Result<uint64_t> SlotCapacity(const FileSlots& s, const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT && s.slot_size > 0) return s.slot_size;  // a file created on install
    return ErrnoError(path, errno);
  }
  if (S_ISBLK(st.st_mode)) {
    ALOFT_ASSIGN_OR_RETURN(File f, File::OpenRead(path));
    uint64_t bytes = 0;
    if (::ioctl(f.fd(), BLKGETSIZE64, &bytes) != 0)
      return ErrnoError(path + ": BLKGETSIZE64", errno);
    if (s.slot_size > bytes) {
      return Error(Code::kInvalidArgument, path + ": slot_size " + std::to_string(s.slot_size) +
                                               " is larger than the device (" +
                                               std::to_string(bytes) + " bytes)");
    }
    return s.slot_size ? s.slot_size : bytes;
  }
  if (!S_ISREG(st.st_mode)) {
    return Error(Code::kInvalidArgument, path + ": a slot must be a regular file or block device");
  }
  if (s.slot_size == 0) {
    return Error(Code::kInvalidArgument,
                 path + ": slot_size is required when slots are regular files");
  }
  return s.slot_size;
}

Result<int> BootedSlot(const FileSlots& s) {
  auto out = RunCommand(s.booted_command, s.command_timeout, {"ALOFT_MODULE=" + s.module});
  if (!out.ok()) return out.error().WithContext("module " + s.module + ": booted_command");
  const std::string v(TrimSpace(*out));
  if (v == "0" || v == "a" || v == "A" || v == s.paths[0]) return 0;
  if (v == "1" || v == "b" || v == "B" || v == s.paths[1]) return 1;
  return Error(Code::kUnavailable, "module " + s.module + ": booted_command '" + s.booted_command +
                                       "' printed '" + v +
                                       "'; expected 0, 1, a, b or a slot's path");
}

class FileStorage final : public Storage {
 public:
  FileStorage(FileSlots slots, int booted, uint64_t capacity)
      : s_(std::move(slots)), booted_(booted), capacity_(capacity) {}

  uint64_t image_capacity() const override { return capacity_; }

  Result<StorageStatus> GetStatus() override {
    ALOFT_ASSIGN_OR_RETURN(SlotRecord r, LoadRecord(s_.record));
    StorageStatus st;
    st.trial = r.pending && *r.pending == booted_;
    st.running = r.slots[booted_];
    st.confirmed = r.slots[r.active];
    st.other = r.slots[Other()];
    st.security_counter = r.security_counter;
    st.describe = "layout file, slot size " + std::to_string(capacity_) + " bytes, booted slot " +
                  Name(booted_) + "\nrecord " + s_.record + ": active " + Name(r.active) +
                  ", pending " + (r.pending ? Name(*r.pending) : std::string("none")) +
                  ", security counter " + std::to_string(r.security_counter) + "\n";
    for (int i = 0; i < 2; ++i) {
      st.describe += "slot " + Name(i) + " " + s_.paths[i] + ": " +
                     (r.slots[i].valid() ? DescribeSlot(r.slots[i]) : "empty") + "\n";
    }
    return st;
  }

  Status BeginInstall(const ImageSlot& target) override {
    ALOFT_ASSIGN_OR_RETURN(SlotRecord r, LoadRecord(s_.record));
    if (target.size > capacity_) {
      return Error(Code::kOutOfRange, "no space: " + std::to_string(target.size) +
                                          " bytes do not fit slot " + Name(Other()) + " (" +
                                          std::to_string(capacity_) + " bytes)");
    }
    const int t = Other();
    if (r.pending || r.slots[t].valid()) {
      // The slot about to be written must not be one the bootloader may try, nor one the
      // record says holds an image.
      if (r.pending)
        ALOFT_RETURN_IF_ERROR(
            Command("commit_command", s_.commit_command, r.active, r.slots[r.active].version));
      r.pending.reset();
      r.slots[t] = {};
      ALOFT_RETURN_IF_ERROR(SaveRecord(s_.record, r));
    }
    struct stat st;
    const bool block = ::stat(s_.paths[t].c_str(), &st) == 0 && S_ISBLK(st.st_mode);
    auto f = File::OpenReadWrite(
        s_.paths[t], block ? File::Creation::kMustExist : File::Creation::kIfMissing, 0600);
    if (!f.ok()) return f.error().WithContext("slot " + Name(t));
    if (!block && ::ftruncate(f->fd(), 0) != 0) return ErrnoError(s_.paths[t], errno);
    out_.emplace(std::move(f).value());
    written_ = 0;
    base_.reset();
    return OkStatus();
  }

  Status ReadBase(uint64_t offset, std::span<uint8_t> out) override {
    const int b = 1 - Other();
    if (!base_) {
      auto f = File::OpenRead(s_.paths[b]);
      if (!f.ok()) return f.error().WithContext("slot " + Name(b));
      base_.emplace(std::move(f).value());
    }
    if (Status s = base_->ReadAt(offset, out); !s.ok()) {
      return s.error().WithContext("reading slot " + Name(b));
    }
    return OkStatus();
  }

  Status Write(ByteSpan data) override {
    if (!out_) return Error(Code::kInternal, "Write before BeginInstall");
    if (data.size() > capacity_ - written_) {
      return Error(Code::kOutOfRange, "no space: slot " + Name(Other()) + " holds " +
                                          std::to_string(capacity_) + " bytes");
    }
    if (Status s = out_->WriteAt(written_, data); !s.ok()) {
      return s.error().WithContext("writing slot " + Name(Other()));
    }
    written_ += data.size();
    return OkStatus();
  }

  Status EndInstall(const ImageSlot& target) override {
    if (!out_) return Error(Code::kInternal, "EndInstall before BeginInstall");
    Status synced = out_->Sync();
    out_.reset();
    ALOFT_RETURN_IF_ERROR(synced);
    const int t = Other();
    ALOFT_ASSIGN_OR_RETURN(File written, File::OpenRead(s_.paths[t]));
    ALOFT_ASSIGN_OR_RETURN(std::string got, HashPrefix(written, target.size));
    if (written_ != target.size || got != SlotSha256(target)) {
      return Error(Code::kIntegrity, "slot " + Name(t) + " (" + s_.paths[t] +
                                         ") read back does not match " + DescribeSlot(target));
    }
    ALOFT_ASSIGN_OR_RETURN(SlotRecord r, LoadRecord(s_.record));
    r.slots[t] = target;
    return SaveRecord(s_.record, r);
  }

  Status Activate(const ImageSlot& target, uint8_t tries) override {
    ALOFT_ASSIGN_OR_RETURN(SlotRecord r, LoadRecord(s_.record));
    const int t = Other();
    if (r.slots[t] != target) {
      return Error(Code::kIntegrity,
                   "activate: slot " + Name(t) + " does not hold " + DescribeSlot(target));
    }
    // Recorded first: a power cut before the command leaves the bootloader on the old slot,
    // which the agent then sees as the trial having gone back.
    r.pending = t;
    ALOFT_RETURN_IF_ERROR(SaveRecord(s_.record, r));
    return Command("activate_command", s_.activate_command, t, target.version,
                   {"ALOFT_TRIES=" + std::to_string(tries)});
  }

  Result<bool> BootedNew(const ImageSlot& target) override {
    ALOFT_ASSIGN_OR_RETURN(SlotRecord r, LoadRecord(s_.record));
    const int expect = r.pending ? *r.pending : r.active;
    return booted_ == expect && r.slots[expect] == target;
  }

  Status Commit(const ImageSlot& target, uint64_t counter) override {
    ALOFT_ASSIGN_OR_RETURN(SlotRecord r, LoadRecord(s_.record));
    if (!r.pending && r.slots[r.active] == target && r.security_counter >= counter) {
      return OkStatus();  // done before a power cut
    }
    if (!r.pending || *r.pending != booted_ || r.slots[booted_] != target) {
      return Error(Code::kInternal, "commit: " + DescribeSlot(target) + " is not on trial");
    }
    // The bootloader first: until the record says so, a cut here repeats this (idempotent).
    ALOFT_RETURN_IF_ERROR(
        Command("commit_command", s_.commit_command, booted_, r.slots[booted_].version));
    r.active = booted_;
    r.pending.reset();
    r.security_counter = std::max(r.security_counter, counter);
    return SaveRecord(s_.record, r);
  }

  Result<bool> Rollback() override {
    ALOFT_ASSIGN_OR_RETURN(SlotRecord r, LoadRecord(s_.record));
    if (r.pending) {
      ALOFT_RETURN_IF_ERROR(
          Command("commit_command", s_.commit_command, r.active, r.slots[r.active].version));
      r.pending.reset();
      ALOFT_RETURN_IF_ERROR(SaveRecord(s_.record, r));
    }
    return booted_ != r.active;
  }

 private:
  static std::string Name(int slot) { return slot ? "b" : "a"; }
  int Other() const { return 1 - booted_; }  // the slot installs write

  // Runs a bootloader command about `slot`, which holds (or is to hold) `version`.
  Status Command(const char* key, const std::string& command, int slot, const std::string& version,
                 std::vector<std::string> env = {}) {
    env.push_back("ALOFT_VERSION=" + version);
    env.push_back("ALOFT_SLOT=" + Name(slot));
    env.push_back("ALOFT_SLOT_INDEX=" + std::to_string(slot));
    env.push_back("ALOFT_SLOT_PATH=" + s_.paths[slot]);
    env.push_back("ALOFT_MODULE=" + s_.module);
    auto out = RunCommand(command, s_.command_timeout, env);
    if (!out.ok()) return out.error().WithContext("module " + s_.module + ": " + key);
    return OkStatus();
  }

  FileSlots s_;
  int booted_;
  uint64_t capacity_;
  std::optional<File> out_;
  std::optional<File> base_;  // the slot a delta reads, opened on first use
  uint64_t written_ = 0;
};

}  // namespace

Result<std::unique_ptr<Storage>> MakeFileStorage(const FileSlots& slots) {
  uint64_t capacity = UINT64_MAX;
  for (const auto& p : slots.paths) {
    ALOFT_ASSIGN_OR_RETURN(uint64_t c, SlotCapacity(slots, p));
    capacity = std::min(capacity, c);
  }
  ALOFT_ASSIGN_OR_RETURN(int booted, BootedSlot(slots));
  return std::unique_ptr<Storage>(std::make_unique<FileStorage>(slots, booted, capacity));
}

Status ProvisionFileSlots(const FileSlots& slots, const std::string& image_path,
                          const std::string& version, uint64_t security_counter) {
  ALOFT_ASSIGN_OR_RETURN(int booted, BootedSlot(slots));
  ALOFT_ASSIGN_OR_RETURN(File image, File::OpenRead(image_path));
  ALOFT_ASSIGN_OR_RETURN(uint64_t size, image.Size());
  if (size == 0) return Error(Code::kInvalidArgument, image_path + ": empty image");
  ALOFT_ASSIGN_OR_RETURN(std::string want, HashPrefix(image, size));
  auto slot = File::OpenRead(slots.paths[booted]);
  auto got = slot.ok() ? HashPrefix(*slot, size) : Result<std::string>(slot.error());
  if (!got.ok() || *got != want) {
    return Error(Code::kInvalidArgument,
                 "module " + slots.module + ": the booted slot " + slots.paths[booted] +
                     " does not start with " + image_path +
                     " (provision records what is installed; it never writes a slot)");
  }
  SlotRecord r;
  r.active = booted;
  r.security_counter = security_counter;
  r.slots[booted] = SlotFrom(version, size, want);
  return SaveRecord(slots.record, r);
}

}  // namespace aloft::agent
