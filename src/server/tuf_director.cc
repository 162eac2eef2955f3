#include "server/tuf_director.h"

#include <algorithm>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "server/api.h"
#include "server/tuf_image.h"
#include "tuf/repository.h"

namespace aloft::server {

using tuf::json;

namespace {

constexpr int64_t kDirectorLock = 0x416c6f6674000011;  // "Aloft" + 17

std::string DeviceRepo(const Device& d) {
  return std::string(Director::kRepo) + "/" + std::to_string(d.id);
}

// The version manifest's signed part, checked: it names the device, a counter, and its ECUs
// ({serial: {"hardware_id", ...}}).
Status CheckManifest(const json& env, const Device& d) {
  auto bad = [](const std::string& why) {
    return Error(Code::kInvalidArgument, "uptane.manifest: " + why);
  };
  if (!env.is_object() || !env.contains("signed") || !env["signed"].is_object() ||
      !env.contains("signatures") || !env["signatures"].is_array()) {
    return bad("not a signed envelope ({\"signed\": {...}, \"signatures\": [...]})");
  }
  const json& s = env["signed"];
  if (s.value("_type", "") != "aloft-version-manifest") {
    return bad("_type must be \"aloft-version-manifest\"");
  }
  if (s.value("device", "") != d.name) return bad("names another device");
  if (!s.contains("counter") || !s["counter"].is_number_integer() ||
      s["counter"].get<int64_t>() < 1) {
    return bad("needs a counter of at least 1");
  }
  if (!s.contains("ecus") || !s["ecus"].is_object() || s["ecus"].empty()) {
    return bad("needs ecus: {serial: {\"hardware_id\": ...}}");
  }
  for (const auto& [serial, e] : s["ecus"].items()) {
    if (serial.empty() || serial.size() > 128 || !e.is_object() || !e.contains("hardware_id") ||
        !e["hardware_id"].is_string()) {
      return bad("ECU '" + serial + "' needs a hardware_id");
    }
    if (e.contains("module") && !e["module"].is_string()) {
      return bad("ECU '" + serial + "': module must be a string");
    }
  }
  return OkStatus();
}

// The content (no version or expiry) the device's targets metadata should have.
json WantedTargets(const std::optional<Director::Offer>& offer,
                   const std::optional<TufTarget>& image, const json& ecus) {
  json targets = json::object();
  if (offer && image) {
    json mine = json::object();
    for (const auto& [serial, e] : ecus.items()) {
      const std::string module = e.value("module", "");
      if (!module.empty() &&
          std::find(offer->modules.begin(), offer->modules.end(), module) == offer->modules.end()) {
        continue;  // an ECU this release does not update
      }
      mine[serial] = {{"hardware_id", e["hardware_id"]}};
    }
    json custom = {{"action", offer->action}, {"release", offer->release}, {"ecus", mine}};
    if (offer->encryption.is_object()) custom["encryption"] = offer->encryption;
    targets[image->name] = tuf::TargetEntry(image->length, image->sha256, custom);
  }
  return {{"targets", targets}};
}

json ContentOf(const std::string& body) {
  json c = json::parse(body, nullptr, false);
  if (!c.is_object() || !c.contains("signed")) return json();
  c = c["signed"];
  for (const char* k : {"_type", "spec_version", "version", "expires"}) c.erase(k);
  return c;
}

// A wrapped content key is new at every wrap (a new ephemeral key): the one `held` (the signed
// content) already has for the same content key and the same device key stays in `wanted`.
void KeepSignedWrap(const json& held, json& wanted) {
  for (auto& [name, target] : wanted["targets"].items()) {
    json* enc = target.contains("custom") && target["custom"].contains("encryption")
                    ? &target["custom"]["encryption"]
                    : nullptr;
    if (!enc || !enc->contains("wrapped_key")) continue;
    const json old = held.is_object() ? held.value("targets", json::object())
                                            .value(name, json::object())
                                            .value("custom", json::object())
                                            .value("encryption", json())
                                      : json();
    if (old.is_object() && old.contains("wrapped_key") &&
        old.value("key_id", "") == enc->value("key_id", "") &&
        old.value("recipient", "") == enc->value("recipient", "")) {
      (*enc)["wrapped_key"] = old["wrapped_key"];
    }
  }
}

}  // namespace

Result<std::unique_ptr<Director>> Director::Create(Store& store, crypto::PrivateKey key,
                                                   Options o) {
  ALOFT_ASSIGN_OR_RETURN(tuf::Key k, tuf::KeyFromPublic(key.public_key()));
  std::unique_ptr<Director> d(new Director(store, std::move(key), o));
  d->key_id_ = k.id;
  return d;
}

Result<json> Director::PushRoots(const json& body, const std::string& actor, int64_t now_ms) {
  if (!body.is_object()) return Error(Code::kInvalidArgument, "the body must be a JSON object");
  json answer;
  ALOFT_RETURN_IF_ERROR(store_.Write([&](Tx& tx) -> Status {
    ALOFT_RETURN_IF_ERROR(tx.Serialize(kDirectorLock));
    bool changed = false;
    const OnlineKey mine{key_id_, "tuf_director_key"};
    ALOFT_ASSIGN_OR_RETURN(
        tuf::TrustedRoot root,
        AcceptRoots(tx, kRepo, body.value("roots", json::array()),
                    {{"targets", mine}, {"snapshot", mine}, {"timestamp", mine}}, now_ms, changed));
    if (changed) {
      ALOFT_RETURN_IF_ERROR(
          tx.Audit(actor, "tuf.push", kRepo, DumpJson(json({{"root", root.version()}})), now_ms));
    }
    answer = {{"changed", changed}, {"root_version", root.version()}};
    return OkStatus();
  }));
  return answer;
}

Result<TufFile> Director::RootFile(const std::string& name) {
  std::optional<int64_t> version;
  if (name != "root.json") {
    const size_t dot = name.find('.');
    auto v = dot == std::string::npos ? std::nullopt
                                      : ParseInteger(std::string_view(name).substr(0, dot));
    if (!v || *v < 1 || name.substr(dot) != ".root.json") {
      return Error(Code::kNotFound, "no " + name + " in the Director repository");
    }
    version = *v;
  }
  std::optional<TufFile> f;
  ALOFT_RETURN_IF_ERROR(store_.Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(f, tx.GetTufFile(kRepo, "root", version));
    return OkStatus();
  }));
  if (!f) return Error(Code::kNotFound, "no " + name + " in the Director repository");
  return std::move(*f);
}

