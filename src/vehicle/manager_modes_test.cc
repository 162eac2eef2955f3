// The manager's update modes, preconditions and OTA mode against the simulated car: the driver
// asked or told, the campaign waiting for its preconditions, stopping at a safe point when one is
// lost, going back past its deadline; OTA mode entered and left in every outcome.
#include "vehicle/manager_fixture.h"

namespace aloft::vehicle {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST_F(ManagerTest, OtaMode_EnteredAndLeftOnEveryBus_InEveryOutcome) {
  for (bool fail : {false, true}) {
    if (fail) wrong_key_.insert("tcm");
    const InstallReport r = Install(Bundle(fail ? "3.0.0" : "2.0.0"));
    EXPECT_EQ(r.result, fail ? InstallResult::kAllOld : InstallResult::kAllNew) << r.Summary();
    const std::vector<std::string> sent = manager_->ota_requests();
    for (const char* want :
         {"pt: 10 83", "pt: 85 82", "pt: 28 83 01", "fd: 10 83", "fd: 28 83 01", "hu: 10 03",
          "hu: 85 02", "hu: 28 03 01", "pt: 28 80 01", "pt: 85 81", "pt: 10 81", "pt: 14 FF FF FF",
          "fd: 14 FF FF FF", "hu: 28 00 01", "hu: 10 01", "hu: 14 FF FF FF"}) {
      EXPECT_NE(std::find(sent.begin(), sent.end(), want), sent.end()) << want << " fail=" << fail;
    }
    // Left: every ECU in the default session, transmitting, DTC setting on.
    loop_.RunFor(std::chrono::seconds(1));
    for (const Target& t : kTargets) {
      const uds::Server& s = car_->ecu(t.name)->server();
      EXPECT_EQ(s.session(), uds::session::kDefault) << t.name;
      EXPECT_TRUE(s.tx_enabled()) << t.name;
      EXPECT_TRUE(s.dtc_setting_on()) << t.name;
    }
  }
}

TEST_F(ManagerTest, Mode_Silent_InstallsWithoutAWord) {
  const InstallReport r = InstallInMode("silent");
  EXPECT_EQ(r.result, InstallResult::kAllNew) << r.Summary();
  EXPECT_EQ(screen_seen_, "");
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
}

TEST_F(ManagerTest, Mode_Notify_TellsTheDriver_DoesNotAsk) {
  const InstallReport r = InstallInMode("notify");
  EXPECT_EQ(r.result, InstallResult::kAllNew) << r.Summary();
  EXPECT_EQ(screen_seen_, "installing update car 2.0.0: the vehicle must stay parked");
  EXPECT_EQ(manager_->driver().Screen(), "update car 2.0.0 installed");
}

TEST_F(ManagerTest, Mode_Forced_TellsTheDriverItIsRequired_CannotBeDeferred) {
  const InstallReport r = InstallInMode("forced");
  EXPECT_EQ(r.result, InstallResult::kAllNew) << r.Summary();
  EXPECT_EQ(screen_seen_, "installing update car 2.0.0 (required): the vehicle must stay parked");
  EXPECT_THAT(manager_->driver().Defer(), IsError(Code::kUnavailable, HasSubstr("no update")));
  EXPECT_EQ(manager_->driver().Screen(), "update car 2.0.0 installed");
}

TEST_F(ManagerTest, Mode_Confirm_WaitsForTheDriver_DeferralsHaveALimit) {
  const uint64_t before = FlashOperations();
  std::optional<InstallReport> report;
  manager_->Install(WithPolicy("2.0.0", {{"mode", "confirm"}, {"max_deferrals", 2}}),
                    [&](InstallReport r) { report = std::move(r); });
  loop_.RunFor(std::chrono::seconds(10));
  DriverPrompt& d = manager_->driver();
  EXPECT_EQ(d.Screen(), "update car 2.0.0 ready: accept or defer (2 of 2 deferrals left)");
  EXPECT_EQ(manager_->Activity(), "waiting for the driver");
  ASSERT_THAT(d.Defer(), IsOk());
  EXPECT_EQ(d.Screen(), "");
  EXPECT_THAT(d.Defer(), IsError(Code::kUnavailable, HasSubstr("no update is waiting")));
  loop_.RunFor(std::chrono::minutes(61));  // asked again after the interval (an hour)
  EXPECT_EQ(d.Screen(), "update car 2.0.0 ready: accept or defer (1 of 2 deferrals left)");
  ASSERT_THAT(d.Defer(), IsOk());
  loop_.RunFor(std::chrono::minutes(61));
  EXPECT_EQ(d.Screen(), "update car 2.0.0 ready: accept (no deferrals left)");
  EXPECT_THAT(d.Defer(), IsError(Code::kOutOfRange, HasSubstr("cannot be deferred again")));
  EXPECT_EQ(FlashOperations(), before) << "nothing is touched before the driver accepts";
  EXPECT_FALSE(report.has_value());
  ASSERT_THAT(d.Accept(), IsOk());
  loop_.RunUntil([&] { return report.has_value(); }, std::chrono::hours(1));
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->result, InstallResult::kAllNew) << report->Summary();
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
}

