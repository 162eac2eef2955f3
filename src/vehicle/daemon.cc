#include "vehicle/daemon.h"

#include <filesystem>
#include <future>

#include "agent/config.h"
#include "agent/staging.h"
#include "client/http_client.h"
#include "core/file.h"
#include "core/io.h"
#include "core/toml_reader.h"
#include "pkg/package.h"

namespace aloft::vehicle {

namespace {

constexpr const char* kDoc = "docs/vehicle-bundle.md";
// A bundle's manifest (its first tar entry) is read from at most this many first bytes.
constexpr uint64_t kManifestBytes = 256 * 1024;

}  // namespace

Result<DaemonConfig> LoadDaemonConfig(const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(toml::table t, ParseToml(path));
  TomlReader r(path, t);
  ALOFT_RETURN_IF_ERROR(r.Known({"server",
                                 "device",
                                 "token",
                                 "token_file",
                                 "state_dir",
                                 "ca_file",
                                 "cert_file",
                                 "key_file",
                                 "poll_interval_s",
                                 "mqtt_url",
                                 "mqtt_ca_file",
                                 "push_poll_interval_s",
                                 "hmi",
                                 "defer_interval_s",
                                 "agent_listen",
                                 "agent_ecu",
                                 "network",
                                 "trust",
                                 "download",
                                 "uptane"},
                                kDoc));
  DaemonConfig c;
  std::string token_file;
  int64_t poll = c.poll_interval.count(), push_poll = c.push_poll_interval.count();
  int64_t defer = c.defer_interval.count();
  ALOFT_RETURN_IF_ERROR(r.Str("server", c.server));
  ALOFT_RETURN_IF_ERROR(r.Str("device", c.device));
  ALOFT_RETURN_IF_ERROR(r.Str("token", c.token));
  ALOFT_RETURN_IF_ERROR(r.Str("token_file", token_file));
  ALOFT_RETURN_IF_ERROR(r.Str("state_dir", c.state_dir));
  ALOFT_RETURN_IF_ERROR(r.Str("ca_file", c.ca_file));
  ALOFT_RETURN_IF_ERROR(r.StrPair("cert_file", "key_file", c.cert_file, c.key_file));
  ALOFT_RETURN_IF_ERROR(r.Int("poll_interval_s", poll));
  ALOFT_RETURN_IF_ERROR(r.Str("mqtt_url", c.mqtt_url));
  ALOFT_RETURN_IF_ERROR(r.Str("mqtt_ca_file", c.mqtt_ca_file));
  ALOFT_RETURN_IF_ERROR(r.Int("push_poll_interval_s", push_poll));
  ALOFT_RETURN_IF_ERROR(r.Str("hmi", c.hmi));
  ALOFT_RETURN_IF_ERROR(r.Int("defer_interval_s", defer));
  ALOFT_RETURN_IF_ERROR(r.Str("agent_listen", c.agent_listen));
  if (const toml::node* list = t.get("agent_ecu")) {
    const toml::array* a = list->as_array();
    if (!a) return r.Bad("agent_ecu", "an array of tables ([[agent_ecu]] name, token_file)");
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::table* e = (*a)[i].as_table();
      const std::string where = path + " [[agent_ecu]] #" + std::to_string(i + 1);
      if (!e) return Error(Code::kInvalidArgument, where + ": expected a table");
      TomlReader er(where, *e);
      ALOFT_RETURN_IF_ERROR(er.Known({"name", "token_file"}, kDoc));
      std::string name, its_token;
      ALOFT_RETURN_IF_ERROR(er.Str("name", name));
      ALOFT_RETURN_IF_ERROR(er.Str("token_file", its_token));
      if (name.empty() || its_token.empty()) return er.Bad("name", "set, and token_file");
      c.agent_ecus.push_back(name + "=" + its_token);
    }
  }
  if (c.hmi == "off") c.hmi.clear();
  if (defer < 1) return r.Bad("defer_interval_s", "at least 1");
  c.defer_interval = std::chrono::seconds(defer);
  for (const char* key : {"server", "device", "state_dir"}) {
    if (!t[key]) return r.Bad(key, "set (it is required)");
  }
  c.poll_interval = std::chrono::seconds(std::max<int64_t>(1, poll));
  c.push_poll_interval = std::chrono::seconds(std::max<int64_t>(1, push_poll));
  if (!token_file.empty()) {
    ALOFT_ASSIGN_OR_RETURN(c.token, agent::ReadTokenFile(token_file));
  }
  if (c.token.empty() && c.cert_file.empty()) {
    return r.Bad("token", "set (or token_file, or cert_file and key_file)");
  }
  const toml::table* n = t["network"].as_table();
  if (!n) return r.Bad("network", "a table with vehicle = the vehicle description, hub, doip");
  TomlReader nr(path + " [network]", *n);
  ALOFT_RETURN_IF_ERROR(nr.Known(
      {"vehicle", "hub", "doip", "doip_tls_ca", "doip_tls_name", "tester_cert", "tester_key"},
      kDoc));
  ALOFT_RETURN_IF_ERROR(nr.Str("vehicle", c.network));
  ALOFT_RETURN_IF_ERROR(nr.Str("hub", c.hub));
  ALOFT_RETURN_IF_ERROR(nr.Str("doip", c.doip));
  ALOFT_RETURN_IF_ERROR(nr.Str("doip_tls_ca", c.doip_tls_ca));
  ALOFT_RETURN_IF_ERROR(nr.Str("doip_tls_name", c.doip_tls_name));
  ALOFT_RETURN_IF_ERROR(nr.StrPair("tester_cert", "tester_key", c.tester_cert, c.tester_key));
  if (!c.doip_tls_ca.empty() && c.doip.empty()) return nr.Bad("doip_tls_ca", "needs doip");
  if (c.network.empty()) return nr.Bad("vehicle", "set (the vehicle description)");
  if (c.hub.empty() && c.doip.empty()) return nr.Bad("hub", "set, or doip, or both");
  ALOFT_RETURN_IF_ERROR(agent::ReadTrustTable(t, path, kDoc, c.trust));
  ALOFT_RETURN_IF_ERROR(agent::ReadDownloadTable(t, path, kDoc, c.download));
  c.download.ca_file = c.ca_file;
  c.download.cert_file = c.cert_file;
  c.download.key_file = c.key_file;
  ALOFT_ASSIGN_OR_RETURN(c.uptane, agent::ReadUptaneTable(t, path, c.state_dir));
  return c;
}

