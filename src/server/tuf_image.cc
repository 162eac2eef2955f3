#include "server/tuf_image.h"

#include <algorithm>
#include <set>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "core/hash.h"
#include "server/api.h"
#include "tuf/repository.h"
#include "tuf/root_chain.h"
#include "tuf/updater.h"

namespace aloft::server {

using tuf::json;

namespace {

// Serializes pushes and refreshes of the Image repository across servers.
constexpr int64_t kTufLock = 0x416c6f6674000010;  // "Aloft" + 16

bool TopLevel(const std::string& role) {
  return role == "root" || role == "targets" || role == "snapshot" || role == "timestamp";
}

// A role name as a file name may carry it.
bool PlainRole(const std::string& role) {
  if (role.empty() || role.size() > 64) return false;
  for (char c : role) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  }
  return true;
}

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A pushed file's text: a string member of the body.
Result<std::string> TextOf(const json& j, const std::string& what) {
  if (!j.is_string()) return Error(Code::kInvalidArgument, what + " must be the file's text");
  return j.get<std::string>();
}

// A file that must not go back in version, and replaces the held one only when newer; equal
// versions must be the same file. Whether it is new.
Result<bool> Newer(const tuf::Common& c, const json& env, const std::optional<TufFile>& held,
                   const std::string& what) {
  if (!held) return true;
  if (c.version < held->version) {
    return Error(Code::kIntegrity, what + ": version " + std::to_string(c.version) +
                                       " is older than the served version " +
                                       std::to_string(held->version));
  }
  if (c.version == held->version) {
    if (json::parse(held->body, nullptr, false) != env) {
      return Error(Code::kAlreadyExists,
                   what + ": version " + std::to_string(c.version) +
                       " differs from the one this server serves (a version is never replaced: "
                       "sign a new one)");
    }
    return false;
  }
  return true;
}

Status NotExpired(const tuf::Common& c, int64_t now_ms, const std::string& what) {
  if (c.expires_ms <= now_ms) {
    return Error(Code::kInvalidArgument,
                 what + ": expired at " + FormatRfc3339Ms(c.expires_ms) + ": sign it again");
  }
  return OkStatus();
}

// The targets an envelope lists.
Status Collect(const json& env, std::vector<TufTarget>& out, const std::string& what) {
  const json& s = env.at("signed");
  if (!s.contains("targets") || !s["targets"].is_object()) {
    return Error(Code::kInvalidArgument, what + ": no targets object");
  }
  for (const auto& [name, e] : s["targets"].items()) {
    if (!e.is_object() || !e.contains("length") || !e["length"].is_number_integer() ||
        !e.contains("hashes") || !e["hashes"].is_object() || !e["hashes"].contains("sha256") ||
        !e["hashes"]["sha256"].is_string()) {
      return Error(Code::kInvalidArgument,
                   what + ": target '" + name + "' has no length and SHA-256");
    }
    out.push_back({name, e["hashes"]["sha256"].get<std::string>(), e["length"].get<int64_t>()});
  }
  return OkStatus();
}

}  // namespace

