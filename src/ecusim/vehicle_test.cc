// The simulated car from a vehicle file, on simulated time: the file's errors named, the signals
// on the bus and silenced by 28 03 01, the control commands, and a CAN ECU reached through the
// DoIP edge node.
#include "ecusim/vehicle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "doip/client.h"
#include "net/stream.h"
#include "support/matchers.h"
#include "support/temp_dir.h"
#include "uds/client.h"

namespace aloft::ecusim {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

constexpr char kCar[] = R"(
[vehicle]
name = "test-car"
vin = "WALOFTTEST0000001"
[[bus]]
name = "powertrain"
bitrate = 500000
[doip]
logical_address = 0x1000
[[ecu]]
name = "ecm"
bus = "powertrain"
request_id = 0x7E0
response_id = 0x7E8
doip_address = 0x1001
software = "4.2.0"
app_size = 262144
signals = true
[[ecu]]
name = "hu"
bus = "doip"
doip_address = 0x1010
software = "9.9.9"
app_size = 262144
[signals]
speed_kph = 12.34
gear = "D"
)";

TEST(VehicleSpec, BadFilesNameTheKey) {
  struct Case {
    std::string text, error;
  };
  const std::vector<Case> cases = {
      {"[vehicle]\nvin = \"SHORT\"\n", "not 17 characters"},
      {"[vehicle]\ncolour = 1\n", "unknown key 'colour'"},
      {"[[bus]]\nname = \"a\"\nbitrate = 5\n", "outside 10 kbit/s"},
      {"[[ecu]]\nname = \"x\"\nbus = \"nowhere\"\n", "bus 'nowhere' is not described"},
      {"[[bus]]\nname = \"a\"\n[[ecu]]\nname = \"x\"\nbus = \"a\"\nrequest_id = 0x800\n",
       "'request_id' is above 2047"},
      {"[[bus]]\nname = \"a\"\n[[ecu]]\nname = \"x\"\nbus = \"a\"\nlayout = \"abc\"\n",
       "layout 'abc'"},
      {"[[bus]]\nname = \"a\"\n[[ecu]]\nname = \"x\"\nbus = \"a\"\nsecret = \"zz\"\n",
       "'secret' must be hex"},
      {"[[bus]]\nname = \"a\"\n[[ecu]]\nname = \"x\"\nbus = \"a\"\n[ecu.faults]\nnrc = [\"22\"]\n",
       "SERVICE:NRC"},
      {"[signals]\ngear = \"X\"\n", "gear 'X'"},
      {"[[bus]]\nname = \"a\"\n[[bus]]\nname = \"a\"\n", "a second bus named 'a'"},
      {"[vehicle\n", "car.toml:"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParseVehicleSpec(c.text, "car.toml"),
                IsError(Code::kInvalidArgument, HasSubstr(c.error)))
        << c.text;
  }
}

class VehicleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto spec = ParseVehicleSpec(kCar, "car.toml");
    ASSERT_THAT(spec, IsOk());
    auto v = Vehicle::Create(loop_, *spec, dir_.path());
    ASSERT_THAT(v, IsOk());
    vehicle_ = std::move(*v);
  }
  testing::TempDir dir_;
  SimLoop loop_;
  std::unique_ptr<Vehicle> vehicle_;
};

