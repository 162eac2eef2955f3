#include "tuf/metadata.h"

#include <algorithm>
#include <chrono>

#include "core/canonical_json.h"  // ParseJson
#include "core/clock.h"
#include "core/encoding.h"
#include "core/hash.h"

namespace aloft::tuf {

namespace {

// Ed25519's SubjectPublicKeyInfo is a fixed 12-byte prefix and the 32-byte key.
constexpr size_t kEd25519SpkiPrefix = 12;

Error Bad(const std::string& what, const std::string& problem) {
  return Error(Code::kMalformed, what + ": " + problem);
}

// Metadata strings must be ASCII and numbers integers (see metadata.h).
bool Signable(const json& j) {
  if (j.is_string()) {
    for (unsigned char c : j.get_ref<const std::string&>()) {
      if (c > 0x7e) return false;
    }
    return true;
  }
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (!Signable(json(k)) || !Signable(v)) return false;
    }
  }
  if (j.is_array()) {
    for (const auto& v : j) {
      if (!Signable(v)) return false;
    }
  }
  return !j.is_number_float();
}

// OLPC canonical JSON, as securesystemslib writes it: no whitespace, object members sorted by
// name, strings with only '"' and '\\' escaped (a PEM key's newlines stay raw bytes).
void Canonical(const json& j, std::string& out) {
  switch (j.type()) {
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [k, v] : j.items()) {  // nlohmann's objects are sorted by name
        if (!first) out += ',';
        first = false;
        Canonical(json(k), out);
        out += ':';
        Canonical(v, out);
      }
      out += '}';
      break;
    }
    case json::value_t::array: {
      out += '[';
      for (size_t i = 0; i < j.size(); ++i) {
        if (i) out += ',';
        Canonical(j[i], out);
      }
      out += ']';
      break;
    }
    case json::value_t::string:
      out += '"';
      for (char c : j.get_ref<const std::string&>()) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      out += '"';
      break;
    default:  // integers, booleans, null (floats were refused)
      out += j.dump();
  }
}

Result<std::string> IdOf(const json& object) {
  ALOFT_ASSIGN_OR_RETURN(std::string canonical, SignedBytes(object));
  return Sha256Hex(AsBytes(canonical));
}

}  // namespace

Result<Key> KeyFromPublic(const crypto::PublicKey& key) {
  Key out{key, json::object(), ""};
  if (key.type() == crypto::KeyType::kEd25519) {
    Bytes der = key.Der();
    out.object = {{"keytype", "ed25519"},
                  {"scheme", "ed25519"},
                  {"keyval",
                   {{"public", HexEncode(ByteSpan(der.data() + kEd25519SpkiPrefix,
                                                  der.size() - kEd25519SpkiPrefix))}}}};
  } else {
    out.object = {{"keytype", "ecdsa"},
                  {"scheme", "ecdsa-sha2-nistp256"},
                  {"keyval", {{"public", key.ToPem()}}}};
  }
  ALOFT_ASSIGN_OR_RETURN(out.id, IdOf(out.object));
  return out;
}

Result<Key> KeyFromObject(const json& object) {
  auto id = IdOf(object);
  if (!id.ok()) return Error(Code::kMalformed, "not a key object: " + id.error().message());
  return KeyFromObject(*id, object);
}