TEST_F(ManagerTest, Preconditions_NotMet_TheCampaignWaits_ThenInstalls) {
  car_->signals().speed_kph = 30;
  car_->signals().gear = 127;
  const uint64_t before = FlashOperations();
  std::optional<InstallReport> report;
  manager_->Install(
      WithPolicy("2.0.0", {{"preconditions", {{"max_speed_kph", 0}, {"gears", {"P"}}}}}),
      [&](InstallReport r) { report = std::move(r); });
  loop_.RunFor(std::chrono::seconds(20));
  EXPECT_EQ(manager_->Activity(),
            "waiting for the preconditions: Vehicle.Speed is 30.00 km/h, above 0.00");
  EXPECT_EQ(FlashOperations(), before);
  car_->signals().speed_kph = 0;
  loop_.RunFor(std::chrono::seconds(1));
  EXPECT_EQ(manager_->Activity(),
            "waiting for the preconditions: Vehicle.Powertrain.Transmission.SelectedGear is D");
  car_->signals().gear = 126;
  loop_.RunUntil([&] { return report.has_value(); }, std::chrono::hours(1));
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->result, InstallResult::kAllNew) << report->Summary();

  // Never met within the deadline: refused, nothing touched.
  car_->signals().low_voltage = 11.0;
  loop_.RunFor(std::chrono::milliseconds(200));  // the next state frame says so
  const uint64_t now = FlashOperations();
  const InstallReport r = Install(WithPolicy(
      "2.1.0", {{"max_duration_s", 60}, {"preconditions", {{"min_low_voltage", 11.8}}}}));
  EXPECT_EQ(r.result, InstallResult::kRefused);
  EXPECT_THAT(r.problems,
              ::testing::ElementsAre("precondition not met: "
                                     "Vehicle.LowVoltageBattery.CurrentVoltage is 11.00 V, "
                                     "below 11.80"));
  EXPECT_EQ(FlashOperations(), now);
}

