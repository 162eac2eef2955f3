// The agent's download: libcurl, resumable, verified. Bytes go straight to a Staging as they
// arrive; after a dropped connection, a stall, a 5xx or a truncated body the download continues
// with `Range: bytes=<have>-` (and `If-Range`) after a backoff, so a drop costs no bytes already
// received. A server that answers 200 to a Range request sends the whole file again: its first
// <have> bytes are skipped (and counted), never written twice. 416 means the file is complete or
// changed. At the end the staged bytes are read back and must match the offered size and SHA-256.
//
//   ALOFT_ASSIGN_OR_RETURN(DownloadStats s, Download(request, options, staging, checkpoint));
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "agent/staging.h"
#include "core/error.h"

namespace aloft::agent {

struct DownloadOptions {
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds stall_timeout{30000};  // no byte for this long: drop and resume
  uint64_t max_bytes_per_s = 0;                    // 0: no cap
  std::chrono::milliseconds backoff_initial{1000};
  std::chrono::milliseconds backoff_max{60000};
  uint32_t max_attempts = 20;           // consecutive attempts without progress before giving up
  uint64_t checkpoint_bytes = 1 << 20;  // make durable and journal at least this often
  std::string ca_file;
  std::string cert_file, key_file;  // a device certificate (docs/identity.md)
};

struct DownloadRequest {
  std::string url;
  std::vector<std::string> headers;  // "Authorization: Bearer ..."
  uint64_t size = 0;
  std::string sha256;  // hex
  std::string etag;    // for If-Range; empty: "\"<sha256>\""
};

struct DownloadStats {
  uint64_t received = 0;    // body bytes received, all attempts
  uint64_t skipped = 0;     // of which skipped (a 200 answer to a Range request)
  uint64_t resumed_at = 0;  // the offset the first attempt started at
  uint32_t requests = 0;
  uint32_t failures = 0;  // attempts that ended early (drop, stall, 5xx, truncation)
  // Bytes fetched more than once: received - (size - resumed_at).
  uint64_t refetched(uint64_t size) const {
    uint64_t needed = size - resumed_at;
    return received > needed ? received - needed : 0;
  }
};

// Called with the durable byte count whenever it advanced by checkpoint_bytes (and at the end);
// the agent journals it. An error aborts the download.
using CheckpointFn = std::function<Status(uint64_t durable)>;
// Told of progress (bytes staged, total).
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

// Downloads into `staging`, continuing after `durable` bytes (the journal's). Errors: kIntegrity
// (size or SHA-256 mismatch after a full retry), kNotFound / kPermissionDenied (404, 403: the
// action is gone), kOutOfRange (does not fit the staging), kUnavailable (gave up retrying).
Result<DownloadStats> Download(const DownloadRequest& request, const DownloadOptions& options,
                               Staging& staging, uint64_t durable, const CheckpointFn& checkpoint,
                               const ProgressFn& progress = nullptr);

}  // namespace aloft::agent