VehicleAgent::VehicleAgent(DaemonConfig config, agent::Uplink& uplink, Manager& manager,
                           std::function<void(const std::function<void()>&)> on_loop,
                           std::ostream& log)
    : config_(std::move(config)),
      uplink_(uplink),
      manager_(manager),
      on_loop_(std::move(on_loop)),
      log_(log),
      payload_keys_(config_.state_dir + "/encryption.key") {}

ContentKeyFor ActionContentKey(const std::string& state_dir) {
  auto keys = std::make_shared<agent::PayloadKeys>(state_dir + "/encryption.key");
  return [keys, state_dir](const pkg::Manifest& m) -> Result<std::optional<crypto::ContentKey>> {
    auto text = ReadFile(state_dir + "/action.json", 1 << 16);
    const nlohmann::json j =
        text.ok() ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
    return keys->ContentKeyFor(m, j.is_object() ? j.value("wrapped_key", "") : "");
  };
}

namespace {

// Each ECU's identifier as the Director knows it: its serial number (22 F18C) where that is its
// own, else (none, or one another ECU of this car reports too) its name in the vehicle.
std::map<std::string, std::string> UptaneSerials(const Inventory& inventory) {
  std::map<std::string, int> seen;
  for (const auto& [name, id] : inventory) {
    if (id.answered && !id.serial.empty()) ++seen[id.serial];
  }
  std::map<std::string, std::string> out;
  for (const auto& [name, id] : inventory) {
    const bool own = id.answered && !id.serial.empty() && seen[id.serial] == 1;
    out[name] = own ? id.serial : name;
  }
  return out;
}

}  // namespace

int64_t VehicleAgent::NowMs() const {
  const Clock& c = config_.clock ? *config_.clock : SystemClock::Instance();
  return std::chrono::duration_cast<std::chrono::milliseconds>(c.Wall().time_since_epoch()).count();
}

