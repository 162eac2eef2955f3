// A simulated ECU: a UDS server with the identification DIDs, and a flash bootloader on a
// SimFlash that enforces what a real one does (docs/vehicle-network.md, "The ECU simulator"):
// programming only from the extended session after the preconditions routine, security access,
// erase before download, block sequence counters, writes only inside the memory map, a check of
// the programmed image against the tester's CRC-32 and SHA-256, and a new image started by a
// reset only when it is complete and valid. Single-bank ECUs program in place; A/B ECUs program
// the inactive bank and switch to it. Everything runs on the EventLoop it is given.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "crypto/aead_stream.h"
#include "crypto/key_wrap.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "ecusim/boot_record.h"
#include "ecusim/flash_worker.h"
#include "flash/sim_flash.h"
#include "pkg/compress.h"
#include "uds/server.h"

namespace aloft::ecusim {

enum class BankLayout { kSingle, kAb };

// How an ECU turns a security access seed into the key it expects: HMAC-SHA256 of the seed under
// its secret (the default), or the seed XORed with the secret (repeated), the toy algorithm many
// bench ECUs and scapy's UDS_SA_XOR_Enumerator know.
enum class KeyAlgorithm { kHmacSha256, kXor };

// What unlocks programming (erase, download, the check routines, the fingerprint): security
// access level 1 (27 01/02, the default), authentication with a certificate granting the role
// "programming" (29, docs/identity.md), or both.
enum class ProgrammingAccess { kSecurityAccess, kAuthentication, kBoth };

struct EcuFaults {
  std::optional<int> reset_at_block;       // reset instead of answering this TransferData block
  std::optional<int> power_loss_at_block;  // power lost while programming this block
  // Hangs at this block: 0x78 (the framework's, after P2), then nothing until its watchdog
  // resets it `hang` later (the tester meets P2*).
  std::optional<int> hang_at_block;
  std::chrono::milliseconds hang{7000};
  // A bit of this block is flipped on its way to the flash: the check routine finds it.
  std::optional<int> corrupt_at_block;
  std::chrono::milliseconds power_off{500};
  std::map<uint8_t, uint8_t> nrc;     // service -> NRC answered instead (each once)
  std::chrono::milliseconds slow{0};  // added to every answer (P2* stretched)
};

struct EcuConfig {
  std::string name = "ecu";
  std::string vin = "WALOFT00000000001";
  std::string part_number = "ALOFT-ECU-0001";
  std::string serial = "SN00000001";
  std::string hardware_version = "HW-1.0";
  std::string boot_version = "BL-1.0";

  BankLayout layout = BankLayout::kSingle;
  uint64_t app_address = 0x00080000;  // where the tester writes the application
  uint64_t app_size = 2 << 20;        // the largest application
  uint32_t erase_block = 256 << 10;
  uint32_t write_unit = 8;
  flash::FlashTiming timing{};         // NXP C55 by default
  uint32_t max_block_length = 0x0802;  // 34's answer: SID + BSC + 2048 bytes
  // RAM for data the flash has not programmed yet; past it, TransferData answers wait (0x78).
  // 256 KiB: what a C55-class MCU (768 KiB SRAM in an MPC5748G) spares its bootloader, enough
  // to keep taking data while the flash erases the next 256 KiB block (erase ahead).
  uint32_t buffer_bytes = 256 << 10;

  Bytes secret = Bytes(32, 0x5A);  // the security access secret
  KeyAlgorithm key_algorithm = KeyAlgorithm::kHmacSha256;
  // When set, 31 01 02 02 must carry this key's signature of the image's SHA-256 after the
  // CRC-32 and the SHA-256; without it, or with a wrong one, the image is not valid.
  std::optional<crypto::PublicKey> trusted_key{};
  size_t seed_length = 16;
  int max_attempts = 3;
  std::chrono::milliseconds attempt_delay{10000};

  ProgrammingAccess access = ProgrammingAccess::kSecurityAccess;
  // Authentication (29): the trust anchors of testers' certificate chains, the roles this ECU
  // grants, and its calendar time for their validity (default: the system's).
  std::vector<crypto::Certificate> auth_anchors{};
  std::vector<std::string> auth_roles = {"programming"};
  std::function<std::chrono::system_clock::time_point()> auth_now{};

  // Decrypting downloads (docs/encryption.md, "ECUs that decrypt"): the ECU's own X25519 key.
  // It reports the public half (22 F1 A0), takes the content key wrapped for it with the
  // payload's salt (31 01 02 10), then a download whose data format names encryption method 1
  // (aloft's chunked AES-256-GCM) and, in the high nibble, the compression (0 none, 1 zstd,
  // 2 xz); each chunk is opened, checked and decompressed as it arrives. Without it, any data
  // format but 0x00 is refused (0x31).
  std::shared_ptr<const crypto::RecipientKey> decrypt_key{};

  std::chrono::milliseconds boot_time{100};  // from reset to answering again
  EcuFaults faults{};
};

// The key an ECU of `config` expects for `seed` (what a tester with its secret computes).
Bytes SecurityKey(const EcuConfig& config, std::span<const uint8_t> seed);

// What the ECU would run if it started now.
struct EcuStatus {
  bool application = false;  // an application runs (else the bootloader waits)
  std::string version;       // the running application's
  int bank = 0;
  BootState boot;
  std::string Describe(const EcuConfig& c) const;  // one line
};

class Ecu {
 public:
  // The ECU's flash lives in `dir`/<name>.flash and .nvm (created blank when absent).
  static Result<std::unique_ptr<Ecu>> Create(EventLoop& loop, EcuConfig config,
                                             const std::string& dir);
  ~Ecu();

