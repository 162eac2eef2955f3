// tuf::UptaneClient as a vehicle's gateway uses it: the Director's answer applied and kept, an
// offer verified against both repositories, and Uptane's partial-bundle check of the ECUs a
// verified bundle updates against those the Director names.
#include "tuf/uptane_client.h"

#include <gtest/gtest.h>

#include "core/encoding.h"
#include "core/hash.h"
#include "support/temp_dir.h"
#include "support/tuf_fixture.h"

namespace aloft::tuf {
namespace {

using testing::Repo;

constexpr int64_t kNow = 1'800'000'000'000;

class UptaneClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string bundle = "the bundle's bytes";
    entry_ = TargetEntry(static_cast<int64_t>(bundle.size()), Sha256Hex(AsBytes(bundle)),
                         json::object());
    auto c = UptaneClient::Open(Options());
    ASSERT_TRUE(c.ok()) << c.error().ToString();
    client_ = std::move(*c);
    Repo::Files image = image_.Publish(1, {{"car/1.0.aloft", entry_}}, kNow);
    files_ = {{"timestamp.json", image.timestamp},
              {"1.snapshot.json", image.snapshot},
              {"1.targets.json", image.targets}};
  }
  // The gateway of car-1 with ECUs S1 and S2, its state in dir_/uptane.
  UptaneClient::Options Options() {
    UptaneClient::Options o;
    o.state_dir = dir_ / "uptane";
    o.director_root = FileBytes(director_.Root(1, kNow));
    o.image_root = FileBytes(image_.Root(1, kNow));
    o.device = "car-1";
    o.key = key_;
    o.ecus = {{"S1", {{"hardware_id", "h1"}, {"module", "engine"}}},
              {"S2", {{"hardware_id", "h2"}, {"module", "brakes"}}}};
    return o;
  }
  // The Director's answer naming `ecus` (serial -> hardware) for action 5.
  json Director(int64_t version, const json& ecus) {
    json e = entry_;
    e["custom"] = {{"action", 5}, {"ecus", json::object()}};
    for (const auto& [serial, hw] : ecus.items())
      e["custom"]["ecus"][serial] = {{"hardware_id", hw}};
    Repo::Files f = director_.Publish(version, {{"car/1.0.aloft", e}}, kNow);
    return {{"timestamp", f.timestamp}, {"snapshot", f.snapshot}, {"targets", f.targets}};
  }
  UptaneClient::Fetch Fetch() {
    return [this](const std::string& name, int64_t) -> Result<std::string> {
      auto it = files_.find(name);
      if (it == files_.end()) return Error(Code::kNotFound, name);
      return it->second;
    };
  }

  testing::TempDir dir_;
  Repo director_, image_;
  json entry_;
  std::map<std::string, std::string> files_;
  std::shared_ptr<crypto::PrivateKey> key_ =
      std::make_shared<crypto::PrivateKey>(testing::NewKey());
  std::unique_ptr<UptaneClient> client_;
};

TEST_F(UptaneClientTest, AGatewayVerifiesTheOfferThenTheBundlesEcus) {
  ASSERT_TRUE(client_->ApplyDirector(Director(1, {{"S1", "h1"}, {"S2", "h2"}}), kNow).ok());
  auto t = client_->VerifyOffer(5, "", "", Fetch(), kNow);
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  EXPECT_TRUE(client_->CheckEcus(5, {{"S1", "h1"}, {"S2", "h2"}}).ok());
  // What was trusted is kept: a client opened again holds Director version 1.
  auto again = UptaneClient::Open(Options());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->director().timestamp_version(), 1);
  EXPECT_EQ((*again)->image().targets_version(), 1);
}

// Uptane's partial bundle installation attack: some ECUs the Director names for the update are
// left out, so that the vehicle would end up mixed.
TEST_F(UptaneClientTest, Uptane_PartialBundleInstallation_AnEcuTheDirectorNamesIsMissing) {
  ASSERT_TRUE(client_->ApplyDirector(Director(1, {{"S1", "h1"}, {"S2", "h2"}}), kNow).ok());
  ASSERT_TRUE(client_->VerifyOffer(5, "", "", Fetch(), kNow).ok());
  auto s = client_->CheckEcus(5, {{"S1", "h1"}});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), Code::kUntrusted);
  EXPECT_NE(s.error().message().find("partial bundle"), std::string::npos) << s.error().message();
  // An ECU the Director does not name, and one for other hardware, are refused too.
  EXPECT_FALSE(client_->CheckEcus(5, {{"S1", "h1"}, {"S2", "h2"}, {"S3", "h3"}}).ok());
  s = client_->CheckEcus(5, {{"S1", "h1"}, {"S2", "h9"}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("wrong software"), std::string::npos);
}

// A Director answer that does not verify is not kept: what was trusted stays.
TEST_F(UptaneClientTest, ARefusedDirectorAnswerChangesNothing) {
  ASSERT_TRUE(client_->ApplyDirector(Director(2, {{"S1", "h1"}}), kNow).ok());
  json older = Director(1, {{"S1", "h1"}, {"S2", "h2"}});
  EXPECT_EQ(client_->ApplyDirector(older, kNow).error().code(), Code::kIntegrity);  // rollback
  json forged = Director(3, {{"S1", "h1"}});
  forged["targets"] = Director(4, {{"S1", "h1"}})["targets"];  // mix-and-match
  EXPECT_FALSE(client_->ApplyDirector(forged, kNow).ok());
  EXPECT_EQ(client_->director().targets_version(), 2);
  EXPECT_EQ(client_->ApplyDirector(json::array(), kNow).error().code(), Code::kMalformed);
}

}  // namespace
}  // namespace aloft::tuf
