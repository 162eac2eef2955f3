// aloft-ecu-sim: a simulated car from a TOML vehicle file (docs/vehicle-network.md), in real
// time, for other processes: its CAN buses through the bus hub (socketcand rawmode: python-can,
// scapy and aloft tools attach), its DoIP edge node on TCP/UDP, and a control port for faults,
// signals and the status view. `scan` is a tester that reads every ECU's identification.
//
//   aloft-ecu-sim run car.toml --state /tmp/car --hub 127.0.0.1:29536 --doip 127.0.0.1:13400
//   aloft-ecu-sim ctl --control 127.0.0.1:29537 status
//   aloft-ecu-sim scan --hub 127.0.0.1:29536 --bus powertrain --bus body
//   aloft-ecu-sim scan --doip 127.0.0.1:13400 --target 0x1001
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <future>
#include <iostream>

#include "can/socketcand_bus.h"
#include "can/socketcand_server.h"
#include "core/file.h"
#include "doip/client.h"
#include "doip/socket_server.h"
#include "ecusim/vehicle.h"
#include "isotp/channel.h"
#include "net/stream.h"
#include "uds/client.h"

namespace {

using namespace aloft;

std::atomic<bool> g_stop{false};

int Fail(const Error& e) {
  std::cerr << "aloft-ecu-sim: " << e.ToString() << "\n";
  return e.code() == Code::kInvalidArgument ? 2 : 1;
}

Result<uint16_t> ParseAddress(const std::string& s) {
  char* end = nullptr;
  const unsigned long v = std::strtoul(s.c_str(), &end, 0);
  if (!end || *end || v > 0xFFFF) {
    return Error(Code::kInvalidArgument, "'" + s + "' is not a 16-bit address (like 0x1001)");
  }
  return static_cast<uint16_t>(v);
}

// The control port: one command per connection, one reply.
class ControlServer {
 public:
  ControlServer(RealLoop& loop, ecusim::Vehicle& vehicle) : loop_(loop), vehicle_(vehicle) {}
  ~ControlServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  Result<net::Endpoint> Start(const net::Endpoint& at) {
    ALOFT_ASSIGN_OR_RETURN(listen_, net::ListenTcp(at));
    ALOFT_ASSIGN_OR_RETURN(net::Endpoint where, net::LocalEndpoint(listen_.get()));
    thread_ = std::thread([this] { Serve(); });
    return where;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{listen_.get(), POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      net::Fd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c.valid()) continue;
      std::string line;
      char ch;
      while (line.size() < 1024 && ::recv(c.get(), &ch, 1, 0) == 1 && ch != '\n') line += ch;
      std::string reply;
      loop_.Run([&] {
        auto r = vehicle_.Control(line);
        reply = r.ok() ? *r : "error: " + r.error().message();
      });
      if (reply.empty() || reply.back() != '\n') reply += '\n';
      (void)net::WriteAll(c.get(), reply);
    }
  }
  RealLoop& loop_;
  ecusim::Vehicle& vehicle_;
  net::Fd listen_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

struct TlsOptions {
  std::string at, cert, key;
};

int Run(const std::string& file, std::string state, const std::string& hub,
        const std::string& doip_at, const std::string& control, const std::string& announce,
        const TlsOptions& tls) {
  auto spec = ecusim::LoadVehicleSpec(file);
  if (!spec.ok()) return Fail(spec.error());
  if (spec->doip) spec->doip->answer_gap = std::chrono::milliseconds(20);  // see EntityConfig
  if (state.empty()) state = "aloft-ecu-sim-" + spec->name;
  std::error_code ec;
  std::filesystem::create_directories(state, ec);
  if (ec) return Fail(Error(Code::kIo, "cannot create " + state + ": " + ec.message()));
  RealLoop loop;
  std::unique_ptr<ecusim::Vehicle> vehicle;
  Status made = OkStatus();
  loop.Run([&] {
    auto v = ecusim::Vehicle::Create(loop, *spec, state);
    if (v.ok()) {
      vehicle = std::move(*v);
    } else {
      made = std::move(v).error();
    }
  });
  if (!made.ok()) return Fail(made.error());
  std::printf("vehicle %s (VIN %s): %zu buses, %zu ECUs, flash in %s\n", spec->name.c_str(),
              spec->vin.c_str(), spec->buses.size(), spec->ecus.size(), state.c_str());

  std::unique_ptr<can::SocketcandServer> hub_server;
  if (!hub.empty()) {
    auto at = net::ParseEndpoint(hub);
    if (!at.ok()) return Fail(at.error());
    hub_server = std::make_unique<can::SocketcandServer>(
        loop,
        [&](const std::string& name,
            const std::string& peer) -> Result<std::unique_ptr<can::CanBus>> {
          can::SimBus* b = vehicle->bus(name);
          if (!b) return Error(Code::kNotFound, "no bus named '" + name + "'");
          return std::unique_ptr<can::CanBus>(b->Attach("hub:" + peer));
        });
    auto where = hub_server->Start(*at);
    if (!where.ok()) return Fail(where.error());
    std::printf("bus hub (socketcand rawmode) on %s: buses", where->ToString().c_str());
    for (const auto& b : spec->buses) std::printf(" %s", b.name.c_str());
    std::printf("\n");
  }
  std::unique_ptr<doip::SocketServer> doip_server;
  if (!doip_at.empty()) {
    if (!vehicle->entity()) {
      return Fail(Error(Code::kInvalidArgument, file + ": --doip needs a [doip] table"));
    }
    auto at = net::ParseEndpoint(doip_at);
    if (!at.ok()) return Fail(at.error());
    doip_server = std::make_unique<doip::SocketServer>(loop, *vehicle->entity());
    if (!tls.at.empty()) {
      auto tls_at = net::ParseEndpoint(tls.at);
      if (!tls_at.ok()) return Fail(tls_at.error());
      if (tls.cert.empty() || tls.key.empty()) {
        return Fail(Error(Code::kInvalidArgument, "--doip-tls needs --tls-cert and --tls-key"));
      }
      auto where = doip_server->ListenTls(*tls_at, tls.cert, tls.key);
      if (!where.ok()) return Fail(where.error());
      std::printf(
          "DoIP over TLS on %s%s\n", where->ToString().c_str(),
          vehicle->entity()->config().require_tls ? " (required: plain connections get 0x07)" : "");
    }
    auto where = doip_server->Start(*at);
    if (!where.ok()) return Fail(where.error());
    std::printf("DoIP entity 0x%04X on %s (TCP and UDP)\n",
                vehicle->entity()->config().logical_address, where->ToString().c_str());
    if (!announce.empty()) {
      auto to = net::ParseEndpoint(announce);
      if (!to.ok()) return Fail(to.error());
      doip_server->Announce(*to);
    }
  }
  std::unique_ptr<ControlServer> control_server;
  if (!control.empty()) {
    auto at = net::ParseEndpoint(control);
    if (!at.ok()) return Fail(at.error());
    control_server = std::make_unique<ControlServer>(loop, *vehicle);
    auto where = control_server->Start(*at);
    if (!where.ok()) return Fail(where.error());
    std::printf("control on %s\n", where->ToString().c_str());
  }
  loop.Run([&] {
    for (const std::string& line : vehicle->Status()) std::printf("  %s\n", line.c_str());
  });
  std::fflush(stdout);
  std::signal(SIGINT, [](int) { g_stop = true; });
  std::signal(SIGTERM, [](int) { g_stop = true; });
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  control_server.reset();
  doip_server.reset();
  hub_server.reset();
  loop.Run([&] { vehicle.reset(); });
  std::printf("stopped\n");
  return 0;
}

int Ctl(const std::string& control, const std::vector<std::string>& words) {
  auto at = net::ParseEndpoint(control);
  if (!at.ok()) return Fail(at.error());
  auto fd = net::ConnectTcp(*at, std::chrono::seconds(5));
  if (!fd.ok()) return Fail(fd.error());
  std::string line;
  for (const auto& w : words) line += (line.empty() ? "" : " ") + w;
  if (!net::WriteAll(fd->get(), line + "\n").ok()) return 1;
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd->get(), buf, sizeof buf, 0)) > 0) reply.append(buf, static_cast<size_t>(n));
  std::fputs(reply.c_str(), stdout);
  return reply.starts_with("error:") ? 1 : 0;
}

