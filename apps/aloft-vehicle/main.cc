// aloft-vehicle: the OTA manager on a car's gateway (docs/vehicle-bundle.md). It reaches the
// ECUs the vehicle description lists over the buses of a bus hub (socketcand rawmode) and the
// DoIP edge node, verifies a vehicle bundle against them before touching any, and installs it all
// or nothing.
//
//   aloft-vehicle inventory --network car.toml --hub 127.0.0.1:29536 --doip 127.0.0.1:13400
//   aloft-vehicle install car-2.0.aloft --trust release.pub --state /var/lib/aloft-vehicle ...
//   aloft-vehicle prompt | accept | defer     (the driver's screen, as the head unit shows it)
//
// Exit status: 0 done (all-new), 1 refused or rolled back or failed, 2 usage.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "agent/config.h"
#include "agent/push_link.h"
#include "can/socketcand_bus.h"
#include "can/socketcand_server.h"
#include "core/file.h"
#include "crypto/key_wrap.h"
#include "crypto/keys.h"
#include "doip/client.h"
#include "ecusim/vehicle_spec.h"
#include "net/socket.h"
#include "net/stream.h"
#include "net/tls.h"
#include "vehicle/agent_ecus.h"
#include "vehicle/daemon.h"
#include "vehicle/hmi.h"
#include "vehicle/manager.h"
#include "vehicle/plan.h"

namespace {

using namespace aloft;

int Fail(const Error& e) {
  std::cerr << "aloft-vehicle: " << e.ToString() << "\n";
  return e.code() == Code::kInvalidArgument ? 2 : 1;
}

struct Options {
  std::string network, hub, doip, state = "aloft-vehicle-state", bundle;
  // DoIP over TLS (ISO 13400-2:2019, port 3496): the CA that issued the entity's certificate,
  // and the name to check in it (default: the host of --doip).
  std::string doip_tls_ca, doip_tls_name;
  // UDS Authentication (0x29): the gateway's tester certificate chain and key (PEM).
  std::string tester_cert, tester_key;
  std::string hmi = "127.0.0.1:8469";  // the driver's screen API; "off": none
  // ECUs that run aloft-agent: "NAME=TOKEN_FILE", served the in-car device API on agent_listen.
  std::vector<std::string> agent_ecus;
  std::string agent_listen = "127.0.0.1:8470";
  int64_t defer_interval_s = 3600;
  std::vector<std::string> trust;
  size_t threshold = 1;
  bool quiet = false;
  std::string content_key;                 // install: an encrypted bundle's content key file
  vehicle::ContentKeyFor content_key_for;  // the daemon: the key wrapped for its action
};

// The CAN buses the gateway reaches through the hub (classic ones: the hub carries no CAN FD).
std::set<std::string> HubBuses(const ecusim::VehicleSpec& spec) {
  std::set<std::string> out;
  for (const auto& b : spec.buses) {
    if (!b.fd) out.insert(b.name);
  }
  return out;
}

// The gateway's connections, made and dropped on the loop's thread.
class Gateway {
 public:
  Status Open(const Options& o) {
    ALOFT_ASSIGN_OR_RETURN(spec_, ecusim::LoadVehicleSpec(o.network));
    std::map<std::string, can::CanBus*> buses;
    if (!o.hub.empty()) {
      ALOFT_ASSIGN_OR_RETURN(net::Endpoint hub, net::ParseEndpoint(o.hub));
      for (const auto& b : spec_.buses) {
        if (!HubBuses(spec_).count(b.name)) continue;  // CAN FD ECUs: through DoIP
        Result<std::unique_ptr<can::SocketcandBus>> bus = Error(Code::kInternal, "");
        loop_.Run([&] { bus = can::SocketcandBus::Connect(loop_, hub, b.name, b.rates); });
        if (!bus.ok()) return std::move(bus).error().WithContext("bus " + b.name);
        buses[b.name] = bus->get();
        hub_buses_.push_back(std::move(*bus));
      }
      std::this_thread::sleep_for(can::SocketcandServer::kRawmodeSettle * 2);
    }
    if (!o.doip.empty()) {
      ALOFT_ASSIGN_OR_RETURN(net::Endpoint at, net::ParseEndpoint(o.doip));
      ALOFT_ASSIGN_OR_RETURN(net::Fd fd, net::ConnectTcp(at, std::chrono::seconds(5)));
      if (!o.doip_tls_ca.empty()) {
        ALOFT_ASSIGN_OR_RETURN(
            tls_, net::TlsEndpoint::Client(o.doip_tls_ca,
                                           o.doip_tls_name.empty() ? at.host : o.doip_tls_name));
        Result<net::Fd> plain = tls_->Wrap(std::move(fd));
        if (!plain.ok())
          return std::move(plain).error().WithContext("DoIP over TLS at " + at.ToString());
        fd = std::move(*plain);
      }
      std::promise<Result<uint16_t>> activated;
      loop_.Run([&] {
        doip_ = std::make_unique<doip::Client>(
            std::make_unique<net::SocketStream>(loop_, std::move(fd)));
        doip_->Activate([&](Result<uint16_t> r) { activated.set_value(std::move(r)); });
      });
      auto r = activated.get_future().get();
      if (!r.ok()) {
        Error e = std::move(r).error();
        if (o.doip_tls_ca.empty() && e.message().find("0x07") != std::string::npos) {
          e = Error(e.code(), e.message() +
                                  "; the entity takes testers over TLS only: give its TLS port "
                                  "(3496 by convention) and --doip-tls-ca");
        }
        return std::move(e).WithContext("DoIP at " + at.ToString());
      }
    }
    Result<std::unique_ptr<vehicle::Network>> n = Error(Code::kInternal, "");
    loop_.Run([&] {
      n = vehicle::Network::Create(
          spec_, buses, doip_.get(),
          {.client = {.p2 = std::chrono::milliseconds(500),
                      .transport_margin = std::chrono::milliseconds(1000)}});
    });
    if (!n.ok()) return std::move(n).error().WithContext(o.network);
    network_ = std::move(*n);
    return OkStatus();
  }