  // Requests arrive on `physical` (and `functional`, answered on `physical`).
  void Attach(uds::Link& physical, uds::Link* functional = nullptr);

  // Writes an application straight into the active bank and marks it valid (a factory image).
  Status Provision(ByteSpan image);
  EcuStatus status() const;
  // Whether a reset now would start an application: a bank whose boot record is valid and whose
  // flash matches it (what the bootloader checks as it starts).
  bool Bootable();
  const EcuConfig& config() const { return config_; }
  EcuFaults& faults() { return config_.faults; }
  uds::Server& server() { return server_; }
  flash::SimFlash& flash() { return *code_; }
  // Power off now, on again after `off` (what a reset at a block or a power loss does).
  void PowerCycle(std::chrono::milliseconds off);
  bool online() const { return online_; }
  // Preconditions for programming (31 01 02 03): nullopt when met, else the NRC to answer.
  std::function<std::optional<uint8_t>()> preconditions;
  // Called each time the ECU has started (after a reset or power cycle).
  std::function<void(const EcuStatus&)> on_boot;

 private:
  Ecu(EventLoop& loop, EcuConfig config, std::unique_ptr<flash::SimFlash> code,
      std::unique_ptr<flash::SimFlash> nvm);
  void Install();
  void Boot();
  void GoOffline();
  void AttachAll();
  void DetachAll();
  uint64_t BankOffset(int bank) const { return bank * config_.app_size; }
  int TargetBank() const;
  // Whether `bank` holds what the boot record says: valid, its CRC-32 over the recorded size.
  bool Intact(int bank);
  std::optional<uint8_t> InjectedNrc(uint8_t sid);
  // nullopt when programming is unlocked (access), else the NRC: 0x34 or 0x33.
  std::optional<uint8_t> ProgrammingRefused() const;

  void Routine(const uds::Request& r, uds::Responder reply);
  void EraseMemory(const uds::RoutineRequest& rr, uds::Responder reply);
  void EraseAhead();
  void CheckMemory(const uds::RoutineRequest& rr, uds::Responder reply);
  void CheckDependencies(uds::Responder reply);
  void SwitchBank(uds::Responder reply);
  void SetContentKey(const uds::RoutineRequest& rr, uds::Responder reply);
  // Sets up the opener and decoder of a decrypting download (data format `format`): the NRC
  // when it cannot be taken.
  std::optional<uint8_t> StartDecrypting(uint8_t format);
  void Checksum(const uds::RoutineRequest& rr, uds::Responder reply);
  void RequestDownload(const uds::Request& r, uds::Responder reply);
  void RequestUpload(const uds::Request& r, uds::Responder reply);
  void TransferData(const uds::Request& r, uds::Responder reply);
  void TransferExit(const uds::Request& r, uds::Responder reply);
  void ProgramPending(bool final);
  void Answer36WhenRoom();
  void FinishExitWhenProgrammed();

  EventLoop& loop_;
  EcuConfig config_;
  std::unique_ptr<flash::SimFlash> code_, nvm_;
  FlashWorker worker_;
  uds::Server server_;
  std::vector<std::pair<uds::Link*, uds::Link*>> links_;
  bool online_ = true;
  bool attached_ = false;
  TimerId power_timer_ = 0;

  BootState boot_;
  bool application_ = false;  // running an application (else the bootloader)
  int running_bank_ = 0;
  std::string fingerprint_ = std::string(16, '\0');

  // The programming context, cleared by a reset.
  bool preconditions_ok_ = false;
  int erase_bank_ = -1;
  uint64_t erase_begin_ = 0, erase_end_ = 0;  // bank offsets, whole blocks
  std::vector<uint8_t> block_state_;          // per block of the bank: 0 dirty, 1 queued, 2 erased
  bool erase_failed_ = false;
  struct Transfer {
    bool active = false;
    bool upload = false;
    uint64_t offset = 0;  // in the bank
    uint64_t size = 0;
    uint64_t received = 0;
    uint8_t next_bsc = 1;
    int blocks = 0;
    Bytes pending;  // received, not yet handed to the flash (less than a write unit or waiting)
    uint64_t written = 0;  // bytes handed to the flash
    // A decrypting download: what arrives is opened, then decoded, into `pending`; `received`
    // counts the plain bytes.
    std::unique_ptr<ByteSink> plain;
    std::unique_ptr<pkg::StreamCodec> decoder;
    std::unique_ptr<crypto::ChunkOpener> opener;
  } transfer_;
  // The content key and salt 31 01 02 10 gave for the next decrypting download.
  std::optional<std::pair<crypto::ContentKey, crypto::PayloadSalt>> content_key_;
  uint64_t queued_bytes_ = 0;  // handed to the flash, not yet programmed
  bool program_failed_ = false;
  std::optional<uds::Responder> waiting_36_;
  std::vector<uint8_t> waiting_36_answer_;
  std::optional<uds::Responder> waiting_37_;
  struct Image {
    bool complete = false;
    uint64_t offset = 0, size = 0;
    bool checked = false;
    uint32_t crc32 = 0;      // of the programmed image, from the check routine's read-back
    std::string version{};   // from its header
    bool decrypted = false;  // it came sealed: every byte was authenticated on arrival
  } image_;
};

}  // namespace aloft::ecusim
