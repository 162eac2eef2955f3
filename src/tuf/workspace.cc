#include "tuf/workspace.h"

#include <algorithm>
#include <filesystem>

#include "core/clock.h"
#include "core/file.h"
#include "tuf/root_chain.h"

namespace aloft::tuf {

namespace fs = std::filesystem;

namespace {

constexpr char kConfig[] = "repo.json";

Result<json> ReadJson(const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 64 << 20));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return Error(Code::kMalformed, path + ": not JSON");
  return j;
}

Status WriteJson(const std::string& path, const json& j) {
  return WriteFileAtomic(path, FileBytes(j) + "\n");
}

// The part of a targets file that says what it is, without its version and expiry.
json Content(const json& envelope) {
  json c = envelope.at("signed");
  for (const char* k : {"_type", "spec_version", "version", "expires"}) c.erase(k);
  return c;
}

// How many distinct keys of `role` signed `envelope` (what VerifyRole counts).
int CountSigned(const json& envelope, const std::map<std::string, Key>& keys,
                const RoleKeys& role) {
  int n = 0;
  for (const auto& id : role.keyids) {
    RoleKeys one{{id}, 1};
    if (VerifyRole(envelope, keys, one, "").ok()) ++n;
  }
  return n;
}

bool Has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

Result<Root> RootOfFile(const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(json env, ReadJson(path));
  return ParseRoot(env, path);
}

}  // namespace

Status CheckTargetName(const std::string& name) {
  auto bad = [&](const std::string& why) {
    return Error(Code::kInvalidArgument, "target name '" + name + "': " + why);
  };
  if (name.empty() || name.size() > 255) return bad("must be 1 to 255 characters");
  if (name.front() == '/' || name.back() == '/') return bad("must not begin or end with '/'");
  for (unsigned char c : name) {
    if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '"' || c == '?' || c == '#' || c == '%') {
      return bad("only printable ASCII without spaces, '\\', '\"', '?', '#' or '%'");
    }
  }
  for (size_t start = 0; start <= name.size();) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    const std::string_view seg = std::string_view(name).substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") return bad("has an empty, '.' or '..' segment");
    start = end + 1;
  }
  return OkStatus();
}

Workspace::Workspace(std::string dir, json config)
    : dir_(std::move(dir)), config_(std::move(config)) {
  kind_ = config_.value("kind", "image") == "director" ? Kind::kDirector : Kind::kImage;
}

Result<Workspace> Workspace::Init(const std::string& dir, const InitOptions& o, int64_t now_ms) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
    return Error(Code::kAlreadyExists, dir + ": exists and is not empty (a repository there?)");
  }
  if (o.bins != 0) {
    if (auto bins = HashedBins(o.bins); !bins.ok()) return std::move(bins).error();
  }
  if (o.kind == Kind::kDirector && o.bins != 0) {
    return Error(Code::kInvalidArgument, "a Director's targets are per device: no hashed bins");
  }
  ALOFT_ASSIGN_OR_RETURN(json root, NewRoot(1, now_ms + o.root_lifetime_ms, o.roles));
  for (const char* sub : {"", "/metadata", "/staged"}) {
    fs::create_directories(dir + sub, ec);
    if (ec) return Error(Code::kIo, dir + sub + ": " + ec.message());
  }
  json config = {{"kind", o.kind == Kind::kDirector ? "director" : "image"},
                 {"bins", o.bins},
                 {"root_lifetime_ms", o.root_lifetime_ms},
                 {"targets_lifetime_ms", o.targets_lifetime_ms},
                 {"targets", json::object()}};
  Workspace w(dir, std::move(config));
  ALOFT_RETURN_IF_ERROR(w.SaveConfig());
  ALOFT_RETURN_IF_ERROR(WriteJson(w.Path("staged/1.root.json"), root));
  return w;
}

Result<Workspace> Workspace::Open(const std::string& dir) {
  auto config = ReadJson(dir + "/" + kConfig);
  if (!config.ok()) {
    return Error(Code::kNotFound, dir + ": not a repository (no readable " + kConfig +
                                      "; make one with `aloft repo init`)");
  }
  if (!config->is_object() || !config->contains("targets") || !(*config)["targets"].is_object()) {
    return Error(Code::kMalformed, dir + "/" + kConfig + ": not a repository's configuration");
  }
  Workspace w(dir, std::move(config).value());
  while (fs::exists(w.Path("metadata/" + std::to_string(w.root_version_ + 1) + ".root.json"))) {
    ++w.root_version_;
  }
  return w;
}