Status VehicleAgent::UptaneCheckIn(const Inventory& inventory, nlohmann::json& body) {
  if (!config_.uptane) return OkStatus();
  nlohmann::json ecus = nlohmann::json::object(), installed = nlohmann::json::object();
  const auto serials = UptaneSerials(inventory);
  for (const auto& [name, id] : inventory) {
    if (!id.answered) continue;
    const std::string& serial = serials.at(name);
    ecus[serial] = {{"hardware_id", id.hardware}, {"module", name}};
    installed[serial] = {{name, id.software}};  // as a device's: module and version
  }
  if (!uptane_) {
    ALOFT_ASSIGN_OR_RETURN(
        uptane_, agent::UptaneLink::Open(*config_.uptane, config_.state_dir, config_.device, ecus,
                                         config_.server, config_.tls()));
  }
  uptane_->client().SetEcus(ecus);
  ALOFT_ASSIGN_OR_RETURN(body["uptane"], uptane_->client().CheckInPart(installed));
  return OkStatus();
}

Status VehicleAgent::CheckBundleEcus(int64_t action, const std::string& path,
                                     const Inventory& inventory) {
  if (!uptane_) return OkStatus();
  ALOFT_ASSIGN_OR_RETURN(File f, File::OpenRead(path));
  ALOFT_ASSIGN_OR_RETURN(auto reader, pkg::PackageReader::Open(f, path, nullptr));
  ALOFT_ASSIGN_OR_RETURN(VehicleBundle b, ReadBundle(reader->manifest(), path));
  const auto serials = UptaneSerials(inventory);
  std::map<std::string, std::string> ecus;
  for (const auto& e : b.ecus) {
    auto it = serials.find(e.name);
    ecus[it == serials.end() ? e.name : it->second] = e.hardware;
  }
  return uptane_->client().CheckEcus(action, ecus);
}

Inventory VehicleAgent::ReadInventory() {
  std::promise<Inventory> got;
  on_loop_([&] { manager_.ReadInventory([&](Inventory inv) { got.set_value(std::move(inv)); }); });
  return got.get_future().get();
}

void VehicleAgent::Feedback(int64_t action, const nlohmann::json& body) {
  if (Status s = uplink_.Feedback(action, body); !s.ok()) {
    log_ << "aloft-vehicle: feedback on action " << action << ": " << s.error().message() << "\n";
  }
}

nlohmann::json VehicleAgent::Details(const InstallReport* report) {
  nlohmann::json lines = nlohmann::json::array();
  if (report) {
    for (const auto& p : report->problems) lines.push_back("refused: " + p);
    if (!report->campaign.first_failure.empty()) {
      lines.push_back("first failure: " + report->campaign.first_failure);
    }
    for (const std::string& line : report->EcuLines()) lines.push_back(line);
    return lines;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, line] : progress_) lines.push_back(name + ": " + line);
  return lines;
}

InstallReport VehicleAgent::Install(int64_t action, const std::string& path) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    progress_.clear();
    done_.clear();
    total_.clear();
  }
  std::promise<InstallReport> got;
  auto future = got.get_future();
  on_loop_([&] {
    manager_.on_progress = [this](const std::string& ecu, const std::string& stage, uint64_t done,
                                  uint64_t total) {
      std::lock_guard<std::mutex> lock(mu_);
      progress_[ecu] = stage + " " + std::to_string(total ? 100 * done / total : 0) + " %";
      if (stage == "transfer") {
        done_[ecu] = done;
        total_[ecu] = total;
      }
    };
    manager_.Install(path, [&](InstallReport r) { got.set_value(std::move(r)); });
  });
  // Progress on the action every few seconds: the bytes transferred of all ECUs so far.
  while (future.wait_for(std::chrono::seconds(3)) != std::future_status::ready) {
    uint64_t done = 0, total = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [ecu, d] : done_) done += d;
      for (const auto& [ecu, t] : total_) total += t;
    }
    nlohmann::json details = Details(nullptr);
    // Before the first transfer: what the manager waits for (the driver, the preconditions).
    std::string activity, screen;
    on_loop_([&] {
      activity = manager_.Activity();
      screen = manager_.driver().Screen();
    });
    if (details.empty()) {
      details.push_back(activity);
      if (!screen.empty()) details.push_back("the driver's screen: " + screen);
    }
    Feedback(action, {{"status", "installing"},
                      {"progress", total ? static_cast<int>(99 * done / total) : 0},
                      {"details", details}});
    // The live view: one line per ECU and stage.
    std::string line;
    for (const auto& d : details) line += (line.empty() ? "" : " | ") + d.get<std::string>();
    log_ << "aloft-vehicle: action " << action << ": " << line << "\n";
  }
  on_loop_([&] { manager_.on_progress = nullptr; });
  return future.get();
}

