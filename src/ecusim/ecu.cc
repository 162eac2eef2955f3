#include "ecusim/ecu.h"

#include <filesystem>

#include "core/crc32.h"
#include "core/hash.h"

namespace aloft::ecusim {

namespace {

using uds::nrc::kConditionsNotCorrect;
using uds::nrc::kGeneralProgrammingFailure;
using uds::nrc::kIncorrectMessageLength;
using uds::nrc::kRequestOutOfRange;
using uds::nrc::kRequestSequenceError;
using uds::nrc::kSecurityAccessDenied;
using uds::nrc::kUploadDownloadNotAccepted;
using uds::nrc::kWrongBlockSequenceCounter;

constexpr uint16_t kRidPreconditions = 0x0203;
constexpr uint16_t kRidCheckMemory = 0x0202;
constexpr uint16_t kRidContentKey = 0x0210;  // the content key of a decrypting download
constexpr uint16_t kRidErase = 0xFF00;
constexpr uint16_t kRidDependencies = 0xFF01;
constexpr uint16_t kRidSwitchBank = 0xFF02;  // A/B: start the other valid bank (a rollback)
constexpr uint16_t kRidChecksum = 0xFF03;    // the CRC-32 of a range of the bank to program
constexpr uint16_t kRidCheckRange = 0xFF04;  // 02 02 over a given range (a resumed download)

Bytes Text(const std::string& s) { return Bytes(s.begin(), s.end()); }

Result<std::unique_ptr<flash::SimFlash>> OpenOrCreate(const std::string& path,
                                                      const flash::FlashGeometry& g,
                                                      flash::FlashTiming timing) {
  auto f = std::filesystem::exists(path) ? flash::SimFlash::Open(path, g, timing)
                                         : flash::SimFlash::Create(path, g, timing);
  if (!f.ok()) return std::move(f).error();
  return std::make_unique<flash::SimFlash>(std::move(*f));
}

}  // namespace

Bytes SecurityKey(const EcuConfig& config, std::span<const uint8_t> seed) {
  if (config.key_algorithm == KeyAlgorithm::kHmacSha256) return HmacSha256(config.secret, seed);
  Bytes key(seed.begin(), seed.end());
  for (size_t i = 0; i < key.size() && !config.secret.empty(); ++i) {
    key[i] ^= config.secret[i % config.secret.size()];
  }
  return key;
}

std::string EcuStatus::Describe(const EcuConfig& c) const {
  std::string s = c.name + ": ";
  s += application ? "application " + (version.empty() ? "(no version)" : version) : "bootloader";
  if (c.layout == BankLayout::kAb) {
    s += application ? std::string(" (bank ") + "AB"[bank] + ")" : "";
    for (int b = 0; b < 2; ++b) {
      s += std::string("; bank ") + "AB"[b] + " " +
           (boot.banks[b].valid ? boot.banks[b].version + " valid" : "empty");
    }
    s += std::string("; starts ") + "AB"[boot.active];
  } else if (!application) {
    s += " (no valid application)";
  }
  return s;
}

Result<std::unique_ptr<Ecu>> Ecu::Create(EventLoop& loop, EcuConfig config,
                                         const std::string& dir) {
  if (config.app_size == 0 || config.app_size % config.erase_block != 0) {
    return Error(Code::kInvalidArgument, "ECU " + config.name +
                                             ": app_size must be a multiple of the erase block (" +
                                             std::to_string(config.erase_block) + " bytes)");
  }
  if (config.max_block_length < 3 + config.write_unit || config.max_block_length > 0xFFFF) {
    return Error(Code::kInvalidArgument, "ECU " + config.name + ": max_block_length out of range");
  }
  flash::FlashGeometry code{.size = config.app_size * (config.layout == BankLayout::kAb ? 2 : 1),
                            .erase_block = config.erase_block,
                            .write_unit = config.write_unit};
  ALOFT_ASSIGN_OR_RETURN(auto code_flash,
                         OpenOrCreate(dir + "/" + config.name + ".flash", code, config.timing));
  flash::FlashGeometry data{.size = 2 * 4096, .erase_block = 4096, .write_unit = 8};
  ALOFT_ASSIGN_OR_RETURN(auto nvm, OpenOrCreate(dir + "/" + config.name + ".nvm", data, {}));
  std::unique_ptr<Ecu> ecu(new Ecu(loop, std::move(config), std::move(code_flash), std::move(nvm)));
  ALOFT_ASSIGN_OR_RETURN(ecu->boot_, LoadBootState(*ecu->nvm_));
  ecu->Boot();
  return ecu;
}

Ecu::Ecu(EventLoop& loop, EcuConfig config, std::unique_ptr<flash::SimFlash> code,
         std::unique_ptr<flash::SimFlash> nvm)
    : loop_(loop),
      config_(std::move(config)),
      code_(std::move(code)),
      nvm_(std::move(nvm)),
      worker_(loop, *code_),
      server_(loop, {.name = config_.name, .response_delay = config_.faults.slow}) {
  Install();
}

Ecu::~Ecu() {
  if (power_timer_) loop_.Cancel(power_timer_);
  DetachAll();
}

void Ecu::Attach(uds::Link& physical, uds::Link* functional) {
  DetachAll();
  links_.emplace_back(&physical, functional);
  if (online_) AttachAll();
}

void Ecu::AttachAll() {
  if (attached_) return;
  attached_ = true;
  for (auto& [physical, functional] : links_) {
    server_.Attach(*physical);
    if (functional) server_.Attach(*functional, {.functional = true, .reply = physical});
  }
}

void Ecu::DetachAll() {
  if (!attached_) return;
  attached_ = false;
  for (auto& [physical, functional] : links_) {
    server_.Detach(*physical);
    if (functional) server_.Detach(*functional);
  }
}

int Ecu::TargetBank() const {
  if (config_.layout == BankLayout::kSingle) return 0;
  return boot_.banks[boot_.active].valid ? 1 - boot_.active : boot_.active;
}

std::optional<uint8_t> Ecu::InjectedNrc(uint8_t sid) {
  auto it = config_.faults.nrc.find(sid);
  if (it == config_.faults.nrc.end()) return std::nullopt;
  const uint8_t code = it->second;
  config_.faults.nrc.erase(it);
  return code;
}

std::optional<uint8_t> Ecu::ProgrammingRefused() const {
  if (config_.access != ProgrammingAccess::kSecurityAccess &&
      !server_.Authenticated("programming")) {
    return uds::nrc::kAuthenticationRequired;
  }
  if (config_.access != ProgrammingAccess::kAuthentication && server_.security_level() != 1) {
    return kSecurityAccessDenied;
  }
  return std::nullopt;
}

void Ecu::Install() {
  using uds::session::kExtended;
  using uds::session::kProgramming;
  const uint8_t level = config_.access == ProgrammingAccess::kAuthentication ? 0 : 1;
  const std::string role =
      config_.access == ProgrammingAccess::kSecurityAccess ? "" : "programming";
  if (!role.empty()) {
    server_.SetAuthentication(
        {.anchors = config_.auth_anchors, .roles = config_.auth_roles, .now = config_.auth_now});
  }
  server_.SetSecurityLevel(
      1, {.seed_length = config_.seed_length,
          .key = [this](std::span<const uint8_t> seed) { return SecurityKey(config_, seed); },
          .max_attempts = config_.max_attempts,
          .delay = config_.attempt_delay,
          .sessions = {kProgramming}});
  server_.SetDid(0xF190, {.value = Text(config_.vin)});
  server_.SetDid(0xF187, {.value = Text(config_.part_number)});
  server_.SetDid(0xF18C, {.value = Text(config_.serial)});
  server_.SetDid(0xF191, {.value = Text(config_.hardware_version)});
  server_.SetDid(0xF180, {.value = Text(config_.boot_version)});
  server_.SetDid(0xF189, {.read = [this] {
                   return application_ ? Text(boot_.banks[running_bank_].version) : Bytes{};
                 }});
  server_.SetDid(0xF186, {.read = [this] { return Bytes{server_.session()}; }});
  if (config_.decrypt_key) {  // the key a content key is wrapped for (docs/encryption.md)
    const auto pub = config_.decrypt_key->PublicRaw();
    server_.SetDid(0xF1A0, {.value = Bytes(pub.begin(), pub.end())});
  }
  server_.SetDid(0xF15B, {.read = [this] { return Text(fingerprint_); },
                          .writable = true,
                          .write_sessions = {kProgramming},
                          .write_security = level,
                          .write_role = role,
                          .length = 16});
  server_.intercept = [this](const uds::Request& r) -> std::optional<uint8_t> {
    if (r.sid() == 0x2E && r.bytes.size() == 19 && r.bytes[1] == 0xF1 && r.bytes[2] == 0x5B) {
      fingerprint_.assign(r.bytes.begin() + 3, r.bytes.end());
    }
    return InjectedNrc(r.sid());
  };
  server_.session_guard = [this](uint8_t from, uint8_t to) -> std::optional<uint8_t> {
    if (to != kProgramming || from == kProgramming) return std::nullopt;
    if (from != kExtended) return uds::nrc::kSubFunctionNotSupportedInActiveSession;
    if (!preconditions_ok_) return kConditionsNotCorrect;
    return std::nullopt;
  };
  server_.on_session_change = [this](uint8_t from, uint8_t to) {
    if (to == uds::session::kDefault) preconditions_ok_ = false;
    // Leaving the programming session (S3 timeout, 10 01/03) leaves the bootloader: a reset.
    if (from == kProgramming && to != kProgramming) {
      loop_.Post([this] { PowerCycle(std::chrono::milliseconds(0)); });
    }
  };
  const std::vector<uint8_t> programming = {kProgramming};
  server_.Handle(0x31, {.min_length = 4, .subfunction = true, .subfunctions = {1, 2, 3}},
                 [this](const uds::Request& r, uds::Responder reply) { Routine(r, reply); });
  server_.Handle(
      0x34, {.sessions = programming, .security_level = level, .role = role, .min_length = 5},
      [this](const uds::Request& r, uds::Responder reply) { RequestDownload(r, reply); });
  server_.Handle(0x35,
                 {.sessions = programming, .security_level = level, .role = role, .min_length = 5},
                 [this](const uds::Request& r, uds::Responder reply) { RequestUpload(r, reply); });
  server_.Handle(0x36,
                 {.sessions = programming, .security_level = level, .role = role, .min_length = 2},
                 [this](const uds::Request& r, uds::Responder reply) { TransferData(r, reply); });
  server_.Handle(0x37, {.sessions = programming, .security_level = level, .role = role},
                 [this](const uds::Request& r, uds::Responder reply) { TransferExit(r, reply); });
  server_.Handle(0x11, {.min_length = 2, .subfunction = true, .subfunctions = {0x01, 0x03}},
                 [this](const uds::Request& r, uds::Responder reply) {
                   if (r.bytes.size() != 2) return reply.Negative(kIncorrectMessageLength);
                   reply.Positive({0x51, r.sub()});
                   loop_.After(std::chrono::milliseconds(5),
                               [this] { PowerCycle(std::chrono::milliseconds(0)); });
                 });
  worker_.OnIdle([this] { EraseAhead(); });
}

// --- start, reset, power ----------------------------------------------------------------------

void Ecu::Boot() {
  server_.Reset();
  preconditions_ok_ = false;
  erase_bank_ = -1;
  block_state_.clear();
  transfer_ = Transfer{};
  content_key_.reset();
  image_ = Image{};
  queued_bytes_ = 0;
  program_failed_ = erase_failed_ = false;
  waiting_36_.reset();
  waiting_37_.reset();
  Result<BootState> loaded = LoadBootState(*nvm_);
  if (loaded.ok()) boot_ = *loaded;
  // The bootloader starts a bank only when its image is whole.
  application_ = false;
  if (config_.layout == BankLayout::kSingle) {
    application_ = Intact(0);
    running_bank_ = 0;
  } else if (Intact(boot_.active)) {
    application_ = true;
    running_bank_ = boot_.active;
  } else if (Intact(1 - boot_.active)) {
    application_ = true;  // the other bank: the one that starts is broken
    running_bank_ = 1 - boot_.active;
  }
  online_ = true;
  AttachAll();
  if (on_boot) on_boot(status());
}

bool Ecu::Bootable() {
  if (config_.layout == BankLayout::kSingle) return Intact(0);
  return Intact(0) || Intact(1);
}

bool Ecu::Intact(int bank) {
  const Bank& b = boot_.banks[bank];
  if (!b.valid || b.size == 0 || b.size > config_.app_size) return false;
  Bytes image(b.size);
  return code_->Read(BankOffset(bank), image).ok() && Crc32(image) == b.crc32;
}

void Ecu::GoOffline() {
  online_ = false;
  DetachAll();
  worker_.Clear();
  server_.Reset();
  waiting_36_.reset();
  waiting_37_.reset();
}

void Ecu::PowerCycle(std::chrono::milliseconds off) {
  if (power_timer_) loop_.Cancel(power_timer_);
  GoOffline();
  power_timer_ = loop_.After(off, [this] {
    code_->PowerOn();
    nvm_->PowerOn();
    power_timer_ = loop_.After(config_.boot_time, [this] {
      power_timer_ = 0;
      Boot();
    });
  });
}

Status Ecu::Provision(ByteSpan image) {
  if (image.size() > config_.app_size) {
    return Error(Code::kInvalidArgument, "ECU " + config_.name + ": an image of " +
                                             std::to_string(image.size()) + " bytes exceeds " +
                                             std::to_string(config_.app_size));
  }
  const int bank = config_.layout == BankLayout::kAb ? boot_.active : 0;
  ALOFT_RETURN_IF_ERROR(code_->Erase(BankOffset(bank), config_.app_size));
  Bytes padded(image.begin(), image.end());
  padded.resize((padded.size() + config_.write_unit - 1) / config_.write_unit * config_.write_unit,
                0xFF);
  ALOFT_RETURN_IF_ERROR(code_->Program(BankOffset(bank), padded));
  boot_.banks[bank] = {true, static_cast<uint32_t>(image.size()), Crc32(image),
                       AppVersion(image).value_or("")};
  ALOFT_RETURN_IF_ERROR(StoreBootState(*nvm_, boot_));
  Boot();
  return OkStatus();
}

EcuStatus Ecu::status() const {
  EcuStatus s;
  s.application = application_;
  s.bank = running_bank_;
  s.version = application_ ? boot_.banks[running_bank_].version : "";
  s.boot = boot_;
  return s;
}

// --- routines ---------------------------------------------------------------------------------

void Ecu::Routine(const uds::Request& r, uds::Responder reply) {
  uds::RoutineRequest rr;
  if (auto bad = uds::ParseRoutineRequest(r.bytes, &rr)) return reply.Negative(bad->nrc);
  const bool programming = server_.session() == uds::session::kProgramming;
  switch (rr.id) {
    case kRidPreconditions: {
      if (rr.type != 1) return reply.Negative(uds::nrc::kSubFunctionNotSupported);
      if (server_.session() == uds::session::kDefault) return reply.Negative(kRequestOutOfRange);
      if (preconditions) {
        if (std::optional<uint8_t> refused = preconditions()) return reply.Negative(*refused);
      }
      preconditions_ok_ = true;
      return reply.Positive({0x71, 0x01, 0x02, 0x03, 0x00});
    }
    case kRidContentKey:
    case kRidErase:
    case kRidCheckMemory:
    case kRidDependencies:
    case kRidSwitchBank:
    case kRidChecksum:
    case kRidCheckRange:
      if (!programming) return reply.Negative(kRequestOutOfRange);
      if (auto refused = ProgrammingRefused()) return reply.Negative(*refused);
      if (rr.type != 1) return reply.Negative(uds::nrc::kSubFunctionNotSupported);
      if (rr.id == kRidErase) return EraseMemory(rr, reply);
      if (rr.id == kRidContentKey) return SetContentKey(rr, reply);
      if (rr.id == kRidCheckMemory) return CheckMemory(rr, reply);
      if (rr.id == kRidChecksum) return Checksum(rr, reply);
      if (rr.id == kRidCheckRange) {
        // Address and size (4 bytes each, of the whole image), then what 02 02 takes.
        if (rr.options.size() < 8) return reply.Negative(kIncorrectMessageLength);
        const uint64_t address = uds::BigEndian(rr.options.first(4));
        const uint64_t size = uds::BigEndian(rr.options.subspan(4, 4));
        if (!image_.complete || address < config_.app_address ||
            address - config_.app_address + size > config_.app_size ||
            address - config_.app_address + size != image_.offset + image_.size) {
          return reply.Negative(kRequestSequenceError);  // it must end where the download did
        }
        image_.offset = address - config_.app_address;
        image_.size = size;
        uds::RoutineRequest rest = rr;
        rest.options = rr.options.subspan(8);
        return CheckMemory(rest, reply);
      }
      if (rr.id == kRidSwitchBank) return SwitchBank(reply);
      return CheckDependencies(reply);
    default:
      return reply.Negative(kRequestOutOfRange);
  }
}

void Ecu::EraseMemory(const uds::RoutineRequest& rr, uds::Responder reply) {
  if (transfer_.active) return reply.Negative(kConditionsNotCorrect);
  uint64_t address = config_.app_address, size = config_.app_size;
  if (!rr.options.empty()) {
    Bytes request{0x34, 0x00};
    request.insert(request.end(), rr.options.begin(), rr.options.end());
    uds::TransferRequest t;
    if (auto bad = uds::ParseTransferRequest(request, &t)) return reply.Negative(bad->nrc);
    address = t.address;
    size = t.size;
  }
  if (size == 0 || address < config_.app_address ||
      address - config_.app_address + size > config_.app_size) {
    return reply.Negative(kRequestOutOfRange);
  }
  const int bank = TargetBank();
  // The bank is no longer a valid application from the first erased byte on.
  if (boot_.banks[bank].valid) {
    boot_.banks[bank].valid = false;
    if (!StoreBootState(*nvm_, boot_).ok()) return reply.Negative(kGeneralProgrammingFailure);
  }
  const uint64_t block = config_.erase_block;
  erase_bank_ = bank;
  erase_begin_ = (address - config_.app_address) / block * block;
  erase_end_ = (address - config_.app_address + size + block - 1) / block * block;
  block_state_.assign(config_.app_size / block, 0);
  image_ = Image{};
  erase_failed_ = false;
  // The first block now; the routine answers once it is erased, and the bootloader erases the
  // others whenever the flash has nothing to program ("erase ahead": docs/vehicle-network.md).
  const uint64_t first = erase_begin_ / block;
  block_state_[first] = 1;
  auto responder = std::make_shared<uds::Responder>(reply);
  worker_.Erase(BankOffset(bank) + erase_begin_, block, [this, first, responder](const Status& s) {
    if (!s.ok()) {
      erase_failed_ = true;
      responder->Negative(kGeneralProgrammingFailure);
      return;
    }
    block_state_[first] = 2;
    responder->Positive({0x71, 0x01, 0xFF, 0x00, 0x00});
  });
}

void Ecu::EraseAhead() {
  if (erase_bank_ < 0 || erase_failed_) return;
  const uint64_t block = config_.erase_block;
  for (uint64_t b = erase_begin_ / block; b < erase_end_ / block; ++b) {
    if (block_state_[b] != 0) continue;
    block_state_[b] = 1;
    worker_.Erase(BankOffset(erase_bank_) + b * block, block, [this, b](const Status& s) {
      if (s.ok()) {
        block_state_[b] = 2;
      } else {
        erase_failed_ = true;
        if (s.error().code() == Code::kUnavailable) PowerCycle(config_.faults.power_off);
      }
    });
    return;  // one at a time: data that arrives meanwhile is programmed first
  }
}

// Options: CRC-32 (4 bytes), SHA-256 (32) or both (36); with a trusted key, both and then the
// key's signature of the SHA-256.
void Ecu::CheckMemory(const uds::RoutineRequest& rr, uds::Responder reply) {
  if (!image_.complete) return reply.Negative(kRequestSequenceError);
  const size_t n = rr.options.size();
  const bool signed_check = config_.trusted_key.has_value();
  if (signed_check ? n < 36 : (n != 4 && n != 32 && n != 36)) {
    return reply.Negative(kIncorrectMessageLength);
  }
  Bytes image(image_.size);
  if (!code_->Read(BankOffset(erase_bank_) + image_.offset, image).ok()) {
    return reply.Negative(kGeneralProgrammingFailure);
  }
  const Bytes sha = Sha256(image);
  image_.crc32 = Crc32(image);
  image_.version = AppVersion(image).value_or("");
  bool match = true;
  // A decrypted download was authenticated chunk by chunk on arrival, and its tester never held
  // the plain image to compute a CRC-32 of: the SHA-256 decides.
  if (n != 32 && !image_.decrypted) {
    match = match && image_.crc32 == static_cast<uint32_t>(uds::BigEndian(rr.options.first(4)));
  }
  if (n != 4) {
    const size_t at = n == 32 ? 0 : 4;
    match = match && std::equal(sha.begin(), sha.end(), rr.options.begin() + at);
  }
  if (signed_check) {
    match = match && config_.trusted_key->Verify(sha, rr.options.subspan(36)).ok();
  }
  image_.checked = match;
  reply.Positive({0x71, 0x01, 0x02, 0x02, static_cast<uint8_t>(match ? 0x00 : 0x01)});
}

// 31 01 FF 03 ALFID address size: the CRC-32 of that range of the bank to program, as it is now
// (a tester resuming a download finds the erase blocks it already holds).
void Ecu::Checksum(const uds::RoutineRequest& rr, uds::Responder reply) {
  if (transfer_.active) return reply.Negative(kConditionsNotCorrect);
  Bytes request{0x34, 0x00};
  request.insert(request.end(), rr.options.begin(), rr.options.end());
  uds::TransferRequest t;
  if (auto bad = uds::ParseTransferRequest(request, &t)) return reply.Negative(bad->nrc);
  if (t.size == 0 || t.address < config_.app_address ||
      t.address - config_.app_address + t.size > config_.app_size) {
    return reply.Negative(kRequestOutOfRange);
  }
  const int bank = erase_bank_ >= 0 ? erase_bank_ : TargetBank();
  Bytes data(t.size);
  if (!code_->Read(BankOffset(bank) + t.address - config_.app_address, data).ok()) {
    return reply.Negative(kGeneralProgrammingFailure);
  }
  Bytes out{0x71, 0x01, 0xFF, 0x03, 0x00};
  uds::PutBigEndian(out, Crc32(data), 4);
  reply.Positive(std::move(out));
}

// 31 01 FF 02: the other bank starts from the next reset, if it holds a valid image (status 00);
// status 01 when it does not. Single-bank ECUs have no other bank (0x31).
void Ecu::SwitchBank(uds::Responder reply) {
  if (config_.layout != BankLayout::kAb) return reply.Negative(kRequestOutOfRange);
  if (transfer_.active) return reply.Negative(kConditionsNotCorrect);
  const int other = 1 - boot_.active;
  if (!Intact(other)) return reply.Positive({0x71, 0x01, 0xFF, 0x02, 0x01});
  boot_.active = static_cast<uint8_t>(other);
  if (!StoreBootState(*nvm_, boot_).ok()) return reply.Negative(kGeneralProgrammingFailure);
  reply.Positive({0x71, 0x01, 0xFF, 0x02, 0x00});
}

void Ecu::CheckDependencies(uds::Responder reply) {
  if (!image_.checked || image_.offset != 0) {
    return reply.Positive({0x71, 0x01, 0xFF, 0x01, 0x01});  // nothing valid to start
  }
  // The check routine read the image back a moment ago (offset 0: the bank's start).
  boot_.banks[erase_bank_] = {true, static_cast<uint32_t>(image_.size), image_.crc32,
                              image_.version};
  if (config_.layout == BankLayout::kAb) boot_.active = static_cast<uint8_t>(erase_bank_);
  if (!StoreBootState(*nvm_, boot_).ok()) return reply.Negative(kGeneralProgrammingFailure);
  reply.Positive({0x71, 0x01, 0xFF, 0x01, 0x00});
}

// 31 01 02 10, the content key wrapped for this ECU (81 bytes) and the payload's salt (16): the
// key of the next decrypting download. 0x31 without a decryption key or for a wrap that does
// not open with it.
void Ecu::SetContentKey(const uds::RoutineRequest& rr, uds::Responder reply) {
  if (!config_.decrypt_key) return reply.Negative(kRequestOutOfRange);
  if (transfer_.active) return reply.Negative(kConditionsNotCorrect);
  if (rr.options.size() != crypto::kWrappedKeySize + crypto::kSaltSize) {
    return reply.Negative(kIncorrectMessageLength);
  }
  auto key = config_.decrypt_key->Unwrap(rr.options.first(crypto::kWrappedKeySize));
  if (!key.ok()) return reply.Negative(kRequestOutOfRange);
  crypto::PayloadSalt salt;
  std::copy_n(rr.options.begin() + crypto::kWrappedKeySize, salt.size(), salt.begin());
  content_key_.emplace(*key, salt);
  reply.Positive({0x71, 0x01, 0x02, 0x10, 0x00});
}

namespace {

// The plain bytes of a decrypting download, appended where the flash takes them from.
class AppendSink final : public ByteSink {
 public:
  AppendSink(Bytes& out, uint64_t& count) : out_(out), count_(count) {}
  Status Write(ByteSpan data) override {
    out_.insert(out_.end(), data.begin(), data.end());
    count_ += data.size();
    return OkStatus();
  }