Status Workspace::SaveConfig() const { return WriteJson(Path(kConfig), config_); }

Result<Root> Workspace::PublishedRoot() const {
  if (root_version_ == 0) {
    return Error(Code::kInvalidArgument,
                 dir_ + ": no root is published yet: sign staged/1.root.json with its root keys");
  }
  return RootOfFile(Path("metadata/" + std::to_string(root_version_) + ".root.json"));
}

Status Workspace::AddTarget(const std::string& name, int64_t length, const std::string& sha256_hex,
                            json custom) {
  if (kind_ == Kind::kDirector) {
    return Error(Code::kInvalidArgument, "a Director repository lists no targets offline");
  }
  ALOFT_RETURN_IF_ERROR(CheckTargetName(name));
  if (sha256_hex.size() != 64) return Error(Code::kInvalidArgument, "not a SHA-256: " + sha256_hex);
  // The entry must be signable (ASCII, no fractions): found now, not at signing time.
  json entry = TargetEntry(length, sha256_hex, std::move(custom));
  if (auto b = SignedBytes(entry); !b.ok()) return std::move(b).error();
  config_["targets"][name] = std::move(entry);
  return SaveConfig();
}

Status Workspace::RemoveTarget(const std::string& name) {
  if (!config_["targets"].contains(name)) {
    return Error(Code::kNotFound, "target '" + name + "' is not in the list");
  }
  config_["targets"].erase(name);
  return SaveConfig();
}

Result<std::vector<std::string>> Workspace::Stage(int64_t now_ms, int64_t renew_within_ms) {
  if (kind_ == Kind::kDirector) return std::vector<std::string>{};
  ALOFT_ASSIGN_OR_RETURN(Root root, PublishedRoot());
  const RoleKeys& targets_role = root.roles.at("targets");
  std::vector<Key> keys;
  for (const auto& id : targets_role.keyids) keys.push_back(root.keys.at(id));
  // What each file should hold.
  std::map<std::string, json> want;  // file name -> content
  const int bins = config_.value("bins", 0);
  if (bins == 0) {
    want["targets"] = {{"targets", config_["targets"]}};
  } else {
    ALOFT_ASSIGN_OR_RETURN(auto list, HashedBins(bins));
    want["targets"] = {{"targets", json::object()},
                       {"delegations", BinDelegations(list, keys, targets_role.threshold)}};
    for (const auto& b : list) want[b.name] = {{"targets", json::object()}};
    for (const auto& [name, entry] : config_["targets"].items()) {
      want[list[BinIndex(name, bins)].name]["targets"][name] = entry;
    }
  }
  std::vector<std::string> staged;
  const int64_t lifetime = config_.value("targets_lifetime_ms", kTargetsLifetimeMs);
  for (auto& [name, content] : want) {
    const std::string file = name + ".json";
    int64_t version = 0;
    if (auto published = ReadJson(Path("metadata/" + file)); published.ok()) {
      ALOFT_ASSIGN_OR_RETURN(Common c, CommonOf(*published, file));
      version = c.version;
      const bool fresh = renew_within_ms >= 0 && c.expires_ms - now_ms > renew_within_ms;
      if (fresh && Content(*published) == content &&
          VerifyRole(*published, root.keys, targets_role, file).ok()) {
        fs::remove(Path("staged/" + file));
        continue;
      }
    }
    if (auto pending = ReadJson(Path("staged/" + file)); pending.ok()) {
      auto c = CommonOf(*pending, file);
      if (c.ok() && c->version == version + 1 && Content(*pending) == content &&
          (renew_within_ms < 0 ? c->expires_ms >= now_ms + lifetime - kDayMs
                               : c->expires_ms - now_ms > renew_within_ms)) {
        continue;  // already staged as it should be: its signatures stay
      }
    }
    json env = NewEnvelope("targets", version + 1, now_ms + lifetime);
    for (auto& [k, v] : content.items()) env["signed"][k] = v;
    if (auto b = SignedBytes(env["signed"]); !b.ok()) return std::move(b).error();
    ALOFT_RETURN_IF_ERROR(WriteJson(Path("staged/" + file), env));
    staged.push_back(file);
  }
  return staged;
}