// A campaign a restart cut short: it converges first, and its action hears how it ended.
Status VehicleAgent::Recover() {
  const std::string marker = config_.state_dir + "/action.json";
  auto text = ReadFile(marker, 1 << 16);
  std::promise<InstallReport> got;
  on_loop_([&] { manager_.Recover([&](InstallReport r) { got.set_value(std::move(r)); }); });
  InstallReport r = got.get_future().get();
  if (!text.ok()) return OkStatus();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_object() && j.contains("id") && j["id"].is_number_integer()) {
    const int64_t id = j["id"];
    const bool ok = r.result == InstallResult::kAllNew;
    log_ << "aloft-vehicle: action " << id << " was cut short by a restart: " << ToString(r.result)
         << "\n";
    nlohmann::json details = Details(&r);
    details.push_back("the gateway restarted during the campaign; it ended " +
                      std::string(ToString(r.result)));
    Feedback(id, {{"status", ok ? "success" : "failure"}, {"details", details}});
  }
  std::error_code ec;
  std::filesystem::remove(marker, ec);
  return OkStatus();
}

std::optional<std::vector<std::string>> VehicleAgent::Precheck(const std::string& url,
                                                               const Inventory& inventory) {
  client::HttpRequest req;
  req.url = url;
  req.headers = client::BearerHeaders(config_.token);
  req.headers.push_back("Range: bytes=0-" + std::to_string(kManifestBytes - 1));
  client::UseTls(req, config_.tls());
  req.timeout_s = 60;
  auto r = client::Send(req);
  if (!r.ok() || (r->status != 206 && r->status != 200)) return std::nullopt;
  MemorySource head(AsBytes(r->body));
  auto reader = pkg::PackageReader::Open(head, "the offered bundle", nullptr);
  if (!reader.ok()) return std::nullopt;
  std::vector<std::string> problems;
  on_loop_([&] { problems = manager_.Check((*reader)->envelope(), inventory); });
  // An encrypted bundle: the key wrapped for this gateway opens it (docs/encryption.md).
  if (auto key = payload_keys_.ContentKeyFor((*reader)->manifest(), wrapped_key_); !key.ok()) {
    problems.push_back(key.error().message());
  }
  return problems;
}

Status VehicleAgent::RefuseUntrusted(int64_t action, const Error& e) {
  log_ << "aloft-vehicle: action " << action << ": refused: " << e.message() << "\n";
  Feedback(action, {{"status", "failure"},
                    {"code", static_cast<int>(e.code())},
                    {"details", {"uptane: " + e.message()}}});
  return OkStatus();
}

