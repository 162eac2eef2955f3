// The fleet's HTTP engine against a server that breaks: a download cut half-way and answered 503
// on its first resume comes whole, and its hash holds (an error's body is not the resource).
#include "fleetsim/http_engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/encoding.h"
#include "core/hash.h"
#include "support/fault_server.h"
#include "support/package_fixture.h"

namespace aloft::fleetsim {
namespace {

TEST(HttpEngine, ADownloadResumedPastA503_HashesOnlyTheFile) {
  testing::FaultServer server;
  const Bytes file = testing::RandomBytes(100000, 3);
  server.SetArtifact(file);
  server.QueueFault(testing::FaultServer::Fault::kReset, 30000);
  server.QueueFault(testing::FaultServer::Fault::kStatus503);

  HttpEngine http(4);
  Hasher sha(HashAlgorithm::kSha256);
  uint64_t got = 0;
  std::vector<long> statuses;
  for (int attempt = 0; attempt < 10 && got < file.size(); ++attempt) {
    HttpCall c{.method = "GET", .url = server.artifact_url()};
    c.keep_body = false;
    c.range_from = got;
    c.range_to = got > 0 ? file.size() : 0;
    bool done = false;
    http.Submit(
        std::move(c),
        [&](HttpResult&& r) {
          statuses.push_back(r.status);
          done = true;
        },
        [&](const char* data, size_t n) {
          sha.Update(ByteSpan(reinterpret_cast<const uint8_t*>(data), n));
          got += n;
        });
    while (!done) http.Poll(50);
  }
  EXPECT_THAT(statuses, ::testing::ElementsAre(0, 503, 206));
  EXPECT_EQ(got, file.size());
  Hasher want(HashAlgorithm::kSha256);
  want.Update(file);
  EXPECT_EQ(sha.FinishHex(), want.FinishHex());
}

}  // namespace
}  // namespace aloft::fleetsim
