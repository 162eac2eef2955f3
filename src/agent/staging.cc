#include "agent/staging.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

namespace aloft::agent {
namespace {

class FileStaging final : public Staging {
 public:
  explicit FileStaging(std::string path) : path_(std::move(path)) {}

  uint64_t capacity() const override {
    struct statvfs st {};
    std::string dir = std::filesystem::path(path_).parent_path().string();
    if (statvfs(dir.empty() ? "." : dir.c_str(), &st) != 0) return 0;
    return uint64_t{st.f_bavail} * st.f_frsize + size_;
  }

  Result<uint64_t> Resume(uint64_t durable) override {
    ALOFT_ASSIGN_OR_RETURN(file_, File::OpenReadWrite(path_, File::Creation::kIfMissing, 0600));
    ALOFT_ASSIGN_OR_RETURN(uint64_t have, file_->Size());
    const uint64_t keep = std::min(have, durable);
    if (ftruncate(file_->fd(), static_cast<off_t>(keep)) != 0) {
      return ErrnoError(path_ + ": truncate", errno);
    }
    ALOFT_RETURN_IF_ERROR(file_->SeekTo(keep));
    size_ = durable_ = keep;
    return keep;
  }

  Status Append(ByteSpan data) override {
    if (!file_) return Error(Code::kInternal, "staging: Append before Resume");
    ALOFT_RETURN_IF_ERROR(file_->Write(data));
    size_ += data.size();
    return OkStatus();
  }

  Result<uint64_t> Checkpoint() override {
    if (!file_) return durable_;
    ALOFT_RETURN_IF_ERROR(file_->Sync());
    durable_ = size_;
    return durable_;
  }

  Status Finish() override {
    auto r = Checkpoint();
    if (!r.ok()) return r.error();
    return OkStatus();
  }
  uint64_t size() const override { return size_; }

  std::unique_ptr<ByteSource> Open(uint64_t) override {
    auto f = File::OpenRead(path_);
    if (!f.ok()) return nullptr;
    return std::make_unique<File>(std::move(f).value());
  }

  std::string Describe() const override { return path_; }

  Status Clear() override {
    file_.reset();
    size_ = durable_ = 0;
    if (unlink(path_.c_str()) != 0 && errno != ENOENT) return ErrnoError(path_, errno);
    return OkStatus();
  }

 private:
  std::string path_;
  std::optional<File> file_;
  uint64_t size_ = 0, durable_ = 0;
};

class FlashSource final : public ByteSource {
 public:
  FlashSource(flash::Flash& flash, boot::Region region, uint64_t size)
      : flash_(flash), region_(region), size_(size) {}
  Result<size_t> Read(std::span<uint8_t> buf) override {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size_ - pos_));
    if (n == 0) return size_t{0};
    ALOFT_RETURN_IF_ERROR(flash_.Read(region_.offset + pos_, buf.first(n)));
    pos_ += n;
    return n;
  }

 private:
  flash::Flash& flash_;
  boot::Region region_;
  uint64_t size_, pos_ = 0;
};

class FlashStaging final : public Staging {
 public:
  FlashStaging(flash::Flash& flash, boot::Region region) : flash_(flash), region_(region) {}

  uint64_t capacity() const override { return region_.size; }

  Result<uint64_t> Resume(uint64_t durable) override {
    // Bytes after the last whole erase block may be torn: that block is written again.
    const uint64_t eb = flash_.geometry().erase_block;
    const uint64_t at = std::min(durable, region_.size) / eb * eb;
    writer_.emplace(flash_, region_, at);
    return at;
  }

  Status Append(ByteSpan data) override {
    if (!writer_) return Error(Code::kInternal, "staging: Append before Resume");
    if (data.size() > region_.size - writer_->written()) {
      return Error(Code::kOutOfRange, "no space: the package does not fit the download region (" +
                                          std::to_string(region_.size) + " bytes)");
    }
    return writer_->Write(data);
  }

  Status Finish() override {
    if (!writer_) return OkStatus();
    return writer_->Finish();
  }
  uint64_t size() const override { return writer_ ? writer_->written() : 0; }
  Result<uint64_t> Checkpoint() override { return writer_ ? writer_->flushed() : 0; }

  std::unique_ptr<ByteSource> Open(uint64_t size) override {
    return std::make_unique<FlashSource>(flash_, region_, size);
  }

  std::string Describe() const override { return "the flash download region"; }

  Status Clear() override {
    writer_.reset();
    return OkStatus();
  }

 private:
  flash::Flash& flash_;
  boot::Region region_;
  std::optional<boot::RegionWriter> writer_;
};

}  // namespace

Result<std::unique_ptr<Staging>> MakeFileStaging(const std::string& path) {
  return std::unique_ptr<Staging>(std::make_unique<FileStaging>(path));
}

std::unique_ptr<Staging> MakeFlashStaging(flash::Flash& flash, const boot::Region& region) {
  return std::make_unique<FlashStaging>(flash, region);
}

}  // namespace aloft::agent