Status VehicleAgent::Handle(const nlohmann::json& action, const Inventory& inventory) {
  const int64_t id = action.value("id", int64_t{0});
  if (action.value("cancel", false)) {
    Feedback(id, {{"status", "canceled"}});
    return OkStatus();
  }
  if (!action.value("install", true)) return OkStatus();  // later: its window is closed
  if (!action.contains("download") || !action["download"].is_object()) {
    Feedback(id, {{"status", "failure"}, {"details", "the action has no download"}});
    return OkStatus();
  }
  const nlohmann::json& d = action["download"];
  wrapped_key_.clear();
  if (action.contains("encryption") && action["encryption"].is_object()) {
    wrapped_key_ = action["encryption"].value("wrapped_key", "");
  }
  // Uptane: both repositories agree on this very download before a byte of it is fetched.
  if (uptane_) {
    auto wrapped = uptane_->VerifyOffer(id, "", "", d.value("size", uint64_t{0}),
                                        d.value("sha256", ""), NowMs());
    if (!wrapped.ok()) return RefuseUntrusted(id, wrapped.error());
    if (!wrapped->empty()) wrapped_key_ = *wrapped;  // the Director's, signed with the target
  }
  if (auto problems = Precheck(d.value("url", ""), inventory); problems && !problems->empty()) {
    InstallReport refused;
    refused.result = InstallResult::kRefused;
    refused.problems = std::move(*problems);
    refused.before = refused.after = inventory;
    log_ << "aloft-vehicle: action " << id << ": " << action.value("release", "?") << " "
         << action.value("version", "?") << " refused before its download:\n";
    for (const std::string& p : refused.problems) log_ << "  refused: " << p << "\n";
    Feedback(id, {{"status", "failure"},
                  {"code", static_cast<int>(refused.result)},
                  {"details", Details(&refused)}});
    return OkStatus();
  }
  log_ << "aloft-vehicle: action " << id << ": " << action.value("release", "?") << " "
       << action.value("version", "?") << ", downloading\n";
  Feedback(id, {{"status", "downloading"}, {"progress", 0}});
  const std::string part = config_.state_dir + "/download.part";
  ALOFT_ASSIGN_OR_RETURN(auto staging, agent::MakeFileStaging(part));
  agent::DownloadRequest req{.url = d.value("url", ""),
                             .headers = client::BearerHeaders(config_.token),
                             .size = d.value("size", uint64_t{0}),
                             .sha256 = d.value("sha256", ""),
                             .etag = ""};
  int last = 0;
  auto got = agent::Download(
      req, config_.download, *staging, 0, [](uint64_t) { return OkStatus(); },
      [&](uint64_t done, uint64_t total) {
        const int pct = total ? static_cast<int>(100 * done / total) : 0;
        if (pct >= last + 25) {
          last = pct;
          Feedback(id, {{"status", "downloading"}, {"progress", pct}});
        }
      });
  if (!got.ok()) {
    Feedback(id, {{"status", "failure"}, {"details", "download: " + got.error().message()}});
    return OkStatus();
  }
  Feedback(id, {{"status", "downloaded"}});
  // Uptane: the bundle updates exactly the ECUs the Director names (no partial bundle).
  if (Status s = CheckBundleEcus(id, part, inventory); !s.ok()) {
    std::error_code ec;
    std::filesystem::remove(part, ec);
    return RefuseUntrusted(id, s.error());
  }
  if (Status s = uplink_.StartInstall(id); !s.ok()) {
    if (s.error().code() == Code::kAlreadyExists) {
      log_ << "aloft-vehicle: action " << id << ": not now: " << s.error().message() << "\n";
      return OkStatus();
    }
    return s;
  }
  const std::string bundle = config_.state_dir + "/incoming.aloft";
  std::error_code ec;
  std::filesystem::rename(part, bundle, ec);
  if (ec) return Error(Code::kIo, "cannot move " + part + " to " + bundle + ": " + ec.message());
  ALOFT_RETURN_IF_ERROR(WriteFileAtomic(
      config_.state_dir + "/action.json",
      nlohmann::json{{"id", id}, {"wrapped_key", wrapped_key_}}.dump() + "\n", 0600));
  log_ << "aloft-vehicle: action " << id << ": installing\n";
  const InstallReport r = Install(id, bundle);
  const bool ok = r.result == InstallResult::kAllNew;
  log_ << "aloft-vehicle: action " << id << ": " << r.Summary();
  Feedback(id, {{"status", ok ? "success" : "failure"},
                {"code", static_cast<int>(r.result)},
                {"details", Details(&r)}});
  std::filesystem::remove(config_.state_dir + "/action.json", ec);
  std::filesystem::remove(bundle, ec);
  return OkStatus();
}

Result<std::chrono::seconds> VehicleAgent::RunOnce() {
  ALOFT_RETURN_IF_ERROR(Recover());
  std::chrono::seconds interval = config_.poll_interval;
  for (int round = 0; round < 2; ++round) {  // after an action, the new versions at once
    const Inventory inv = ReadInventory();
    nlohmann::json versions = nlohmann::json::object(), attributes = nlohmann::json::object();
    for (const auto& [name, id] : inv) {
      if (id.answered && !id.software.empty()) versions[name] = id.software;
      if (id.answered && !id.vin.empty()) attributes["vin"] = id.vin;
    }
    nlohmann::json body = {{"versions", versions}, {"attributes", attributes}};
    // The gateway's encryption key, enrolled with the first check-in after a start.
    if (!key_enrolled_) {
      if (auto pub = payload_keys_.PublicKey(); pub.ok()) body["encryption_key"] = *pub;
    }
    ALOFT_RETURN_IF_ERROR(UptaneCheckIn(inv, body));
    ALOFT_ASSIGN_OR_RETURN(nlohmann::json answer, uplink_.CheckIn(body));
    if (body.contains("encryption_key")) key_enrolled_ = true;
    if (uptane_) uptane_->Answer(answer, NowMs());
    if (answer.contains("poll_interval_s") && answer["poll_interval_s"].is_number_integer()) {
      interval = std::chrono::seconds(answer["poll_interval_s"].get<int64_t>());
    }
    if (round == 1 || !answer.contains("action") || !answer["action"].is_object()) break;
    ALOFT_RETURN_IF_ERROR(Handle(answer["action"], inv));
  }
  return interval;
}

}  // namespace aloft::vehicle