std::string Ascii(const uds::Response& r) {
  std::string s;
  for (size_t i = 3; i < r.bytes.size(); ++i) {
    const uint8_t b = r.bytes[i];
    s += (b >= 0x20 && b < 0x7F) ? static_cast<char>(b) : '.';
  }
  return s;
}

const std::pair<uint16_t, const char*> kDids[] = {{0xF190, "VIN"},      {0xF187, "part"},
                                                  {0xF18C, "serial"},   {0xF189, "software"},
                                                  {0xF191, "hardware"}, {0xF180, "boot"}};

// Reads the identification DIDs of one ECU; one printed line.
void ReadIdentification(RealLoop& loop, uds::Link& link, const std::string& where) {
  std::string line = where;
  std::unique_ptr<uds::Client> client;  // one for the ECU, made and dropped on the loop
  loop.Run([&] {
    client = std::make_unique<uds::Client>(link,
                                           uds::ClientConfig{.p2 = std::chrono::milliseconds(500)});
  });
  for (const auto& entry : kDids) {
    const uint16_t did = entry.first;
    const char* label = entry.second;
    std::promise<Result<uds::Response>> got;
    loop.Run([&] {
      client->Request({0x22, static_cast<uint8_t>(did >> 8), static_cast<uint8_t>(did)},
                      [&](Result<uds::Response> r) { got.set_value(std::move(r)); });
    });
    auto r = got.get_future().get();
    if (!r.ok()) {  // the ECU is not there: one error, not six
      line += "  " + r.error().message();
      break;
    }
    line += std::string("  ") + label + "=" + (r->positive() ? Ascii(*r) : "NRC");
  }
  loop.Run([&] { client.reset(); });
  std::printf("%s\n", line.c_str());
}

