#include "vehicle/plan.h"

#include <algorithm>
#include <cstdio>
#include <functional>

#include "ecusim/boot_record.h"
#include "uds/flasher.h"
#include "vehicle/sim_car.h"

namespace aloft::vehicle {

namespace {

double Seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

CampaignPlan Schedule(std::vector<EcuPlan> ecus, const VehicleBundle& b) {
  CampaignPlan plan;
  std::map<std::string, std::chrono::nanoseconds> medium_free, medium_sum, ended;
  for (const EcuPlan& e : ecus) {
    plan.sequential += e.alone;
    medium_sum[e.medium] += e.alone;
  }
  auto after = [&b](const std::string& name) {
    const EcuTarget* t = b.Find(name);
    return t ? t->after : std::vector<std::string>{};
  };
  // List scheduling: at each step, of the ECUs whose predecessors have ended, the longest one
  // that can start earliest on its medium.
  std::vector<bool> placed(ecus.size());
  for (size_t n = 0; n < ecus.size(); ++n) {
    std::optional<size_t> best;
    std::chrono::nanoseconds best_start{};
    for (size_t i = 0; i < ecus.size(); ++i) {
      if (placed[i]) continue;
      std::chrono::nanoseconds ready = medium_free[ecus[i].medium];
      bool known = true;
      for (const std::string& a : after(ecus[i].name)) {
        auto it = ended.find(a);
        if (it == ended.end()) {
          known = false;  // a predecessor not yet placed
          break;
        }
        ready = std::max(ready, it->second);
      }
      if (!known) continue;
      if (!best || ready < best_start ||
          (ready == best_start && ecus[i].alone > ecus[*best].alone)) {
        best = i;
        best_start = ready;
      }
    }
    if (!best) break;  // a cycle (bundles with one are refused before)
    EcuPlan& e = ecus[*best];
    e.start = best_start;
    e.end = best_start + e.alone;
    medium_free[e.medium] = e.end;
    ended[e.name] = e.end;
    placed[*best] = true;
    plan.makespan = std::max(plan.makespan, e.end);
    plan.ecus.push_back(e);
  }
  for (const auto& [medium, sum] : medium_sum) {
    if (sum > plan.lower_bound) {
      plan.lower_bound = sum;
      plan.bound_by = (medium.starts_with("ethernet:") ? "" : "bus ") + medium;
    }
  }
  // Dependency chains: the longest path through "after".
  std::map<std::string, std::pair<std::chrono::nanoseconds, std::string>> chain;
  std::function<std::pair<std::chrono::nanoseconds, std::string>(const std::string&)> longest =
      [&](const std::string& name) -> std::pair<std::chrono::nanoseconds, std::string> {
    if (auto it = chain.find(name); it != chain.end()) return it->second;
    chain[name] = {};  // guards a cycle
    std::chrono::nanoseconds alone{0};
    for (const EcuPlan& e : ecus) {
      if (e.name == name) alone = e.alone;
    }
    std::pair<std::chrono::nanoseconds, std::string> best{alone, name};
    for (const std::string& a : after(name)) {
      auto [t, path] = longest(a);
      if (t + alone > best.first) best = {t + alone, path + " -> " + name};
    }
    return chain[name] = best;
  };
  for (const EcuPlan& e : ecus) {
    auto [t, path] = longest(e.name);
    if (t > plan.lower_bound) {
      plan.lower_bound = t;
      plan.bound_by = "chain " + path;
    }
  }
  return plan;
}

std::string CampaignPlan::Format() const {
  std::string out;
  char line[200];
  std::snprintf(line, sizeof line, "  %-8s %-18s %10s %9s %9s %9s\n", "ECU", "MEDIUM", "BYTES",
                "ALONE s", "START s", "END s");
  out += line;
  for (const EcuPlan& e : ecus) {
    std::snprintf(line, sizeof line, "  %-8s %-18s %10llu %9.2f %9.2f %9.2f\n", e.name.c_str(),
                  e.medium.c_str(), static_cast<unsigned long long>(e.bytes), Seconds(e.alone),
                  Seconds(e.start), Seconds(e.end));
    out += line;
  }
  std::snprintf(line, sizeof line,
                "  makespan %.2f s; lower bound %.2f s (%s); ratio %.3f; one after another "
                "%.2f s (%.1fx)\n",
                Seconds(makespan), Seconds(lower_bound), bound_by.c_str(),
                lower_bound.count() ? Seconds(makespan) / Seconds(lower_bound) : 0.0,
                Seconds(sequential),
                makespan.count() ? Seconds(sequential) / Seconds(makespan) : 0.0);
  out += line;
  return out;
}

Result<CampaignPlan> PlanCampaign(const VehicleBundle& b,
                                  const std::map<std::string, Bytes>& images,
                                  const ecusim::VehicleSpec& spec,
                                  const std::set<std::string>& direct,
                                  const std::string& work_dir) {
  ALOFT_ASSIGN_OR_RETURN(auto car, SimCar::Create(spec, work_dir, direct, false));
  const auto keys = car->Keys();
  std::vector<EcuPlan> ecus;
  for (const EcuTarget& t : b.ecus) {
    Network& net = car->network();
    uds::Client* client = net.client(t.name);
    const ecusim::EcuSpec* es = net.ecu(t.name);
    auto image = images.find(t.name);
    if (!client || !es || image == images.end()) {
      return Error(Code::kInvalidArgument, t.name + ": not in the vehicle description");
    }
    Bytes bytes = image->second;
    if (t.base) {
      // A delta's payload is a patch: an image of the target's size flashes in the same time.
      const size_t header = ecusim::MakeAppImage(t.version, "PLAN", {}).size();
      bytes = ecusim::MakeAppImage(t.version, "PLAN", Bytes(t.size > header ? t.size - header : 0));
    }
    uds::Flasher flasher(
        *client,
        {.image = bytes,
         .address = t.address,
         .key = [&keys, name = t.name](std::span<const uint8_t> seed) { return keys(name, seed); },
         .expect_version = t.version});
    std::optional<Result<uds::FlashReport>> r;
    flasher.Run([&](Result<uds::FlashReport> x) { r = std::move(x); });
    car->loop().RunUntil([&] { return r.has_value(); }, std::chrono::hours(2));
    if (!r) return Error(Code::kUnavailable, t.name + ": its simulated flash did not end");
    if (!r->ok()) return r->error().WithContext(t.name + ": its simulated flash");
    ecus.push_back({.name = t.name,
                    .medium = net.medium(t.name),
                    .bytes = bytes.size(),
                    .alone = (*r)->total});
    car->loop().RunFor(std::chrono::seconds(1));
  }
  return Schedule(std::move(ecus), b);
}

}  // namespace aloft::vehicle
