#include "tuf/repository.h"

#include <algorithm>
#include <bit>
#include <chrono>

#include "core/clock.h"
#include "core/encoding.h"
#include "core/hash.h"

namespace aloft::tuf {

json NewEnvelope(std::string_view type, int64_t version, int64_t expires_ms) {
  const auto expires = std::chrono::system_clock::time_point(
      std::chrono::seconds(expires_ms / 1000));  // whole seconds: python-tuf's format
  return {{"signed",
           {{"_type", type},
            {"spec_version", kSpecVersion},
            {"version", version},
            {"expires", FormatRfc3339(expires)}}},
          {"signatures", json::array()}};
}

std::string FileBytes(const json& envelope) { return envelope.dump(); }

json MetaEntry(int64_t version, std::string_view file_bytes) {
  return {{"version", version},
          {"length", file_bytes.size()},
          {"hashes", {{"sha256", Sha256Hex(AsBytes(file_bytes))}}}};
}

json TargetEntry(int64_t length, const std::string& sha256_hex, json custom) {
  json e = {{"length", length}, {"hashes", {{"sha256", sha256_hex}}}};
  if (custom.is_object() && !custom.empty()) e["custom"] = std::move(custom);
  return e;
}

Result<json> NewRoot(int64_t version, int64_t expires_ms,
                     const std::map<std::string, RoleSpec>& roles) {
  json env = NewEnvelope("root", version, expires_ms);
  json keys = json::object(), role_json = json::object();
  for (const char* name : {"root", "targets", "snapshot", "timestamp"}) {
    auto it = roles.find(name);
    if (it == roles.end() || it->second.keys.empty()) {
      return Error(Code::kInvalidArgument, std::string("root: the ") + name + " role has no keys");
    }
    const RoleSpec& r = it->second;
    if (r.threshold < 1 || static_cast<size_t>(r.threshold) > r.keys.size()) {
      return Error(Code::kInvalidArgument, std::string("root: the ") + name + " role's threshold " +
                                               std::to_string(r.threshold) + " is not within 1.." +
                                               std::to_string(r.keys.size()));
    }
    json ids = json::array();
    for (const Key& k : r.keys) {
      keys[k.id] = k.object;
      if (std::find(ids.begin(), ids.end(), k.id) == ids.end()) ids.push_back(k.id);
    }
    if (ids.size() < static_cast<size_t>(r.threshold)) {
      return Error(Code::kInvalidArgument, std::string("root: the ") + name +
                                               " role names one key twice, below its threshold");
    }
    role_json[name] = {{"keyids", ids}, {"threshold", r.threshold}};
  }
  env["signed"]["keys"] = keys;
  env["signed"]["roles"] = role_json;
  env["signed"]["consistent_snapshot"] = true;
  return env;
}

namespace {

// Hex digits of prefix needed for `count` bins.
int PrefixDigits(int count) {
  int digits = 1;
  while ((int64_t{1} << (4 * digits)) < count) ++digits;
  return digits;
}

std::string Hex(uint32_t v, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(static_cast<size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) out[static_cast<size_t>(i)] = kHex[v & 15];
  return out;
}

}  // namespace

Result<std::vector<Bin>> HashedBins(int count) {
  if (count < 2 || count > 65536 || !std::has_single_bit(static_cast<unsigned>(count))) {
    return Error(Code::kInvalidArgument, "hashed bins: " + std::to_string(count) +
                                             " is not a power of two from 2 to 65536");
  }
  const int digits = PrefixDigits(count);
  const uint32_t prefixes = uint32_t{1} << (4 * digits), per_bin = prefixes / count;
  std::vector<Bin> bins(static_cast<size_t>(count));
  for (uint32_t b = 0; b < static_cast<uint32_t>(count); ++b) {
    Bin& bin = bins[b];
    for (uint32_t p = b * per_bin; p < (b + 1) * per_bin; ++p)
      bin.prefixes.push_back(Hex(p, digits));
    bin.name =
        "bins-" + bin.prefixes.front() + (per_bin > 1 ? "-" + bin.prefixes.back() : std::string());
  }
  return bins;
}

size_t BinIndex(const std::string& name, int count) {
  const int digits = PrefixDigits(count);
  const std::string hash = Sha256Hex(AsBytes(name));
  const uint32_t prefix = static_cast<uint32_t>(std::stoul(hash.substr(0, digits), nullptr, 16));
  const uint32_t per_bin = (uint32_t{1} << (4 * digits)) / static_cast<uint32_t>(count);
  return prefix / per_bin;
}

json BinDelegations(const std::vector<Bin>& bins, const std::vector<Key>& keys, int threshold) {
  json key_objects = json::object(), ids = json::array();
  for (const Key& k : keys) {
    key_objects[k.id] = k.object;
    ids.push_back(k.id);
  }
  json roles = json::array();
  for (const Bin& b : bins) {
    roles.push_back({{"name", b.name},
                     {"keyids", ids},
                     {"threshold", threshold},
                     {"terminating", true},
                     {"path_hash_prefixes", b.prefixes}});
  }
  return {{"keys", key_objects}, {"roles", roles}};
}

}  // namespace aloft::tuf
