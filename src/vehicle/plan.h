// A campaign's plan before it runs: how long each ECU takes alone (predicted by flashing it in a
// simulated copy of the car: the vehicle description's bit rates, ISO-TP and DoIP, the ECU's
// flash timing), and when each would run, as the campaign schedules them: every medium (a CAN
// bus, an ECU on Ethernet) one transfer at a time, media in parallel, the longest first among
// the ECUs whose predecessors are done. `aloft-vehicle plan` prints it; bench/vehicle.sh holds
// a campaign's makespan against its lower bound.
#pragma once

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ecusim/vehicle_spec.h"
#include "vehicle/bundle.h"

namespace aloft::vehicle {

struct EcuPlan {
  std::string name, medium;
  uint64_t bytes = 0;
  std::chrono::nanoseconds alone{0};  // its whole flash, with the car otherwise idle
  std::chrono::nanoseconds start{0}, end{0};
};

struct CampaignPlan {
  std::vector<EcuPlan> ecus;               // in the order they start
  std::chrono::nanoseconds makespan{0};    // the last end
  std::chrono::nanoseconds sequential{0};  // one ECU after another
  // The largest, over media and dependency chains, of the summed times alone: no schedule does
  // better.
  std::chrono::nanoseconds lower_bound{0};
  std::string bound_by;  // "bus powertrain", "chain ecm -> tcm"
  std::string Format() const;
};

// The schedule of ECUs whose media and times alone are known.
CampaignPlan Schedule(std::vector<EcuPlan> ecus, const VehicleBundle& b);

// Predicts each ECU's time alone in a simulated car built from `spec` in `work_dir` (reached as
// the gateway reaches it: directly on the CAN buses in `direct`, the others through DoIP), then
// schedules them.
Result<CampaignPlan> PlanCampaign(const VehicleBundle& b,
                                  const std::map<std::string, Bytes>& images,
                                  const ecusim::VehicleSpec& spec,
                                  const std::set<std::string>& direct, const std::string& work_dir);

}  // namespace aloft::vehicle