Result<tuf::TrustedRoot> AcceptRoots(Tx& tx, const std::string& repo, const json& roots,
                                     const std::map<std::string, OnlineKey>& online, int64_t now_ms,
                                     bool& changed) {
  // Roots, in order, as a client follows them.
  std::optional<tuf::TrustedRoot> trusted;
  ALOFT_ASSIGN_OR_RETURN(auto newest_root, tx.GetTufFile(repo, "root", std::nullopt));
  if (newest_root) {
    ALOFT_ASSIGN_OR_RETURN(trusted, tuf::TrustedRoot::FromText(newest_root->body, "root.json"));
  }
  if (!roots.is_array()) {
    return Error(Code::kInvalidArgument, "field 'roots' must be an array of root files' text");
  }
  for (const auto& item : roots) {
    ALOFT_ASSIGN_OR_RETURN(std::string text, TextOf(item, "each of 'roots'"));
    ALOFT_ASSIGN_OR_RETURN(json env, tuf::ParseEnvelope(text, "root", "a pushed root"));
    ALOFT_ASSIGN_OR_RETURN(tuf::Common c, tuf::CommonOf(env, "a pushed root"));
    const std::string what = std::to_string(c.version) + ".root.json";
    if (trusted && c.version <= trusted->version()) {
      ALOFT_ASSIGN_OR_RETURN(auto held, tx.GetTufFile(repo, "root", c.version));
      ALOFT_ASSIGN_OR_RETURN(bool fresh, Newer(c, env, held, what));
      (void)fresh;
      continue;
    }
    if (!trusted) {
      if (c.version != 1) {
        return Error(Code::kInvalidArgument,
                     what + ": this server holds no root yet; the first must be version 1");
      }
      ALOFT_ASSIGN_OR_RETURN(trusted, tuf::TrustedRoot::FromText(text, what));
    } else {
      ALOFT_RETURN_IF_ERROR(trusted->Update(text, what));
    }
    ALOFT_RETURN_IF_ERROR(tx.PutTufFile(repo, {"root", c.version, text, c.expires_ms}, now_ms));
    changed = true;
  }
  if (!trusted) {
    return Error(Code::kInvalidArgument,
                 "this server holds no root yet: push 1.root.json (aloft repo push sends every "
                 "root)");
  }
  const std::string root_name = std::to_string(trusted->version()) + ".root.json";
  if (Status e = trusted->CheckNotExpired(now_ms); !e.ok()) {
    return Error(Code::kInvalidArgument, root_name + " has expired: rotate the root");
  }
  for (const auto& [role, key] : online) {
    const tuf::RoleKeys& rk = trusted->root().roles.at(role);
    if (std::find(rk.keyids.begin(), rk.keyids.end(), key.id) == rk.keyids.end() ||
        rk.threshold != 1) {
      return Error(Code::kInvalidArgument,
                   root_name + " does not make this server's key " + key.id.substr(0, 16) + "… (" +
                       key.setting + ") its " + role +
                       " role with threshold 1: what it signs would not verify");
    }
  }
  return std::move(*trusted);
}

