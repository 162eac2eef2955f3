#include "uds/flasher.h"

#include "core/crc32.h"
#include "core/hash.h"

namespace aloft::uds {

namespace {

std::string Ascii(std::span<const uint8_t> bytes) {
  std::string s;
  for (uint8_t b : bytes) s += (b >= 0x20 && b < 0x7F) ? static_cast<char>(b) : '.';
  return s;
}

}  // namespace

Flasher::Flasher(Client& client, FlashPlan plan) : client_(client), plan_(std::move(plan)) {
  source_ = plan_.source ? plan_.source : std::make_shared<MemoryRandomSource>(plan_.image);
}

Result<uint32_t> Flasher::Crc(uint64_t at, uint64_t n) {
  Bytes chunk(std::min<uint64_t>(n, 64 * 1024));
  uint32_t crc = 0;
  for (uint64_t done = 0; done < n;) {
    const auto part = std::span(chunk).first(std::min<uint64_t>(chunk.size(), n - done));
    ALOFT_RETURN_IF_ERROR(source_->ReadAt(at + done, part));
    crc = Crc32(part, crc);
    done += part.size();
  }
  return crc;
}

void Flasher::Run(std::function<void(Result<FlashReport>)> done) {
  done_ = std::move(done);
  report_ = FlashReport{};
  report_.bytes = Size();
  stage_ = plan_.phases == FlashPhases::kActivate ? 13 : 0;
  sent_ = 0;
  offset_ = 0;
  scanned_ = plan_.resume_block == 0 || plan_.sealed.has_value();
  authenticated_ = false;
  key_sent_ = !plan_.sealed;
  bsc_ = 1;
  tries_ = 0;
  start_ = client_.link().loop().Now();
  Step();
}

void Flasher::Fail(const Status& status) {
  auto done = std::move(done_);
  if (done) done(status.error());
}

void Flasher::Send(std::vector<uint8_t> request, std::function<void(const Response&)> next) {
  const auto sent_at = client_.link().loop().Now();
  std::weak_ptr<bool> alive = alive_;
  auto req = request;
  client_.Request(std::move(request),
                  [this, alive, req, sent_at, next = std::move(next)](Result<Response> r) {
                    if (alive.expired()) return;
                    if (!r.ok()) return Fail(std::move(r).error());
                    if (req[0] != 0x36) {
                      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          client_.link().loop().Now() - sent_at);
                      report_.steps.push_back(Describe(req, 4) + " -> " + Describe(r->bytes, 8) +
                                              " (" + std::to_string(ms.count()) + " ms)");
                    }
                    if (!r->positive()) return Fail(r->ToStatus(req));
                    next(*r);
                  });
}