bool Director::Unchanged(int64_t device, int64_t action, int64_t root, int64_t timestamp,
                         int64_t now_ms) {
  std::lock_guard lock(mu_);
  auto it = seen_.find(device);
  return it != seen_.end() && it->second.action == action && it->second.root == root &&
         it->second.timestamp == timestamp && it->second.expires_ms - now_ms > o_.lifetime_ms / 2 &&
         now_ms - it->second.checked_ms < kRecheckMs;
}

Result<json> Director::AcceptManifest(Tx& tx, const Device& device, const json* manifest,
                                      int64_t now_ms) {
  ALOFT_ASSIGN_OR_RETURN(auto held, tx.GetUptaneDevice(device.id));
  if (!manifest) {
    if (!held) {
      return Error(Code::kInvalidArgument,
                   "uptane: this device has no key enrolled yet: its first check-in sends its "
                   "version manifest with its public_key");
    }
    return json::parse(held->manifest, nullptr, false)
        .value("signed", json::object())
        .value("ecus", json::object());
  }
  // The device's key: enrolled with its first manifest (its device token vouches for it).
  json key_object;
  if (held) {
    key_object = json::parse(held->key_object, nullptr, false);
  } else if ((*manifest)["signed"].contains("public_key")) {
    key_object = (*manifest)["signed"]["public_key"];
  } else {
    return Error(Code::kInvalidArgument,
                 "uptane.manifest: this device has no key enrolled yet: the first manifest "
                 "carries its public_key");
  }
  ALOFT_ASSIGN_OR_RETURN(tuf::Key key, tuf::KeyFromObject(key_object));
  ALOFT_RETURN_IF_ERROR(tuf::VerifyRole(*manifest, {{key.id, key}}, tuf::RoleKeys{{key.id}, 1},
                                        "the version manifest of '" + device.name + "'"));
  const int64_t counter = (*manifest)["signed"]["counter"].get<int64_t>();
  if (held && counter <= held->counter) {
    return Error(Code::kAlreadyExists, "uptane.manifest: counter " + std::to_string(counter) +
                                           " is not above the last one, " +
                                           std::to_string(held->counter) +
                                           " (a replayed manifest?)");
  }
  ALOFT_RETURN_IF_ERROR(
      tx.PutUptaneDevice(device.id, {DumpJson(key.object), counter, DumpJson(*manifest)}, now_ms));
  if (!held) {
    ALOFT_RETURN_IF_ERROR(tx.Audit("device:" + device.name, "uptane.enrol", device.name,
                                   DumpJson(json({{"keyid", key.id}})), now_ms));
  }
  return (*manifest)["signed"]["ecus"];
}