namespace {

// The text of `role` (`what` in errors): pushed in `body[key]`, else the one held.
Result<std::string> PushedOrHeld(const json& body, const std::string& key,
                                 const std::optional<TufFile>& held, const std::string& what,
                                 const std::string& missing) {
  if (body.contains(key)) return TextOf(body[key], what);
  if (held) return held->body;
  return Error(Code::kInvalidArgument, missing);
}

// targets.json, pushed or held, verified under `trusted` and kept when new; its targets
// appended to `listed`.
Result<json> AcceptTargets(Tx& tx, const std::string& repo, const json& body,
                           const tuf::TrustedRoot& trusted, int64_t now_ms, bool& changed,
                           std::vector<TufTarget>& listed) {
  const std::string root_name = std::to_string(trusted.version()) + ".root.json";
  ALOFT_ASSIGN_OR_RETURN(auto held, tx.GetTufFile(repo, "targets", std::nullopt));
  ALOFT_ASSIGN_OR_RETURN(std::string text,
                         PushedOrHeld(body, "targets", held, "field 'targets'",
                                      "no targets.json: push one (aloft repo push)"));
  ALOFT_ASSIGN_OR_RETURN(json targets, tuf::ParseEnvelope(text, "targets", "targets.json"));
  ALOFT_ASSIGN_OR_RETURN(tuf::Common tc, tuf::CommonOf(targets, "targets.json"));
  if (Status v = trusted.VerifyRole(targets, "targets", "targets.json"); !v.ok()) {
    return Error(Code::kInvalidArgument, v.error().message() + " under " + root_name +
                                             ": sign it with the targets keys that root names");
  }
  ALOFT_RETURN_IF_ERROR(NotExpired(tc, now_ms, "targets.json"));
  ALOFT_ASSIGN_OR_RETURN(bool fresh, Newer(tc, targets, held, "targets.json"));
  if (fresh) {
    ALOFT_RETURN_IF_ERROR(
        tx.PutTufFile(repo, {"targets", tc.version, text, tc.expires_ms}, now_ms));
    changed = true;
  }
  ALOFT_RETURN_IF_ERROR(Collect(targets, listed, "targets.json"));
  return targets;
}

// One delegated role `d` of targets.json (a hashed bin), pushed or held, verified under its
// delegation's `keys` and kept when new; its targets, each one the delegation hands it,
// appended to `listed`.
Status AcceptDelegatedRole(Tx& tx, const std::string& repo, const json& d,
                           const std::map<std::string, tuf::Key>& keys, const json& pushed,
                           int64_t now_ms, bool& changed, std::vector<TufTarget>& listed) {
  const std::string name = d.value("name", "");
  const std::string what = name + ".json";
  ALOFT_ASSIGN_OR_RETURN(auto held, tx.GetTufFile(repo, name, std::nullopt));
  ALOFT_ASSIGN_OR_RETURN(
      std::string text,
      PushedOrHeld(pushed, name, held, "delegated '" + name + "'",
                   what + ": missing (targets.json delegates to it): push it too"));
  ALOFT_ASSIGN_OR_RETURN(json env, tuf::ParseEnvelope(text, "targets", what));
  ALOFT_ASSIGN_OR_RETURN(tuf::Common c, tuf::CommonOf(env, what));
  tuf::RoleKeys rk;
  for (const auto& id : d.value("keyids", json::array())) {
    if (id.is_string()) rk.keyids.push_back(id.get<std::string>());
  }
  rk.threshold = d.value("threshold", 1);
  ALOFT_RETURN_IF_ERROR(tuf::VerifyRole(env, keys, rk, what));
  ALOFT_RETURN_IF_ERROR(NotExpired(c, now_ms, what));
  if (env["signed"].contains("delegations")) {
    return Error(Code::kUnsupported,
                 what + ": delegates further; aloftd serves one level of delegation");
  }
  ALOFT_ASSIGN_OR_RETURN(bool fresh, Newer(c, env, held, what));
  if (fresh) {
    ALOFT_RETURN_IF_ERROR(tx.PutTufFile(repo, {name, c.version, text, c.expires_ms}, now_ms));
    changed = true;
  }
  std::vector<TufTarget> mine;
  ALOFT_RETURN_IF_ERROR(Collect(env, mine, what));
  for (const auto& t : mine) {
    bool handed = false;
    const std::string hash = Sha256Hex(AsBytes(t.name));
    for (const auto& p : d.value("path_hash_prefixes", json::array())) {
      handed |= p.is_string() && hash.starts_with(p.get<std::string>());
    }
    for (const auto& p : d.value("paths", json::array())) {
      handed |= p.is_string() && tuf::PathMatches(p.get<std::string>(), t.name);
    }
    if (!handed) {
      return Error(Code::kInvalidArgument,
                   what + " lists '" + t.name + "', which its delegation does not hand it");
    }
    listed.push_back(t);
  }
  return OkStatus();
}

// Every role `targets` delegates to (hashed bins), each accepted as above; a pushed role it does
// not delegate to is refused.
Status AcceptDelegated(Tx& tx, const std::string& repo, const json& targets, const json& pushed,
                       int64_t now_ms, bool& changed, std::vector<TufTarget>& listed) {
  const json delegations = targets["signed"].value("delegations", json::object());
  std::map<std::string, tuf::Key> keys;
  const json key_objects = delegations.value("keys", json::object());
  for (const auto& [id, object] : key_objects.items()) {
    ALOFT_ASSIGN_OR_RETURN(tuf::Key k, tuf::KeyFromObject(id, object));
    keys.emplace(id, std::move(k));
  }
  std::set<std::string> names;
  for (const auto& d : delegations.value("roles", json::array())) {
    const std::string name = d.value("name", "");
    if (!PlainRole(name) || TopLevel(name) || !names.insert(name).second) {
      return Error(Code::kInvalidArgument, "targets.json: delegated role '" + name +
                                               "' (names are letters, digits, "
                                               "'-' and '_', once each, not a top-level role)");
    }
    ALOFT_RETURN_IF_ERROR(AcceptDelegatedRole(tx, repo, d, keys, pushed, now_ms, changed, listed));
  }
  for (const auto& [name, _] : pushed.items()) {
    if (!names.count(name)) {
      return Error(Code::kInvalidArgument,
                   "delegated '" + name + "': targets.json does not delegate to it");
    }
  }
  return OkStatus();
}

}  // namespace

Result<std::unique_ptr<ImageRepository>> ImageRepository::Create(Store& store,
                                                                 crypto::PrivateKey snapshot_key,
                                                                 crypto::PrivateKey timestamp_key,
                                                                 Options o) {
  ALOFT_ASSIGN_OR_RETURN(tuf::Key s, tuf::KeyFromPublic(snapshot_key.public_key()));
  ALOFT_ASSIGN_OR_RETURN(tuf::Key t, tuf::KeyFromPublic(timestamp_key.public_key()));
  std::unique_ptr<ImageRepository> r(
      new ImageRepository(store, std::move(snapshot_key), std::move(timestamp_key), o));
  r->snapshot_id_ = s.id;
  r->timestamp_id_ = t.id;
  return r;
}