  Status MakeManager(const Options& o) {
    crypto::TrustSet trust;
    for (const std::string& path : o.trust) {
      ALOFT_ASSIGN_OR_RETURN(crypto::PublicKey key, crypto::PublicKey::Load(path));
      trust.Add(std::move(key));
    }
    trust.set_threshold(o.threshold);
    if (Status s = trust.Validate(); !s.ok()) return std::move(s).error().WithContext("--trust");
    return MakeManager(o, trust);
  }

  Status MakeManager(const Options& o, const crypto::TrustSet& trust) {
    if (!o.agent_ecus.empty()) {
      std::vector<vehicle::AgentEcuServer::Ecu> ecus;
      for (const std::string& spec : o.agent_ecus) {
        const size_t eq = spec.find('=');
        if (eq == std::string::npos || eq == 0) {
          return Error(Code::kInvalidArgument,
                       "--agent-ecu " + spec + ": expected NAME=TOKEN_FILE");
        }
        ALOFT_ASSIGN_OR_RETURN(std::string token, agent::ReadTokenFile(spec.substr(eq + 1)));
        ecus.push_back({.name = spec.substr(0, eq), .token = std::move(token)});
      }
      agent_ecus_ = std::make_unique<vehicle::AgentEcuServer>(std::move(ecus));
      ALOFT_RETURN_IF_ERROR(agent_ecus_->Start(o.agent_listen));
    }
    std::map<std::string, ecusim::EcuConfig> configs;
    for (const auto& e : spec_.ecus) configs[e.config.name] = e.config;
    std::shared_ptr<const uds::TesterCredentials> tester;
    if (!o.tester_cert.empty() || !o.tester_key.empty()) {
      if (o.tester_cert.empty() || o.tester_key.empty()) {
        return Error(Code::kInvalidArgument, "--tester-cert and --tester-key go together");
      }
      ALOFT_ASSIGN_OR_RETURN(uds::TesterCredentials c,
                             uds::TesterCredentials::Load(o.tester_cert, o.tester_key));
      tester = std::make_shared<const uds::TesterCredentials>(std::move(c));
    }
    loop_.Run([&] {
      manager_ = std::make_unique<vehicle::Manager>(
          loop_, *network_,
          vehicle::ManagerConfig{
              .state_dir = o.state,
              .trust = trust,
              // The ECUs' security access secrets come with the vehicle description.
              .key =
                  [configs](const std::string& ecu, std::span<const uint8_t> seed) {
                    auto it = configs.find(ecu);
                    return it == configs.end() ? Bytes{} : ecusim::SecurityKey(it->second, seed);
                  },
              .defer_interval = std::chrono::seconds(o.defer_interval_s),
              .agent_ecus = agent_ecus_.get(),
              .content_key = o.content_key_for,
              .tester = tester});
    });
    return OkStatus();
  }

