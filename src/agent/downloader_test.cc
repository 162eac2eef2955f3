// The download against a loopback server that breaks: resets, clean short bodies, stalls, 503s,
// a server that ignores Range. Must-show 2 of issue 4.
#include "agent/downloader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "core/file.h"
#include "core/hash.h"
#include "support/fault_server.h"
#include "support/matchers.h"
#include "support/package_fixture.h"
#include "support/temp_dir.h"

namespace aloft::agent {
namespace {

using ::testing::HasSubstr;
using Fault = testing::FaultServer::Fault;

class DownloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.SetArtifact(artifact_);
    options_.backoff_initial = std::chrono::milliseconds(2);
    options_.backoff_max = std::chrono::milliseconds(20);
    options_.stall_timeout = std::chrono::milliseconds(300);
    options_.checkpoint_bytes = 256 * 1024;
    auto st = MakeFileStaging(dir_ / "download.part");
    ASSERT_THAT(st, IsOk());
    staging_ = std::move(st).value();
  }
  DownloadRequest Request() const {
    return {server_.artifact_url(), {}, artifact_.size(), Sha256Hex(artifact_), ""};
  }
  Result<DownloadStats> Fetch(uint64_t durable = 0) {
    return Download(Request(), options_, *staging_, durable, [this](uint64_t d) {
      checkpoints_.push_back(d);
      return OkStatus();
    });
  }
  Bytes Staged() {
    std::string s = ReadFile(dir_ / "download.part", 1 << 30).value();
    return Bytes(s.begin(), s.end());
  }

  testing::TempDir dir_;
  testing::FaultServer server_;
  Bytes artifact_ = testing::RandomBytes(4 << 20, 7);
  DownloadOptions options_;
  std::unique_ptr<Staging> staging_;
  std::vector<uint64_t> checkpoints_;
};

TEST_F(DownloaderTest, CleanDownload_OneRequest_CheckpointsAsItGoes) {
  auto s = Fetch();
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(Staged(), artifact_);
  EXPECT_EQ(s->requests, 1u);
  EXPECT_EQ(s->refetched(artifact_.size()), 0u);
  EXPECT_GE(checkpoints_.size(), 16u);
  EXPECT_EQ(checkpoints_.back(), artifact_.size());
}

TEST_F(DownloaderTest, EveryKindOfFault_StillEndsWithTheRightBytes) {
  server_.QueueFault(Fault::kReset, 100000);
  server_.QueueFault(Fault::kStatus503);
  server_.QueueFault(Fault::kTruncate, 700000);
  server_.QueueFault(Fault::kStall, 50000);
  server_.QueueFault(Fault::kIgnoreRange);  // 200 with the whole file to a Range request
  auto s = Fetch();
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(Staged(), artifact_);
  EXPECT_EQ(s->failures, 4u);  // reset, 503, truncation, stall
  EXPECT_EQ(s->requests, 5u);
  // The 200 answer resent what we had; it was skipped, not written twice.
  EXPECT_EQ(s->skipped, 100000u + 700000 + 50000);
  EXPECT_EQ(s->refetched(artifact_.size()), s->skipped);
}

TEST_F(DownloaderTest, HundredDrops_RefetchAtMostOneChunkPerDrop) {
  std::mt19937_64 rng(42);
  std::vector<uint64_t> at;
  for (int i = 0; i < 100; ++i) {
    at.push_back(std::uniform_int_distribution<uint64_t>(0, artifact_.size() / 100)(rng));
    server_.QueueFault(i % 2 ? Fault::kReset : Fault::kTruncate, at.back());
  }
  auto s = Fetch();
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(Staged(), artifact_);
  EXPECT_EQ(s->failures, 100u);
  const uint64_t refetched = s->refetched(artifact_.size());
  const uint64_t chunk = options_.checkpoint_bytes;
  std::printf(
      "drops: %u, requests: %u, bytes received: %llu for %zu, refetched: %llu "
      "(limit %llu = one %llu-byte chunk per drop)\n",
      s->failures, s->requests, static_cast<unsigned long long>(s->received), artifact_.size(),
      static_cast<unsigned long long>(refetched), static_cast<unsigned long long>(100 * chunk),
      static_cast<unsigned long long>(chunk));
  EXPECT_LE(refetched, 100 * chunk);
}

TEST_F(DownloaderTest, ResumesFromTheJournaledOffset_AfterAPowerCut) {
  // A previous boot staged 1 MiB durably and then some bytes that were never journaled.
  Bytes before(artifact_.begin(), artifact_.begin() + (1 << 20) + 5000);
  ASSERT_THAT(WriteFileAtomic(dir_ / "download.part", AsChars(before)), IsOk());
  auto s = Fetch(1 << 20);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->resumed_at, 1u << 20);
  EXPECT_EQ(s->received, artifact_.size() - (1 << 20));
  EXPECT_EQ(Staged(), artifact_);
}

TEST_F(DownloaderTest, WrongBytes_AreRefusedAfterOneFullRetry) {
  DownloadRequest r = Request();
  r.sha256 = Sha256Hex(AsBytes("something else"));
  auto s = Download(r, options_, *staging_, 0, nullptr);
  EXPECT_THAT(s, IsError(Code::kIntegrity, HasSubstr("SHA-256")));
  EXPECT_EQ(server_.artifact_requests(), 2);
}

TEST_F(DownloaderTest, MoreBytesThanOffered_AreRefused) {
  DownloadRequest r = Request();
  r.size -= 10;
  EXPECT_THAT(Download(r, options_, *staging_, 0, nullptr),
              IsError(Code::kIntegrity, HasSubstr("more than the offered")));
}

TEST_F(DownloaderTest, GoneAction_And_UnreachableServer_AreClearErrors) {
  DownloadRequest r = Request();
  r.url = server_.base() + "/nope";
  EXPECT_THAT(Download(r, options_, *staging_, 0, nullptr),
              IsError(Code::kNotFound, HasSubstr("HTTP 404")));
  r.url = "http://127.0.0.1:1/artifact";
  options_.max_attempts = 3;
  EXPECT_THAT(Download(r, options_, *staging_, 0, nullptr),
              IsError(Code::kUnavailable, HasSubstr("gave up after 3 attempts")));
}

}  // namespace
}  // namespace aloft::agent
