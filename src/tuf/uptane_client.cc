#include "tuf/uptane_client.h"

#include <filesystem>

#include "core/file.h"

namespace aloft::tuf {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kMaxRootBytes = 512 << 10;
constexpr int kMaxRootRotations = 256;

std::optional<std::string> ReadIfThere(const std::string& path) {
  auto r = ReadFile(path, 8 << 20);
  if (!r.ok()) return std::nullopt;
  return std::move(r).value();
}

// Trusted metadata kept in `dir`, loaded into an updater over `root` (expiry is checked when
// new metadata comes, not for what was trusted before).
Result<std::unique_ptr<Updater>> Load(const std::string& dir, const std::string& shipped_root,
                                      const std::string& what) {
  std::optional<std::string> root = ReadIfThere(dir + "/root.json");
  const bool first = !root;
  if (first) root = shipped_root;
  auto trusted = TrustedRoot::FromText(*root, what + " root");
  if (!trusted.ok()) return std::move(trusted).error();
  if (first) ALOFT_RETURN_IF_ERROR(WriteFileAtomic(dir + "/root.json", *root, 0600));
  auto u = std::make_unique<Updater>(std::move(trusted).value());
  // What was trusted before: a floor for versions (rollback), however old it is now.
  if (auto t = ReadIfThere(dir + "/timestamp.json"); t && u->UpdateTimestamp(*t, 0).ok()) {
    if (auto s = ReadIfThere(dir + "/snapshot.json"); s && u->UpdateSnapshot(*s, 0).ok()) {
      if (auto g = ReadIfThere(dir + "/targets.json"); g) (void)u->UpdateTargets(*g, 0);
    }
  }
  return u;
}

// A file the Director's answer may carry.
Result<std::string> Member(const json& j, const char* name) {
  if (!j.contains(name) || !j[name].is_string()) {
    return Error(Code::kMalformed, std::string("the Director's answer has no ") + name);
  }
  return j[name].get<std::string>();
}

}  // namespace

Result<std::unique_ptr<UptaneClient>> UptaneClient::Open(Options o) {
  if (!o.key) return Error(Code::kInvalidArgument, "uptane: the device needs a key");
  if (!o.ecus.is_object() || o.ecus.empty()) {
    return Error(Code::kInvalidArgument, "uptane: the device names no ECU");
  }
  for (const char* sub : {"/director", "/image"}) {
    std::error_code ec;
    fs::create_directories(o.state_dir + sub, ec);
    if (ec) return Error(Code::kIo, o.state_dir + sub + ": " + ec.message());
  }
  std::unique_ptr<UptaneClient> c(new UptaneClient(std::move(o)));
  ALOFT_ASSIGN_OR_RETURN(c->director_,
                         Load(c->o_.state_dir + "/director", c->o_.director_root, "Director"));
  ALOFT_ASSIGN_OR_RETURN(c->image_,
                         Load(c->o_.state_dir + "/image", c->o_.image_root, "Image repository"));
  if (auto n = ReadIfThere(c->o_.state_dir + "/counter")) {
    c->counter_ = std::strtoll(n->c_str(), nullptr, 10);
  }
  c->enrolled_ = fs::exists(c->o_.state_dir + "/enrolled");
  return c;
}

Status UptaneClient::Persist(const std::string& repo, const std::string& role,
                             std::string_view bytes) {
  return WriteFileAtomic(o_.state_dir + "/" + repo + "/" + role + ".json", bytes, 0600);
}

Result<json> UptaneClient::CheckInPart(const json& installed) {
  json ecus = o_.ecus;
  for (auto& [serial, e] : ecus.items()) {
    if (installed.contains(serial)) e["installed"] = installed[serial];
  }
  json out = {{"have",
               {{"root", director_->root().version()},
                {"timestamp", director_->timestamp_version().value_or(0)}}}};
  // The manifest goes when the Director has not taken this one: the first check-in after a
  // start, and whenever what runs changed.
  const std::string text = ecus.dump();
  if (enrolled_ && text == last_sent_) return out;
  // The counter is kept before it is used: a manifest is never signed twice with one counter.
  const int64_t counter = counter_ + 1;
  ALOFT_RETURN_IF_ERROR(
      WriteFileAtomic(o_.state_dir + "/counter", std::to_string(counter) + "\n", 0600));
  counter_ = counter;
  json m = {{"signed",
             {{"_type", "aloft-version-manifest"},
              {"device", o_.device},
              {"counter", counter},
              {"ecus", ecus}}},
            {"signatures", json::array()}};
  if (!enrolled_) {
    ALOFT_ASSIGN_OR_RETURN(Key k, KeyFromPublic(o_.key->public_key()));
    m["signed"]["public_key"] = k.object;
  }
  ALOFT_RETURN_IF_ERROR(Sign(m, *o_.key));
  out["manifest"] = std::move(m);
  pending_ = text;
  return out;
}

