#include "cli_util.h"

#include <cstdio>
#include <filesystem>

#include "crypto/key_wrap.h"

namespace aloft::cli {

int Fail(const Error& e) {
  std::fprintf(stderr, "aloft: %s\n", e.message().c_str());
  return e.code() == Code::kInvalidArgument ? kExitUsage : kExitFailed;
}

Result<std::vector<crypto::PrivateKey>> LoadKeys(const std::vector<std::string>& paths) {
  std::vector<crypto::PrivateKey> keys;
  for (const auto& p : paths) {
    ALOFT_ASSIGN_OR_RETURN(auto key, crypto::PrivateKey::Load(p));
    keys.push_back(std::move(key));
  }
  return keys;
}

std::vector<const crypto::PrivateKey*> Pointers(const std::vector<crypto::PrivateKey>& keys) {
  std::vector<const crypto::PrivateKey*> out;
  for (const auto& k : keys) out.push_back(&k);
  return out;
}

Result<crypto::TrustSet> LoadTrust(const std::vector<std::string>& paths, size_t threshold) {
  crypto::TrustSet trust;
  for (const auto& p : paths) {
    ALOFT_ASSIGN_OR_RETURN(auto key, crypto::PublicKey::Load(p));
    trust.Add(std::move(key));
  }
  trust.set_threshold(threshold);
  ALOFT_RETURN_IF_ERROR(trust.Validate());
  return trust;
}

Result<crypto::ContentKey> LoadOrMakeContentKey(const std::string& path) {
  if (std::filesystem::exists(path)) return crypto::LoadContentKey(path);
  const crypto::ContentKey key = crypto::NewContentKey();
  ALOFT_RETURN_IF_ERROR(crypto::SaveContentKey(key, path));
  std::fprintf(stderr, "made content key %s in %s (0600): keep it like a signing key\n",
               crypto::ContentKeyId(key).c_str(), path.c_str());
  return key;
}

}  // namespace aloft::cli