 private:
  Bytes& out_;
  uint64_t& count_;
};

}  // namespace

std::optional<uint8_t> Ecu::StartDecrypting(uint8_t format) {
  if (!config_.decrypt_key || !content_key_) return kRequestOutOfRange;
  static constexpr pkg::Compression kMethods[] = {pkg::Compression::kNone, pkg::Compression::kZstd,
                                                  pkg::Compression::kLzma};
  const uint8_t method = format >> 4;
  if (method >= std::size(kMethods)) return kRequestOutOfRange;
  transfer_.plain = std::make_unique<AppendSink>(transfer_.pending, transfer_.received);
  auto decoder = pkg::MakeDecompressor(kMethods[method], *transfer_.plain);
  if (!decoder.ok()) return kRequestOutOfRange;
  transfer_.decoder = std::move(*decoder);
  transfer_.opener = std::make_unique<crypto::ChunkOpener>(
      content_key_->first, content_key_->second,
      [this](ByteSpan b) { return transfer_.decoder->Write(b); });
  return std::nullopt;
}

// --- download ---------------------------------------------------------------------------------

void Ecu::RequestDownload(const uds::Request& r, uds::Responder reply) {
  uds::TransferRequest t;
  if (auto bad = uds::ParseTransferRequest(r.bytes, &t)) return reply.Negative(bad->nrc);
  if (transfer_.active) return reply.Negative(kConditionsNotCorrect);
  // Data format 0x00, or (with a decryption key) encryption method 1 and a compression.
  if (t.data_format != 0x00 && ((t.data_format & 0x0F) != 0x01 || !config_.decrypt_key)) {
    return reply.Negative(kRequestOutOfRange);
  }
  if (t.size == 0 || t.address < config_.app_address ||
      t.address - config_.app_address + t.size > config_.app_size ||
      (t.address - config_.app_address) % config_.write_unit != 0) {
    return reply.Negative(kRequestOutOfRange);
  }
  const uint64_t offset = t.address - config_.app_address;
  if (erase_bank_ < 0 || offset < erase_begin_ || offset + t.size > erase_end_) {
    return reply.Negative(kUploadDownloadNotAccepted);  // erase first
  }
  transfer_ = Transfer{};
  if (t.data_format != 0x00) {
    if (auto refused = StartDecrypting(t.data_format)) return reply.Negative(*refused);
  }
  transfer_.active = true;
  transfer_.offset = offset;
  transfer_.size = t.size;
  image_ = Image{};
  program_failed_ = false;
  Bytes out{0x74, 0x20};
  uds::PutBigEndian(out, config_.max_block_length, 2);
  reply.Positive(std::move(out));
}

void Ecu::RequestUpload(const uds::Request& r, uds::Responder reply) {
  uds::TransferRequest t;
  if (auto bad = uds::ParseTransferRequest(r.bytes, &t)) return reply.Negative(bad->nrc);
  if (transfer_.active) return reply.Negative(kConditionsNotCorrect);
  if (t.data_format != 0x00 || t.size == 0 || t.address < config_.app_address ||
      t.address - config_.app_address + t.size > config_.app_size) {
    return reply.Negative(kRequestOutOfRange);
  }
  transfer_ = Transfer{};
  transfer_.active = true;
  transfer_.upload = true;
  transfer_.offset = t.address - config_.app_address;
  transfer_.size = t.size;
  Bytes out{0x75, 0x20};
  uds::PutBigEndian(out, config_.max_block_length, 2);
  reply.Positive(std::move(out));
}

void Ecu::TransferData(const uds::Request& r, uds::Responder reply) {
  if (!transfer_.active) return reply.Negative(kRequestSequenceError);
  const uint8_t bsc = r.bytes[1];
  const uint8_t previous = static_cast<uint8_t>(transfer_.next_bsc - 1);
  if (transfer_.upload) {
    if (r.bytes.size() != 2) return reply.Negative(kIncorrectMessageLength);
    if (bsc != transfer_.next_bsc) return reply.Negative(kWrongBlockSequenceCounter);
    const uint64_t n =
        std::min<uint64_t>(config_.max_block_length - 2, transfer_.size - transfer_.received);
    if (n == 0) return reply.Negative(kRequestSequenceError);
    Bytes out{0x76, bsc};
    out.resize(2 + n);
    const uint64_t bank = application_ ? running_bank_ : TargetBank();
    if (!code_
             ->Read(BankOffset(static_cast<int>(bank)) + transfer_.offset + transfer_.received,
                    std::span(out).subspan(2))
             .ok()) {
      return reply.Negative(kGeneralProgrammingFailure);
    }
    transfer_.received += n;
    ++transfer_.next_bsc;
    return reply.Positive(std::move(out));
  }
  // A repeat of the block just taken (its answer was lost): answered again, not written again.
  if (transfer_.blocks > 0 && bsc == previous) return reply.Positive({0x76, bsc});
  if (bsc != transfer_.next_bsc) return reply.Negative(kWrongBlockSequenceCounter);
  const size_t n = r.bytes.size() - 2;
  if (n == 0 || n > config_.max_block_length - 2u) return reply.Negative(kIncorrectMessageLength);
  if (!transfer_.opener && transfer_.received + n > transfer_.size) {
    return reply.Negative(uds::nrc::kTransferDataSuspended);
  }
  if (program_failed_) return reply.Negative(kGeneralProgrammingFailure);
  ++transfer_.blocks;
  if (config_.faults.reset_at_block == transfer_.blocks) {
    config_.faults.reset_at_block.reset();
    PowerCycle(std::chrono::milliseconds(0));  // the ECU resets instead of answering
    return;
  }
  if (config_.faults.hang_at_block == transfer_.blocks) {
    config_.faults.hang_at_block.reset();
    // Unanswered (the framework says 0x78 meanwhile); then silent until the watchdog resets it.
    power_timer_ =
        loop_.After(std::chrono::milliseconds(200), [this] { PowerCycle(config_.faults.hang); });
    return;
  }
  if (config_.faults.power_loss_at_block == transfer_.blocks) {
    config_.faults.power_loss_at_block.reset();
    code_->CutPowerAfter(code_->operations() + 1);  // the next flash operation is cut short
  }
  ++transfer_.next_bsc;
  if (transfer_.opener) {
    // Opened a chunk at a time: a chunk that fails its tag (or decodes wrong, or runs past the
    // announced size) ends the download; nothing of it was programmed.
    if (!transfer_.opener->Write(std::span(r.bytes).subspan(2)).ok() ||
        transfer_.received > transfer_.size) {
      transfer_ = Transfer{};
      return reply.Negative(kRequestOutOfRange);
    }
  } else {
    transfer_.received += n;
    transfer_.pending.insert(transfer_.pending.end(), r.bytes.begin() + 2, r.bytes.end());
  }
  if (config_.faults.corrupt_at_block == transfer_.blocks && !transfer_.pending.empty()) {
    config_.faults.corrupt_at_block.reset();
    transfer_.pending[transfer_.pending.size() - n / 2] ^= 0x10;
  }
  ProgramPending(false);
  waiting_36_ = reply;
  waiting_36_answer_ = {0x76, bsc};
  Answer36WhenRoom();
}

void Ecu::ProgramPending(bool final) {
  const uint64_t unit = config_.write_unit, block = config_.erase_block;
  Bytes& p = transfer_.pending;
  if (final && p.size() % unit) p.resize((p.size() + unit - 1) / unit * unit, 0xFF);
  size_t taken = 0;
  while (p.size() - taken >= unit) {
    const uint64_t at = transfer_.offset + transfer_.written;  // in the bank
    const uint64_t b = at / block;
    const uint64_t room = (b + 1) * block - at;
    const uint64_t n = std::min<uint64_t>((p.size() - taken) / unit * unit, room);
    if (block_state_[b] == 0) {  // not erased yet: erase it first (the queue keeps the order)
      block_state_[b] = 1;
      worker_.Erase(BankOffset(erase_bank_) + b * block, block, [this, b](const Status& s) {
        if (s.ok()) block_state_[b] = 2;
      });
    }
    Bytes chunk(p.begin() + static_cast<ptrdiff_t>(taken),
                p.begin() + static_cast<ptrdiff_t>(taken + n));
    queued_bytes_ += n;
    worker_.Program(BankOffset(erase_bank_) + at, std::move(chunk), [this, n](const Status& s) {
      queued_bytes_ -= n;
      if (!s.ok()) {
        program_failed_ = true;
        if (s.error().code() == Code::kUnavailable) {  // the power went
          PowerCycle(config_.faults.power_off);
          return;
        }
      }
      Answer36WhenRoom();
      FinishExitWhenProgrammed();
    });
    transfer_.written += n;
    taken += n;
  }
  p.erase(p.begin(), p.begin() + static_cast<ptrdiff_t>(taken));
}

void Ecu::Answer36WhenRoom() {
  if (!waiting_36_) return;
  if (program_failed_) {
    auto r = std::move(*waiting_36_);
    waiting_36_.reset();
    return r.Negative(kGeneralProgrammingFailure);
  }
  // Answered when the flash has caught up enough for another block.
  if (queued_bytes_ + transfer_.pending.size() + config_.max_block_length > config_.buffer_bytes) {
    return;
  }
  auto r = std::move(*waiting_36_);
  waiting_36_.reset();
  r.Positive(waiting_36_answer_);
}

void Ecu::TransferExit(const uds::Request& r, uds::Responder reply) {
  (void)r;
  if (!transfer_.active) return reply.Negative(kRequestSequenceError);
  if (transfer_.upload) {
    transfer_ = Transfer{};
    return reply.Positive({0x77});
  }
  if (transfer_.opener) {
    // The last chunk (its "last" flag) and the end of the compressed stream must be there.
    if (!transfer_.opener->Finish().ok() || !transfer_.decoder->Finish().ok() ||
        transfer_.received != transfer_.size) {
      transfer_ = Transfer{};
      return reply.Negative(kRequestOutOfRange);
    }
  }
  if (transfer_.received != transfer_.size) return reply.Negative(kRequestSequenceError);
  ProgramPending(true);
  waiting_37_ = reply;
  FinishExitWhenProgrammed();
}

void Ecu::FinishExitWhenProgrammed() {
  if (!waiting_37_ || queued_bytes_ > 0 || !transfer_.pending.empty()) return;
  auto reply = std::move(*waiting_37_);
  waiting_37_.reset();
  if (program_failed_) return reply.Negative(kGeneralProgrammingFailure);
  image_ = Image{true, transfer_.offset, transfer_.size, false};
  image_.decrypted = transfer_.opener != nullptr;
  transfer_ = Transfer{};
  reply.Positive({0x77});
}

}  // namespace aloft::ecusim
