// bench/vehicle-net.sh's measurements, all on simulated time (exact and repeatable):
//  1. ISO-TP payload throughput against the limit the frame formula gives for the same frames;
//  2. a 1 MiB UDS flash into the C55-model ECU, erase included, against the flash's own time;
//  3. how many times faster than real time the simulation ran.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include "can/sim_bus.h"
#include "ecusim/rig.h"
#include "isotp/channel.h"

namespace {

using namespace aloft;
using std::chrono::duration;
using std::chrono::nanoseconds;

double Seconds(nanoseconds d) { return duration<double>(d).count(); }

struct IsoTpFigure {
  double payload_kbps, limit_kbps, ratio, frames;
  double seconds;  // the simulated time it took
};

// `messages` of `size` bytes from one channel to another, STmin 0, BS 0.
IsoTpFigure IsoTpThroughput(can::BitRates rates, bool fd, size_t size, int messages) {
  SimLoop loop;
  can::SimBus bus(loop, {.name = "bench", .rates = rates, .fd = fd, .tx_queue = 256});
  auto a = bus.Attach("tester");
  auto b = bus.Attach("ecu");
  isotp::Params p{.fd = fd, .tx_dl = fd ? 64 : 8, .max_message = 1 << 20};
  isotp::Channel tx(*a, {.tx_id = 0x7E0, .rx_id = 0x7E8}, p);
  isotp::Channel rx(*b, {.tx_id = 0x7E8, .rx_id = 0x7E0}, p);
  int received = 0;
  rx.OnMessage([&](std::vector<uint8_t>) { ++received; });
  nanoseconds cf_time{0};
  uint64_t frames = 0, cfs = 0;
  std::optional<EventLoop::TimePoint> first_start;
  EventLoop::TimePoint last_end{};
  const nanoseconds ifs = can::BitTime(rates.nominal, 3);
  bus.AddMonitor([&](const can::CanEvent& e) {
    if (e.kind != can::CanEvent::Kind::kFrame) return;
    const nanoseconds d = can::Duration(e.frame, rates);
    ++frames;
    if (e.frame.id == 0x7E0 && e.frame.data[0] >> 4 == 2) {  // a consecutive frame
      cf_time += d;
      ++cfs;
    }
    if (!first_start) first_start = e.at - d + ifs;
    last_end = e.at + ifs;
  });
  std::mt19937 rng(1);
  for (int i = 0; i < messages; ++i) {
    std::vector<uint8_t> m(size);
    for (auto& x : m) x = static_cast<uint8_t>(rng());
    tx.Send(std::move(m));
  }
  loop.RunUntilIdle();
  const double payload = static_cast<double>(size) * received;
  const double elapsed = Seconds(last_end - *first_start);
  IsoTpFigure f;
  f.payload_kbps = payload / elapsed / 1000;
  f.seconds = elapsed;
  // The limit: every frame on the bus a consecutive frame full of payload (7 bytes classic, 63
  // FD), each as long as the frame formula makes the consecutive frames actually sent (their
  // stuff bits included). First frames and flow controls are the protocol's overhead.
  const double per_cf = fd ? 63.0 : 7.0;
  f.limit_kbps = per_cf / (Seconds(cf_time) / static_cast<double>(cfs)) / 1000;
  f.ratio = f.payload_kbps / f.limit_kbps;
  f.frames = static_cast<double>(frames);
  return f;
}

struct FlashFigure {
  double kbps, seconds, flash_seconds, ratio, total;
  bool ok;
  std::string error;
};

FlashFigure UdsFlash(ecusim::RigOptions options, uint32_t block_length, const std::string& dir,
                     double* simulated) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  ecusim::EcuConfig c{.name = "ecm", .max_block_length = block_length};
  auto rig = ecusim::Rig::Create(c, options, dir);
  FlashFigure f{};
  if (!rig.ok()) {
    f.error = rig.error().message();
    return f;
  }
  std::mt19937 rng(2);
  Bytes body((1 << 20) - ecusim::kAppHeader);
  for (auto& x : body) x = static_cast<uint8_t>(rng());
  const Bytes image = ecusim::MakeAppImage("2.0.0", "BENCH", body);
  (void)(*rig)->ecu().Provision(ecusim::MakeAppImage("1.0.0", "BENCH", Bytes(1000, 1)));
  const auto flash_before = (*rig)->ecu().flash().elapsed();
  auto plan = (*rig)->Plan(image);
  plan.expect_version = "2.0.0";
  const auto t0 = (*rig)->loop().Now();
  auto report = (*rig)->Flash(plan);
  *simulated += Seconds((*rig)->loop().Now() - t0);
  if (!report.ok()) {
    f.error = report.error().message();
    return f;
  }
  f.ok = true;
  f.total = Seconds(report->total);  // 10 03 to the new version read after the reset
  // The download: the erase routine to the answer of 37 (the flash's work lies within it).
  f.seconds = Seconds(report->download);
  f.kbps = static_cast<double>(image.size()) / f.seconds / 1000;
  f.flash_seconds = Seconds((*rig)->ecu().flash().elapsed() - flash_before);
  f.ratio = f.seconds / f.flash_seconds;
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "build/bench-vehicle-net";
  const auto wall0 = std::chrono::steady_clock::now();
  double simulated = 0;

