// The gateway's in-car device API against a real aloft-agent (the agent library, on a simulated
// A/B flash), over loopback HTTP: the agent checks in with its versions, downloads and verifies
// an offered package and holds it until the gateway lets it install; it then installs, restarts,
// commits and reports; a withdrawn offer is dropped.
#include "vehicle/agent_ecus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "client/http_client.h"
#include "support/matchers.h"
#include "support/package_fixture.h"
#include "support/temp_dir.h"
#include "vehicle/test_agent_ecu.h"

namespace aloft::vehicle {
namespace {

using agent::Agent;
using ::testing::HasSubstr;

class AgentEcusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(server_.Start("127.0.0.1:0"), IsOk());
    device_.emplace(dir_.path(), server_.port(), "hu", "hu-token", pkgs_.Trust({0}, 1));
  }

  std::shared_ptr<const Bytes> Package(const std::string& version) {
    return std::make_shared<const Bytes>(pkgs_.Pack({{"main", testing::RandomBytes(36000, 2)}},
                                                    pkg::Compression::kZstd, {0}, version));
  }

  testing::TempDir dir_;
  testing::PackageFixture pkgs_;
  AgentEcuServer server_{{{.name = "hu", .token = "hu-token"}}};
  std::optional<testing::AgentEcuDevice> device_;
};

TEST_F(AgentEcusTest, HeldUntilAllowed_ThenInstalledCommittedAndReported) {
  std::vector<std::string> feedback;
  std::mutex mu;
  server_.on_feedback = [&](const std::string& ecu, const nlohmann::json& f) {
    std::lock_guard<std::mutex> lock(mu);
    feedback.push_back(ecu + " " + f.value("status", ""));
  };
  // Idle: the gateway learns what the head unit runs.
  EXPECT_THAT(device_->Step(), IsOkAndHolds(Agent::Step::kIdle));
  EXPECT_TRUE(server_.state("hu").seen);
  EXPECT_EQ(server_.state("hu").versions.at("main"), "1.0.0");

  // Phase 1: offered download-only; the agent downloads, verifies and holds it.
  ASSERT_THAT(server_.Offer("hu", Package("2.0.0"), 41), IsOk());
  EXPECT_THAT(device_->Step(), IsOkAndHolds(Agent::Step::kIdle));
  EXPECT_EQ(device_->agent().journal().state, agent::State::kHold);
  EXPECT_EQ(server_.state("hu").status, "downloaded");
  EXPECT_THAT(device_->Step(), IsOkAndHolds(Agent::Step::kIdle)) << "still held at the next poll";
  EXPECT_EQ(device_->agent().journal().state, agent::State::kHold);

  // Phase 2: allowed; it installs into its other slot and restarts into it, then commits.
  server_.Allow("hu");
  EXPECT_THAT(device_->Step(), IsOkAndHolds(Agent::Step::kReboot));  // and it restarts
  EXPECT_EQ(server_.state("hu").status, "installed");
  EXPECT_THAT(device_->Step(), IsOkAndHolds(Agent::Step::kIdle));
  EXPECT_EQ(server_.state("hu").status, "success");
  EXPECT_THAT(device_->Step(), IsOkAndHolds(Agent::Step::kIdle));  // its next check-in
  EXPECT_EQ(server_.state("hu").versions.at("main"), "2.0.0");
  EXPECT_EQ(server_.state("hu").action, 41);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_THAT(feedback, ::testing::Contains("hu downloaded"));
  EXPECT_EQ(feedback.back(), "hu success");
}

TEST_F(AgentEcusTest, AWithdrawnOfferIsDropped_NothingInstalled) {
  ASSERT_THAT(server_.Offer("hu", Package("2.0.0"), 42), IsOk());
  EXPECT_THAT(device_->Step(), IsOkAndHolds(Agent::Step::kIdle));
  ASSERT_EQ(device_->agent().journal().state, agent::State::kHold);
  server_.Withdraw("hu");
  EXPECT_THAT(device_->Step(), IsOkAndHolds(Agent::Step::kIdle));
  EXPECT_EQ(device_->agent().journal().state, agent::State::kIdle);
  EXPECT_EQ(server_.state("hu").status, "canceled");
  EXPECT_EQ(server_.state("hu").versions.at("main"), "1.0.0");
}

TEST_F(AgentEcusTest, ClientMistakes_AreNamedClientErrors) {
  const std::string base = "http://127.0.0.1:" + std::to_string(server_.port());
  auto send = [&](const std::string& method, const std::string& path, const std::string& token,
                  const std::string& body = "") {
    client::HttpRequest r;
    r.method = method;
    r.url = base + path;
    r.body = body;
    if (!token.empty()) r.headers = {"Authorization: Bearer " + token};
    return client::Send(r);
  };
  auto wrong = send("POST", "/device/v1/hu/check-in", "nope", "{}");
  ASSERT_THAT(wrong, IsOk());
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(send("POST", "/device/v1/tcu/check-in", "hu-token", "{}")->status, 401);
  EXPECT_EQ(send("POST", "/device/v1/hu/check-in", "hu-token", "[1")->status, 400);
  EXPECT_EQ(send("GET", "/device/v1/hu/actions/9/artifact", "hu-token")->status, 404);
  auto early =
      send("POST", "/device/v1/hu/actions/9/feedback", "hu-token", R"({"status":"installing"})");
  EXPECT_EQ(early->status, 409);
  EXPECT_THAT(early->body, HasSubstr("not open"));
  ASSERT_THAT(server_.Offer("hu", Package("2.0.0"), 9), IsOk());
  auto held =
      send("POST", "/device/v1/hu/actions/9/feedback", "hu-token", R"({"status":"installing"})");
  EXPECT_EQ(held->status, 409);
  EXPECT_THAT(held->body, HasSubstr("has not let hu install yet"));
  EXPECT_EQ(send("GET", "/device/v1/hu/check-in", "hu-token")->status, 405);
  EXPECT_THAT(server_.Offer("tcu", Package("2.0.0"), 1),
              IsError(Code::kNotFound, HasSubstr("no agent ECU 'tcu'")));
  EXPECT_THAT(server_.Offer("hu", std::make_shared<const Bytes>(Bytes(100, 7)), 1),
              IsError(Code::kMalformed, HasSubstr("hu's package")));
}

}  // namespace
}  // namespace aloft::vehicle
