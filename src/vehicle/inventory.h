// What each ECU says it is and runs, read over UDS (22 F1 90, F1 87, F1 8C, F1 91, F1 89,
// F1 80), and the checks a vehicle bundle must pass against it before any ECU is touched:
// every ECU known and answering, the hardware each image is for, no downgrade, no security
// counter below the one recorded, dependencies without a cycle, and the versions each ECU
// requires of the others once the campaign is done.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "uds/client.h"
#include "vehicle/bundle.h"

namespace aloft::vehicle {

struct EcuIdentity {
  std::string name{};
  bool answered = false;
  std::string error{};  // when it did not answer
  std::string vin{}, part_number{}, serial{}, hardware{}, software{}, boot{};
  std::string Describe() const;  // one line
};

using Inventory = std::map<std::string, EcuIdentity>;

// Reads one ECU's identification; `done` always gets an identity (answered false and the
// error when the ECU did not answer).
void ReadIdentity(uds::Client& client, const std::string& name,
                  std::function<void(EcuIdentity)> done);

// Anti-rollback counters recorded per ECU by earlier campaigns.
using Counters = std::map<std::string, uint64_t>;

// Every problem of `b` against the vehicle, one line each; empty when it may be installed.
std::vector<std::string> CheckBundle(const VehicleBundle& b, const Inventory& inventory,
                                     const Counters& counters);

}  // namespace aloft::vehicle
