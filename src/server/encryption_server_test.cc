// Encrypted releases at aloftd (docs/encryption.md), over HTTP on SQLite and PostgreSQL: the
// release's content key given once (and only the key the package names), each device's public
// key kept from its check-in, and each device's action carrying the content key wrapped for it
// alone; a device that enrolled no key is told why it gets none; the server's own key survives
// a restart.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/encoding.h"
#include "crypto/key_wrap.h"
#include "server/server_fixture.h"
#include "support/matchers.h"

namespace aloft::server {
namespace {

using ::aloft::testing::Backend;
using ::testing::HasSubstr;
using json = nlohmann::json;

class EncryptionServerTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    if (IsSkipped()) return;  // no PostgreSQL here
    CallJson("POST", "/api/v1/device-types", admin_, {{"name", "board-a"}}, 201);
    pkgs_.content_key = key_;
    const std::string path = WritePackage(
        "fw.aloft",
        pkgs_.Pack({{"main", testing::RandomBytes(100000, 1)}}, pkg::Compression::kZstd));
    pkgs_.content_key.reset();
    auto res = Upload("?filename=fw-1.2.0.aloft", path, admin_);
    ASSERT_EQ(res.status, 201) << res.body;
  }
  json PutKey(const crypto::ContentKey& k, int expect, const std::string& release = "fw/1.2.0") {
    return CallJson("PUT", "/api/v1/releases/" + release + "/content-key", admin_,
                    {{"content_key", Base64Encode(k)}}, expect);
  }
  // Device `name` checks in (with its encryption key when given); its action.
  json CheckIn(const std::string& name, const std::string& token,
               const crypto::RecipientKey* key = nullptr) {
    json body = {{"versions", {{"main", "1.0.0"}}}};
    if (key) body["encryption_key"] = Base64Encode(key->PublicRaw());
    return CallJson("POST", "/device/v1/" + name + "/check-in", token, body, 200)["action"];
  }

  const crypto::ContentKey key_ = crypto::NewContentKey();
};

TEST_P(EncryptionServerTest, EachDeviceGetsTheContentKeyWrappedForItAlone) {
  // Only the key the package names is taken.
  json wrong = PutKey(crypto::NewContentKey(), 400);
  EXPECT_THAT(wrong.value("message", ""),
              HasSubstr("is encrypted with " + crypto::ContentKeyId(key_)));
  EXPECT_EQ(PutKey(key_, 200)["key_id"], crypto::ContentKeyId(key_));

  auto k1 = crypto::RecipientKey::Generate(), k2 = crypto::RecipientKey::Generate();
  ASSERT_THAT(k1, IsOk());
  ASSERT_THAT(k2, IsOk());
  const std::string t1 = AddDevice("dev-1"), t2 = AddDevice("dev-2"), t3 = AddDevice("dev-3");
  EXPECT_TRUE(CheckIn("dev-1", t1, &*k1).is_null());  // enrols its key; nothing to do yet
  EXPECT_TRUE(CheckIn("dev-2", t2, &*k2).is_null());
  CallJson("POST", "/api/v1/deployments", admin_,
           {{"release", "fw@1.2.0"}, {"devices", {"dev-1", "dev-2", "dev-3"}}}, 201);

  const json a1 = CheckIn("dev-1", t1), a2 = CheckIn("dev-2", t2), a3 = CheckIn("dev-3", t3);
  ASSERT_TRUE(a1.contains("encryption")) << a1.dump();
  EXPECT_EQ(a1["encryption"]["key_id"], crypto::ContentKeyId(key_));
  auto w1 = Base64Decode(a1["encryption"].value("wrapped_key", ""));
  auto w2 = Base64Decode(a2["encryption"].value("wrapped_key", ""));
  ASSERT_THAT(w1, IsOk());
  ASSERT_THAT(w2, IsOk());
  EXPECT_EQ(w1->size(), crypto::kWrappedKeySize);
  EXPECT_THAT(k1->Unwrap(*w1), IsOkAndHolds(key_));
  EXPECT_THAT(k2->Unwrap(*w2), IsOkAndHolds(key_));
  // Not the other device's: a device outside the recipients cannot open it.
  EXPECT_THAT(k2->Unwrap(*w1), IsError(Code::kUntrusted, ::testing::_));
  // dev-3 enrolled no key: told why, given nothing.
  EXPECT_FALSE(a3["encryption"].contains("wrapped_key"));
  EXPECT_THAT(a3["encryption"].value("error", ""), HasSubstr("has not enrolled an encryption key"));

  // The server's own key outlives a restart: the sealed content key still opens.
  Stop();
  Start();
  const json again = CheckIn("dev-1", t1);
  auto w = Base64Decode(again["encryption"].value("wrapped_key", ""));
  ASSERT_THAT(w, IsOk());
  EXPECT_THAT(k1->Unwrap(*w), IsOkAndHolds(key_));
}

