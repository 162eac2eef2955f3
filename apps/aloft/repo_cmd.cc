#include "repo_cmd.h"

#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli_util.h"
#include "core/file.h"
#include "core/hash.h"
#include "core/text.h"
#include "pkg/package.h"
#include "server_cmd_support.h"
#include "tuf/workspace.h"

namespace aloft::cli {
namespace {

using tuf::json;
using tuf::Workspace;

struct RepoArgs {
  std::string dir, name, url, token;
  std::vector<std::string> files, keys, names;
  // Keys of the roles (public key files) and thresholds; 0 = not given.
  std::vector<std::string> root_keys, targets_keys, snapshot_keys, timestamp_keys;
  int root_threshold = 0, targets_threshold = 0, bins = 0;
  int64_t root_days = 365, targets_days = 90;
  bool director = false, renew = false, json_out = false;
};

int64_t NowMs(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.Wall().time_since_epoch())
      .count();
}

// Role `name`'s keys from public key files, with `threshold` (0: all of them... at least 1).
Result<tuf::RoleSpec> RoleOf(const std::string& name, const std::vector<std::string>& paths,
                             int threshold) {
  tuf::RoleSpec spec;
  for (const auto& p : paths) {
    auto pub = crypto::PublicKey::Load(p);
    if (!pub.ok()) return pub.error().WithContext("--" + name + "-key " + p);
    ALOFT_ASSIGN_OR_RETURN(tuf::Key k, tuf::KeyFromPublic(*pub));
    spec.keys.push_back(std::move(k));
  }
  spec.threshold = threshold > 0 ? threshold : 1;
  return spec;
}

// The roles given on the command line (all four for init; any for rotate-root).
Result<std::map<std::string, tuf::RoleSpec>> RolesOf(const RepoArgs& a, bool all) {
  std::map<std::string, tuf::RoleSpec> roles;
  const std::pair<const char*, const std::vector<std::string>*> given[] = {
      {"root", &a.root_keys},
      {"targets", &a.targets_keys},
      {"snapshot", &a.snapshot_keys},
      {"timestamp", &a.timestamp_keys}};
  for (const auto& [name, paths] : given) {
    const int threshold = std::string(name) == "root"      ? a.root_threshold
                          : std::string(name) == "targets" ? a.targets_threshold
                                                           : 0;
    if (paths->empty()) {
      if (all) {
        return Error(Code::kInvalidArgument,
                     std::string("--") + name + "-key: the " + name + " role needs a key");
      }
      if (threshold > 0) {
        return Error(Code::kInvalidArgument,
                     std::string("--") + name + "-threshold without --" + name + "-key");
      }
      continue;
    }
    ALOFT_ASSIGN_OR_RETURN(roles[name], RoleOf(name, *paths, threshold));
  }
  return roles;
}

// What `aloft repo add` lists for a file: its length and SHA-256, and for a package (read, not
// verified: the targets signature is what vouches for it) its name, version, hardware and
// components; the default target name "<package>/<version>.aloft".
struct FileTarget {
  std::string name;
  int64_t length = 0;
  std::string sha256;
  json custom = json::object();
};
Result<FileTarget> DescribeFile(const std::string& path) {
  FileTarget t;
  ALOFT_ASSIGN_OR_RETURN(File f, File::OpenRead(path));
  Hasher h(HashAlgorithm::kSha256);
  std::vector<uint8_t> buf(1 << 16);
  while (true) {
    ALOFT_ASSIGN_OR_RETURN(size_t n, f.Read(buf));
    if (n == 0) break;
    h.Update(ByteSpan(buf.data(), n));
  }
  t.length = static_cast<int64_t>(h.bytes_hashed());
  t.sha256 = h.FinishHex();
  t.name = std::filesystem::path(path).filename().string();
  ALOFT_ASSIGN_OR_RETURN(File again, File::OpenRead(path));
  if (auto reader = pkg::PackageReader::Open(again, path, nullptr); reader.ok()) {
    const auto& m = (*reader)->manifest();
    json components = json::array();
    for (const auto& c : m.components) components.push_back(c.name);
    t.custom = {{"package", m.name},
                {"version", m.version.ToString()},
                {"hardware", m.hardware},
                {"components", components}};
    t.name = m.name + "/" + m.version.ToString() + ".aloft";
  }
  return t;
}

int PrintSigned(const std::vector<Workspace::Signed>& signed_files) {
  for (const auto& s : signed_files) {
    std::printf("%-24s %d of %d signature(s)%s\n", s.file.c_str(), s.have, s.need,
                s.published ? ": published" : "");
  }
  return 0;
}

int ShowStatus(const Workspace& w, const Clock& clock, bool json_out) {
  auto d = w.Describe(NowMs(clock));
  if (!d.ok()) return Fail(d.error());
  if (json_out) {
    std::printf("%s\n", d->dump(2).c_str());
    return 0;
  }
  const int bins = d->at("bins").get<int>();
  const std::string bins_text = bins ? ", " + std::to_string(bins) + " hashed bins" : "";
  std::printf("%s: %s repository, %zu target(s) listed%s\n", server::Str(*d, "directory").c_str(),
              server::Str(*d, "kind").c_str(), d->at("targets_listed").get<size_t>(),
              bins_text.c_str());
  if (d->contains("root")) {
    const json& r = d->at("root");
    std::printf("root version %lld, expires %s\n", r["version"].get<long long>(),
                r["expires"].get<std::string>().c_str());
    for (const auto& [role, rk] : r["roles"].items()) {
      std::string ids;
      for (const auto& id : rk["keyids"])
        ids += (ids.empty() ? "" : " ") + id.get<std::string>().substr(0, 12);
      std::printf("  %-10s %d of %zu: %s\n", role.c_str(), rk["threshold"].get<int>(),
                  rk["keyids"].size(), ids.c_str());
    }
  } else {
    std::printf("no root published yet\n");
  }
  for (const char* part : {"published", "staged"}) {
    if (d->at(part).empty()) continue;
    std::printf("%s:\n", part);
    size_t shown = 0;
    for (const auto& f : d->at(part)) {
      if (++shown > 20) {
        std::printf("  ... and %zu more\n", d->at(part).size() - 20);
        break;
      }
      std::printf("  %-24s version %-4lld expires %s, %zu signature(s)\n",
                  f["file"].get<std::string>().c_str(), f["version"].get<long long>(),
                  f["expires"].get<std::string>().c_str(), f["signatures"].get<size_t>());
    }
  }
  for (const auto& w2 : d->at("warnings"))
    std::printf("warning: %s\n", w2.get<std::string>().c_str());
  return 0;
}

int Push(const Workspace& w, const RepoArgs& a) {
  if (a.url.empty() || a.token.empty()) {
    std::fprintf(stderr,
                 "aloft repo push: pass --url and --token (or set ALOFT_URL and "
                 "ALOFT_TOKEN)\n");
    return kExitUsage;
  }
  json body = {{"roots", json::array()}};
  auto roots = w.RootFiles();
  if (!roots.ok()) return Fail(roots.error());
  if (roots->empty()) {
    return Fail(Error(Code::kInvalidArgument, "no root is published yet: nothing to push"));
  }
  for (auto& r : *roots) body["roots"].push_back(std::move(r));
  if (w.kind() == Workspace::Kind::kImage) {
    auto targets = w.TargetsFile();
    if (!targets.ok()) return Fail(targets.error());
    body["targets"] = *targets;
    auto delegated = w.DelegatedFiles();
    if (!delegated.ok()) return Fail(delegated.error());
    body["delegated"] = *delegated;
  }
  server::Options o;
  o.url = a.url;
  while (!o.url.empty() && o.url.back() == '/') o.url.pop_back();
  o.token = a.token;
  server::Api api(o);
  const std::string repo = w.kind() == Workspace::Kind::kImage ? "image" : "director";
  auto r = api.Call("POST", "/api/v1/tuf/" + repo, &body);
  if (!r.ok()) return Fail(r.error());
  if (a.json_out) {
    std::printf("%s\n", r->dump(2).c_str());
    return 0;
  }
  std::printf("pushed to %s: root %s, targets %s, snapshot %s, timestamp %s\n", a.url.c_str(),
              server::Str(*r, "root_version").c_str(), server::Str(*r, "targets_version").c_str(),
              server::Str(*r, "snapshot_version").c_str(),
              server::Str(*r, "timestamp_version").c_str());
  if (r->contains("targets_without_file")) {
    for (const auto& n : r->at("targets_without_file")) {
      std::printf(
          "warning: target %s has no file on the server yet (aloft server release "
          "upload)\n",
          n.get<std::string>().c_str());
    }
  }
  return 0;
}

}  // namespace

