// The campaign plan: the schedule of ECUs whose times alone are known (media one at a time, in
// parallel with each other, the longest first, dependencies respected) and its lower bound.
// bench/vehicle.sh holds the predicted times against a whole campaign in the simulated car.
#include "vehicle/plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ecusim/boot_record.h"
#include "support/matchers.h"
#include "support/temp_dir.h"
#include "vehicle/campaign.h"
#include "vehicle/sim_car.h"

namespace aloft::vehicle {
namespace {

using std::chrono::seconds;

VehicleBundle Bundle(std::vector<std::pair<std::string, std::vector<std::string>>> ecus) {
  VehicleBundle b;
  for (auto& [name, after] : ecus) {
    EcuTarget t;
    t.name = name;
    t.after = after;
    b.ecus.push_back(std::move(t));
  }
  return b;
}

TEST(Schedule, LongestFirstPerMedium_MediaInParallel_DependenciesRespected) {
  const VehicleBundle b = Bundle({{"a", {}}, {"b", {}}, {"c", {}}, {"d", {"c"}}});
  const CampaignPlan p = Schedule({{.name = "a", .medium = "pt", .alone = seconds(2)},
                                   {.name = "b", .medium = "pt", .alone = seconds(5)},
                                   {.name = "c", .medium = "ch", .alone = seconds(3)},
                                   {.name = "d", .medium = "eth:d", .alone = seconds(1)}},
                                  b);
  ASSERT_EQ(p.ecus.size(), 4u);
  std::map<std::string, std::pair<int64_t, int64_t>> at;
  for (const auto& e : p.ecus) {
    at[e.name] = {std::chrono::duration_cast<seconds>(e.start).count(),
                  std::chrono::duration_cast<seconds>(e.end).count()};
  }
  EXPECT_EQ(at["b"], std::make_pair(int64_t{0}, int64_t{5})) << "the longest on pt first";
  EXPECT_EQ(at["a"], std::make_pair(int64_t{5}, int64_t{7}));
  EXPECT_EQ(at["c"], std::make_pair(int64_t{0}, int64_t{3}));
  EXPECT_EQ(at["d"], std::make_pair(int64_t{3}, int64_t{4})) << "after c, on its own medium";
  EXPECT_EQ(p.makespan, seconds(7));
  EXPECT_EQ(p.sequential, seconds(11));
  EXPECT_EQ(p.lower_bound, seconds(7));
  EXPECT_EQ(p.bound_by, "bus pt");

  // A chain longer than any medium bounds it.
  const CampaignPlan q = Schedule({{.name = "c", .medium = "ch", .alone = seconds(3)},
                                   {.name = "d", .medium = "eth:d", .alone = seconds(6)}},
                                  Bundle({{"c", {}}, {"d", {"c"}}}));
  EXPECT_EQ(q.lower_bound, seconds(9));
  EXPECT_EQ(q.bound_by, "chain c -> d");
  EXPECT_EQ(q.makespan, seconds(9));
}

}  // namespace
}  // namespace aloft::vehicle