Status Workspace::StageRoot(const std::map<std::string, RoleSpec>& roles, int64_t now_ms) {
  ALOFT_ASSIGN_OR_RETURN(Root root, PublishedRoot());
  std::map<std::string, RoleSpec> merged;
  for (const auto& [name, rk] : root.roles) {
    RoleSpec spec;
    for (const auto& id : rk.keyids) spec.keys.push_back(root.keys.at(id));
    spec.threshold = rk.threshold;
    merged[name] = std::move(spec);
  }
  for (const auto& [name, spec] : roles) {
    if (!merged.count(name)) return Error(Code::kInvalidArgument, "no role named '" + name + "'");
    merged[name] = spec;
  }
  const int64_t lifetime = config_.value("root_lifetime_ms", kRootLifetimeMs);
  ALOFT_ASSIGN_OR_RETURN(json env, NewRoot(root_version_ + 1, now_ms + lifetime, merged));
  for (const auto& e : fs::directory_iterator(Path("staged"))) {
    if (e.path().filename().string().ends_with(".root.json")) fs::remove(e.path());
  }
  return WriteJson(Path("staged/" + std::to_string(root_version_ + 1) + ".root.json"), env);
}

Result<std::vector<Workspace::Signed>> Workspace::Sign(const crypto::PrivateKey& key,
                                                       int64_t now_ms) {
  ALOFT_ASSIGN_OR_RETURN(Key me, KeyFromPublic(key.public_key()));
  std::vector<Signed> out;
  // A staged root first: once published, it decides who signs targets.
  const std::string root_file = std::to_string(root_version_ + 1) + ".root.json";
  if (auto staged = ReadJson(Path("staged/" + root_file)); staged.ok()) {
    ALOFT_ASSIGN_OR_RETURN(Root next, ParseRoot(*staged, root_file));
    std::optional<Root> prev;
    if (root_version_ > 0) {
      ALOFT_ASSIGN_OR_RETURN(prev, PublishedRoot());
    }
    const bool mine =
        Has(next.roles["root"].keyids, me.id) || (prev && Has(prev->roles["root"].keyids, me.id));
    if (mine) {
      ALOFT_RETURN_IF_ERROR(tuf::Sign(*staged, key));
      ALOFT_RETURN_IF_ERROR(WriteJson(Path("staged/" + root_file), *staged));
      Signed s{root_file, CountSigned(*staged, next.keys, next.roles["root"]),
               next.roles["root"].threshold, false};
      if (prev) {
        const int have = CountSigned(*staged, prev->keys, prev->roles["root"]);
        const int need = prev->roles["root"].threshold;
        if (have - need < s.have - s.need) {
          s.have = have;
          s.need = need;
        }
      }
      // Complete when a client trusting the current root would take it.
      Status ok;
      if (root_version_ == 0) {
        if (auto r = TrustedRoot::FromText(FileBytes(*staged), root_file); !r.ok()) {
          ok = std::move(r).error();
        }
      } else {
        ALOFT_ASSIGN_OR_RETURN(
            std::string text,
            ReadFile(Path("metadata/" + std::to_string(root_version_) + ".root.json")));
        ALOFT_ASSIGN_OR_RETURN(TrustedRoot trusted, TrustedRoot::FromText(text, "current root"));
        ok = trusted.Update(FileBytes(*staged), root_file);
      }
      if (ok.ok()) {
        ALOFT_RETURN_IF_ERROR(WriteJson(Path("metadata/" + root_file), *staged));
        fs::remove(Path("staged/" + root_file));
        ++root_version_;
        s.published = true;
        if (auto restaged = Stage(now_ms); !restaged.ok()) return std::move(restaged).error();
      }
      out.push_back(s);
    }
  }
  if (root_version_ > 0 && kind_ == Kind::kImage) {
    ALOFT_ASSIGN_OR_RETURN(Root root, PublishedRoot());
    const RoleKeys& role = root.roles.at("targets");
    if (Has(role.keyids, me.id)) {
      std::vector<fs::path> files;
      for (const auto& e : fs::directory_iterator(Path("staged"))) {
        if (!e.path().filename().string().ends_with(".root.json")) files.push_back(e.path());
      }
      std::sort(files.begin(), files.end());
      for (const auto& p : files) {
        const std::string file = p.filename().string();
        ALOFT_ASSIGN_OR_RETURN(json env, ReadJson(p.string()));
        ALOFT_RETURN_IF_ERROR(tuf::Sign(env, key));
        ALOFT_RETURN_IF_ERROR(WriteJson(p.string(), env));
        Signed s{file, CountSigned(env, root.keys, role), role.threshold, false};
        if (s.have >= s.need) {
          ALOFT_RETURN_IF_ERROR(WriteJson(Path("metadata/" + file), env));
          fs::remove(p);
          s.published = true;
        }
        out.push_back(s);
      }
    }
  }
  if (out.empty()) {
    return Error(Code::kNotFound, "key " + me.id.substr(0, 16) +
                                      "… may sign none of the staged files (see `aloft repo "
                                      "status`)");
  }
  return out;
}