std::function<int(bool quiet)> AddRepoCommands(CLI::App& app, std::function<const Clock&()> clock) {
  auto a = std::make_shared<RepoArgs>();
  auto* repo = app.add_subcommand(
      "repo",
      "A TUF repository's offline half: root and targets metadata, signed with keys that never "
      "reach the server (docs/trust.md)");
  repo->require_subcommand(1);
  auto dir = [a](CLI::App* c) {
    c->add_option("dir", a->dir, "The repository directory")->required();
  };
  auto role_keys = [a](CLI::App* c) {
    c->add_option("--root-key", a->root_keys, "Root public key file (repeatable)");
    c->add_option("--root-threshold", a->root_threshold, "Root signatures required (default 1)");
    c->add_option("--targets-key", a->targets_keys, "Targets public key file (repeatable)");
    c->add_option("--targets-threshold", a->targets_threshold,
                  "Targets signatures required (default 1)");
    c->add_option("--snapshot-key", a->snapshot_keys,
                  "The server's snapshot public key file (its tuf_snapshot_key)");
    c->add_option("--timestamp-key", a->timestamp_keys,
                  "The server's timestamp public key file (its tuf_timestamp_key)");
  };

  auto* init = repo->add_subcommand(
      "init", "Create a repository; stages root version 1 for its root keys to sign");
  dir(init);
  role_keys(init);
  init->add_option("--bins", a->bins,
                   "Hand targets to this many hashed bins (a power of two; for many targets)");
  init->add_flag("--director", a->director,
                 "A Director's root: --targets-key is the server's tuf_director_key (public), "
                 "which signs snapshot and timestamp too unless their keys are given");
  init->add_option("--root-days", a->root_days, "Lifetime of each root (default 365)");
  init->add_option("--targets-days", a->targets_days, "Lifetime of targets metadata (default 90)");

  auto* add = repo->add_subcommand(
      "add",
      "List files as targets (a package: '<name>/<version>.aloft', with its version and "
      "hardware); stages new targets metadata");
  dir(add);
  add->add_option("files", a->files, "Files to list")->required()->check(CLI::ExistingFile);
  add->add_option("--name", a->name, "Target name (one file only)");

  auto* remove = repo->add_subcommand("remove", "Take targets off the list; stages the change");
  dir(remove);
  remove->add_option("names", a->names, "Target names")->required();

  auto* stage =
      repo->add_subcommand("stage", "Stage what changed (or expires within 14 days) for signing");
  dir(stage);
  stage->add_flag("--renew", a->renew, "Stage every targets file again with a fresh expiry");

  auto* sign = repo->add_subcommand(
      "sign", "Sign staged files with a key; publishes each one whose threshold is met");
  dir(sign);
  sign->add_option("--key", a->keys, "Private key file (repeatable)")->required();

  auto* rotate = repo->add_subcommand(
      "rotate-root",
      "Stage the next root with new keys for the roles given (the others keep theirs); the "
      "current and the new root keys sign it");
  dir(rotate);
  role_keys(rotate);

  auto* status = repo->add_subcommand("status", "Versions, expiries, what waits for signatures");
  dir(status);
  status->add_flag("--json", a->json_out, "Print JSON");

  auto* push = repo->add_subcommand(
      "push",
      "Send the published roots and targets to aloftd, which signs a new snapshot and "
      "timestamp");
  dir(push);
  push->add_option("--url", a->url, "Server URL (or $ALOFT_URL)")->envname("ALOFT_URL");
  push->add_option("--token", a->token, "API token (or $ALOFT_TOKEN)")->envname("ALOFT_TOKEN");
  push->add_flag("--json", a->json_out, "Print the server's answer as JSON");

  return [=](bool) -> int {
    if (!*repo) return -1;
    const Clock& c = clock();
    const int64_t now = NowMs(c);
    if (*init) {
      if (a->director && !a->targets_keys.empty() && a->targets_threshold > 1) {
        return Fail(Error(Code::kInvalidArgument, "a Director's targets key is the server's"));
      }
      RepoArgs given = *a;
      if (a->director) {  // one online key (the server's tuf_director_key) signs all three
        if (given.snapshot_keys.empty()) given.snapshot_keys = given.targets_keys;
        if (given.timestamp_keys.empty()) given.timestamp_keys = given.targets_keys;
      }
      auto roles = RolesOf(given, true);
      if (!roles.ok()) return Fail(roles.error());
      Workspace::InitOptions o;
      o.kind = a->director ? Workspace::Kind::kDirector : Workspace::Kind::kImage;
      o.roles = *roles;
      o.bins = a->bins;
      o.root_lifetime_ms = a->root_days * tuf::kDayMs;
      o.targets_lifetime_ms = a->targets_days * tuf::kDayMs;
      auto w = Workspace::Init(a->dir, o, now);
      if (!w.ok()) return Fail(w.error());
      std::printf(
          "made %s repository %s; staged/1.root.json waits for %d root signature(s): "
          "aloft repo sign %s --key ROOT.key\n",
          a->director ? "a Director" : "an Image", a->dir.c_str(), o.roles["root"].threshold,
          a->dir.c_str());
      return 0;
    }
    auto w = Workspace::Open(a->dir);
    if (!w.ok()) return Fail(w.error());
    if (*add || *remove) {
      if (*add) {
        if (!a->name.empty() && a->files.size() != 1) {
          return Fail(Error(Code::kInvalidArgument,
                            "--name names one file, not " + std::to_string(a->files.size())));
        }
        for (const auto& f : a->files) {
          auto t = DescribeFile(f);
          if (!t.ok()) return Fail(t.error());
          if (!a->name.empty()) t->name = a->name;
          if (Status s = w->AddTarget(t->name, t->length, t->sha256, t->custom); !s.ok()) {
            return Fail(s.error().WithContext(f));
          }
          std::printf("listed %s: %s, sha256 %s\n", t->name.c_str(),
                      HumanSize(static_cast<uint64_t>(t->length)).c_str(),
                      t->sha256.substr(0, 16).c_str());
        }
      } else {
        for (const auto& n : a->names) {
          if (Status s = w->RemoveTarget(n); !s.ok()) return Fail(s.error());
          std::printf("removed %s\n", n.c_str());
        }
      }
    }
    if (*add || *remove || *stage) {
      if (w->root_version() == 0) {
        std::printf("(staged when root 1 is published)\n");
        return 0;
      }
      auto staged = w->Stage(now, a->renew ? -1 : 14 * tuf::kDayMs);
      if (!staged.ok()) return Fail(staged.error());
      for (const auto& f : *staged) std::printf("staged %s\n", f.c_str());
      if (staged->empty()) std::printf("nothing to stage\n");
      return 0;
    }
    if (*sign) {
      auto keys = LoadKeys(a->keys);
      if (!keys.ok()) return Fail(keys.error());
      for (const auto& k : *keys) {
        auto s = w->Sign(k, now);
        if (!s.ok()) return Fail(s.error());
        PrintSigned(*s);
      }
      return 0;
    }
    if (*rotate) {
      auto roles = RolesOf(*a, false);
      if (!roles.ok()) return Fail(roles.error());
      if (roles->empty()) {
        return Fail(Error(Code::kInvalidArgument,
                          "rotate-root: give the new keys of a role "
                          "(--root-key, --targets-key, ...)"));
      }
      if (Status s = w->StageRoot(*roles, now); !s.ok()) return Fail(s.error());
      std::printf(
          "staged/%lld.root.json waits for the signatures of the current root keys and "
          "of its own\n",
          static_cast<long long>(w->root_version() + 1));
      return 0;
    }
    if (*status) return ShowStatus(*w, c, a->json_out);
    if (*push) return Push(*w, *a);
    return kExitUsage;
  };
}

}  // namespace aloft::cli
