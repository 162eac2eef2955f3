#include "tuf/updater.h"

#include "core/clock.h"
#include "core/encoding.h"
#include "core/hash.h"

namespace aloft::tuf {

namespace {

Status NotExpired(const Common& c, int64_t now_ms, const std::string& what) {
  if (c.expires_ms <= now_ms) {
    return Error(Code::kUntrusted, what + " expired at " + FormatRfc3339Ms(c.expires_ms) +
                                       " (freeze attack?): no update is trusted");
  }
  return OkStatus();
}

// The bytes against the length and hashes that trusted metadata gave for them.
Status MatchesMeta(std::string_view bytes, const MetaFile& meta, const std::string& what) {
  if (meta.length && static_cast<int64_t>(bytes.size()) != *meta.length) {
    return Error(Code::kIntegrity, what + ": " + std::to_string(bytes.size()) +
                                       " bytes where the trusted metadata says " +
                                       std::to_string(*meta.length));
  }
  for (const auto& [algo, hex] : meta.hashes) {
    std::string got;
    if (algo == "sha256") {
      got = Sha256Hex(AsBytes(bytes));
    } else if (algo == "sha512") {
      continue;  // no SHA-512 in core: the SHA-256 (always written by aloftd) decides
    } else {
      continue;
    }
    if (got != hex) {
      return Error(Code::kIntegrity, what + ": its " + algo +
                                         " is not the one the trusted metadata gives (a "
                                         "mix-and-match or a malicious mirror?)");
    }
  }
  return OkStatus();
}

Status NotOlder(int64_t got, std::optional<int64_t> trusted, const std::string& what) {
  if (trusted && got < *trusted) {
    return Error(Code::kIntegrity, what + ": version " + std::to_string(got) +
                                       " is older than the trusted version " +
                                       std::to_string(*trusted) + " (rollback attack)");
  }
  return OkStatus();
}

}  // namespace

Result<MetaFile> MetaOf(const json& envelope, const std::string& name, const std::string& what) {
  const json& s = envelope.at("signed");
  if (!s.contains("meta") || !s["meta"].is_object() || !s["meta"].contains(name) ||
      !s["meta"][name].is_object()) {
    return Error(Code::kMalformed, what + ": no meta entry for " + name);
  }
  const json& m = s["meta"][name];
  MetaFile out;
  if (!m.contains("version") || !m["version"].is_number_integer() ||
      m["version"].get<int64_t>() < 1) {
    return Error(Code::kMalformed, what + ": meta " + name + " has no version of at least 1");
  }
  out.version = m["version"].get<int64_t>();
  if (m.contains("length")) {
    if (!m["length"].is_number_integer() || m["length"].get<int64_t>() < 0) {
      return Error(Code::kMalformed, what + ": meta " + name + " has a bad length");
    }
    out.length = m["length"].get<int64_t>();
  }
  if (m.contains("hashes")) {
    if (!m["hashes"].is_object()) return Error(Code::kMalformed, what + ": bad hashes");
    for (const auto& [algo, hex] : m["hashes"].items()) {
      if (!hex.is_string()) return Error(Code::kMalformed, what + ": bad hashes");
      out.hashes[algo] = hex.get<std::string>();
    }
  }
  return out;
}

Result<Updater::Trusted> Updater::Load(std::string_view bytes, const std::string& role,
                                       const std::string& what) {
  ALOFT_ASSIGN_OR_RETURN(json env, ParseEnvelope(bytes, role, what));
  ALOFT_RETURN_IF_ERROR(root_.VerifyRole(env, role, what));
  ALOFT_ASSIGN_OR_RETURN(Common c, CommonOf(env, what));
  return Trusted{std::move(env), c};
}

Result<Updater::Trusted> Updater::LoadListed(std::string_view bytes, const ListedFile& listed,
                                             int64_t now_ms) {
  const std::string& what = listed.what;
  const int64_t limit = listed.want.length ? *listed.want.length : kDefaultMaxBytes;
  if (static_cast<int64_t>(bytes.size()) > limit) {
    return Error(Code::kOutOfRange, what + ": more bytes than the " + listed.lister + " allows");
  }
  ALOFT_RETURN_IF_ERROR(MatchesMeta(bytes, listed.want, what));
  ALOFT_ASSIGN_OR_RETURN(json env, ParseEnvelope(bytes, listed.type, what));
  if (listed.keys) {
    ALOFT_RETURN_IF_ERROR(tuf::VerifyRole(env, *listed.keys, *listed.role_keys, what));
  } else {
    ALOFT_RETURN_IF_ERROR(root_.VerifyRole(env, listed.type, what));
  }
  ALOFT_ASSIGN_OR_RETURN(Common c, CommonOf(env, what));
  if (c.version != listed.want.version) {
    return Error(Code::kIntegrity, what + ": version " + std::to_string(c.version) + " where the " +
                                       listed.lister + " names " +
                                       std::to_string(listed.want.version) + " (mix-and-match?)");
  }
  ALOFT_RETURN_IF_ERROR(NotExpired(c, now_ms, what));
  return Trusted{std::move(env), c};
}

Status Updater::UpdateTimestamp(std::string_view bytes, int64_t now_ms) {
  const std::string what = "timestamp.json";
  if (static_cast<int64_t>(bytes.size()) > kMaxTimestampBytes) {
    return Error(Code::kOutOfRange, what + ": larger than " + std::to_string(kMaxTimestampBytes) +
                                        " bytes (endless data?)");
  }
  ALOFT_ASSIGN_OR_RETURN(Trusted t, Load(bytes, "timestamp", what));
  ALOFT_RETURN_IF_ERROR(NotOlder(t.common.version, timestamp_version(), what));
  ALOFT_ASSIGN_OR_RETURN(MetaFile snap, MetaOf(t.envelope, "snapshot.json", what));
  if (timestamp_) {
    ALOFT_ASSIGN_OR_RETURN(MetaFile was, MetaOf(timestamp_->envelope, "snapshot.json", what));
    ALOFT_RETURN_IF_ERROR(NotOlder(snap.version, was.version, what + "'s snapshot"));
  }
  ALOFT_RETURN_IF_ERROR(NotExpired(t.common, now_ms, what));
  if (timestamp_ && t.common.version == timestamp_->common.version) return OkStatus();
  timestamp_ = std::move(t);
  return OkStatus();
}

int64_t Updater::SnapshotLimit() const {
  if (!timestamp_) return kDefaultMaxBytes;
  auto m = MetaOf(timestamp_->envelope, "snapshot.json", "timestamp.json");
  return m.ok() && m->length ? *m->length : kDefaultMaxBytes;
}

int64_t Updater::TargetsLimit() const {
  if (!snapshot_) return kDefaultMaxBytes;
  auto m = MetaOf(snapshot_->envelope, "targets.json", "snapshot.json");
  return m.ok() && m->length ? *m->length : kDefaultMaxBytes;
}

Status Updater::UpdateSnapshot(std::string_view bytes, int64_t now_ms) {
  const std::string what = "snapshot.json";
  if (!timestamp_) return Error(Code::kInvalidArgument, what + ": no trusted timestamp yet");
  ALOFT_ASSIGN_OR_RETURN(MetaFile want, MetaOf(timestamp_->envelope, what, "timestamp.json"));
  ALOFT_ASSIGN_OR_RETURN(
      Trusted s,
      LoadListed(bytes, {what, "snapshot", "timestamp", want, nullptr, nullptr}, now_ms));
  if (snapshot_) {
    // No targets file may go back or disappear.
    for (const auto& [name, _] : snapshot_->envelope["signed"]["meta"].items()) {
      ALOFT_ASSIGN_OR_RETURN(MetaFile old, MetaOf(snapshot_->envelope, name, what));
      auto now = MetaOf(s.envelope, name, what);
      if (!now.ok()) return Error(Code::kIntegrity, what + ": " + name + " was removed");
      ALOFT_RETURN_IF_ERROR(NotOlder(now->version, old.version, what + "'s " + name));
    }
  }
  snapshot_ = std::move(s);
  delegated_.clear();
  return OkStatus();
}

Status Updater::UpdateTargets(std::string_view bytes, int64_t now_ms) {
  const std::string what = "targets.json";
  if (!snapshot_) return Error(Code::kInvalidArgument, what + ": no trusted snapshot yet");
  ALOFT_ASSIGN_OR_RETURN(MetaFile want, MetaOf(snapshot_->envelope, what, "snapshot.json"));
  ALOFT_ASSIGN_OR_RETURN(
      Trusted t, LoadListed(bytes, {what, "targets", "snapshot", want, nullptr, nullptr}, now_ms));
  targets_ = std::move(t);
  return OkStatus();
}

namespace {

// The entry of `name` in targets metadata `envelope`, or nullopt when it has none.
Result<std::optional<TargetInfo>> EntryOf(const json& envelope, const std::string& name) {
  const json& s = envelope.at("signed");
  if (!s.contains("targets") || !s["targets"].is_object() || !s["targets"].contains(name)) {
    return std::optional<TargetInfo>();
  }
  const json& e = s["targets"][name];
  TargetInfo t;
  t.name = name;
  if (!e.is_object() || !e.contains("length") || !e["length"].is_number_integer() ||
      e["length"].get<int64_t>() < 0 || !e.contains("hashes") || !e["hashes"].is_object()) {
    return Error(Code::kMalformed, "target '" + name + "': no length and hashes");
  }
  t.length = e["length"].get<int64_t>();
  for (const auto& [algo, hex] : e["hashes"].items()) {
    if (hex.is_string()) t.hashes[algo] = hex.get<std::string>();
  }
  if (!t.hashes.count("sha256")) {
    return Error(Code::kUnsupported, "target '" + name + "': no sha256 hash");
  }
  t.custom = e.value("custom", json::object());
  return std::optional<TargetInfo>(std::move(t));
}

bool SegmentMatches(std::string_view p, std::string_view s) {
  // Iterative glob with backtracking on the last '*'.
  size_t pi = 0, si = 0, star = std::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
      ++pi;
      ++si;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = si;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

}  // namespace

bool PathMatches(const std::string& pattern, const std::string& name) {
  size_t pp = 0, np = 0;
  while (true) {
    const size_t pe = pattern.find('/', pp), ne = name.find('/', np);
    if ((pe == std::string::npos) != (ne == std::string::npos)) return false;
    if (!SegmentMatches(std::string_view(pattern).substr(pp, pe - pp),
                        std::string_view(name).substr(np, ne - np))) {
      return false;
    }
    if (pe == std::string::npos) return true;
    pp = pe + 1;
    np = ne + 1;
  }
}

Result<TargetInfo> Updater::Target(const std::string& name) const {
  if (!targets_) return Error(Code::kInvalidArgument, "no trusted targets metadata yet");
  ALOFT_ASSIGN_OR_RETURN(auto t, EntryOf(targets_->envelope, name));
  if (!t) {
    return Error(Code::kNotFound, "target '" + name + "' is not in the trusted targets metadata");
  }
  return std::move(*t);
}

Result<json> Updater::LoadDelegated(const std::string& role, const json& delegations,
                                    const json& delegation, const Fetch& fetch, int64_t now_ms) {
  if (auto it = delegated_.find(role); it != delegated_.end()) return it->second;
  const std::string what = role + ".json";
  ALOFT_ASSIGN_OR_RETURN(MetaFile want, MetaOf(snapshot_->envelope, what, "snapshot.json"));
  const int64_t limit = want.length ? *want.length : kDefaultMaxBytes;
  ALOFT_ASSIGN_OR_RETURN(std::string bytes, fetch(role, want.version, limit));
  // The delegator's keys for this role.
  std::map<std::string, Key> keys;
  if (delegations.contains("keys") && delegations["keys"].is_object()) {
    for (const auto& [id, object] : delegations["keys"].items()) {
      auto k = KeyFromObject(id, object);
      if (!k.ok()) return std::move(k).error().WithContext(what);
      keys.emplace(id, std::move(k).value());
    }
  }
  RoleKeys rk;
  if (!delegation.contains("keyids") || !delegation["keyids"].is_array() ||
      !delegation.contains("threshold") || !delegation["threshold"].is_number_integer()) {
    return Error(Code::kMalformed, what + ": its delegation has no keyids and threshold");
  }
  for (const auto& id : delegation["keyids"]) {
    if (id.is_string()) rk.keyids.push_back(id.get<std::string>());
  }
  rk.threshold = static_cast<int>(delegation["threshold"].get<int64_t>());
  ALOFT_ASSIGN_OR_RETURN(
      Trusted t, LoadListed(bytes, {what, "targets", "snapshot", want, &keys, &rk}, now_ms));
  delegated_[role] = t.envelope;
  return std::move(t.envelope);
}

Result<Updater::Found> Updater::Search(const json& envelope, const std::string& name,
                                       const Fetch& fetch, int64_t now_ms, int& visited,
                                       TargetInfo& out) {
  ALOFT_ASSIGN_OR_RETURN(auto entry, EntryOf(envelope, name));
  if (entry) {
    out = std::move(*entry);
    return Found::kYes;
  }
  const json& s = envelope.at("signed");
  if (!s.contains("delegations") || !s["delegations"].is_object()) return Found::kNo;
  const json& delegations = s["delegations"];
  if (!delegations.contains("roles") || !delegations["roles"].is_array()) return Found::kNo;
  const std::string name_hash = Sha256Hex(AsBytes(name));
  for (const auto& d : delegations["roles"]) {
    if (!d.is_object() || !d.contains("name") || !d["name"].is_string()) {
      return Error(Code::kMalformed, "a delegation without a name");
    }
    bool matches = false;
    if (d.contains("paths") && d["paths"].is_array()) {
      for (const auto& p : d["paths"])
        matches |= p.is_string() && PathMatches(p.get<std::string>(), name);
    } else if (d.contains("path_hash_prefixes") && d["path_hash_prefixes"].is_array()) {
      for (const auto& p : d["path_hash_prefixes"]) {
        matches |= p.is_string() && name_hash.starts_with(p.get<std::string>());
      }
    }
    if (!matches) continue;
    if (++visited > kMaxDelegations) {
      return Error(Code::kOutOfRange, "target '" + name + "': more than " +
                                          std::to_string(kMaxDelegations) +
                                          " delegated roles searched");
    }
    const std::string role = d["name"].get<std::string>();
    ALOFT_ASSIGN_OR_RETURN(json env, LoadDelegated(role, delegations, d, fetch, now_ms));
    ALOFT_ASSIGN_OR_RETURN(Found f, Search(env, name, fetch, now_ms, visited, out));
    if (f != Found::kNo) return f;
    if (d.value("terminating", false)) return Found::kStop;
  }
  return Found::kNo;
}

Result<TargetInfo> Updater::FindTarget(const std::string& name, const Fetch& fetch,
                                       int64_t now_ms) {
  if (!targets_) return Error(Code::kInvalidArgument, "no trusted targets metadata yet");
  int visited = 0;
  TargetInfo out;
  ALOFT_ASSIGN_OR_RETURN(Found f, Search(targets_->envelope, name, fetch, now_ms, visited, out));
  if (f != Found::kYes) {
    return Error(Code::kNotFound, "target '" + name + "' is not in the trusted targets metadata");
  }
  return out;
}

Status Updater::CheckTarget(const TargetInfo& t, int64_t length, const std::string& sha256_hex) {
  if (length != t.length) {
    return Error(Code::kIntegrity, "target '" + t.name + "': " + std::to_string(length) +
                                       " bytes where the trusted metadata says " +
                                       std::to_string(t.length));
  }
  if (t.hashes.at("sha256") != sha256_hex) {
    return Error(Code::kIntegrity,
                 "target '" + t.name + "': its SHA-256 is not the trusted metadata's");
  }
  return OkStatus();
}

Result<std::vector<TargetInfo>> Updater::Targets() const {
  if (!targets_) return Error(Code::kInvalidArgument, "no trusted targets metadata yet");
  std::vector<TargetInfo> out;
  const json& s = targets_->envelope.at("signed");
  if (!s.contains("targets") || !s["targets"].is_object()) return out;
  for (const auto& [name, _] : s["targets"].items()) {
    ALOFT_ASSIGN_OR_RETURN(auto t, EntryOf(targets_->envelope, name));
    if (t) out.push_back(std::move(*t));
  }
  return out;
}

Result<MetaFile> Updater::Listed(const std::string& file) const {
  const std::optional<Trusted>& lister = file == "snapshot.json" ? timestamp_ : snapshot_;
  if (!lister) return Error(Code::kNotFound, "nothing trusted lists " + file + " yet");
  auto m = MetaOf(lister->envelope, file, file == "snapshot.json" ? "timestamp" : "snapshot");
  if (!m.ok()) return Error(Code::kNotFound, m.error().message());
  return m;
}

Status Updater::CheckFresh(int64_t now_ms) const {
  ALOFT_RETURN_IF_ERROR(root_.CheckNotExpired(now_ms));
  for (const auto& [t, what] : {std::pair{&timestamp_, "timestamp.json"},
                                {&snapshot_, "snapshot.json"},
                                {&targets_, "targets.json"}}) {
    if (*t) ALOFT_RETURN_IF_ERROR(NotExpired((*t)->common, now_ms, what));
  }
  return OkStatus();
}

void Updater::AfterRootUpdate(const Root& before) {
  const Root& now = root_.root();
  auto same = [&](const char* role) {
    return before.roles.at(role).keyids == now.roles.at(role).keyids &&
           before.roles.at(role).threshold == now.roles.at(role).threshold;
  };
  if (!same("timestamp") || !same("snapshot")) {
    timestamp_.reset();
    snapshot_.reset();
    targets_.reset();
    delegated_.clear();
  }
}

std::optional<int64_t> Updater::timestamp_version() const {
  return timestamp_ ? std::optional<int64_t>(timestamp_->common.version) : std::nullopt;
}
std::optional<int64_t> Updater::snapshot_version() const {
  return snapshot_ ? std::optional<int64_t>(snapshot_->common.version) : std::nullopt;
}
std::optional<int64_t> Updater::targets_version() const {
  return targets_ ? std::optional<int64_t>(targets_->common.version) : std::nullopt;
}

}  // namespace aloft::tuf