Result<json> Workspace::Describe(int64_t now_ms) const {
  json out = {{"directory", dir_},
              {"kind", kind_ == Kind::kDirector ? "director" : "image"},
              {"bins", config_.value("bins", 0)},
              {"targets_listed", config_["targets"].size()}};
  json warnings = json::array();
  auto expiry = [&](const std::string& file, const Common& c) {
    if (c.expires_ms <= now_ms) {
      warnings.push_back(file + " has expired: stage and sign it again");
    } else if (c.expires_ms - now_ms < 14 * kDayMs) {
      warnings.push_back(file + " expires within 14 days: `aloft repo stage --renew`, then sign");
    }
  };
  if (root_version_ > 0) {
    ALOFT_ASSIGN_OR_RETURN(Root root, PublishedRoot());
    json roles = json::object();
    for (const auto& [name, rk] : root.roles) {
      roles[name] = {{"keyids", rk.keyids}, {"threshold", rk.threshold}};
    }
    out["root"] = {{"version", root.common.version},
                   {"expires", FormatRfc3339Ms(root.common.expires_ms)},
                   {"roles", roles}};
    expiry(std::to_string(root_version_) + ".root.json", root.common);
  }
  json published = json::array(), staged = json::array();
  for (const char* sub : {"metadata", "staged"}) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(Path(sub))) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& p : files) {
      const std::string file = p.filename().string();
      if (std::string(sub) == "metadata" && file.ends_with(".root.json")) continue;
      ALOFT_ASSIGN_OR_RETURN(json env, ReadJson(p.string()));
      ALOFT_ASSIGN_OR_RETURN(Common c, CommonOf(env, file));
      json row = {{"file", file},
                  {"version", c.version},
                  {"expires", FormatRfc3339Ms(c.expires_ms)},
                  {"signatures", env["signatures"].size()}};
      if (std::string(sub) == "metadata") {
        expiry(file, c);
        published.push_back(row);
      } else {
        staged.push_back(row);
      }
    }
  }
  out["published"] = published;
  out["staged"] = staged;
  out["warnings"] = warnings;
  return out;
}

Result<std::vector<std::string>> Workspace::RootFiles() const {
  std::vector<std::string> out;
  for (int64_t v = 1; v <= root_version_; ++v) {
    ALOFT_ASSIGN_OR_RETURN(std::string text,
                           ReadFile(Path("metadata/" + std::to_string(v) + ".root.json")));
    out.push_back(std::move(text));
  }
  return out;
}

Result<std::string> Workspace::TargetsFile() const {
  auto text = ReadFile(Path("metadata/targets.json"));
  if (!text.ok()) {
    return Error(Code::kNotFound, dir_ +
                                      ": no targets.json is published yet (stage, then sign "
                                      "it with the targets keys)");
  }
  return text;
}

Result<std::map<std::string, std::string>> Workspace::DelegatedFiles() const {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(Path("metadata"))) {
    const std::string file = e.path().filename().string();
    if (!file.starts_with("bins-")) continue;
    ALOFT_ASSIGN_OR_RETURN(std::string text, ReadFile(e.path().string()));
    out[file.substr(0, file.size() - 5)] = std::move(text);
  }
  return out;
}

}  // namespace aloft::tuf