Result<json> ImageRepository::Push(const json& body, const std::string& actor, int64_t now_ms) {
  if (!body.is_object()) return Error(Code::kInvalidArgument, "the body must be a JSON object");
  if (body.contains("roots") && !body["roots"].is_array()) {
    return Error(Code::kInvalidArgument, "field 'roots' must be an array of root files' text");
  }
  if (body.contains("delegated") && !body["delegated"].is_object()) {
    return Error(Code::kInvalidArgument, "field 'delegated' must be an object of role: text");
  }
  json answer;
  Status s = store_.Write([&](Tx& tx) -> Status {
    ALOFT_RETURN_IF_ERROR(tx.Serialize(kTufLock));
    bool changed = false;
    ALOFT_ASSIGN_OR_RETURN(tuf::TrustedRoot trusted,
                           AcceptRoots(tx, kRepo, body.value("roots", json::array()),
                                       {{"snapshot", {snapshot_id_, "tuf_snapshot_key"}},
                                        {"timestamp", {timestamp_id_, "tuf_timestamp_key"}}},
                                       now_ms, changed));
    std::vector<TufTarget> listed;
    ALOFT_ASSIGN_OR_RETURN(const json targets,
                           AcceptTargets(tx, kRepo, body, trusted, now_ms, changed, listed));
    ALOFT_RETURN_IF_ERROR(AcceptDelegated(
        tx, kRepo, targets, body.value("delegated", json::object()), now_ms, changed, listed));
    const int64_t targets_version = targets["signed"]["version"].get<int64_t>();
    if (changed) {
      ALOFT_RETURN_IF_ERROR(PublishSnapshot(tx, now_ms));
      ALOFT_RETURN_IF_ERROR(tx.SetTufTargets(kRepo, listed));
      ALOFT_RETURN_IF_ERROR(tx.Audit(actor, "tuf.push", kRepo,
                                     DumpJson(json({{"root", trusted.version()},
                                                    {"targets", targets_version},
                                                    {"listed", listed.size()}})),
                                     now_ms));
    }
    ALOFT_ASSIGN_OR_RETURN(auto without, tx.TufTargetsWithoutFile(kRepo));
    ALOFT_ASSIGN_OR_RETURN(auto snapshot, tx.GetTufFile(kRepo, "snapshot", std::nullopt));
    ALOFT_ASSIGN_OR_RETURN(auto timestamp, tx.GetTufFile(kRepo, "timestamp", std::nullopt));
    answer = {{"changed", changed},
              {"root_version", trusted.version()},
              {"targets_version", targets_version},
              {"snapshot_version", snapshot ? snapshot->version : 0},
              {"timestamp_version", timestamp ? timestamp->version : 0},
              {"targets", listed.size()},
              {"targets_without_file", without}};
    return OkStatus();
  });
  if (!s.ok()) return std::move(s).error();
  return answer;
}

Status ImageRepository::PublishSnapshot(Tx& tx, int64_t now_ms) {
  ALOFT_ASSIGN_OR_RETURN(auto files, tx.NewestTufFiles(kRepo));
  int64_t version = 1;
  json env = tuf::NewEnvelope("snapshot", 1, now_ms + o_.snapshot_lifetime_ms);
  env["signed"]["meta"] = json::object();
  for (const auto& f : files) {
    if (f.role == "snapshot") version = f.version + 1;
    if (f.role == "root" || f.role == "snapshot" || f.role == "timestamp") continue;
    env["signed"]["meta"][f.role + ".json"] = tuf::MetaEntry(f.version, f.body);
  }
  env["signed"]["version"] = version;
  ALOFT_RETURN_IF_ERROR(tuf::Sign(env, snapshot_key_));
  TufFile snapshot{"snapshot", version, tuf::FileBytes(env), 0};
  ALOFT_ASSIGN_OR_RETURN(tuf::Common c, tuf::CommonOf(env, "snapshot.json"));
  snapshot.expires_ms = c.expires_ms;
  ALOFT_RETURN_IF_ERROR(tx.PutTufFile(kRepo, snapshot, now_ms));
  return PublishTimestamp(tx, snapshot, now_ms);
}

Status ImageRepository::PublishTimestamp(Tx& tx, const TufFile& snapshot, int64_t now_ms) {
  ALOFT_ASSIGN_OR_RETURN(auto held, tx.GetTufFile(kRepo, "timestamp", std::nullopt));
  const int64_t version = held ? held->version + 1 : 1;
  json env = tuf::NewEnvelope("timestamp", version, now_ms + o_.timestamp_lifetime_ms);
  env["signed"]["meta"]["snapshot.json"] = tuf::MetaEntry(snapshot.version, snapshot.body);
  ALOFT_RETURN_IF_ERROR(tuf::Sign(env, timestamp_key_));
  ALOFT_ASSIGN_OR_RETURN(tuf::Common c, tuf::CommonOf(env, "timestamp.json"));
  return tx.PutTufFile(kRepo, {"timestamp", version, tuf::FileBytes(env), c.expires_ms}, now_ms);
}