Status UptaneClient::ApplyDirector(const json& director, int64_t now_ms) {
  if (!director.is_object()) return Error(Code::kMalformed, "the Director's answer is no object");
  if (director.contains("roots")) {
    if (!director["roots"].is_array()) return Error(Code::kMalformed, "Director roots: no list");
    for (const auto& r : director["roots"]) {
      if (!r.is_string()) return Error(Code::kMalformed, "Director roots: not files");
      const Root before = director_->root().root();
      const std::string what =
          "Director " + std::to_string(director_->root().version() + 1) + ".root.json";
      ALOFT_RETURN_IF_ERROR(director_->root().Update(r.get<std::string>(), what));
      director_->AfterRootUpdate(before);
      ALOFT_RETURN_IF_ERROR(Persist("director", "root", r.get<std::string>()));
    }
  }
  ALOFT_RETURN_IF_ERROR(director_->root().CheckNotExpired(now_ms));
  if (!director.contains("timestamp")) {
    enrolled_ = true;
    last_sent_ = pending_;
    return WriteFileAtomic(o_.state_dir + "/enrolled", "", 0600);
  }
  ALOFT_ASSIGN_OR_RETURN(std::string timestamp, Member(director, "timestamp"));
  ALOFT_ASSIGN_OR_RETURN(std::string snapshot, Member(director, "snapshot"));
  ALOFT_ASSIGN_OR_RETURN(std::string targets, Member(director, "targets"));
  auto in = [](Status s) {
    return s.ok() ? s : Status(std::move(s).error().WithContext("Director"));
  };
  ALOFT_RETURN_IF_ERROR(in(director_->UpdateTimestamp(timestamp, now_ms)));
  ALOFT_RETURN_IF_ERROR(in(director_->UpdateSnapshot(snapshot, now_ms)));
  ALOFT_RETURN_IF_ERROR(in(director_->UpdateTargets(targets, now_ms)));
  ALOFT_RETURN_IF_ERROR(Persist("director", "timestamp", timestamp));
  ALOFT_RETURN_IF_ERROR(Persist("director", "snapshot", snapshot));
  ALOFT_RETURN_IF_ERROR(Persist("director", "targets", targets));
  enrolled_ = true;
  last_sent_ = pending_;
  return WriteFileAtomic(o_.state_dir + "/enrolled", "", 0600);
}

Status UptaneClient::RefreshImage(const Fetch& fetch, int64_t now_ms) {
  auto in = [](Status s) {
    return s.ok() ? s : Status(std::move(s).error().WithContext("Image repository"));
  };
  // 5.3: every newer root in turn.
  for (int i = 0; i < kMaxRootRotations; ++i) {
    const std::string name = std::to_string(image_->root().version() + 1) + ".root.json";
    auto text = fetch(name, kMaxRootBytes);
    if (!text.ok() && text.error().code() == Code::kNotFound) break;
    if (!text.ok()) return std::move(text).error().WithContext("Image repository " + name);
    const Root before = image_->root().root();
    ALOFT_RETURN_IF_ERROR(in(image_->root().Update(*text, name)));
    image_->AfterRootUpdate(before);
    ALOFT_RETURN_IF_ERROR(Persist("image", "root", *text));
  }
  ALOFT_RETURN_IF_ERROR(in(image_->root().CheckNotExpired(now_ms)));
  ALOFT_ASSIGN_OR_RETURN(std::string timestamp,
                         fetch("timestamp.json", Updater::kMaxTimestampBytes));
  ALOFT_RETURN_IF_ERROR(in(image_->UpdateTimestamp(timestamp, now_ms)));
  ALOFT_RETURN_IF_ERROR(Persist("image", "timestamp", timestamp));
  ALOFT_ASSIGN_OR_RETURN(MetaFile snap, image_->Listed("snapshot.json"));
  if (image_->snapshot_version() != snap.version) {
    ALOFT_ASSIGN_OR_RETURN(std::string bytes, fetch(std::to_string(snap.version) + ".snapshot.json",
                                                    image_->SnapshotLimit()));
    ALOFT_RETURN_IF_ERROR(in(image_->UpdateSnapshot(bytes, now_ms)));
    ALOFT_RETURN_IF_ERROR(Persist("image", "snapshot", bytes));
  }
  ALOFT_ASSIGN_OR_RETURN(MetaFile targets, image_->Listed("targets.json"));
  if (image_->targets_version() != targets.version) {
    ALOFT_ASSIGN_OR_RETURN(
        std::string bytes,
        fetch(std::to_string(targets.version) + ".targets.json", image_->TargetsLimit()));
    ALOFT_RETURN_IF_ERROR(in(image_->UpdateTargets(bytes, now_ms)));
    ALOFT_RETURN_IF_ERROR(Persist("image", "targets", bytes));
  }
  return in(image_->CheckFresh(now_ms));
}

