// The driver's screen API over loopback HTTP, against a DriverPrompt on a real event loop: what
// `aloft-vehicle prompt | accept | defer` see.
#include "vehicle/hmi.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "client/http_client.h"
#include "support/matchers.h"

namespace aloft::vehicle {
namespace {

using ::testing::HasSubstr;

class HmiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_.Run([&] { driver_ = std::make_unique<DriverPrompt>(loop_); });
    server_ = std::make_unique<HmiServer>(
        *driver_, [] { return std::string("waiting for the driver"); },
        [this](const std::function<void()>& fn) { loop_.Run(fn); });
    ASSERT_THAT(server_->Start("127.0.0.1:0"), IsOk());
    at_ = "127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override {
    server_.reset();
    loop_.Run([&] { driver_.reset(); });
  }
  void Ask(UpdateMode mode, int deferrals) {
    loop_.Run([&] {
      driver_->Ask("car 2.0.0", mode, deferrals, std::chrono::seconds(1), [this] { ++went_; });
    });
  }
  int Went() {
    int n = 0;
    loop_.Run([&] { n = went_; });
    return n;
  }

  RealLoop loop_;
  std::unique_ptr<DriverPrompt> driver_;
  std::unique_ptr<HmiServer> server_;
  std::string at_;
  int went_ = 0;
};

TEST_F(HmiTest, AskedDeferredAskedAgainAccepted_TheSecondDeferralRefused) {
  auto screen = CallHmi(at_, "screen");
  ASSERT_THAT(screen, IsOk());
  EXPECT_EQ((*screen)["screen"], "");
  EXPECT_EQ((*screen)["asking"], false);
  EXPECT_THAT(CallHmi(at_, "accept"),
              IsError(Code::kUnavailable, HasSubstr("no update is waiting for an answer")));

  Ask(UpdateMode::kConfirm, 1);
  screen = CallHmi(at_, "screen");
  ASSERT_THAT(screen, IsOk());
  EXPECT_EQ((*screen)["screen"], "update car 2.0.0 ready: accept or defer (1 of 1 deferrals left)");
  EXPECT_EQ((*screen)["activity"], "waiting for the driver");
  ASSERT_THAT(CallHmi(at_, "defer"), IsOk());
  EXPECT_EQ(Went(), 0);
  // Asked again after the interval; no deferral left.
  for (int i = 0; i < 50; ++i) {
    screen = CallHmi(at_, "screen");
    if (screen.ok() && (*screen)["screen"] != "") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_THAT(screen, IsOk());
  EXPECT_EQ((*screen)["screen"], "update car 2.0.0 ready: accept (no deferrals left)");
  EXPECT_THAT(CallHmi(at_, "defer"),
              IsError(Code::kUnavailable, HasSubstr("cannot be deferred again (1 of 1")));
  auto accepted = CallHmi(at_, "accept");
  ASSERT_THAT(accepted, IsOk());
  EXPECT_EQ((*accepted)["screen"], "installing update car 2.0.0: the vehicle must stay parked");
  for (int i = 0; i < 50 && Went() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(Went(), 1);
}

TEST_F(HmiTest, ForcedIsNotAsked_UnknownPathsAndMethodsAreClientErrors) {
  Ask(UpdateMode::kForced, 3);
  auto screen = CallHmi(at_, "screen");
  ASSERT_THAT(screen, IsOk());
  EXPECT_EQ((*screen)["asking"], false);
  EXPECT_THAT(CallHmi(at_, "defer"), IsError(Code::kUnavailable, HasSubstr("no update")));
  auto get = client::Send({.method = "GET", .url = "http://" + at_ + "/v1/accept"});
  ASSERT_THAT(get, IsOk());
  EXPECT_EQ(get->status, 405);
  EXPECT_EQ(get->headers["allow"], "POST");
  auto none = client::Send({.method = "GET", .url = "http://" + at_ + "/v2/screen"});
  ASSERT_THAT(none, IsOk());
  EXPECT_EQ(none->status, 404);
  EXPECT_THAT(none->body, HasSubstr("/v1/screen, /v1/accept, /v1/defer"));
  EXPECT_THAT(CallHmi(at_, "reboot"), IsError(Code::kInvalidArgument, HasSubstr("reboot")));
  EXPECT_THAT(CallHmi("127.0.0.1:1", "screen"),
              IsError(Code::kUnavailable, HasSubstr("is aloft-vehicle running?")));
}

}  // namespace
}  // namespace aloft::vehicle