Status ImageRepository::Refresh(int64_t now_ms) {
  auto due = [&](Tx& tx, bool& snapshot_due, bool& timestamp_due) -> Status {
    ALOFT_ASSIGN_OR_RETURN(auto snapshot, tx.GetTufFile(kRepo, "snapshot", std::nullopt));
    ALOFT_ASSIGN_OR_RETURN(auto timestamp, tx.GetTufFile(kRepo, "timestamp", std::nullopt));
    snapshot_due = snapshot && snapshot->expires_ms - now_ms < o_.snapshot_lifetime_ms / 2;
    timestamp_due = timestamp && timestamp->expires_ms - now_ms < o_.timestamp_lifetime_ms / 2;
    return OkStatus();
  };
  bool snapshot_due = false, timestamp_due = false;
  ALOFT_RETURN_IF_ERROR(store_.Read([&](Tx& tx) { return due(tx, snapshot_due, timestamp_due); }));
  if (!snapshot_due && !timestamp_due) return OkStatus();
  return store_.Write([&](Tx& tx) -> Status {
    ALOFT_RETURN_IF_ERROR(tx.Serialize(kTufLock));
    ALOFT_RETURN_IF_ERROR(due(tx, snapshot_due, timestamp_due));  // another server may have
    if (snapshot_due) return PublishSnapshot(tx, now_ms);
    if (!timestamp_due) return OkStatus();
    ALOFT_ASSIGN_OR_RETURN(auto snapshot, tx.GetTufFile(kRepo, "snapshot", std::nullopt));
    return PublishTimestamp(tx, *snapshot, now_ms);
  });
}

Result<TufFile> ImageRepository::File(const std::string& name) {
  auto not_found = [&] {
    return Error(Code::kNotFound, "no " + name + " in the Image repository");
  };
  if (!name.ends_with(".json")) return not_found();
  std::string role = name.substr(0, name.size() - 5);
  std::optional<int64_t> version;
  if (size_t dot = role.find('.'); dot != std::string::npos) {
    auto v = ParseInteger(std::string_view(role).substr(0, dot));
    if (!v || *v < 1) return not_found();
    version = *v;
    role = role.substr(dot + 1);
    if (role == "timestamp") return not_found();  // the one file that is never versioned
  }
  if (!PlainRole(role)) return not_found();
  std::optional<TufFile> f;
  ALOFT_RETURN_IF_ERROR(store_.Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(f, tx.GetTufFile(kRepo, role, version));
    return OkStatus();
  }));
  if (!f) return not_found();
  return std::move(*f);
}

Result<TufTarget> ImageRepository::Target(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string name = path, hash;
  if (size_t dot = base.find('.'); dot == 64 && IsLowerHex(base.substr(0, 64))) {
    hash = base.substr(0, 64);
    name = dir + base.substr(65);
  }
  std::optional<TufTarget> t;
  ALOFT_RETURN_IF_ERROR(store_.Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(t, tx.FindTufTarget(kRepo, name));
    return OkStatus();
  }));
  if (!t || (!hash.empty() && t->sha256 != hash)) {
    return Error(Code::kNotFound, "the Image repository's newest metadata lists no target '" +
                                      name + "'" + (hash.empty() ? "" : " with that SHA-256"));
  }
  return std::move(*t);
}

Result<json> ImageRepository::Describe(int64_t now_ms) {
  json out = {{"keys", {{"snapshot", snapshot_id_}, {"timestamp", timestamp_id_}}},
              {"files", json::object()}};
  ALOFT_RETURN_IF_ERROR(store_.Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(auto files, tx.NewestTufFiles(kRepo));
    size_t delegated = 0;
    for (const auto& f : files) {
      if (!TopLevel(f.role)) {
        ++delegated;
        continue;
      }
      out["files"][f.role] = {{"version", f.version},
                              {"expires", FormatRfc3339Ms(f.expires_ms)},
                              {"expired", f.expires_ms <= now_ms}};
    }
    out["delegated_roles"] = delegated;
    ALOFT_ASSIGN_OR_RETURN(auto without, tx.TufTargetsWithoutFile(kRepo));
    out["targets_without_file"] = without;
    return OkStatus();
  }));
  return out;
}

}  // namespace aloft::server