TEST_F(ManagerTest, SpeedMidCampaign_StopsAtASafePoint_ThenTheCampaignFinishes) {
  std::optional<InstallReport> report;
  manager_->Install(WithPolicy("2.0.0", {{"preconditions", {{"max_speed_kph", 0}}}}),
                    [&](InstallReport r) { report = std::move(r); });
  // A third of the way through ecm's transfer on the classic bus (A/B); hu's, over DoIP, is done
  // and waits to be activated; so is adas's (single bank, on the CAN FD bus), which is activated
  // at once: reset into its new, checked image. The A/B ones are reset onto their old banks.
  uint64_t ecm_sent = 0;
  manager_->on_progress = [&](const std::string& ecu, const std::string& stage, uint64_t sent,
                              uint64_t) {
    if (ecu == "ecm" && stage == "transfer") ecm_sent = sent;
  };
  loop_.RunUntil([&] { return ecm_sent > 20'000; }, std::chrono::minutes(10));
  ASSERT_GT(ecm_sent, 20'000u);
  car_->signals().speed_kph = 8;
  loop_.RunUntil([&] { return manager_->signals()->state().speed_kph > 0; },
                 std::chrono::seconds(1));
  const auto frame = loop_.Now();  // the first frame with the speed above 0
  const std::optional<std::chrono::milliseconds> safe = UntilSafePoint(frame);
  loop_.RunUntil([&] { return !manager_->pauses().empty(); }, std::chrono::minutes(1));
  ASSERT_EQ(manager_->pauses().size(), 1u);
  ASSERT_TRUE(safe.has_value());
  std::printf(
      "speed above 0: the car at a safe point (the simulator: no ECU programming, every one "
      "bootable) %lld ms after the frame; the manager paused after %lld ms\n",
      static_cast<long long>(safe->count()), static_cast<long long>(manager_->pauses()[0].count()));
  EXPECT_LE(*safe, std::chrono::milliseconds(100));
  EXPECT_LE(manager_->pauses()[0], std::chrono::milliseconds(100));
  EXPECT_THAT(manager_->Activity(), HasSubstr("paused: Vehicle.Speed is 8.00 km/h"));
  // Driving a minute: nobody programming, every ECU running something, and OTA mode left (the
  // default session, normal communication on) so the car runs as usual.
  loop_.RunFor(std::chrono::minutes(1));
  EXPECT_FALSE(AnyProgramming());
  EXPECT_THAT(Versions(), Not(HasSubstr("-")));
  for (const Target& t : kTargets) {
    const uds::Server& s = car_->ecu(t.name)->server();
    EXPECT_EQ(s.session(), uds::session::kDefault) << t.name;
    EXPECT_TRUE(s.tx_enabled() && s.rx_enabled()) << t.name;
  }
  EXPECT_FALSE(report.has_value());
  ParkUntilAllNew(report);
  ASSERT_TRUE(report.has_value());
  EXPECT_THAT(report->campaign.log, Contains("resumed"));
  // OTA mode entered, left at the safe point, entered again to go on, left at the end.
  const auto sent = manager_->ota_requests();
  EXPECT_EQ(std::count(sent.begin(), sent.end(), "pt: 28 83 01"), 2);
  EXPECT_EQ(std::count(sent.begin(), sent.end(), "pt: 28 80 01"), 2);
}

// The one case a safe point takes longer: a single-bank ECU whose flash was erased has no bootable
// image until its transfer ends, so it is finished and activated; the A/B ECUs still leave the
// programming session at once.
TEST_F(ManagerTest, SpeedWhileASingleBankEcuIsErased_ItIsFinished_TheOthersStopAtOnce) {
  std::optional<InstallReport> report;
  manager_->Install(WithPolicy("2.0.0", {{"preconditions", {{"max_speed_kph", 0}}}}),
                    [&](InstallReport r) { report = std::move(r); });
  // The car starts moving a quarter of the way through tcm's transfer.
  uint64_t tcm_sent = 0;
  bool erased = false;
  manager_->on_progress = [&](const std::string& ecu, const std::string& stage, uint64_t sent,
                              uint64_t) {
    if (ecu != "tcm" || stage != "transfer" || sent < 10'000 || tcm_sent) return;
    tcm_sent = sent;
    erased = !car_->ecu("tcm")->Bootable();
    car_->signals().speed_kph = 30;
  };
  loop_.RunUntil([&] { return tcm_sent > 0; }, std::chrono::minutes(10));
  ASSERT_GT(tcm_sent, 0u);
  EXPECT_TRUE(erased) << "tcm's only image is erased";
  loop_.RunUntil([&] { return manager_->signals()->state().speed_kph > 0; },
                 std::chrono::seconds(1));
  const auto frame = loop_.Now();
  std::optional<std::chrono::milliseconds> ab_out;
  while (!ab_out && loop_.Now() - frame < std::chrono::seconds(1)) {
    loop_.RunFor(std::chrono::milliseconds(1));
    bool out = true;
    for (const char* name : {"ecm", "hu"}) {
      ecusim::Ecu& e = *car_->ecu(name);
      out = out && (!e.online() || e.server().session() != uds::session::kProgramming);
    }
    if (out) ab_out = std::chrono::duration_cast<std::chrono::milliseconds>(loop_.Now() - frame);
  }
  const std::optional<std::chrono::milliseconds> safe = UntilSafePoint(frame);
  ASSERT_TRUE(ab_out.has_value());
  ASSERT_TRUE(safe.has_value());
  loop_.RunUntil([&] { return !manager_->pauses().empty(); }, std::chrono::minutes(1));
  std::printf(
      "speed above 0 with tcm (single bank) erased, %llu bytes sent: A/B ECUs out of the "
      "programming session after %lld ms; tcm finished and started, the car at a safe point "
      "after %lld ms\n",
      static_cast<unsigned long long>(tcm_sent), static_cast<long long>(ab_out->count()),
      static_cast<long long>(safe->count()));
  EXPECT_LE(*ab_out, std::chrono::milliseconds(100));
  EXPECT_EQ(car_->ecu("tcm")->status().version, "2.0.0");
  EXPECT_THAT(Versions(), Not(HasSubstr("-")));
  loop_.RunFor(std::chrono::seconds(30));
  EXPECT_FALSE(AnyProgramming());
  EXPECT_FALSE(report.has_value());
  ParkUntilAllNew(report);
}

TEST_F(ManagerTest, PreconditionLostPastTheDeadline_EveryEcuGoesBack) {
  std::optional<InstallReport> report;
  manager_->Install(
      WithPolicy("2.0.0", {{"max_duration_s", 120}, {"preconditions", {{"max_speed_kph", 0}}}}),
      [&](InstallReport r) { report = std::move(r); });
  loop_.RunUntil([&] { return stages_.count("hu transfer") > 0; }, std::chrono::minutes(10));
  loop_.RunFor(std::chrono::milliseconds(300));
  car_->signals().speed_kph = 50;
  // Past the deadline, still driving: nothing is reset or flashed (going back would do both).
  loop_.RunFor(std::chrono::seconds(5));
  const uint64_t parked = FlashOperations();
  loop_.RunFor(std::chrono::minutes(3));
  EXPECT_THAT(manager_->Activity(), HasSubstr("the deadline passed: going back once the "
                                              "preconditions hold (Vehicle.Speed is 50.00"));
  EXPECT_EQ(FlashOperations(), parked);
  EXPECT_FALSE(AnyProgramming());
  EXPECT_THAT(Versions(), Not(HasSubstr("-")));
  EXPECT_FALSE(report.has_value());
  car_->signals().speed_kph = 0;  // parked: now the ECUs go back
  loop_.RunUntil([&] { return report.has_value(); }, std::chrono::hours(1));
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->result, InstallResult::kAllOld) << report->Summary();
  EXPECT_THAT(report->campaign.first_failure, HasSubstr("deadline (120 s)"));
  loop_.RunFor(std::chrono::seconds(2));
  EXPECT_EQ(Versions(), "ecm=1.0.0 tcm=1.0.0 adas=1.0.0 hu=1.0.0 ");
}

}  // namespace
}  // namespace aloft::vehicle