TEST_F(VehicleTest, Signals_OnTheBus_SilencedByCommunicationControl) {
  auto listener = vehicle_->bus("powertrain")->Attach("listener");
  std::vector<can::Frame> seen;
  listener->AddListener([&](const can::CanEvent& e) {
    if (e.kind == can::CanEvent::Kind::kFrame && e.frame.id == 0x3E8) seen.push_back(e.frame);
  });
  loop_.RunFor(milliseconds(1000));
  ASSERT_GE(seen.size(), 9u);
  EXPECT_EQ(can::ToString(seen.back()), "3E8#04D27F0204EC") << "12.34 km/h, D, ON, 12.60 V";
  ASSERT_THAT(vehicle_->Control("signal speed 50"), IsOk());
  loop_.RunFor(milliseconds(200));
  EXPECT_EQ(seen.back().data[0] << 8 | seen.back().data[1], 5000);
  // 28 03 01 in the extended session: the ECU stops sending them.
  isotp::Channel ch(*listener, {.tx_id = 0x7E0, .rx_id = 0x7E8});
  uds::IsoTpLink link(ch, *listener);
  uds::Client tester(link);
  for (std::vector<uint8_t> r : {std::vector<uint8_t>{0x10, 0x03}, {0x28, 0x03, 0x01}}) {
    tester.Request(r, nullptr);
  }
  loop_.RunFor(milliseconds(100));
  const size_t before = seen.size();
  loop_.RunFor(milliseconds(1000));
  EXPECT_EQ(seen.size(), before);
  EXPECT_EQ(vehicle_->ecu("ecm")->server().tx_enabled(), false);
}

TEST_F(VehicleTest, ControlCommands_AndTheirErrors) {
  EXPECT_THAT(vehicle_->Control("status"),
              IsOkAndHolds(HasSubstr("ecm: application 4.2.0 (powertrain)")));
  EXPECT_THAT(vehicle_->Control("fault ecm reset_at_block 7"), IsOk());
  EXPECT_EQ(vehicle_->ecu("ecm")->faults().reset_at_block, 7);
  EXPECT_THAT(vehicle_->Control("fault ecm nrc 22 31"), IsOk());
  EXPECT_EQ(vehicle_->ecu("ecm")->faults().nrc[0x22], 0x31);
  EXPECT_THAT(vehicle_->Control("bus powertrain error_rate 0.5"), IsOk());
  EXPECT_THAT(vehicle_->Control("busoff ecm"), IsOk());
  EXPECT_THAT(vehicle_->Control("power hu 100"), IsOk());
  EXPECT_FALSE(vehicle_->ecu("hu")->online());
  loop_.RunFor(milliseconds(500));
  EXPECT_TRUE(vehicle_->ecu("hu")->online());
  EXPECT_THAT(vehicle_->Control("fault nobody slow_ms 5"),
              IsError(Code::kInvalidArgument, HasSubstr("no ECU 'nobody'")));
  EXPECT_THAT(vehicle_->Control("bus powertrain error_rate 2"),
              IsError(Code::kInvalidArgument, HasSubstr("0..1")));
  EXPECT_THAT(vehicle_->Control("signal gear X"),
              IsError(Code::kInvalidArgument, HasSubstr("gear")));
  EXPECT_THAT(vehicle_->Control("fly"),
              IsError(Code::kInvalidArgument, HasSubstr("unknown command")));
}

TEST_F(VehicleTest, DoIp_ReachesTheCanEcuAndTheEthernetEcu) {
  auto [tester_end, entity_end] = net::SimStream::Pair(loop_);
  vehicle_->entity()->Accept(std::move(entity_end));
  doip::Client doip(std::move(tester_end));
  std::optional<Result<uint16_t>> activated;
  doip.Activate([&](Result<uint16_t> r) { activated = std::move(r); });
  loop_.RunFor(milliseconds(10));
  ASSERT_THAT(*activated, IsOk());
  for (auto [address, version] :
       {std::pair<uint16_t, std::string>{0x1001, "4.2.0"}, {0x1010, "9.9.9"}}) {
    auto link = doip.LinkTo(address);
    uds::Client tester(*link);
    std::optional<Result<uds::Response>> r;
    tester.Request({0x22, 0xF1, 0x89}, [&](Result<uds::Response> x) { r = std::move(x); });
    loop_.RunFor(milliseconds(100));
    ASSERT_TRUE(r && r->ok()) << address;
    EXPECT_EQ(std::string((*r)->bytes.begin() + 3, (*r)->bytes.end()), version);
  }
}

}  // namespace
}  // namespace aloft::ecusim
