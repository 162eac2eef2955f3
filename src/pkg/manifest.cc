#include "pkg/manifest.h"

#include <algorithm>
#include <set>

#include "core/canonical_json.h"
#include "core/encoding.h"

namespace aloft::pkg {
namespace {

using json = nlohmann::json;

Error Bad(const std::string& path, const std::string& what) {
  return Error(Code::kMalformed, path + ": " + what);
}

Result<const json*> Member(const json& obj, const std::string& path, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return Bad(path.empty() ? key : path + "." + key, "missing");
  return &*it;
}

std::string Join(const std::string& path, const char* key) {
  return path.empty() ? key : path + "." + key;
}

Result<std::string> GetString(const json& obj, const std::string& path, const char* key) {
  ALOFT_ASSIGN_OR_RETURN(const json* v, Member(obj, path, key));
  if (!v->is_string()) return Bad(Join(path, key), "expected a string");
  return v->get<std::string>();
}

Result<uint64_t> GetUint(const json& obj, const std::string& path, const char* key) {
  ALOFT_ASSIGN_OR_RETURN(const json* v, Member(obj, path, key));
  if (!v->is_number_unsigned()) {
    if (v->is_number_integer() && v->get<int64_t>() >= 0) return uint64_t(v->get<int64_t>());
    return Bad(Join(path, key), "expected a non-negative integer");
  }
  return v->get<uint64_t>();
}

Result<const json*> GetObject(const json& obj, const std::string& path, const char* key) {
  ALOFT_ASSIGN_OR_RETURN(const json* v, Member(obj, path, key));
  if (!v->is_object()) return Bad(Join(path, key), "expected an object");
  return v;
}

bool IsSha256Hex(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Result<std::string> GetSha256(const json& obj, const std::string& path, const char* key) {
  ALOFT_ASSIGN_OR_RETURN(std::string s, GetString(obj, path, key));
  if (!IsSha256Hex(s)) return Bad(Join(path, key), "expected 64 lower-case hex digits");
  return s;
}

Result<std::string> GetName(const json& obj, const std::string& path, const char* key,
                            size_t max_length = 64) {
  ALOFT_ASSIGN_OR_RETURN(std::string s, GetString(obj, path, key));
  if (!IsValidName(s, max_length)) {
    return Bad(Join(path, key), "'" + s +
                                    "' is not a valid name ([A-Za-z0-9][A-Za-z0-9._-], at most " +
                                    std::to_string(max_length) + ")");
  }
  return s;
}

Result<Component> ParseComponent(const json& c, const std::string& path) {
  if (!c.is_object()) return Bad(path, "expected an object");
  Component out;
  ALOFT_ASSIGN_OR_RETURN(out.name, GetName(c, path, "name"));
  ALOFT_ASSIGN_OR_RETURN(std::string type, GetString(c, path, "type"));
  if (type == "full") {
    out.type = ComponentType::kFull;
  } else if (type == "delta") {
    out.type = ComponentType::kDelta;
  } else {
    return Bad(path + ".type", "'" + type + "' is neither full nor delta");
  }
  if (c.contains("security_counter")) {
    ALOFT_ASSIGN_OR_RETURN(out.security_counter, GetUint(c, path, "security_counter"));
  }

  ALOFT_ASSIGN_OR_RETURN(const json* p, GetObject(c, path, "payload"));
  const std::string pp = path + ".payload";
  ALOFT_ASSIGN_OR_RETURN(out.payload.file, GetName(*p, pp, "file", 100));
  ALOFT_ASSIGN_OR_RETURN(std::string compression, GetString(*p, pp, "compression"));
  auto parsed_compression = ParseCompression(compression);
  if (!parsed_compression.ok() || compression == "xz") {
    return Bad(pp + ".compression", "'" + compression + "' is not one of zstd, lzma, none");
  }
  out.payload.compression = *parsed_compression;
  ALOFT_ASSIGN_OR_RETURN(out.payload.size, GetUint(*p, pp, "size"));
  ALOFT_ASSIGN_OR_RETURN(out.payload.sha256, GetSha256(*p, pp, "sha256"));
  ALOFT_ASSIGN_OR_RETURN(out.payload.uncompressed_size, GetUint(*p, pp, "uncompressed_size"));

  ALOFT_ASSIGN_OR_RETURN(const json* img, GetObject(c, path, "image"));
  const std::string ip = path + ".image";
  ALOFT_ASSIGN_OR_RETURN(out.image.size, GetUint(*img, ip, "size"));
  ALOFT_ASSIGN_OR_RETURN(out.image.sha256, GetSha256(*img, ip, "sha256"));
  if (img->contains("filename")) {
    ALOFT_ASSIGN_OR_RETURN(out.image.filename, GetString(*img, ip, "filename"));
    if (out.image.filename.empty() || out.image.filename.find('/') != std::string::npos ||
        out.image.filename.find('\0') != std::string::npos || out.image.filename == "." ||
        out.image.filename == "..") {
      return Bad(ip + ".filename", "must be a plain file name");
    }
  }
  if (out.type == ComponentType::kFull && out.payload.uncompressed_size != out.image.size) {
    return Bad(pp + ".uncompressed_size", std::to_string(out.payload.uncompressed_size) +
                                              " differs from image.size " +
                                              std::to_string(out.image.size) + " of a full image");
  }
  if (c.contains("encryption")) {
    ALOFT_ASSIGN_OR_RETURN(const json* e, GetObject(c, path, "encryption"));
    const std::string ep = path + ".encryption";
    ALOFT_ASSIGN_OR_RETURN(std::string method, GetString(*e, ep, "method"));
    if (method != kEncryptionMethod) {
      return Error(Code::kUnsupported, ep + ".method: '" + method + "' is not " +
                                           std::string(kEncryptionMethod) +
                                           ", the only method this build decrypts");
    }
    EncryptionInfo info;
    ALOFT_ASSIGN_OR_RETURN(std::string salt, GetString(*e, ep, "salt"));
    auto raw = Base64Decode(salt);
    if (!raw.ok() || raw->size() != info.salt.size()) {
      return Bad(ep + ".salt", "expected 16 bytes in base64");
    }
    std::copy(raw->begin(), raw->end(), info.salt.begin());
    ALOFT_ASSIGN_OR_RETURN(info.key_id, GetString(*e, ep, "key_id"));
    if (auto id = HexDecode(info.key_id); !id.ok() || id->size() != 8) {
      return Bad(ep + ".key_id", "expected 16 lower-case hex digits");
    }
    ALOFT_ASSIGN_OR_RETURN(info.size, GetUint(*e, ep, "size"));
    if (out.payload.size != crypto::SealedSize(info.size)) {
      return Bad(pp + ".size", std::to_string(out.payload.size) + " is not what sealing " +
                                   std::to_string(info.size) + " bytes makes (" +
                                   std::to_string(crypto::SealedSize(info.size)) + ")");
    }
    out.encryption = info;
  }
  const uint64_t stored = out.encryption ? out.encryption->size : out.payload.size;
  if (out.payload.compression == Compression::kNone && stored != out.payload.uncompressed_size) {
    return Bad(pp + ".size", "differs from uncompressed_size with compression none");
  }

  if (c.contains("base")) {
    if (out.type != ComponentType::kDelta) return Bad(path + ".base", "only a delta has a base");
    ALOFT_ASSIGN_OR_RETURN(const json* b, GetObject(c, path, "base"));
    const std::string bp = path + ".base";
    BaseInfo base;
    ALOFT_ASSIGN_OR_RETURN(base.version, GetString(*b, bp, "version"));
    if (auto v = SemVer::Parse(base.version); !v.ok())
      return Bad(bp + ".version", v.error().message());
    ALOFT_ASSIGN_OR_RETURN(base.size, GetUint(*b, bp, "size"));
    ALOFT_ASSIGN_OR_RETURN(base.sha256, GetSha256(*b, bp, "sha256"));
    out.base = base;
  } else if (out.type == ComponentType::kDelta) {
    return Bad(path + ".base", "missing (a delta needs its base version and hash)");
  }
  if (c.contains("install")) {
    if (!c["install"].is_object()) return Bad(path + ".install", "expected an object");
    out.install = c["install"];
  }
  return out;
}

}  // namespace

bool IsValidName(std::string_view name, size_t max_length) {
  if (name.empty() || name.size() > max_length) return false;
  auto alnum = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  };
  if (!alnum(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '.' || c == '_' || c == '-'; });
}

json ToSignedJson(const Manifest& m) {
  json s = m.signed_json.is_object() ? m.signed_json : json::object();
  s["_type"] = kManifestType;
  s["format"] = std::to_string(m.format_major) + "." + std::to_string(m.format_minor);
  s["name"] = m.name;
  s["version"] = m.version.ToString();
  s["hardware"] = m.hardware;
  if (!m.created.empty()) s["created"] = m.created;
  json comps = json::array();
  for (const Component& c : m.components) {
    json j = {
        {"name", c.name},
        {"type", c.type == ComponentType::kFull ? "full" : "delta"},
        {"security_counter", c.security_counter},
        {"payload",
         {{"file", c.payload.file},
          {"compression", CompressionName(c.payload.compression)},
          {"size", c.payload.size},
          {"sha256", c.payload.sha256},
          {"uncompressed_size", c.payload.uncompressed_size}}},
        {"image", {{"size", c.image.size}, {"sha256", c.image.sha256}}},
    };
    if (!c.image.filename.empty()) j["image"]["filename"] = c.image.filename;
    if (c.base) {
      j["base"] = {
          {"version", c.base->version}, {"size", c.base->size}, {"sha256", c.base->sha256}};
    }
    if (c.encryption) {
      j["encryption"] = {{"method", kEncryptionMethod},
                         {"salt", Base64Encode(c.encryption->salt)},
                         {"key_id", c.encryption->key_id},
                         {"size", c.encryption->size}};
    }
    if (c.install.is_object()) j["install"] = c.install;
    comps.push_back(std::move(j));
  }
  s["components"] = std::move(comps);
  return s;
}

Result<Manifest> ParseSigned(const json& s) {
  if (!s.is_object()) return Bad("signed", "expected an object");
  Manifest m;
  ALOFT_ASSIGN_OR_RETURN(std::string type, GetString(s, "signed", "_type"));
  if (type != kManifestType) {
    return Bad("signed._type", "'" + type + "' is not " + std::string(kManifestType));
  }
  ALOFT_ASSIGN_OR_RETURN(std::string format, GetString(s, "signed", "format"));
  {
    auto v = SemVer::Parse(format + ".0");
    if (!v.ok() || v->is_prerelease() || !v->build().empty() || v->major() > 1000000 ||
        v->minor() > 1000000) {
      return Bad("signed.format", "'" + format + "' is not MAJOR.MINOR");
    }
    if (v->major() != uint64_t(kFormatMajor)) {
      return Error(Code::kUnsupported, "package format " + format +
                                           " is not supported (this reader knows " +
                                           std::to_string(kFormatMajor) + ".x); upgrade aloft");
    }
    m.format_major = int(v->major());
    m.format_minor = int(v->minor());
  }
  ALOFT_ASSIGN_OR_RETURN(m.name, GetName(s, "signed", "name"));
  ALOFT_ASSIGN_OR_RETURN(std::string version, GetString(s, "signed", "version"));
  {
    auto v = SemVer::Parse(version);
    if (!v.ok()) return Bad("signed.version", v.error().message());
    m.version = *v;
  }
  ALOFT_ASSIGN_OR_RETURN(const json* hw, Member(s, "signed", "hardware"));
  if (!hw->is_array() || hw->empty()) return Bad("signed.hardware", "expected a non-empty array");
  for (size_t i = 0; i < hw->size(); ++i) {
    const json& h = (*hw)[i];
    std::string p = "signed.hardware[" + std::to_string(i) + "]";
    if (!h.is_string() || h.get<std::string>().empty())
      return Bad(p, "expected a non-empty string");
    if (std::find(m.hardware.begin(), m.hardware.end(), h.get<std::string>()) != m.hardware.end()) {
      return Bad(p, "'" + h.get<std::string>() + "' is listed twice");
    }
    m.hardware.push_back(h.get<std::string>());
  }
  if (s.contains("created")) {
    ALOFT_ASSIGN_OR_RETURN(m.created, GetString(s, "signed", "created"));
  }
  ALOFT_ASSIGN_OR_RETURN(const json* comps, Member(s, "signed", "components"));
  if (!comps->is_array() || comps->empty()) {
    return Bad("signed.components", "expected a non-empty array");
  }
  std::set<std::string> names, files;
  for (size_t i = 0; i < comps->size(); ++i) {
    std::string p = "signed.components[" + std::to_string(i) + "]";
    ALOFT_ASSIGN_OR_RETURN(Component c, ParseComponent((*comps)[i], p));
    if (!names.insert(c.name).second) return Bad(p + ".name", "'" + c.name + "' is listed twice");
    if (c.payload.file == kManifestEntry || !files.insert(c.payload.file).second) {
      return Bad(p + ".payload.file", "'" + c.payload.file + "' is used twice");
    }
    m.components.push_back(std::move(c));
  }
  m.signed_json = s;
  return m;
}

Result<Envelope> ParseEnvelope(std::string_view text) {
  ALOFT_ASSIGN_OR_RETURN(json doc, ParseJson(text));
  if (!doc.is_object()) return Bad("manifest", "expected an object");
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (it.key() != "signed" && it.key() != "signatures") {
      return Bad("manifest", "unexpected member '" + it.key() + "' beside signed and signatures");
    }
  }
  // Canonical form is checked first: it also rejects numbers and strings that do not survive a
  // round trip, which the typed checks below would not notice.
  auto canonical = CanonicalJson(doc);
  if (!canonical.ok()) return Bad("manifest", canonical.error().message());
  if (*canonical != text) {
    return Error(
        Code::kMalformed,
        "manifest.json is not in canonical form (RFC 8785: sorted members, no whitespace); "
        "it was altered after signing");
  }
  Envelope e;
  ALOFT_ASSIGN_OR_RETURN(const json* s, Member(doc, "", "signed"));
  ALOFT_ASSIGN_OR_RETURN(e.manifest, ParseSigned(*s));
  ALOFT_ASSIGN_OR_RETURN(const json* sigs, Member(doc, "", "signatures"));
  if (!sigs->is_array()) return Bad("signatures", "expected an array");
  for (size_t i = 0; i < sigs->size(); ++i) {
    const json& sj = (*sigs)[i];
    std::string p = "signatures[" + std::to_string(i) + "]";
    if (!sj.is_object()) return Bad(p, "expected an object");
    crypto::Signature sig;
    ALOFT_ASSIGN_OR_RETURN(sig.keyid, GetSha256(sj, p, "keyid"));
    ALOFT_ASSIGN_OR_RETURN(sig.method, GetString(sj, p, "method"));
    ALOFT_ASSIGN_OR_RETURN(std::string b64, GetString(sj, p, "sig"));
    auto raw = Base64Decode(b64);
    if (!raw.ok()) return Bad(p + ".sig", raw.error().message());
    sig.sig = std::move(raw).value();
    e.signatures.push_back(std::move(sig));
  }
  return e;
}

