// The tester's programming sequence for one ECU, as OEM flash specifications lay it out:
//   pre-programming   10 03, 31 01 02 03, 85 02, 28 03 01, 22 F1 90, 22 F1 89
//   programming       10 02, 27 01 / 27 02, 2E F1 5B, 31 01 FF 00, 34, 36 ..., 37,
//                     31 01 02 02 (CRC-32 and SHA-256), 31 01 FF 01, 11 01
//   post-programming  (the ECU restarts) 10 01, 22 F1 89
// Each step must succeed; the first failure ends the sequence with an error naming the step.
//
//   uds::Flasher flasher(client, {.image = image, .address = 0x80000, .key = key_fn});
//   flasher.Run([](const Result<uds::FlashReport>& r) { ... });
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/encoding.h"
#include "core/io.h"
#include "uds/authentication.h"
#include "uds/client.h"

namespace aloft::uds {

// The sequence in two halves, for a campaign that transfers every ECU before it activates any:
// kTransfer ends once 31 01 02 02 found the image correct (the ECU stays in the programming
// session, the new image not yet committed); kActivate starts there: 31 01 FF 01, 11 01, and the
// post-programming steps.
enum class FlashPhases { kAll, kTransfer, kActivate };

// A download the ECU decrypts itself (docs/encryption.md, "ECUs that decrypt"): `image` or
// `source` hold the payload as the package stores it (compressed, then sealed in 64 KiB chunks).
// Before erasing, the tester reads the ECU's X25519 key (22 F1 A0), has `wrap` wrap the content
// key for it and sends that with the salt (31 01 02 10); 34 names encryption method 1 and the
// compression; the check routine carries the signed SHA-256 (the CRC-32 field is 0: the tester
// never holds the plain image). Not with resuming.
struct SealedTransfer {
  uint8_t compression = 0;  // 34's high nibble: 0 none, 1 zstd, 2 xz
  std::array<uint8_t, 16> salt{};
  uint64_t image_size = 0;  // the plain image: what is erased and programmed
  std::function<Result<Bytes>(std::span<const uint8_t> ecu_public_key)> wrap{};
};

struct FlashPlan {
  FlashPhases phases = FlashPhases::kAll;
  Bytes image{};
  // When set, the image is read from here a block at a time instead of from `image` (an image
  // rebuilt from a delta as it goes out, never whole in memory).
  std::shared_ptr<RandomAccessSource> source{};
  // The image's SHA-256 as it was signed, sent to the check routine (empty: computed from the
  // image). With it, the ECU checks what the release engineer signed, not what was read.
  Bytes sha256{};
  uint64_t address = 0;
  // The key for a seed (security access level `security_level`).
  std::function<Bytes(std::span<const uint8_t> seed)> key{};
  // When set, Authentication (29 01, 29 03) with this certificate and key comes first in the
  // programming session; with `key` unset, instead of security access (docs/identity.md).
  std::shared_ptr<const TesterCredentials> credentials{};
  uint8_t security_level = 1;
  Bytes fingerprint = Bytes(16, 0x00);  // written to F15B before erasing (empty: not written)
  // After 11 01: how long the ECU takes to start, and how often 10 01 is tried after that.
  std::chrono::milliseconds restart_wait{150};
  int restart_tries = 20;
  // Appended to 31 01 02 02 after the CRC-32 and SHA-256: a signature of the image's SHA-256
  // for an ECU that checks one (empty: none).
  Bytes signature{};
  // The version the ECU must report afterwards (empty: not checked).
  std::string expect_version{};
  // Called after each TransferData block with the bytes sent so far.
  std::function<void(uint64_t sent, uint64_t total)> progress{};
  // Resuming (the ECU's erase block size; 0: off): before erasing, the CRC-32 of each erase block
  // of the image is asked of the ECU (31 01 FF 03) and compared with the image's; the download
  // starts at the first block that differs (at most the last one), and the whole image is then
  // checked with 31 01 FF 04 (02 02 over the image's range) instead of 02 02.
  uint32_t resume_block = 0;
  // Called as the erase request (31 01 FF 00) goes out: from then on the ECU's flash changes.
  std::function<void()> on_erase{};
  // Called as the answer to 11 01 arrives: the ECU leaves the programming session and starts.
  std::function<void()> on_reset{};
  std::optional<SealedTransfer> sealed{};
};

struct FlashReport {
  std::string vin;
  std::string version_before, version_after;
  uint64_t bytes = 0;
  uint32_t max_block_length = 0;
  std::chrono::nanoseconds total{0};     // 10 03 to the last 22 F1 89
  std::chrono::nanoseconds download{0};  // 31 01 FF 00 to the answer of 37
  uint64_t resumed_from = 0;             // the offset the download started at (resuming)
  std::vector<std::string> steps;        // "10 03 -> 50 03 00 32 01 F4 (12 ms)", ...
};

class Flasher {
 public:
  Flasher(Client& client, FlashPlan plan);
  void Run(std::function<void(Result<FlashReport>)> done);

 private:
  void Step();
  void Send(std::vector<uint8_t> request, std::function<void(const Response&)> next);
  void Fail(const Status& status);
  void Block();
  void Scan(uint64_t block);
  uint64_t Size() const { return source_->size(); }  // the bytes that go out
  // The image's size on the ECU (the plain one, for a sealed download).
  uint64_t ImageSize() const { return plan_.sealed ? plan_.sealed->image_size : Size(); }
  void SendContentKey();
  // The CRC-32 of [at, at + n) of the image, read a chunk at a time.
  Result<uint32_t> Crc(uint64_t at, uint64_t n);

  Client& client_;
  FlashPlan plan_;
  std::shared_ptr<RandomAccessSource> source_;  // plan_.source, or one over plan_.image
  std::function<void(Result<FlashReport>)> done_;
  FlashReport report_;
  int stage_ = 0;
  uint64_t sent_ = 0;
  uint64_t offset_ = 0;  // where the download starts (resuming)
  bool scanned_ = false;
  bool authenticated_ = false;
  bool key_sent_ = false;
  uint8_t bsc_ = 1;
  EventLoop::TimePoint start_{}, download_start_{};
  int tries_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

 public:
  ~Flasher() { *alive_ = false; }
};

}  // namespace aloft::uds
