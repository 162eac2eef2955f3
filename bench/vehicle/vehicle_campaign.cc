// bench/vehicle.sh's program (issue 22, must show 5): the demo car of examples/demo-car.toml,
// every ECU updated by one bundle, on simulated time. Prints each ECU's time alone (its whole
// flash with the car otherwise idle), the lower bound (the largest, over media and dependency
// chains, of the summed times alone), the plan's makespan, and the makespan of the campaign the
// manager runs (inventory, OTA mode, transfers, activation, inventory again; the backups of
// single-bank ECUs come from the gateway's store, as in every campaign after the first, whose
// read-backs are printed apart), against one ECU after another.
//
// Usage: aloft_bench_vehicle_campaign VEHICLE_TOML WORK_DIR [SCALE]
//   SCALE: each image's size as a share of its ECU's application area (default 0.9).
#include <cstdio>
#include <filesystem>
#include <random>

#include "core/clock.h"
#include "crypto/keys.h"
#include "ecusim/boot_record.h"
#include "vehicle/manager.h"
#include "vehicle/plan.h"
#include "vehicle/sim_car.h"

namespace {

using namespace aloft;

double Seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

Bytes Body(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

// A bundle updating every ECU of `spec` to "X.Y.Z" where each keeps its own major and minor and
// gets `patch`; images `scale` of the application area. Written to `out`.
Status MakeBundle(const ecusim::VehicleSpec& spec, const std::string& dir, int patch, double scale,
                  const crypto::PrivateKey& key, const std::string& out) {
  pkg::PackOptions o;
  o.name = spec.name;
  o.version = "2026.12." + std::to_string(patch);
  o.hardware = {spec.name};
  o.keys = {&key};
  o.output = out;
  o.progress = Progress::Mode::kNever;
  o.compression = pkg::Compression::kNone;
  o.extra = {{"vehicle", {{"model", spec.name}, {"policy", {{"mode", "silent"}}}}}};
  for (const auto& e : spec.ecus) {
    const std::string version = "90.0." + std::to_string(patch);
    const size_t size = static_cast<size_t>(e.config.app_size * scale) / 8 * 8;
    const std::string path = dir + "/" + e.config.name + "-" + std::to_string(patch) + ".bin";
    const Bytes image = ecusim::MakeAppImage(
        version, e.config.part_number,
        Body(size - ecusim::kAppHeader, static_cast<uint32_t>(patch * 100 + e.config.name[0])));
    ALOFT_RETURN_IF_ERROR(WriteFileAtomic(path, AsChars(image)));
    nlohmann::json install = {
        {"method", e.config.layout == ecusim::BankLayout::kAb ? "uds-ab" : "uds"},
        {"version", version},
        {"hardware", e.config.hardware_version},
        {"bus", e.bus},
        {"address", e.config.app_address}};
    if (e.bus != "doip") {
      install["request_id"] = e.request_id;
      install["response_id"] = e.response_id;
    }
    if (e.doip_address) install["doip_address"] = *e.doip_address;
    o.components.push_back({.name = e.config.name, .path = path, .install = install});
  }
  ManualClock clock;
  return pkg::Pack(o, clock);
}

int Run(const std::string& toml, const std::string& work, double scale) {
  auto spec = ecusim::LoadVehicleSpec(toml);
  if (!spec.ok()) return std::fprintf(stderr, "%s\n", spec.error().ToString().c_str()), 1;
  std::set<std::string> hub;  // as aloft-vehicle reaches them: classic buses directly
  for (const auto& b : spec->buses) {
    if (!b.fd) hub.insert(b.name);
  }
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519).value();
  crypto::TrustSet trust({key.public_key()}, 1);
  std::filesystem::create_directories(work + "/images");
  const std::string v1 = work + "/car-1.aloft", v2 = work + "/car-2.aloft";
  for (auto [patch, out] : {std::pair<int, std::string>{1, v1}, {2, v2}}) {
    if (Status s = MakeBundle(*spec, work + "/images", patch, scale, key, out); !s.ok()) {
      return std::fprintf(stderr, "%s\n", s.error().ToString().c_str()), 1;
    }
  }
  auto second = vehicle::ReadBundleFile(v2, &trust);
  if (!second.ok()) return std::fprintf(stderr, "%s\n", second.error().ToString().c_str()), 1;

  // The plan: each ECU alone, predicted in a simulated car of its own.
  auto plan = vehicle::PlanCampaign(second->bundle, second->images, *spec, hub, work + "/plan");
  if (!plan.ok()) return std::fprintf(stderr, "%s\n", plan.error().ToString().c_str()), 1;
  uint64_t bytes = 0;
  for (const auto& e : plan->ecus) bytes += e.bytes;
  std::printf("%zu ECUs, %zu buses (%s), %.2f MiB of images (%.0f %% of each application area)\n",
              spec->ecus.size(), spec->buses.size(), "CAN FD through the DoIP edge node",
              bytes / 1048576.0, scale * 100);
  std::printf("%s", plan->Format().c_str());

  // The campaigns, as the manager runs them.
  auto car = vehicle::SimCar::Create(*spec, work + "/car", hub, false);
  if (!car.ok()) return std::fprintf(stderr, "%s\n", car.error().ToString().c_str()), 1;
  vehicle::Manager manager((*car)->loop(), (*car)->network(),
                           {.state_dir = work + "/gateway", .trust = trust, .key = (*car)->Keys()});
  std::printf("\n%-34s %10s %10s %8s\n", "campaign (simulated time)", "makespan s", "bound s",
              "ratio");
  for (auto [label, path] :
       {std::pair<const char*, std::string>{"first (single-bank read-backs)", v1},
        {"next (backups from the store)", v2}}) {
    std::optional<vehicle::InstallReport> r;
    const auto start = (*car)->loop().Now();
    const auto cpu = std::clock();
    manager.Install(path, [&](vehicle::InstallReport x) { r = std::move(x); });
    (*car)->loop().RunUntil([&] { return r.has_value(); }, std::chrono::hours(4));
    const auto took = (*car)->loop().Now() - start;
    if (!r || r->result != vehicle::InstallResult::kAllNew) {
      std::fprintf(stderr, "%s: %s\n", label, r ? r->Summary().c_str() : "did not end");
      return 1;
    }
    std::printf("%-34s %10.2f %10.2f %8.3f   (%.1f s of CPU to simulate)\n", label, Seconds(took),
                Seconds(plan->lower_bound), Seconds(took) / Seconds(plan->lower_bound),
                double(std::clock() - cpu) / CLOCKS_PER_SEC);
    if (path == v2) {
      std::printf("one ECU after another: %.2f s, %.1fx the campaign's makespan\n",
                  Seconds(plan->sequential), Seconds(plan->sequential) / Seconds(took));
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s VEHICLE_TOML WORK_DIR [SCALE]\n", argv[0]);
    return 2;
  }
  return Run(argv[1], argv[2], argc > 3 ? std::atof(argv[3]) : 0.9);
}
