#include "crypto/password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <charconv>
#include <cstdint>
#include <vector>

#include "core/encoding.h"

namespace aloft::crypto {

namespace {

constexpr size_t kHashBytes = 32, kSaltBytes = 16;
constexpr uint64_t kMaxMemory = 256ull << 20;

// scrypt's memory is 128 * r * N (+ 128 * r * p); OpenSSL refuses beyond maxmem.
uint64_t MemoryOf(const ScryptParams& p) {
  return 128ull * static_cast<uint64_t>(p.r) *
         ((1ull << p.log2_n) + static_cast<uint64_t>(p.p) + 2);
}

Result<std::vector<uint8_t>> Scrypt(std::string_view password, ByteSpan salt,
                                    const ScryptParams& p) {
  if (p.log2_n < 1 || p.log2_n > 24 || p.r < 1 || p.r > 64 || p.p < 1 || p.p > 16 ||
      MemoryOf(p) > kMaxMemory) {
    return Error(Code::kInvalidArgument, "scrypt parameters out of range");
  }
  std::vector<uint8_t> out(kHashBytes);
  if (EVP_PBE_scrypt(password.data(), password.size(), salt.data(), salt.size(),
                     uint64_t{1} << p.log2_n, static_cast<uint64_t>(p.r),
                     static_cast<uint64_t>(p.p), MemoryOf(p) + (1 << 20), out.data(),
                     out.size()) != 1) {
    return Error(Code::kInternal, "scrypt failed (out of memory?)");
  }
  return out;
}

bool ParseInt(std::string_view text, int& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

Result<std::string> HashPassword(std::string_view password, ScryptParams params) {
  uint8_t salt[kSaltBytes];
  if (RAND_bytes(salt, sizeof salt) != 1) return Error(Code::kInternal, "no randomness");
  ALOFT_ASSIGN_OR_RETURN(auto hash, Scrypt(password, ByteSpan(salt, sizeof salt), params));
  return "$scrypt$ln=" + std::to_string(params.log2_n) + ",r=" + std::to_string(params.r) +
         ",p=" + std::to_string(params.p) + "$" + Base64Encode(ByteSpan(salt, sizeof salt)) + "$" +
         Base64Encode(ByteSpan(hash.data(), hash.size()));
}

Result<bool> VerifyPassword(std::string_view password, std::string_view stored) {
  auto bad = [] {
    return Error(Code::kInvalidArgument,
                 "stored password hash is not of the form $scrypt$ln=N,r=R,p=P$salt$hash");
  };
  constexpr std::string_view kPrefix = "$scrypt$";
  if (!stored.starts_with(kPrefix)) return bad();
  stored.remove_prefix(kPrefix.size());
  std::vector<std::string_view> parts;
  for (size_t pos = 0;;) {
    size_t next = stored.find('$', pos);
    parts.push_back(stored.substr(pos, next == std::string_view::npos ? next : next - pos));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  if (parts.size() != 3) return bad();
  ScryptParams p;
  int seen = 0;
  for (size_t pos = 0; pos <= parts[0].size();) {
    size_t next = parts[0].find(',', pos);
    std::string_view kv =
        parts[0].substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) return bad();
    std::string_view k = kv.substr(0, eq), v = kv.substr(eq + 1);
    int* target = k == "ln" ? &p.log2_n : k == "r" ? &p.r : k == "p" ? &p.p : nullptr;
    if (!target || !ParseInt(v, *target)) return bad();
    ++seen;
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  if (seen != 3) return bad();
  auto salt = Base64Decode(parts[1]);
  auto want = Base64Decode(parts[2]);
  if (!salt.ok() || !want.ok() || salt->empty() || want->size() != kHashBytes) return bad();
  ALOFT_ASSIGN_OR_RETURN(auto got, Scrypt(password, ByteSpan(salt->data(), salt->size()), p));
  return CRYPTO_memcmp(got.data(), want->data(), kHashBytes) == 0;
}

}  // namespace aloft::crypto