void Flasher::Step() {
  const int stage = stage_++;
  auto next = [this](const Response&) { Step(); };
  switch (stage) {
    case 0:
      return Send({0x10, 0x03}, next);
    case 1:
      return Send({0x31, 0x01, 0x02, 0x03}, next);
    case 2:
      return Send({0x85, 0x02}, next);
    case 3:
      return Send({0x28, 0x03, 0x01}, next);
    case 4:
      return Send({0x22, 0xF1, 0x90}, [this](const Response& r) {
        if (r.bytes.size() > 3) report_.vin = Ascii(std::span(r.bytes).subspan(3));
        Step();
      });
    case 5:
      return Send({0x22, 0xF1, 0x89}, [this](const Response& r) {
        if (r.bytes.size() > 3) report_.version_before = Ascii(std::span(r.bytes).subspan(3));
        Step();
      });
    case 6:
      return Send({0x10, 0x02}, next);
    case 7: {
      if (plan_.credentials && !authenticated_) {
        --stage_;
        const auto sent_at = client_.link().loop().Now();
        std::weak_ptr<bool> alive = alive_;
        return Authenticate(client_, *plan_.credentials, [this, alive, sent_at](Status s) {
          if (alive.expired()) return;
          if (!s.ok()) return Fail(s);
          authenticated_ = true;
          const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
              client_.link().loop().Now() - sent_at);
          report_.steps.push_back("29 01, 29 03 -> 69 03 12 as " +
                                  plan_.credentials->chain[0].Subject() + " (" +
                                  std::to_string(ms.count()) + " ms)");
          Step();
        });
      }
      if (plan_.credentials && !plan_.key) return Step();  // 29 instead of 27
      const uint8_t seed_sub = static_cast<uint8_t>(plan_.security_level * 2 - 1);
      return Send({0x27, seed_sub}, [this, seed_sub](const Response& r) {
        std::span<const uint8_t> seed = std::span(r.bytes).subspan(2);
        const bool zero = std::all_of(seed.begin(), seed.end(), [](uint8_t b) { return b == 0; });
        if (zero) return Step();  // unlocked already
        std::vector<uint8_t> key_req{0x27, static_cast<uint8_t>(seed_sub + 1)};
        Bytes key = plan_.key ? plan_.key(seed) : Bytes{};
        key_req.insert(key_req.end(), key.begin(), key.end());
        Send(std::move(key_req), [this](const Response&) { Step(); });
      });
    }
    case 8: {
      if (plan_.fingerprint.empty()) return Step();
      std::vector<uint8_t> req{0x2E, 0xF1, 0x5B};
      req.insert(req.end(), plan_.fingerprint.begin(), plan_.fingerprint.end());
      return Send(std::move(req), next);
    }
    case 9: {
      if (!scanned_) {
        --stage_;
        return Scan(0);
      }
      // A sealed download's key first: an ECU that cannot take it refuses before any erase.
      if (!key_sent_) {
        --stage_;
        return SendContentKey();
      }
      download_start_ = client_.link().loop().Now();
      if (plan_.on_erase) plan_.on_erase();
      std::vector<uint8_t> req{0x31, 0x01, 0xFF, 0x00, 0x44};
      PutBigEndian(req, plan_.address + offset_, 4);
      PutBigEndian(req, ImageSize() - offset_, 4);
      return Send(std::move(req), next);
    }
    case 10: {
      const uint8_t format =
          plan_.sealed ? static_cast<uint8_t>(plan_.sealed->compression << 4 | 0x01) : 0x00;
      return Send(
          EncodeTransferRequest(0x34, {format, plan_.address + offset_, ImageSize() - offset_}),
          [this](const Response& r) {
            if (r.bytes.size() < 3) {
              return Fail(Error(Code::kMalformed, "UDS 34: answer without a block length"));
            }
            const size_t n = r.bytes[1] >> 4;
            if (n == 0 || n > 4 || r.bytes.size() < 2 + n) {
              return Fail(Error(Code::kMalformed, "UDS 34: bad lengthFormatIdentifier"));
            }
            report_.max_block_length =
                static_cast<uint32_t>(BigEndian(std::span(r.bytes).subspan(2, n)));
            sent_ = offset_;
            if (report_.max_block_length < 3) {
              return Fail(Error(Code::kMalformed, "UDS 34: maxNumberOfBlockLength " +
                                                      std::to_string(report_.max_block_length)));
            }
            Block();
          });
    }
    case 11:
      return Send({0x37}, [this](const Response&) {
        report_.download = client_.link().loop().Now() - download_start_;
        Step();
      });
    case 12: {
      std::vector<uint8_t> req{0x31, 0x01, 0x02, 0x02};
      if (offset_ > 0) {  // resumed: the whole image's range
        req = {0x31, 0x01, 0xFF, 0x04};
        PutBigEndian(req, plan_.address, 4);
        PutBigEndian(req, Size(), 4);
      }
      // One pass over the image for its CRC-32 (and its SHA-256, unless the signed one is given).
      // A sealed download: the signed SHA-256 only.
      if (plan_.sealed && plan_.sha256.size() != 32) {
        return Fail(Error(Code::kInvalidArgument,
                          "a sealed download needs the image's signed SHA-256 for 31 01 02 02"));
      }
      Hasher sha(HashAlgorithm::kSha256);
      Bytes chunk(std::min<uint64_t>(Size(), 64 * 1024));
      uint32_t crc = 0;
      for (uint64_t at = 0; !plan_.sealed && at < Size();) {
        const auto part = std::span(chunk).first(std::min<uint64_t>(chunk.size(), Size() - at));
        if (Status s = source_->ReadAt(at, part); !s.ok()) return Fail(s);
        crc = Crc32(part, crc);
        if (plan_.sha256.empty()) sha.Update(part);
        at += part.size();
      }
      PutBigEndian(req, crc, 4);
      const Bytes digest = plan_.sha256.empty() ? sha.Finish() : plan_.sha256;
      req.insert(req.end(), digest.begin(), digest.end());
      req.insert(req.end(), plan_.signature.begin(), plan_.signature.end());
      return Send(std::move(req), [this](const Response& r) {
        if (r.bytes.size() < 5 || r.bytes[4] != 0x00) {
          return Fail(Error(Code::kIntegrity, "UDS 31 01 02 02: the ECU found the image wrong"));
        }
        Step();
      });
    }
    case 13:
      if (plan_.phases == FlashPhases::kTransfer) {
        report_.total = client_.link().loop().Now() - start_;
        auto done = std::move(done_);
        if (done) done(report_);
        return;
      }
      return Send({0x31, 0x01, 0xFF, 0x01}, [this](const Response& r) {
        if (r.bytes.size() < 5 || r.bytes[4] != 0x00) {
          return Fail(Error(Code::kIntegrity, "UDS 31 01 FF 01: programming dependencies not met"));
        }
        Step();
      });
    case 14:
      return Send({0x11, 0x01}, [this](const Response&) {
        std::weak_ptr<bool> alive = alive_;
        if (plan_.on_reset) {
          plan_.on_reset();
          if (alive.expired()) return;
        }
        client_.link().loop().After(plan_.restart_wait, [this, alive] {
          if (!alive.expired()) Step();
        });
      });
    case 15:
      // The ECU starts again: 10 01 until it answers.
      client_.Request({0x10, 0x01},
                      [this, alive = std::weak_ptr<bool>(alive_)](Result<Response> r) {
                        if (alive.expired()) return;
                        if (!r.ok() || !r->positive()) {
                          if (++tries_ >= plan_.restart_tries) {
                            return Fail(r.ok() ? r->ToStatus(std::vector<uint8_t>{0x10, 0x01})
                                               : Status(std::move(r).error()));
                          }
                          --stage_;
                          return Step();
                        }
                        report_.steps.push_back("10 01 -> " + Describe(r->bytes, 8));
                        Step();
                      });
      return;
    case 16:
      return Send({0x22, 0xF1, 0x89}, [this](const Response& r) {
        if (r.bytes.size() >= 3) report_.version_after = Ascii(std::span(r.bytes).subspan(3));
        report_.total = client_.link().loop().Now() - start_;
        if (!plan_.expect_version.empty() && report_.version_after != plan_.expect_version) {
          return Fail(Error(Code::kIntegrity, "the ECU reports version '" + report_.version_after +
                                                  "', not '" + plan_.expect_version + "'"));
        }
        auto done = std::move(done_);
        if (done) done(report_);
      });
    default:
      return;
  }
}