int ScanHub(const std::string& hub, const std::vector<std::string>& buses) {
  auto at = net::ParseEndpoint(hub);
  if (!at.ok()) return Fail(at.error());
  RealLoop loop;
  for (const std::string& name : buses) {
    auto bus = can::SocketcandBus::Connect(loop, *at, name);
    if (!bus.ok()) return Fail(bus.error());
    std::this_thread::sleep_for(can::SocketcandServer::kRawmodeSettle * 2);
    // Functional 22 F1 90 on 0x7DF; whoever answers on 0x7E8..0x7EF is an ECU.
    std::vector<std::unique_ptr<isotp::Channel>> channels;
    std::vector<std::unique_ptr<uds::IsoTpLink>> links;
    std::unique_ptr<isotp::Channel> functional;
    std::unique_ptr<uds::IsoTpLink> functional_link;
    std::promise<std::vector<std::pair<uds::Link*, uds::Response>>> answers;
    loop.Run([&] {
      for (uint32_t i = 0; i < 8; ++i) {
        channels.push_back(std::make_unique<isotp::Channel>(
            **bus, isotp::Address{.tx_id = 0x7E0 + i, .rx_id = 0x7E8 + i}));
        links.push_back(std::make_unique<uds::IsoTpLink>(*channels.back(), **bus));
      }
      functional = std::make_unique<isotp::Channel>(
          **bus, isotp::Address{.tx_id = 0x7DF, .rx_id = 0x7E8, .functional = true});
      functional_link = std::make_unique<uds::IsoTpLink>(*functional, **bus);
      std::vector<uds::Link*> raw;
      for (auto& l : links) raw.push_back(l.get());
      uds::Client::Functional(*functional_link, raw, {0x22, 0xF1, 0x90},
                              std::chrono::milliseconds(500), std::chrono::milliseconds(5000),
                              [&](auto got) { answers.set_value(std::move(got)); });
    });
    auto got = answers.get_future().get();
    std::printf("bus %s: %zu ECU(s) answered 22 F1 90 on 0x7DF\n", name.c_str(), got.size());
    for (auto& [link, response] : got) {
      size_t i = 0;
      while (i < links.size() && links[i].get() != link) ++i;
      char where[64];
      std::snprintf(where, sizeof where, "  %s 0x%03X/0x%03X", name.c_str(), 0x7E0 + unsigned(i),
                    0x7E8 + unsigned(i));
      ReadIdentification(loop, *link, where);
    }
    loop.Run([&] {
      functional_link.reset();
      functional.reset();
      links.clear();
      channels.clear();
      bus->reset();
    });
  }
  return 0;
}

