#include "fleetsim/simulation.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "client/http_client.h"
#include "core/clock.h"
#include "core/file.h"
#include "core/progress.h"
#include "crypto/keys.h"
#include "fleetsim/fleet.h"
#include "fleetsim/http_engine.h"
#include "fleetsim/servers.h"
#include "pkg/package.h"

namespace aloft::fleetsim {

using nlohmann::json;

namespace {

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The management API, blocking (set-up, one status read a second, the end's checks).
class Admin {
 public:
  Admin(std::string base, std::string token) : base_(std::move(base)), token_(std::move(token)) {}
  void Use(std::string base) { base_ = std::move(base); }
  Result<json> Call(const std::string& method, const std::string& path, const json& body,
                    int expect, const std::string& upload_file = "") {
    client::HttpRequest req{.method = method, .url = base_ + path};
    req.headers = client::BearerHeaders(token_);
    if (!body.is_null()) {
      req.body = body.dump();
      req.headers.push_back("Content-Type: application/json");
    }
    req.upload_file = upload_file;
    req.timeout_s = 60;
    ALOFT_ASSIGN_OR_RETURN(client::HttpResponse res, client::Send(req));
    if (res.status != expect) {
      return Error(Code::kUnavailable, method + " " + path + ": " + std::to_string(res.status) +
                                           " " + client::ErrorMessage(res));
    }
    json j = json::parse(res.body, nullptr, false);
    return j.is_discarded() ? json() : j;
  }

 private:
  std::string base_, token_;
};

// A call whose answer does not matter, only that it came.
Status Done(Result<json> r) { return r.ok() ? OkStatus() : Status(std::move(r).error()); }

// One device type of the fleet, its release and its rollout: the boards (module main, the
// release a plain artifact), and the vehicles (one module per ECU, the release a signed package
// with one component per ECU, as a vehicle bundle has).
struct Target {
  std::string type{}, release{}, rollout{}, registration{};
  std::string state = "registering";
  int wave = 0;
  int64_t members = 0;
};

// Random bytes, `size` of them, into `path`.
Status RandomFile(const std::string& path, uint64_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string bytes(size, '\0');
  for (auto& c : bytes) c = static_cast<char>(rng());
  return WriteFileAtomic(path, bytes);
}

// The vehicles' release: a signed package, one component per ECU (random images).
Result<std::string> PackVehicleRelease(const Scenario& s, const RunOptions& o,
                                       const crypto::PrivateKey& key) {
  pkg::PackOptions p;
  p.name = s.release_name + "-car";
  p.version = s.release_version;
  p.hardware = {"sim-car"};
  p.compression = pkg::Compression::kNone;
  p.progress = Progress::Mode::kNever;
  p.keys = {&key};
  uint64_t seed = o.seed;
  for (const std::string& ecu : s.Ecus()) {
    const std::string image = o.work_dir + "/" + ecu + ".img";
    ALOFT_RETURN_IF_ERROR(RandomFile(image, s.release_size, ++seed));
    p.components.push_back({ecu, image});
  }
  p.output = o.work_dir + "/car.aloft";
  ALOFT_RETURN_IF_ERROR(pkg::Pack(p, SystemClock::Instance()));
  return p.output;
}

// Each device type of the scenario with a registration token and its release uploaded.
Result<std::vector<Target>> SetUpTargets(Admin& admin, const Scenario& s, const RunOptions& o,
                                         const crypto::PrivateKey* release_key) {
  std::vector<Target> targets;
  if (s.HasBoards()) {
    targets.push_back({.type = "sim-board",
                       .release = s.release_name + "@" + s.release_version,
                       .rollout = "sim"});
  }
  if (s.HasVehicles()) {
    targets.push_back({.type = "sim-car",
                       .release = s.release_name + "-car@" + s.release_version,
                       .rollout = "sim-car"});
  }
  for (Target& t : targets) {
    json type = {{"name", t.type}};
    if (t.type == "sim-car") type["modules"] = s.Ecus();
    ALOFT_RETURN_IF_ERROR(Done(admin.Call("POST", "/api/v1/device-types", type, 201)));
    ALOFT_ASSIGN_OR_RETURN(
        json reg, admin.Call("POST", "/api/v1/device-types/" + t.type + "/registration-tokens",
                             {{"name", "fleet-sim"}, {"expires_in", "never"}}, 201));
    t.registration = reg.value("token", "");
    if (t.type == "sim-car") {
      ALOFT_ASSIGN_OR_RETURN(std::string package, PackVehicleRelease(s, o, *release_key));
      ALOFT_RETURN_IF_ERROR(
          Done(admin.Call("POST", "/api/v1/releases?filename=car.aloft", nullptr, 201, package)));
      continue;
    }
    const std::string artifact = o.work_dir + "/release.bin";
    ALOFT_RETURN_IF_ERROR(RandomFile(artifact, s.release_size, o.seed));
    ALOFT_RETURN_IF_ERROR(Done(
        admin.Call("POST",
                   "/api/v1/releases?name=" + s.release_name + "&version=" + s.release_version +
                       "&device_type=sim-board&module=main&filename=release.bin",
                   nullptr, 201, artifact)));
  }
  return targets;
}

std::string Registration(const std::vector<Target>& targets, const std::string& type) {
  for (const Target& t : targets) {
    if (t.type == type) return t.registration;
  }
  return "";
}

Status CreateRollouts(Admin& admin, const Scenario& s, const std::vector<Target>& targets) {
  json waves = json::array();
  for (const Wave& w : s.waves) {
    waves.push_back({{"percent", w.percent},
                     {"success_threshold", w.success_threshold},
                     {"error_threshold", w.error_threshold}});
  }
  for (const Target& t : targets) {
    ALOFT_RETURN_IF_ERROR(Done(admin.Call("POST", "/api/v1/rollouts",
                                          {{"name", t.rollout},
                                           {"release", t.release},
                                           {"filter", {{"device_type", t.type}}},
                                           {"waves", waves},
                                           // MQTT devices are told as each wave starts.
                                           {"push", s.Uses(Protocol::kMqtt)}},
                                          201)));
  }
  return OkStatus();
}

// The devices' way to the servers: direct (`bases`, `mqtt` as they are), or through the fault
// proxy (returned; `bases` and `mqtt` then name its ports).
Result<std::unique_ptr<FaultProxy>> Route(const Scenario& s, const Servers& servers,
                                          std::vector<std::string>& bases, std::string& mqtt) {
  bases = servers.bases();
  mqtt = servers.broker_url();
  if (!s.Proxied()) return std::unique_ptr<FaultProxy>();
  std::vector<uint16_t> upstreams;
  for (size_t k = 0; k < servers.size(); ++k)
    upstreams.push_back(servers.port(static_cast<int>(k)));
  if (!mqtt.empty()) upstreams.push_back(servers.broker_port());
  ALOFT_ASSIGN_OR_RETURN(std::unique_ptr<FaultProxy> proxy, FaultProxy::Start(upstreams));
  for (size_t k = 0; k < servers.size(); ++k) {
    bases[k] = "http://127.0.0.1:" + std::to_string(proxy->port(k));
  }
  if (!mqtt.empty()) mqtt = "mqtt://127.0.0.1:" + std::to_string(proxy->port(servers.size()));
  return proxy;
}

// Does `ev`; what to add to its line ("" when it went well and there is nothing to say).
std::string DoEvent(const Event& ev, Servers& servers, Fleet& fleet, FaultProxy* proxy) {
  Status st = OkStatus();
  std::string said;
  switch (ev.kind) {
    case Event::Kind::kKillServer:
      st = servers.Kill(ev.server);
      fleet.MarkDown(static_cast<size_t>(ev.server), INT64_MAX);
      break;
    case Event::Kind::kStartServer: {
      const int64_t asked = WallMs();
      st = servers.StartServer(ev.server);
      fleet.MarkUp(static_cast<size_t>(ev.server));
      said =
          " (listening after " + std::to_string((WallMs() - asked) / 1000.0).substr(0, 4) + " s)";
      break;
    }
    case Event::Kind::kRestartPostgres:
      st = servers.RestartPostgres();
      break;
    case Event::Kind::kRestartBroker:
      st = servers.RestartBroker();
      break;
    case Event::Kind::kCutNetwork:
      if (proxy) proxy->Cut(ev.duration);
      break;
    case Event::Kind::kFaults:
      fleet.SetFaults(ev.faults);
      break;
  }
  return st.ok() ? said : said + " FAILED: " + st.error().message();
}

// Every rollout's state, wave and members from the first server that answers for all of them.
bool ReadRollouts(Admin& admin, const Servers& servers, std::vector<Target>& targets) {
  for (size_t k = 0; k < servers.size(); ++k) {
    if (!servers.up(static_cast<int>(k))) continue;
    admin.Use(servers.base(static_cast<int>(k)));
    bool all = true;
    for (Target& t : targets) {
      auto st = admin.Call("GET", "/api/v1/rollouts/" + t.rollout, nullptr, 200);
      if (!st.ok()) {
        all = false;
        break;
      }
      t.state = st->value("state", "");
      t.wave = st->value("wave", 0);
      t.members = st->value("devices", int64_t{0});
    }
    if (all) return true;
  }
  return false;
}

// The processes' CPU and memory, one sample a second: each aloftd, PostgreSQL, the broker, the
// simulator itself; the totals and peaks go into the run's result.
class Resources {
 public:
  explicit Resources(const Servers& servers) : servers_(servers), server_(servers.size()) {
    Take();
  }
  void Sample(fleetsim::Sample& smp, RunResult& out) {
    const std::vector<ProcessSample> before = server_;
    const ProcessSample pg_before = pg_, broker_before = broker_, self_before = self_;
    Take();
    for (size_t k = 0; k < server_.size(); ++k) {
      const ProcessSample& p = server_[k];
      const bool counts = servers_.up(static_cast<int>(k)) && p.cpu_ms >= before[k].cpu_ms;
      smp.server_cpu.push_back(counts ? (p.cpu_ms - before[k].cpu_ms) / 10.0 : 0);
      smp.server_rss_mib.push_back(p.rss_kib / 1024.0);
      if (out.server_peak_rss_mib.size() <= k) out.server_peak_rss_mib.resize(k + 1, 0);
      if (out.server_cpu_s.size() <= k) out.server_cpu_s.resize(k + 1, 0);
      out.server_peak_rss_mib[k] = std::max(out.server_peak_rss_mib[k], p.peak_rss_kib / 1024.0);
      if (counts) out.server_cpu_s[k] += (p.cpu_ms - before[k].cpu_ms) / 1000.0;
    }
    if (pg_.cpu_ms >= pg_before.cpu_ms) {  // not across a restart
      smp.pg_cpu = (pg_.cpu_ms - pg_before.cpu_ms) / 10.0;
      out.pg_cpu_s += (pg_.cpu_ms - pg_before.cpu_ms) / 1000.0;
    }
    smp.pg_rss_mib = pg_.rss_kib / 1024.0;
    if (broker_.cpu_ms >= broker_before.cpu_ms) {  // not across a restart
      out.broker_cpu_s += (broker_.cpu_ms - broker_before.cpu_ms) / 1000.0;
    }
    out.broker_peak_rss_mib = std::max(out.broker_peak_rss_mib, broker_.peak_rss_kib / 1024.0);
    smp.sim_cpu = (self_.cpu_ms - self_before.cpu_ms) / 10.0;
    smp.sim_rss_mib = self_.rss_kib / 1024.0;
  }

 private:
  void Take() {
    for (size_t k = 0; k < server_.size(); ++k) {
      server_[k] = SampleProcess(servers_.pid(static_cast<int>(k)));
    }
    pg_ = servers_.SamplePostgres();
    broker_ = SampleProcess(servers_.broker_pid());
    self_ = SampleProcess(::getpid());
  }
  const Servers& servers_;
  std::vector<ProcessSample> server_;
  ProcessSample pg_, broker_, self_;
};

// What the fleet counted, into the run's result.
void TakeCounts(const Fleet& fleet, const FaultProxy* proxy, RunResult& out) {
  const FleetCounters& c = fleet.counters();
  out.check_ins = c.check_ins;
  out.check_in_errors = c.check_in_errors;
  out.downloads = c.downloads;
  out.download_drops = c.download_drops;
  out.power_cuts = c.power_cuts;
  out.feedbacks = c.feedbacks;
  out.feedback_retries = c.feedback_retries;
  out.fleet = c;
  out.notes = fleet.notes();
  out.mqtt = fleet.mqtt_counters();
  if (proxy) {
    out.proxied = true;
    out.proxy = proxy->counters();
  }
  out.check_in_p50_ms = fleet.all_latencies().PercentileMs(50);
  out.check_in_p99_ms = fleet.all_latencies().PercentileMs(99);
  const ProcessSample me = SampleProcess(::getpid());
  out.sim_peak_rss_mib = me.peak_rss_kib / 1024.0;
  out.sim_cpu_s = me.cpu_ms / 1000.0;
}

}  // namespace

Result<RunResult> RunScenario(const Scenario& s, const RunOptions& o) {
  std::ostream& log = *o.log;
  std::filesystem::create_directories(o.work_dir);
  // Vehicles' releases are signed packages: aloftd trusts a key made for this run.
  std::optional<crypto::PrivateKey> release_key;
  std::string extra_config;
  if (s.HasVehicles()) {
    ALOFT_ASSIGN_OR_RETURN(release_key, crypto::PrivateKey::Generate(crypto::KeyType::kEd25519));
    const std::string pub = o.work_dir + "/release.pub";
    ALOFT_RETURN_IF_ERROR(WriteFileAtomic(pub, release_key->public_key().ToPem()));
    extra_config = "trust = [\"" + pub + "\"]\n";
  }
  Servers servers(s, {.work_dir = o.work_dir,
                      .aloftd = o.aloftd,
                      .scripts_dir = o.scripts_dir,
                      .extra_config = extra_config});
  log << "fleet-sim: " << s.name << ": " << s.devices() << " devices, " << s.servers
      << " aloftd on " << s.database << std::endl;
  ALOFT_RETURN_IF_ERROR(servers.Start());
  Admin admin(servers.base(0), servers.admin_token());
  ALOFT_ASSIGN_OR_RETURN(std::vector<Target> targets,
                         SetUpTargets(admin, s, o, release_key ? &*release_key : nullptr));
  std::vector<std::string> device_bases;
  std::string device_mqtt;
  ALOFT_ASSIGN_OR_RETURN(std::unique_ptr<FaultProxy> proxy,
                         Route(s, servers, device_bases, device_mqtt));
  if (proxy) log << "fleet-sim: devices reach the servers through the fault proxy" << std::endl;
  HttpEngine http(static_cast<size_t>(s.connections));
  Fleet fleet(s,
              {.servers = device_bases,
               .registration = Registration(targets, "sim-board"),
               .mqtt_url = device_mqtt,
               .admin_token = servers.admin_token(),
               .vehicle_registration = Registration(targets, "sim-car"),
               .seed = o.seed},
              http);
  RunResult out;
  const int64_t t_start = WallMs();
  ALOFT_RETURN_IF_ERROR(fleet.Start(t_start));
  Resources resources(servers);
  int64_t rollout_at = 0, next_sample = t_start + 1000, next_line = t_start + 5000;
  std::vector<bool> done_events(s.events.size(), false);
  std::string state = "registering";
  int wave = 0;
  int64_t members = 0;
  FleetCounters last;
  for (;;) {
    const int64_t now = WallMs();
    fleet.Run(now);
    fleet.Wait(now, 20);
    const int64_t after = WallMs();
    if (o.stop && o.stop->load()) return Error(Code::kUnavailable, "interrupted");
    // Registration done: every device checked in once. Then the rollouts.
    if (!rollout_at && fleet.counters().registered == fleet.size()) {
      out.register_s = (after - t_start) / 1000.0;
      ALOFT_RETURN_IF_ERROR(CreateRollouts(admin, s, targets));
      rollout_at = WallMs();
      log << "fleet-sim: " << fleet.size() << " devices registered in " << out.register_s
          << " s; rollout started" << std::endl;
    }
    // The scenario's events, on time (a wave's from the last sample).
    for (size_t e = 0; rollout_at && e < s.events.size(); ++e) {
      const Event& ev = s.events[e];
      if (done_events[e]) continue;
      const bool due =
          ev.at ? after - rollout_at >= ev.at->count() : wave >= ev.at_wave.value_or(0);
      if (!due) continue;
      done_events[e] = true;
      const std::string line = std::to_string((after - rollout_at) / 1000.0).substr(0, 5) +
                               " s: " + ev.Describe() + DoEvent(ev, servers, fleet, proxy.get());
      out.events.push_back(line);
      log << "fleet-sim: " << line << std::endl;
    }
    if (after < next_sample) continue;
    next_sample += 1000;
    // One sample: the rollouts' state from any server that answers; one line for all of them,
    // the first rollout's wave and the state when they agree.
    Sample smp;
    smp.t = rollout_at ? (after - rollout_at) / 1000.0 : (after - t_start) / 1000.0 - 1e6;
    if (rollout_at && ReadRollouts(admin, servers, targets)) {
      state = targets[0].state;
      wave = targets[0].wave;
      members = 0;
      for (const Target& t : targets) {
        members += t.members;
        if (t.state != state) state += " / " + t.state;
      }
    }
    smp.state = state;
    smp.wave = wave;
    const FleetCounters& c = fleet.counters();
    smp.check_ins = c.check_ins - last.check_ins;
    smp.errors = c.check_in_errors - last.check_in_errors;
    smp.reports = c.feedbacks - last.feedbacks;
    last = c;
    const LatencyHistogram w = fleet.TakeWindow();
    smp.p50_ms = w.PercentileMs(50);
    smp.p99_ms = w.PercentileMs(99);
    smp.offered = c.offered;
    smp.succeeded = c.succeeded;
    smp.failed = c.failed;
    smp.busy = fleet.busy();
    resources.Sample(smp, out);
    out.samples.push_back(smp);
    if (after >= next_line) {
      next_line += 5000;
      log << "fleet-sim: " << (rollout_at ? (after - rollout_at) / 1000 : 0) << " s: " << state
          << " wave " << wave << ", offered " << c.offered << ", succeeded " << c.succeeded
          << ", failed " << c.failed << ", busy " << smp.busy << "; per second: check-ins "
          << smp.check_ins << " (p99 " << smp.p99_ms << " ms), reports " << smp.reports
          << std::endl;
    }
    if (!rollout_at) {
      if (after - t_start > s.timeout.count()) {
        return Error(Code::kUnavailable, "only " + std::to_string(c.registered) + " of " +
                                             std::to_string(fleet.size()) +
                                             " devices registered before the timeout");
      }
      continue;
    }
    if (!out.dispatch_s && members > 0 && static_cast<int64_t>(c.offered) >= members) {
      out.dispatch_s = (after - rollout_at) / 1000.0;
    }
    // The end: every rollout finished or paused, and no device has anything left to report.
    bool ended = true;
    for (const Target& t : targets) ended = ended && (t.state == "finished" || t.state == "paused");
    if (ended && smp.busy == 0 && fleet.AllReported()) {
      out.updated_s = (after - rollout_at) / 1000.0;
      break;
    }
    if (after - rollout_at > s.timeout.count()) {
      out.timed_out = true;
      out.updated_s = (after - rollout_at) / 1000.0;
      log << "fleet-sim: timed out in state " << state << ", " << fleet.busy()
          << " devices still busy" << std::endl;
      break;
    }
  }
  out.final_state = state;
  out.final_wave = wave;
  std::vector<std::string> releases;
  for (const Target& t : targets) {
    out.rollouts.push_back({t.rollout, t.release, t.state, t.wave});
    releases.push_back(t.release);
  }
  TakeCounts(fleet, proxy.get(), out);
  // The checks, against a server that is up.
  for (size_t k = 0; k < servers.size(); ++k) {
    if (!servers.up(static_cast<int>(k))) continue;
    ALOFT_ASSIGN_OR_RETURN(ServerView view, ReadServerView(servers.base(static_cast<int>(k)),
                                                           servers.admin_token(), releases));
    out.checks = Check(fleet, view, fleet.counters().duplicate_offers);
    break;
  }
  return out;
}

}  // namespace aloft::fleetsim