// A sealed download: the ECU's key (22 F1 A0), the content key wrapped for it with the payload's
// salt (31 01 02 10).
void Flasher::SendContentKey() {
  Send({0x22, 0xF1, 0xA0}, [this](const Response& r) {
    if (r.bytes.size() != 3 + 32) {
      return Fail(Error(Code::kMalformed, "UDS 22 F1 A0: the ECU's encryption key is " +
                                              std::to_string(r.bytes.size() - 3) +
                                              " bytes, not 32"));
    }
    auto wrapped = plan_.sealed->wrap(std::span(r.bytes).subspan(3));
    if (!wrapped.ok()) return Fail(std::move(wrapped).error().WithContext("the content key"));
    std::vector<uint8_t> req{0x31, 0x01, 0x02, 0x10};
    req.insert(req.end(), wrapped->begin(), wrapped->end());
    req.insert(req.end(), plan_.sealed->salt.begin(), plan_.sealed->salt.end());
    Send(std::move(req), [this](const Response&) {
      key_sent_ = true;
      Step();
    });
  });
}

// Resuming: the ECU's CRC-32 of erase block `block` of the image against the image's; the first
// that differs (or the last block) is where the download starts.
void Flasher::Scan(uint64_t block) {
  const uint64_t size = Size(), unit = plan_.resume_block;
  const uint64_t at = block * unit;
  if (size == 0 || at + unit >= size) {  // the last block is always sent again
    scanned_ = true;
    offset_ = size == 0 ? 0 : at;
    report_.resumed_from = offset_;
    return Step();
  }
  std::vector<uint8_t> req{0x31, 0x01, 0xFF, 0x03, 0x44};
  PutBigEndian(req, plan_.address + at, 4);
  PutBigEndian(req, unit, 4);
  const Result<uint32_t> crc = Crc(at, unit);
  if (!crc.ok()) return Fail(crc.error());
  const uint32_t mine = *crc;
  Send(std::move(req), [this, block, at, mine](const Response& r) {
    const bool same = r.bytes.size() >= 9 && BigEndian(std::span(r.bytes).subspan(5, 4)) == mine;
    if (!same) {
      scanned_ = true;
      offset_ = at;
      report_.resumed_from = offset_;
      return Step();
    }
    Scan(block + 1);
  });
}

void Flasher::Block() {
  if (sent_ >= Size()) return Step();  // 37
  const uint64_t n = std::min<uint64_t>(report_.max_block_length - 2, Size() - sent_);
  std::vector<uint8_t> req(2 + n);
  req[0] = 0x36;
  req[1] = bsc_;
  if (Status s = source_->ReadAt(sent_, std::span(req).subspan(2)); !s.ok()) return Fail(s);
  Send(std::move(req), [this, n](const Response& r) {
    if (r.bytes.size() < 2 || r.bytes[1] != bsc_) {
      return Fail(Error(Code::kMalformed, "UDS 36: the answer names block " +
                                              std::to_string(r.bytes.size() > 1 ? r.bytes[1] : 0) +
                                              ", not " + std::to_string(bsc_)));
    }
    sent_ += n;
    bsc_ = static_cast<uint8_t>(bsc_ + 1);  // wraps FF -> 00
    if (plan_.progress) plan_.progress(sent_, Size());
    Block();
  });
}

}  // namespace aloft::uds