  ~Gateway() {
    hmi_.reset();  // its requests run on the loop, against the manager
    loop_.Run([&] {
      manager_.reset();
      agent_ecus_.reset();
      network_.reset();
      doip_.reset();
      hub_buses_.clear();
    });
  }

  // The driver's screen API on `o.hmi` (none for "off" or "").
  Status StartHmi(const Options& o) {
    if (o.hmi.empty() || o.hmi == "off") return OkStatus();
    hmi_ = std::make_unique<vehicle::HmiServer>(
        manager_->driver(), [this] { return manager_->Activity(); },
        [this](const std::function<void()>& fn) { loop_.Run(fn); });
    return hmi_->Start(o.hmi);
  }

  RealLoop& loop() { return loop_; }
  vehicle::Network& network() { return *network_; }
  vehicle::Manager& manager() { return *manager_; }

 private:
  RealLoop loop_;
  ecusim::VehicleSpec spec_;
  std::vector<std::unique_ptr<can::SocketcandBus>> hub_buses_;
  std::unique_ptr<net::TlsEndpoint> tls_;  // DoIP over TLS: its connection's thread
  std::unique_ptr<doip::Client> doip_;
  std::unique_ptr<vehicle::Network> network_;
  std::unique_ptr<vehicle::Manager> manager_;
  std::unique_ptr<vehicle::HmiServer> hmi_;
  std::unique_ptr<vehicle::AgentEcuServer> agent_ecus_;
};

// A line per ECU, redrawn in place on a terminal; elsewhere a line at each quarter.
class ProgressView {
 public:
  explicit ProgressView(std::vector<std::string> ecus) : ecus_(std::move(ecus)), tty_(isatty(1)) {}
  void Update(const std::string& ecu, const std::string& stage, uint64_t done, uint64_t total) {
    std::lock_guard<std::mutex> lock(mu_);
    Row& r = rows_[ecu];
    const int quarter = total ? static_cast<int>(4 * done / total) : 0;
    const bool news = r.stage != stage || quarter != r.quarter;
    r = {stage, done, total, quarter};
    if (!tty_ && news) {
      std::printf("  %-8s %-9s %3d%%\n", ecu.c_str(), stage.c_str(), Percent(r));
      std::fflush(stdout);
    }
  }
  // Something else was printed: the next Draw starts below it.
  void Break() {
    std::lock_guard<std::mutex> lock(mu_);
    drawn_ = false;
  }
  void Draw(bool final = false) {
    if (!tty_) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (drawn_) std::printf("\x1b[%zuA", ecus_.size());
    for (const auto& e : ecus_) {
      const Row& r = rows_[e];
      const int pct = Percent(r);
      std::string bar(static_cast<size_t>(pct / 5), '#');
      bar.resize(20, '.');
      std::printf("\x1b[2K  %-8s %-9s [%s] %3d%%\n", e.c_str(),
                  r.stage.empty() ? (final ? "-" : "waiting") : r.stage.c_str(), bar.c_str(), pct);
    }
    drawn_ = true;
    std::fflush(stdout);
  }