Result<std::string> SerializeEnvelope(const Envelope& e) {
  json sigs = json::array();
  for (const auto& s : e.signatures) {
    sigs.push_back({{"keyid", s.keyid}, {"method", s.method}, {"sig", Base64Encode(s.sig)}});
  }
  json doc = {{"signed", e.manifest.signed_json}, {"signatures", std::move(sigs)}};
  return CanonicalJson(doc);
}

Result<std::string> SigningInput(const Manifest& m) { return CanonicalJson(m.signed_json); }

Status Sign(Envelope& e, const crypto::PrivateKey& key) {
  ALOFT_ASSIGN_OR_RETURN(std::string input, SigningInput(e.manifest));
  ALOFT_ASSIGN_OR_RETURN(Bytes sig, key.Sign(AsBytes(input)));
  std::erase_if(e.signatures, [&](const crypto::Signature& s) { return s.keyid == key.keyid(); });
  e.signatures.push_back(
      {key.keyid(), std::string(crypto::MethodName(key.type())), std::move(sig)});
  return OkStatus();
}

Status VerifySignatures(const Envelope& e, const crypto::TrustSet& trust,
                        crypto::SignatureReport* report) {
  ALOFT_ASSIGN_OR_RETURN(std::string input, SigningInput(e.manifest));
  return trust.Check(AsBytes(input), e.signatures, report);
}

}  // namespace aloft::pkg
