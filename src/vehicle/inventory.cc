#include "vehicle/inventory.h"

#include <memory>

namespace aloft::vehicle {

namespace {

struct Did {
  uint16_t id;
  std::string EcuIdentity::*field;
};
const Did kDids[] = {{0xF190, &EcuIdentity::vin},      {0xF187, &EcuIdentity::part_number},
                     {0xF18C, &EcuIdentity::serial},   {0xF191, &EcuIdentity::hardware},
                     {0xF189, &EcuIdentity::software}, {0xF180, &EcuIdentity::boot}};

std::string Ascii(const std::vector<uint8_t>& bytes) {
  std::string s;
  for (size_t i = 3; i < bytes.size(); ++i) {
    if (bytes[i] == 0) break;
    s += (bytes[i] >= 0x20 && bytes[i] < 0x7F) ? static_cast<char>(bytes[i]) : '.';
  }
  return s;
}

void ReadFrom(uds::Client& client, std::shared_ptr<EcuIdentity> id, size_t i,
              std::shared_ptr<std::function<void(EcuIdentity)>> done) {
  if (i == std::size(kDids)) {
    id->answered = true;
    return (*done)(*id);
  }
  const Did& d = kDids[i];
  client.Request({0x22, static_cast<uint8_t>(d.id >> 8), static_cast<uint8_t>(d.id)},
                 [&client, id, i, done](Result<uds::Response> r) {
                   if (!r.ok()) {
                     id->error = r.error().message();
                     return (*done)(*id);
                   }
                   if (r->positive()) (*id).*(kDids[i].field) = Ascii(r->bytes);
                   ReadFrom(client, id, i + 1, done);
                 });
}

}  // namespace

std::string EcuIdentity::Describe() const {
  if (!answered) return name + ": no answer (" + error + ")";
  return name + ": software " + software + ", hardware " + hardware + ", part " + part_number +
         ", serial " + serial + ", boot " + boot;
}

void ReadIdentity(uds::Client& client, const std::string& name,
                  std::function<void(EcuIdentity)> done) {
  auto id = std::make_shared<EcuIdentity>();
  id->name = name;
  ReadFrom(client, id, 0, std::make_shared<std::function<void(EcuIdentity)>>(std::move(done)));
}

std::vector<std::string> CheckBundle(const VehicleBundle& b, const Inventory& inventory,
                                     const Counters& counters) {
  std::vector<std::string> problems;
  std::map<std::string, SemVer> final_versions;
  for (const auto& [name, id] : inventory) {
    if (auto v = SemVer::Parse(id.software); v.ok()) final_versions.emplace(name, *v);
  }
  for (const EcuTarget& t : b.ecus) {
    const SemVer target = SemVer::Parse(t.version).value();
    final_versions.insert_or_assign(t.name, target);
    auto it = inventory.find(t.name);
    if (it == inventory.end()) {
      problems.push_back(t.name + ": unknown ECU (this vehicle has no ECU of that name)");
      continue;
    }
    const EcuIdentity& id = it->second;
    if (!id.answered) {
      problems.push_back(t.name + ": does not answer (" + id.error + ")");
      continue;
    }
    // An agent ECU's own agent checks its package's hardware against its device type.
    if (t.method != InstallMethod::kAgent && id.hardware != t.hardware) {
      problems.push_back(t.name + ": wrong hardware: the image is for '" + t.hardware +
                         "', the ECU is '" + id.hardware + "'");
    }
    if (auto running = SemVer::Parse(id.software); running.ok() && target < *running) {
      problems.push_back(t.name + ": a downgrade (" + t.version + " is older than the running " +
                         id.software + ")");
    }
    if (t.base && id.software != t.base->version) {
      problems.push_back(t.name + ": the delta applies to " + t.base->version + "; the ECU runs " +
                         id.software + " (it needs a full image)");
    }
    if (auto c = counters.find(t.name); c != counters.end() && t.security_counter < c->second) {
      problems.push_back(t.name + ": security counter " + std::to_string(t.security_counter) +
                         " is below the recorded " + std::to_string(c->second) +
                         " (anti-rollback)");
    }
  }
  if (auto order = DependencyOrder(b); !order.ok()) problems.push_back(order.error().message());
  for (const EcuTarget& t : b.ecus) {
    for (const VersionConstraint& c : t.requires_versions) {
      auto v = final_versions.find(c.ecu);
      if (v == final_versions.end()) {
        problems.push_back(t.name + " requires " + c.ToString() + "; the vehicle has no such ECU");
      } else if (!c.Allows(v->second)) {
        problems.push_back(t.name + " requires " + c.ToString() + "; it would run " +
                           v->second.ToString());
      }
    }
  }
  return problems;
}

}  // namespace aloft::vehicle