 private:
  struct Row {
    std::string stage;
    uint64_t done = 0, total = 0;
    int quarter = -1;
  };
  static int Percent(const Row& r) {
    return r.total ? static_cast<int>(100 * r.done / r.total) : 0;
  }
  std::vector<std::string> ecus_;
  bool tty_;
  bool drawn_ = false;
  std::mutex mu_;
  std::map<std::string, Row> rows_;
};

int Inventory(const Options& o) {
  Gateway g;
  if (Status s = g.Open(o); !s.ok()) return Fail(s.error());
  if (Status s = g.MakeManager(o, crypto::TrustSet{}); !s.ok()) return Fail(s.error());
  std::promise<vehicle::Inventory> got;
  g.loop().Run([&] {
    g.manager().ReadInventory([&](vehicle::Inventory inv) { got.set_value(std::move(inv)); });
  });
  const vehicle::Inventory inv = got.get_future().get();
  int missing = 0;
  for (const std::string& name : g.network().ecus()) {
    const auto& id = inv.at(name);
    std::printf("%-22s %s\n", g.network().route(name).c_str(), id.Describe().c_str());
    missing += !id.answered;
  }
  return missing ? 1 : 0;
}

int Install(Options o) {
  if (!o.content_key.empty()) {
    auto key = crypto::LoadContentKey(o.content_key);
    if (!key.ok()) return Fail(key.error());
    o.content_key_for = [k = *key](const pkg::Manifest&) {
      return Result<std::optional<crypto::ContentKey>>(k);
    };
  }
  Gateway g;
  if (Status s = g.Open(o); !s.ok()) return Fail(s.error());
  if (Status s = g.MakeManager(o); !s.ok()) return Fail(s.error());
  if (Status s = g.StartHmi(o); !s.ok()) return Fail(s.error());
  ProgressView view(g.network().ecus());
  std::promise<vehicle::InstallReport> got;
  auto future = got.get_future();
  g.loop().Run([&] {
    g.manager().on_progress = [&](const std::string& ecu, const std::string& stage, uint64_t done,
                                  uint64_t total) { view.Update(ecu, stage, done, total); };
    // First, whatever an earlier run left unfinished.
    g.manager().Recover([&](vehicle::InstallReport previous) {
      if (!previous.bundle.empty()) {
        std::printf("an unfinished campaign of %s converged: %s\n", previous.bundle.c_str(),
                    vehicle::ToString(previous.result));
      }
      g.manager().Install(o.bundle, [&](vehicle::InstallReport r) { got.set_value(std::move(r)); });
    });
  });
  std::string shown;
  while (future.wait_for(std::chrono::milliseconds(500)) != std::future_status::ready) {
    // The driver's screen as it changes: a question, a deferral, the update installing.
    std::string screen;
    bool asking = false;
    g.loop().Run([&] {
      screen = g.manager().driver().Screen();
      asking = g.manager().driver().asking();
    });
    if (screen != shown && !screen.empty()) {
      view.Break();
      std::printf("driver's screen: %s%s\n", screen.c_str(),
                  asking ? " (aloft-vehicle accept | defer)" : "");
    }
    shown = screen;
    if (!o.quiet) view.Draw();
  }
  const vehicle::InstallReport r = future.get();
  if (!o.quiet) view.Draw(true);
  std::printf("%s", r.Summary().c_str());
  return r.result == vehicle::InstallResult::kAllNew ? 0 : 1;
}

int Plan(const Options& o) {
  auto spec = ecusim::LoadVehicleSpec(o.network);
  if (!spec.ok()) return Fail(spec.error());
  crypto::TrustSet trust;
  for (const std::string& path : o.trust) {
    auto key = crypto::PublicKey::Load(path);
    if (!key.ok()) return Fail(key.error());
    trust.Add(std::move(*key));
  }
  trust.set_threshold(o.threshold);
  auto file = vehicle::ReadBundleFile(o.bundle, o.trust.empty() ? nullptr : &trust);
  if (!file.ok()) return Fail(file.error());
  char dir[] = "/tmp/aloft-vehicle-plan-XXXXXX";
  if (!::mkdtemp(dir)) return Fail(Error(Code::kIo, "cannot create a temporary directory"));
  auto plan = vehicle::PlanCampaign(file->bundle, file->images, *spec, HubBuses(*spec), dir);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!plan.ok()) return Fail(plan.error());
  std::printf(
      "plan for %s %s on %s%s: each ECU alone, predicted by flashing it in a simulated "
      "car (bit rates, ISO-TP, DoIP, flash timing); one transfer per medium at a time, "
      "the longest first\n",
      file->bundle.name.c_str(), file->bundle.version.c_str(), spec->name.c_str(),
      o.trust.empty() ? " (signatures not checked: no --trust)" : "");
  std::printf("%s", plan->Format().c_str());
  return 0;
}