Result<TargetInfo> UptaneClient::DirectorTargetFor(int64_t action) const {
  ALOFT_ASSIGN_OR_RETURN(auto listed, director_->Targets());
  for (auto& t : listed) {
    if (t.custom.contains("action") && t.custom["action"] == action) return std::move(t);
  }
  return Error(Code::kUntrusted, "action " + std::to_string(action) +
                                     " is not in the Director's targets for this device: not "
                                     "installed");
}

Status UptaneClient::CheckEcus(int64_t action,
                               const std::map<std::string, std::string>& bundle) const {
  const std::string what = "action " + std::to_string(action);
  ALOFT_ASSIGN_OR_RETURN(TargetInfo mine, DirectorTargetFor(action));
  const json ecus = mine.custom.value("ecus", json::object());
  for (const auto& [serial, e] : ecus.items()) {
    auto it = bundle.find(serial);
    if (it == bundle.end()) {
      return Error(Code::kUntrusted, what + ": the Director names ECU '" + serial +
                                         "', which the bundle does not update (partial bundle "
                                         "installation attack?): nothing is installed");
    }
    if (e.value("hardware_id", "") != it->second) {
      return Error(Code::kUntrusted, what + ": ECU '" + serial + "' is hardware '" + it->second +
                                         "' in the bundle, '" + e.value("hardware_id", "") +
                                         "' for the Director (wrong software installation?)");
    }
  }
  for (const auto& [serial, hardware] : bundle) {
    if (!ecus.contains(serial)) {
      return Error(Code::kUntrusted, what + ": the bundle updates ECU '" + serial +
                                         "', which the Director does not name for it");
    }
  }
  return OkStatus();
}

Result<TargetInfo> UptaneClient::VerifyOffer(int64_t action, const std::string& serial,
                                             const std::string& hardware_id, const Fetch& fetch,
                                             int64_t now_ms) {
  const std::string what = "action " + std::to_string(action);
  // The Director's word is fresh: a device whose requests are dropped, or whose Director is
  // frozen, sees its metadata expire and installs nothing on old word.
  if (Status s = director_->CheckFresh(now_ms); !s.ok()) {
    return Error(Code::kUntrusted, what + ": the Director's metadata is not fresh (" +
                                       s.error().message() + "): drop-request or freeze attack?");
  }
  ALOFT_ASSIGN_OR_RETURN(const TargetInfo found, DirectorTargetFor(action));
  const TargetInfo* mine = &found;
  // Uptane 5.4.4.2: the Director's target must be for this ECU and its hardware (a gateway
  // checks its ECUs with CheckEcus once it read the bundle).
  const json ecus = mine->custom.value("ecus", json::object());
  if (serial.empty()) {
    // checked later, per ECU
  } else if (!ecus.contains(serial)) {
    return Error(Code::kUntrusted, what + ": the Director lists '" + mine->name +
                                       "' for other ECUs, not '" + serial + "'");
  } else if (ecus[serial].value("hardware_id", "") != hardware_id) {
    return Error(Code::kUntrusted, what + ": the Director lists '" + mine->name +
                                       "' for hardware '" + ecus[serial].value("hardware_id", "") +
                                       "', this ECU is '" + hardware_id +
                                       "' (wrong software installation attack?)");
  }
  // 5.4.4.3: the Image repository, signed offline, lists the same target with the same length
  // and hashes.
  ALOFT_RETURN_IF_ERROR(RefreshImage(fetch, now_ms));
  auto delegated = [&](const std::string& role, int64_t version, int64_t max) {
    return fetch(std::to_string(version) + "." + role + ".json", max);
  };
  auto image = image_->FindTarget(mine->name, delegated, now_ms);
  if (!image.ok()) {
    return Error(Code::kUntrusted, what + ": the Image repository does not list '" + mine->name +
                                       "': " + image.error().message());
  }
  if (image->length != mine->length || image->hashes.at("sha256") != mine->hashes.at("sha256")) {
    return Error(Code::kIntegrity, what + ": the Director and the Image repository disagree on '" +
                                       mine->name +
                                       "' (its length or SHA-256): a compromised Director?");
  }
  return found;  // the Director's entry: its custom is for this device (the same file as the
                 // image's)
}

}  // namespace aloft::tuf