Result<Key> KeyFromObject(const std::string& id, const json& object) {
  const std::string what = "key " + id;
  if (!object.is_object() || !object.contains("keyval") || !object["keyval"].is_object() ||
      !object["keyval"].contains("public") || !object["keyval"]["public"].is_string()) {
    return Bad(what, "not a key object (keytype, scheme, keyval.public)");
  }
  const std::string type = object.value("keytype", ""), scheme = object.value("scheme", "");
  const std::string& pub = object["keyval"]["public"].get_ref<const std::string&>();
  std::optional<crypto::PublicKey> key;
  if (type == "ed25519" && scheme == "ed25519") {
    auto raw = HexDecode(pub);
    if (!raw.ok() || raw->size() != 32) return Bad(what, "keyval.public is not 32 bytes in hex");
    ALOFT_ASSIGN_OR_RETURN(auto k, crypto::PublicKey::FromRawEd25519(*raw));
    key = std::move(k);
  } else if (type == "ecdsa" && scheme == "ecdsa-sha2-nistp256") {
    auto k = crypto::PublicKey::FromPem(pub, what);
    if (!k.ok()) return std::move(k).error();
    if (k->type() != crypto::KeyType::kEcdsaP256) return Bad(what, "not a P-256 key");
    key = std::move(k).value();
  } else {
    return Error(Code::kUnsupported, what + ": keytype '" + type + "' with scheme '" + scheme +
                                         "' (supported: ed25519, ecdsa-sha2-nistp256)");
  }
  // The id is the key's own, so that one key cannot be listed under two ids and counted twice.
  ALOFT_ASSIGN_OR_RETURN(std::string want, IdOf(object));
  if (want != id)
    return Bad(what, "the key id is not the SHA-256 of the key object (" + want + ")");
  return Key{*key, object, id};
}

Result<std::string> SignedBytes(const json& signed_part) {
  if (!Signable(signed_part)) {
    return Error(Code::kInvalidArgument,
                 "metadata strings must be ASCII and numbers integers (one canonical form for "
                 "every TUF client)");
  }
  std::string out;
  Canonical(signed_part, out);
  return out;
}

Status Sign(json& envelope, const crypto::PrivateKey& key) {
  ALOFT_ASSIGN_OR_RETURN(std::string bytes, SignedBytes(envelope["signed"]));
  ALOFT_ASSIGN_OR_RETURN(Key k, KeyFromPublic(key.public_key()));
  ALOFT_ASSIGN_OR_RETURN(Bytes sig, key.Sign(AsBytes(bytes)));
  json& sigs = envelope["signatures"];
  if (!sigs.is_array()) sigs = json::array();
  json kept = json::array();
  for (const auto& s : sigs) {
    if (!s.is_object() || s.value("keyid", "") != k.id) kept.push_back(s);
  }
  kept.push_back({{"keyid", k.id}, {"sig", HexEncode(ByteSpan(sig.data(), sig.size()))}});
  sigs = std::move(kept);
  return OkStatus();
}

Status VerifyRole(const json& envelope, const std::map<std::string, Key>& keys,
                  const RoleKeys& role, const std::string& what) {
  if (role.threshold < 1) return Bad(what, "the role's threshold is below 1");
  auto bytes = SignedBytes(envelope.at("signed"));
  if (!bytes.ok()) return Bad(what, bytes.error().message());
  std::set<std::string> counted;
  const json& sigs = envelope.at("signatures");
  for (const auto& s : sigs) {
    if (!s.is_object() || !s.contains("keyid") || !s["keyid"].is_string() || !s.contains("sig") ||
        !s["sig"].is_string()) {
      continue;
    }
    const std::string& id = s["keyid"].get_ref<const std::string&>();
    if (counted.count(id) ||
        std::find(role.keyids.begin(), role.keyids.end(), id) == role.keyids.end()) {
      continue;
    }
    auto it = keys.find(id);
    if (it == keys.end()) continue;
    auto sig = HexDecode(s["sig"].get_ref<const std::string&>());
    if (!sig.ok()) continue;
    if (it->second.key.Verify(AsBytes(*bytes), *sig).ok()) counted.insert(id);
  }
  if (static_cast<int>(counted.size()) < role.threshold) {
    return Error(Code::kUntrusted, what + ": signed by " + std::to_string(counted.size()) +
                                       " of the role's keys, its threshold is " +
                                       std::to_string(role.threshold));
  }
  return OkStatus();
}