TEST_P(EncryptionServerTest, BadKeysAreRefusedWithTheirReason) {
  const std::string t = AddDevice("dev-1");
  json bad = CallJson("POST", "/device/v1/dev-1/check-in", t, {{"encryption_key", "AAAA"}}, 400);
  EXPECT_THAT(bad.value("message", ""), HasSubstr("field 'encryption_key'"));
  json short_key = CallJson("PUT", "/api/v1/releases/fw/1.2.0/content-key", admin_,
                            {{"content_key", "AAAA"}}, 400);
  EXPECT_THAT(short_key.value("message", ""), HasSubstr("32 bytes in base64"));
  // A release that is not encrypted needs no key.
  const std::string plain = WritePackage(
      "plain.aloft",
      pkgs_.Pack({{"main", testing::RandomBytes(1000, 2)}}, pkg::Compression::kZstd, {0}, "1.3.0"));
  ASSERT_EQ(Upload("?filename=fw-1.3.0.aloft", plain, admin_).status, 201);
  EXPECT_THAT(PutKey(key_, 400, "fw/1.3.0").value("message", ""),
              HasSubstr("has no encrypted payload"));
  // An encrypted release without its key: the action says the server has none.
  const auto k = crypto::RecipientKey::Generate();
  ASSERT_THAT(k, IsOk());
  EXPECT_TRUE(CheckIn("dev-1", t, &*k).is_null());
  CallJson("POST", "/api/v1/deployments", admin_, {{"release", "fw@1.2.0"}, {"devices", {"dev-1"}}},
           201);
  EXPECT_THAT(CheckIn("dev-1", t)["encryption"].value("error", ""),
              HasSubstr("the server has no content key for release fw@1.2.0"));
}

// hawkBit DDI: a device enrols its key with configData ("aloft.encryption_key", not kept as an
// attribute); its deployment's chunk carries the wrapped key as metadata.
TEST_P(EncryptionServerTest, OverDdi_TheKeyIsEnrolledByConfigDataAndWrappedInTheChunk) {
  PutKey(key_, 200);
  const std::string token = AddDevice("ctl-1");
  auto k = crypto::RecipientKey::Generate();
  ASSERT_THAT(k, IsOk());
  const std::string root = "/default/controller/v1/ctl-1";
  const std::vector<std::string> h = {"Authorization: TargetToken " + token,
                                      "Content-Type: application/json"};
  auto bad = srv_.Call("PUT", root + "/configData", "",
                       json{{"data", {{"aloft.encryption_key", "AAAA"}}}}.dump(), h);
  EXPECT_EQ(bad.status, 400) << bad.body;
  auto put = srv_.Call(
      "PUT", root + "/configData", "",
      json{{"data", {{"aloft.encryption_key", Base64Encode(k->PublicRaw())}, {"hw", "r3"}}}}.dump(),
      h);
  ASSERT_EQ(put.status, 200) << put.body;
  json dev = CallJson("GET", "/api/v1/devices/ctl-1", admin_, nullptr, 200);
  EXPECT_FALSE(dev["attributes"].contains("aloft.encryption_key")) << dev.dump();
  EXPECT_EQ(dev["attributes"]["hw"], "r3");
  json dep = CallJson("POST", "/api/v1/deployments", admin_,
                      {{"release", "fw@1.2.0"}, {"devices", {"ctl-1"}}}, 201);
  const int64_t id = dep["actions"][0]["id"];
  auto res = srv_.Call("GET", root + "/deploymentBase/" + std::to_string(id), "", "", h);
  ASSERT_EQ(res.status, 200) << res.body;
  const json chunk = json::parse(res.body)["deployment"]["chunks"][0];
  std::map<std::string, std::string> meta;
  for (const auto& m : chunk.value("metadata", json::array())) meta[m["key"]] = m["value"];
  EXPECT_EQ(meta["aloft.encryption.key_id"], crypto::ContentKeyId(key_));
  auto wrapped = Base64Decode(meta["aloft.encryption.wrapped_key"]);
  ASSERT_THAT(wrapped, IsOk());
  EXPECT_THAT(k->Unwrap(*wrapped), IsOkAndHolds(key_));
}

INSTANTIATE_TEST_SUITE_P(Backends, EncryptionServerTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const auto& p) { return testing::BackendName(p.param); });

}  // namespace
}  // namespace aloft::server