// prompt, accept, defer: the driver's screen, through the running aloft-vehicle's local API.
int Driver(const std::string& verb, const std::string& endpoint) {
  auto r = vehicle::CallHmi(endpoint, verb);
  if (!r.ok()) return Fail(r.error());
  const std::string screen = r->value("screen", "");
  if (verb == "screen") {
    std::printf("%s\n", screen.empty() ? "(nothing on the screen)" : screen.c_str());
    std::printf("aloft-vehicle: %s\n", r->value("activity", "").c_str());
  } else {
    std::printf("%s: %s\n", verb == "accept" ? "accepted" : "deferred",
                screen.empty() ? "asked again later" : screen.c_str());
  }
  return 0;
}

std::atomic<bool> g_stop{false};

// The daemon (--config): check in, install what is offered, report; again after the interval
// the server asks for, or at once when aloftd pushes a command over MQTT.
int Daemon(const std::string& path, bool once) {
  auto config = vehicle::LoadDaemonConfig(path);
  if (!config.ok()) return Fail(config.error());
  std::error_code ec;
  std::filesystem::create_directories(config->state_dir, ec);
  Options o;
  o.network = config->network;
  o.hub = config->hub;
  o.doip = config->doip;
  o.doip_tls_ca = config->doip_tls_ca;
  o.doip_tls_name = config->doip_tls_name;
  o.tester_cert = config->tester_cert;
  o.tester_key = config->tester_key;
  o.state = config->state_dir;
  o.hmi = config->hmi;
  o.agent_listen = config->agent_listen;
  o.agent_ecus = config->agent_ecus;
  o.defer_interval_s = config->defer_interval.count();
  Gateway g;
  if (Status s = g.Open(o); !s.ok()) return Fail(s.error());
  o.content_key_for = vehicle::ActionContentKey(config->state_dir);
  if (Status s = g.MakeManager(o, config->trust); !s.ok()) return Fail(s.error());
  if (Status s = g.StartHmi(o); !s.ok()) return Fail(s.error());
  auto http = agent::MakeHttpUplink(config->server, config->device, config->token, config->tls());
  std::unique_ptr<agent::PushLink> push;
  std::unique_ptr<agent::Uplink> pushed;
  if (!config->mqtt_url.empty()) {
    auto link = agent::PushLink::Start({.url = config->mqtt_url,
                                        .ca_file = config->mqtt_ca_file,
                                        .user = config->device,
                                        .token = config->token,
                                        .cert_file = config->cert_file,
                                        .key_file = config->key_file},
                                       std::cerr);
    if (!link.ok()) return Fail(link.error());
    push = std::move(*link);
    pushed = push->UplinkFor(config->device, http.get());
  }
  vehicle::VehicleAgent agent(
      *config, pushed ? *pushed : *http, g.manager(),
      [&g](const std::function<void()>& fn) { g.loop().Run(fn); }, std::cerr);
  std::signal(SIGINT, [](int) { g_stop = true; });
  std::signal(SIGTERM, [](int) { g_stop = true; });
  while (!g_stop) {
    auto interval = agent.RunOnce();
    if (!interval.ok()) {
      std::cerr << "aloft-vehicle: " << interval.error().ToString() << "\n";
      if (once) return 1;
      interval = std::chrono::seconds(10);
    }
    if (once) return 0;
    if (push) {
      push->Wait(std::chrono::duration_cast<std::chrono::milliseconds>(config->push_poll_interval),
                 std::chrono::duration_cast<std::chrono::milliseconds>(*interval), &g_stop);
    } else {
      for (auto waited = std::chrono::seconds(0); waited < *interval && !g_stop;
           waited += std::chrono::seconds(1)) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "aloft-vehicle: the OTA manager on a car's gateway: installs vehicle bundles on the ECUs, "
      "all or nothing (docs/vehicle-bundle.md)"};
  std::string config;
  bool once = false;
  app.add_option("-c,--config", config,
                 "Run as a daemon from this file (TOML: server, credentials, the vehicle "
                 "network, state directory; docs/vehicle-bundle.md)")
      ->check(CLI::ExistingFile);
  app.add_flag("--once", once, "With --config: one check-in (and its update), then exit");
  app.require_subcommand(0, 1);
  Options o;
  auto connection = [&o](CLI::App* c) {
    c->add_option("--network", o.network, "The vehicle description (TOML, as aloft-ecu-sim reads)")
        ->required()
        ->check(CLI::ExistingFile);
    c->add_option("--hub", o.hub, "The bus hub (socketcand rawmode), HOST:PORT");
    c->add_option("--doip", o.doip, "The DoIP edge node, HOST:PORT");
    c->add_option("--doip-tls-ca", o.doip_tls_ca,
                  "DoIP over TLS: --doip is the entity's TLS port (3496 by convention) and this "
                  "CA file issued its certificate")
        ->check(CLI::ExistingFile);
    c->add_option("--doip-tls-name", o.doip_tls_name,
                  "The name the entity's certificate must carry (default: the host of --doip)");
    c->add_option("--tester-cert", o.tester_cert,
                  "UDS Authentication (0x29): the gateway's tester certificate chain (PEM, its "
                  "own first), for ECUs that program only after it")
        ->check(CLI::ExistingFile);
    c->add_option("--tester-key", o.tester_key, "The tester certificate's key (PEM, P-256)")
        ->check(CLI::ExistingFile);
    c->add_option("--state", o.state, "The manager's state directory")->capture_default_str();
  };
  auto hmi = [&o](CLI::App* c, const char* what) {
    c->add_option("--hmi", o.hmi, what)->capture_default_str();
  };
  auto* inventory = app.add_subcommand("inventory", "Read every ECU's identification over UDS");
  connection(inventory);
  auto* install = app.add_subcommand(
      "install", "Verify a vehicle bundle against the car, then install it all or nothing");
  connection(install);
  install->add_option("bundle", o.bundle, "The vehicle bundle (.aloft)")
      ->required()
      ->check(CLI::ExistingFile);
  install->add_option("--trust", o.trust, "A trusted public key (repeatable)")->required();
  install->add_option("--content-key", o.content_key,
                      "An encrypted bundle's content key file (aloft pack/bundle --encrypt)");
  install->add_option("--threshold", o.threshold, "Signatures required")->capture_default_str();
  install->add_flag("-q,--quiet", o.quiet, "No live progress");
  hmi(install, "Serve the driver's screen API here (HOST:PORT; \"off\": none)");
  install->add_option("--agent-ecu", o.agent_ecus,
                      "An ECU that runs aloft-agent itself, NAME=TOKEN_FILE (repeatable): its "
                      "agent uses the gateway as its server");
  install
      ->add_option("--agent-listen", o.agent_listen,
                   "Where the in-car device API for --agent-ecu ECUs listens")
      ->capture_default_str();
  install
      ->add_option("--defer-interval", o.defer_interval_s,
                   "Seconds until a deferred update is asked about again")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  std::map<std::string, CLI::App*> driver;
  for (auto [verb, help] :
       {std::pair{"prompt", "Show the driver's screen: what the update asks"},
        std::pair{"accept", "Accept the update the driver is asked about"},
        std::pair{"defer", "Defer it (until the bundle's deferrals run out)"}}) {
    driver[verb] = app.add_subcommand(verb, help);
    hmi(driver[verb], "The running aloft-vehicle's driver's screen API, HOST:PORT");
  }
  auto* plan = app.add_subcommand(
      "plan",
      "Print the campaign's plan: each ECU's time predicted from the bus and flash "
      "models, when it would run, the makespan against its lower bound");
  plan->add_option("bundle", o.bundle, "The vehicle bundle (.aloft)")
      ->required()
      ->check(CLI::ExistingFile);
  plan->add_option("--network", o.network, "The vehicle description (TOML)")
      ->required()
      ->check(CLI::ExistingFile);
  plan->add_option("--trust", o.trust, "A trusted public key (repeatable; else not checked)");
  plan->add_option("--threshold", o.threshold, "Signatures required")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!config.empty()) return Daemon(config, once);
  if (app.get_subcommands().empty()) {
    std::cerr << app.help();
    return 2;
  }
  if (*plan) return Plan(o);
  if (*driver["prompt"]) return Driver("screen", o.hmi);
  if (*driver["accept"]) return Driver("accept", o.hmi);
  if (*driver["defer"]) return Driver("defer", o.hmi);
  if (o.hub.empty() && o.doip.empty()) {
    return Fail(
        Error(Code::kInvalidArgument, "give --hub, --doip or both: how the ECUs are reached"));
  }
  if (*inventory) return Inventory(o);
  return Install(o);
}