Result<json> ParseEnvelope(std::string_view text, std::string_view type, const std::string& what) {
  auto parsed = ParseJson(text);
  if (!parsed.ok()) return Bad(what, parsed.error().message());
  json env = std::move(parsed).value();
  if (!env.is_object() || !env.contains("signed") || !env["signed"].is_object() ||
      !env.contains("signatures") || !env["signatures"].is_array()) {
    return Bad(what, "not a signed envelope ({\"signed\": {...}, \"signatures\": [...]})");
  }
  ALOFT_ASSIGN_OR_RETURN(Common c, CommonOf(env, what));
  if (c.type != type)
    return Bad(what, "_type is '" + c.type + "', not '" + std::string(type) + "'");
  return env;
}

Result<Common> CommonOf(const json& envelope, const std::string& what) {
  const json& s = envelope.at("signed");
  Common c;
  if (!s.contains("_type") || !s["_type"].is_string()) return Bad(what, "no _type");
  c.type = s["_type"].get<std::string>();
  if (!s.contains("spec_version") || !s["spec_version"].is_string()) {
    return Bad(what, "no spec_version");
  }
  c.spec_version = s["spec_version"].get<std::string>();
  if (!c.spec_version.starts_with("1.")) {
    return Error(Code::kUnsupported,
                 what + ": spec_version " + c.spec_version + " (this client reads 1.x)");
  }
  if (!s.contains("version") || !s["version"].is_number_integer() ||
      s["version"].get<int64_t>() < 1) {
    return Bad(what, "version must be an integer of at least 1");
  }
  c.version = s["version"].get<int64_t>();
  auto expires = s.contains("expires") && s["expires"].is_string()
                     ? ParseRfc3339(s["expires"].get<std::string>())
                     : std::nullopt;
  if (!expires) return Bad(what, "expires must be an RFC 3339 time");
  c.expires_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(expires->time_since_epoch()).count();
  return c;
}

Result<Root> ParseRoot(const json& envelope, const std::string& what) {
  Root r;
  ALOFT_ASSIGN_OR_RETURN(r.common, CommonOf(envelope, what));
  if (r.common.type != "root") return Bad(what, "not root metadata");
  const json& s = envelope.at("signed");
  r.consistent_snapshot = s.value("consistent_snapshot", false);
  if (!s.contains("keys") || !s["keys"].is_object()) return Bad(what, "no keys");
  for (const auto& [id, object] : s["keys"].items()) {
    auto k = KeyFromObject(id, object);
    if (!k.ok()) return std::move(k).error().WithContext(what);
    r.keys.emplace(id, std::move(k).value());
  }
  if (!s.contains("roles") || !s["roles"].is_object()) return Bad(what, "no roles");
  for (const char* name : {"root", "targets", "snapshot", "timestamp"}) {
    if (!s["roles"].contains(name)) return Bad(what, std::string("no role ") + name);
    const json& role = s["roles"][name];
    RoleKeys rk;
    if (!role.is_object() || !role.contains("keyids") || !role["keyids"].is_array() ||
        !role.contains("threshold") || !role["threshold"].is_number_integer() ||
        role["threshold"].get<int64_t>() < 1) {
      return Bad(what, std::string("role ") + name + " needs keyids and a threshold of at least 1");
    }
    for (const auto& id : role["keyids"]) {
      if (!id.is_string() || !r.keys.count(id.get<std::string>())) {
        return Bad(what, std::string("role ") + name + " names a key that root does not list");
      }
      rk.keyids.push_back(id.get<std::string>());
    }
    rk.threshold = static_cast<int>(role["threshold"].get<int64_t>());
    if (static_cast<size_t>(rk.threshold) > rk.keyids.size()) {
      return Bad(what, std::string("role ") + name + "'s threshold exceeds its keys");
    }
    r.roles[name] = std::move(rk);
  }
  return r;
}

}  // namespace aloft::tuf