  std::printf("ISO-TP payload throughput (STmin 0, BS 0, 100 messages of 4095 bytes)\n");
  std::printf("%-22s %12s %12s %8s %8s %8s\n", "bus", "payload", "limit", "ratio", "goal",
              "frames");
  struct Bus {
    const char* name;
    can::BitRates rates;
    bool fd;
    double goal;
  };
  for (const Bus& b : {Bus{"classic 500 kbit/s", {500'000}, false, 0.97},
                       Bus{"CAN FD 500k/2M", {500'000, 2'000'000}, true, 0.95},
                       Bus{"CAN FD 1M/5M", {1'000'000, 5'000'000}, true, 0.95}}) {
    IsoTpFigure f = IsoTpThroughput(b.rates, b.fd, 4095, 100);
    simulated += f.seconds;
    std::printf("%-22s %8.2f kB/s %7.2f kB/s %8.3f %8.2f %8.0f\n", b.name, f.payload_kbps,
                f.limit_kbps, f.ratio, b.goal, f.frames);
  }

  std::printf(
      "\nUDS flash of 1 MiB into the C55-model ECU (erase 884 ms and program 552 ms per "
      "256 KiB)\n  download: 31 01 FF 00 (erase) to the answer of 37; total: 10 03 to 22 F1 89 "
      "after the reset\n");
  std::printf("%-20s %9s %8s %11s %9s %9s %9s %9s\n", "link", "kB/s", "goal", "download s",
              "flash s", "vs flash", "total s", "total kB/s");
  struct Link {
    const char* name;
    ecusim::RigOptions options;
    uint32_t block;
    const char* goal;
  };
  for (const Link& l :
       {Link{"classic CAN 500k", {.rates = {500'000}}, 0x0802, ">= 24"},
        Link{"CAN FD 500k/2M", {.rates = {500'000, 2'000'000}, .fd = true}, 0x1002, ">= 150"},
        Link{"DoIP 100 Mbit/s", {.doip = true}, 0x4002, "<= 1.05x"}}) {
    FlashFigure f = UdsFlash(l.options, l.block, dir, &simulated);
    if (!f.ok) {
      std::printf("%-22s failed: %s\n", l.name, f.error.c_str());
      return 1;
    }
    std::printf("%-20s %9.2f %8s %11.3f %9.3f %8.3fx %9.3f %9.2f\n", l.name, f.kbps, l.goal,
                f.seconds, f.flash_seconds, f.ratio, f.total, 1048.576 / f.total);
  }
  const double wall = duration<double>(std::chrono::steady_clock::now() - wall0).count();
  std::printf("\nsimulated %.1f s of bus time in %.2f s: %.0fx real time\n", simulated, wall,
              simulated / wall);
  return 0;
}
