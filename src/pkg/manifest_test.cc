#include "pkg/manifest.h"

#include <gtest/gtest.h>

#include "support/matchers.h"

namespace aloft::pkg {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

json Valid() {
  std::string h(64, 'a');
  return {{"_type", "aloft.package"},
          {"format", "1.0"},
          {"name", "fw"},
          {"version", "1.2.0"},
          {"hardware", {"board-a"}},
          {"components",
           {{{"name", "main"},
             {"type", "full"},
             {"payload",
              {{"file", "main.zst"},
               {"compression", "zstd"},
               {"size", 10},
               {"sha256", h},
               {"uncompressed_size", 20}}},
             {"image", {{"size", 20}, {"sha256", h}}}}}}};
}

struct Case {
  const char* name;
  std::function<void(json&)> change;
  const char* error;
};

TEST(Manifest, ValidationNamesTheField) {
  const Case cases[] = {
      {"type", [](json& s) { s["_type"] = "x"; }, "signed._type"},
      {"missing_name", [](json& s) { s.erase("name"); }, "signed.name: missing"},
      {"bad_name", [](json& s) { s["name"] = "../fw"; },
       "signed.name: '../fw' is not a valid name"},
      {"bad_version", [](json& s) { s["version"] = "1.2"; }, "signed.version"},
      {"empty_hardware", [](json& s) { s["hardware"] = json::array(); }, "signed.hardware"},
      {"twice_hardware",
       [](json& s) {
         s["hardware"] = {"a", "a"};
       },
       "listed twice"},
      {"no_components", [](json& s) { s["components"] = json::array(); }, "signed.components"},
      {"bad_sha", [](json& s) { s["components"][0]["image"]["sha256"] = "ABC"; },
       "components[0].image.sha256: expected 64 lower-case hex digits"},
      {"negative_size", [](json& s) { s["components"][0]["payload"]["size"] = -1; },
       "components[0].payload.size: expected a non-negative integer"},
      {"string_size", [](json& s) { s["components"][0]["payload"]["size"] = "10"; },
       "payload.size: expected a non-negative integer"},
      {"compression", [](json& s) { s["components"][0]["payload"]["compression"] = "gzip"; },
       "'gzip' is not one of"},
      {"type_kind", [](json& s) { s["components"][0]["type"] = "partial"; },
       "neither full nor delta"},
      {"delta_no_base", [](json& s) { s["components"][0]["type"] = "delta"; }, "base: missing"},
      {"full_with_base",
       [](json& s) {
         s["components"][0]["base"] = {
             {"version", "1.0.0"}, {"size", 1}, {"sha256", std::string(64, 'b')}};
       },
       "only a delta has a base"},
      {"size_mismatch", [](json& s) { s["components"][0]["image"]["size"] = 21; },
       "uncompressed_size"},
      {"dup_component", [](json& s) { s["components"].push_back(s["components"][0]); },
       "'main' is listed twice"},
      {"payload_is_manifest",
       [](json& s) { s["components"][0]["payload"]["file"] = "manifest.json"; }, "used twice"},
      {"filename_path", [](json& s) { s["components"][0]["image"]["filename"] = "a/b"; },
       "plain file name"},
  };
  ASSERT_THAT(ParseSigned(Valid()), IsOk());
  for (const Case& c : cases) {
    json s = Valid();
    c.change(s);
    EXPECT_THAT(ParseSigned(s), IsError(Code::kMalformed, HasSubstr(c.error))) << c.name;
  }
}

TEST(Manifest, DeltaComponentsCarryTheirBase) {
  json s = Valid();
  s["components"][0]["type"] = "delta";
  s["components"][0]["payload"]["uncompressed_size"] = 5;  // a patch is not the image's size
  s["components"][0]["base"] = {
      {"version", "1.1.0"}, {"size", 18}, {"sha256", std::string(64, 'b')}};
  auto m = ParseSigned(s);
  ASSERT_THAT(m, IsOk());
  ASSERT_TRUE(m->components[0].base.has_value());
  EXPECT_EQ(m->components[0].base->version, "1.1.0");
}

TEST(Manifest, TypedFieldsRoundTripThroughJson) {
  auto m = ParseSigned(Valid());
  ASSERT_THAT(m, IsOk());
  json again = ToSignedJson(*m);
  auto m2 = ParseSigned(again);
  ASSERT_THAT(m2, IsOk());
  EXPECT_EQ(m2->components[0].payload.sha256, std::string(64, 'a'));
  EXPECT_EQ(m2->version, SemVer::Parse("1.2.0").value());
}

TEST(Manifest, EnvelopeShapeIsChecked) {
  EXPECT_THAT(ParseEnvelope("[]"), IsError(Code::kMalformed, HasSubstr("expected an object")));
  EXPECT_THAT(ParseEnvelope(R"({"extra":1,"signatures":[],"signed":{}})"),
              IsError(Code::kMalformed, HasSubstr("unexpected member 'extra'")));
  std::string sig = R"({"keyid":")" + std::string(64, 'a') + R"(","method":"ed25519","sig":"!!"})";
  Envelope e;
  e.manifest.signed_json = Valid();
  std::string text = SerializeEnvelope(e).value();
  std::string bad = text;
  bad.replace(bad.find("\"signatures\":[]"), 15, "\"signatures\":[" + sig + "]");
  EXPECT_THAT(ParseEnvelope(bad), IsError(Code::kMalformed, HasSubstr("signatures[0].sig")));
  EXPECT_THAT(ParseEnvelope(text), IsOk());
}

}  // namespace
}  // namespace aloft::pkg