int ScanDoip(const std::string& doip_at, const std::vector<std::string>& targets) {
  auto at = net::ParseEndpoint(doip_at);
  if (!at.ok()) return Fail(at.error());
  // Vehicle identification over UDP.
  auto udp = net::BindUdp({at->host, 0});
  if (!udp.ok()) return Fail(udp.error());
  auto dest = net::ToSockaddr(*at);
  const Bytes request = doip::Encode(doip::kVersionAny, doip::type::kVehicleIdRequest, {});
  ::sendto(udp->get(), request.data(), request.size(), 0,
           reinterpret_cast<const sockaddr*>(&dest->first), dest->second);
  pollfd p{udp->get(), POLLIN, 0};
  if (::poll(&p, 1, 2000) <= 0) {
    return Fail(Error(Code::kUnavailable, "no DoIP entity answered at " + at->ToString()));
  }
  uint8_t buf[512];
  const ssize_t n = ::recv(udp->get(), buf, sizeof buf, 0);
  if (n < static_cast<ssize_t>(doip::kHeader)) return Fail(Error(Code::kMalformed, "short answer"));
  auto a = doip::ParseAnnouncement(
      ByteSpan(buf + doip::kHeader, static_cast<size_t>(n) - doip::kHeader));
  if (!a.ok()) return Fail(a.error());
  std::printf("DoIP entity at %s: VIN %s, logical address 0x%04X\n", at->ToString().c_str(),
              a->vin.c_str(), a->logical_address);
  RealLoop loop;
  auto fd = net::ConnectTcp(*at, std::chrono::seconds(5));
  if (!fd.ok()) return Fail(fd.error());
  std::unique_ptr<doip::Client> client;
  std::promise<Result<uint16_t>> activated;
  loop.Run([&] {
    client =
        std::make_unique<doip::Client>(std::make_unique<net::SocketStream>(loop, std::move(*fd)));
    client->Activate([&](Result<uint16_t> r) { activated.set_value(std::move(r)); });
  });
  auto r = activated.get_future().get();
  if (!r.ok()) return Fail(r.error());
  for (const std::string& t : targets) {
    auto address = ParseAddress(t);
    if (!address.ok()) return Fail(address.error());
    std::unique_ptr<uds::Link> link;
    loop.Run([&] { link = client->LinkTo(*address); });
    char where[32];
    std::snprintf(where, sizeof where, "  DoIP 0x%04X", *address);
    ReadIdentification(loop, *link, where);
    loop.Run([&] { link.reset(); });
  }
  loop.Run([&] { client.reset(); });
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "aloft-ecu-sim: simulated ECUs with flash bootloaders, on simulated CAN buses and "
      "DoIP (docs/vehicle-network.md)"};
  app.require_subcommand(1);
  std::string file, state, hub, doip_at, control, announce;
  auto* run = app.add_subcommand("run", "Run the car a vehicle file describes, in real time");
  run->add_option("file", file, "The vehicle file (TOML)")->required()->check(CLI::ExistingFile);
  run->add_option("--state", state, "Directory for the ECUs' flash (default aloft-ecu-sim-NAME)");
  run->add_option("--hub", hub, "Serve the buses in socketcand rawmode on HOST:PORT");
  run->add_option("--doip", doip_at, "Serve the DoIP edge node on HOST:PORT (TCP and UDP)");
  run->add_option("--control", control, "The control port, HOST:PORT (see `ctl`)");
  run->add_option("--announce", announce, "Send the DoIP vehicle announcement to HOST:PORT");
  TlsOptions tls;
  run->add_option("--doip-tls", tls.at, "Serve DoIP over TLS on HOST:PORT (3496 by convention)");
  run->add_option("--tls-cert", tls.cert, "The DoIP entity's certificate chain (PEM)");
  run->add_option("--tls-key", tls.key, "Its private key (PEM)");
  std::vector<std::string> words;
  auto* ctl = app.add_subcommand(
      "ctl",
      "Send a command to a running simulator: status | fault ECU KIND VALUE | "
      "bus BUS error_rate X | busoff ECU | power ECU OFF_MS | signal NAME VALUE");
  ctl->add_option("--control", control, "The simulator's control port")->required();
  ctl->add_option("command", words, "The command")->required();
  std::vector<std::string> buses, targets;
  auto* scan = app.add_subcommand("scan", "Read every ECU's identification DIDs, as a tester");
  scan->add_option("--hub", hub, "A bus hub (socketcand) to scan through");
  scan->add_option("--bus", buses, "Bus names to scan (with --hub)");
  scan->add_option("--doip", doip_at, "A DoIP entity to scan through");
  scan->add_option("--target", targets, "Logical addresses to read over DoIP (0x1001 ...)");
  std::string image_version, image_part = "ALOFT-ECU", image_out;
  uint64_t image_size = 65536, image_seed = 1;
  auto* image = app.add_subcommand(
      "image",
      "Write a simulated ECU application image (the 64-byte header the ECUs read their "
      "version from, then pseudo-random bytes)");
  image->add_option("--version", image_version, "The software version it carries")->required();
  image->add_option("--part", image_part, "The part number in its header")->capture_default_str();
  image->add_option("--size", image_size, "Its size in bytes, header included")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{64}, uint64_t{64} << 20));
  image->add_option("--seed", image_seed, "Seed of its bytes")->capture_default_str();
  image->add_option("-o,--output", image_out, "The file to write")->required();
  CLI11_PARSE(app, argc, argv);
  if (*image) {
    Bytes body(image_size - ecusim::kAppHeader);
    uint64_t x = image_seed * 0x9E3779B97F4A7C15ull + 1;
    for (auto& b : body) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      b = static_cast<uint8_t>(x);
    }
    const Bytes img = ecusim::MakeAppImage(image_version, image_part, body);
    if (Status s = WriteFileAtomic(image_out, AsChars(img)); !s.ok()) return Fail(s.error());
    std::printf("wrote %s: %s, %zu bytes\n", image_out.c_str(), image_version.c_str(), img.size());
    return 0;
  }
  if (*run) return Run(file, state, hub, doip_at, control, announce, tls);
  if (*ctl) return Ctl(control, words);
  if (!hub.empty()) {
    if (buses.empty()) return Fail(Error(Code::kInvalidArgument, "scan --hub needs --bus NAME"));
    if (int rc = ScanHub(hub, buses); rc != 0) return rc;
  }
  if (!doip_at.empty()) return ScanDoip(doip_at, targets);
  if (hub.empty()) return Fail(Error(Code::kInvalidArgument, "scan needs --hub or --doip"));
  return 0;
}