Status Director::SignSet(Tx& tx, const std::string& repo, const json& wanted, int64_t now_ms,
                         std::optional<TufFile>& targets, std::optional<TufFile>& timestamp) {
  const int64_t expires = now_ms + o_.lifetime_ms;
  auto sign = [&](json env, const std::string& role) -> Result<TufFile> {
    ALOFT_RETURN_IF_ERROR(tuf::Sign(env, key_));
    TufFile f{role, env["signed"]["version"].get<int64_t>(), tuf::FileBytes(env), 0};
    ALOFT_ASSIGN_OR_RETURN(tuf::Common c, tuf::CommonOf(env, role));
    f.expires_ms = c.expires_ms;
    ALOFT_RETURN_IF_ERROR(tx.PutTufFile(repo, f, now_ms));
    ALOFT_RETURN_IF_ERROR(tx.PruneTufFiles(repo, role, f.version));
    return f;
  };
  ALOFT_ASSIGN_OR_RETURN(auto snapshot, tx.GetTufFile(repo, "snapshot", std::nullopt));
  json t = tuf::NewEnvelope("targets", targets ? targets->version + 1 : 1, expires);
  for (auto& [k, v] : wanted.items()) t["signed"][k] = v;
  ALOFT_ASSIGN_OR_RETURN(targets, sign(t, "targets"));
  json s = tuf::NewEnvelope("snapshot", snapshot ? snapshot->version + 1 : 1, expires);
  s["signed"]["meta"]["targets.json"] = tuf::MetaEntry(targets->version, targets->body);
  ALOFT_ASSIGN_OR_RETURN(TufFile sf, sign(s, "snapshot"));
  json ts = tuf::NewEnvelope("timestamp", timestamp ? timestamp->version + 1 : 1, expires);
  ts["signed"]["meta"]["snapshot.json"] = tuf::MetaEntry(sf.version, sf.body);
  ALOFT_ASSIGN_OR_RETURN(timestamp, sign(ts, "timestamp"));
  return OkStatus();
}

Result<json> Director::CheckIn(const Device& device, const json& uptane,
                               const std::optional<Offer>& offer, int64_t now_ms) {
  if (!uptane.is_object()) {
    return Error(Code::kInvalidArgument, "field 'uptane' must be an object");
  }
  const json* manifest = uptane.contains("manifest") ? &uptane["manifest"] : nullptr;
  if (manifest) ALOFT_RETURN_IF_ERROR(CheckManifest(*manifest, device));
  const json have = uptane.value("have", json::object());
  auto have_version = [&](const char* role) -> int64_t {
    return have.contains(role) && have[role].is_number_integer() ? have[role].get<int64_t>() : 0;
  };
  const int64_t action = offer ? offer->action : 0;
  // Nearly every check-in: no manifest (nothing changed on the device), and the device holds
  // the newest of everything; answered from memory, looked up again at least once a minute.
  if (!manifest &&
      Unchanged(device.id, action, have_version("root"), have_version("timestamp"), now_ms)) {
    return json::object();
  }
  const std::string repo = DeviceRepo(device);
  json answer = json::object();
  Seen seen;
  ALOFT_RETURN_IF_ERROR(store_.Write([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(const json ecus, AcceptManifest(tx, device, manifest, now_ms));
    // The device's Director metadata: new when what it should install changed, or when it is
    // within half its life of expiring.
    std::optional<TufTarget> image;
    if (offer) {
      ALOFT_ASSIGN_OR_RETURN(image,
                             tx.FindTufTargetBySha256(ImageRepository::kRepo, offer->sha256));
      if (!image) {
        answer["unlisted"] = "release " + offer->release +
                             " is not a target of the Image repository (aloft repo add, sign, "
                             "push): the device will refuse it";
      }
    }
    json wanted = WantedTargets(offer, image, ecus);
    ALOFT_ASSIGN_OR_RETURN(auto targets, tx.GetTufFile(repo, "targets", std::nullopt));
    ALOFT_ASSIGN_OR_RETURN(auto timestamp, tx.GetTufFile(repo, "timestamp", std::nullopt));
    const json held = targets ? ContentOf(targets->body) : json();
    KeepSignedWrap(held, wanted);
    if (!targets || !timestamp || held != wanted ||
        timestamp->expires_ms - now_ms < o_.lifetime_ms / 2) {
      ALOFT_RETURN_IF_ERROR(SignSet(tx, repo, wanted, now_ms, targets, timestamp));
    }
    // What the device lacks: roots above its own, and the newest set when its timestamp is older.
    ALOFT_ASSIGN_OR_RETURN(auto root, tx.GetTufFile(kRepo, "root", std::nullopt));
    if (!root) {
      return Error(Code::kUnavailable,
                   "the Director has no root yet (aloft repo init --director, sign, push)");
    }
    json roots = json::array();
    for (int64_t v = have_version("root") + 1; v <= root->version; ++v) {
      ALOFT_ASSIGN_OR_RETURN(auto r, tx.GetTufFile(kRepo, "root", v));
      if (r) roots.push_back(r->body);
    }
    if (!roots.empty()) answer["roots"] = roots;
    if (have_version("timestamp") < timestamp->version) {
      ALOFT_ASSIGN_OR_RETURN(auto snapshot, tx.GetTufFile(repo, "snapshot", std::nullopt));
      answer["timestamp"] = timestamp->body;
      answer["snapshot"] = snapshot->body;
      answer["targets"] = targets->body;
    }
    seen = {root->version, timestamp->version, timestamp->expires_ms, action, now_ms};
    return OkStatus();
  }));
  {
    std::lock_guard lock(mu_);
    if (seen_.size() >= kMaxSeen) seen_.clear();
    seen_[device.id] = seen;
  }
  return answer;
}

}  // namespace aloft::server
