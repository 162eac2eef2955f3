#include "agent/downloader.h"

#include <curl/curl.h>

#include <algorithm>
#include <thread>

#include "client/curl_api.h"
#include "client/http_client.h"
#include "core/hash.h"

namespace aloft::agent {
namespace {

// One request's state, shared with libcurl's callbacks.
struct Attempt {
  Staging* staging = nullptr;
  uint64_t size = 0;
  uint64_t start = 0;  // bytes staged when the request was sent
  long status = 0;
  uint64_t skip = 0;  // bytes of the body still to skip (a 200 answer to a Range)
  std::string content_range;
  std::string error_body;        // the start of a non-2xx body, for the error message
  std::optional<Error> failure;  // why the write callback stopped the transfer
  bool local = false;            // ... and it was our side (staging, checkpoint): give up
  DownloadStats* stats = nullptr;
  const DownloadOptions* options = nullptr;
  const CheckpointFn* checkpoint = nullptr;
  const ProgressFn* progress = nullptr;
  uint64_t last_checkpoint = 0;
  CURL* curl = nullptr;
  std::chrono::steady_clock::time_point last_byte;
  bool stalled = false;
};

// A stall: no body byte for the stall timeout (libcurl's own low-speed check averages over
// seconds, too coarse to be told apart from a slow link).
int OnXfer(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* a = static_cast<Attempt*>(user);
  if (std::chrono::steady_clock::now() - a->last_byte > a->options->stall_timeout) {
    a->stalled = true;
    return 1;
  }
  return 0;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* a = static_cast<Attempt*>(user);
  std::string_view line(data, size * n);
  std::string name, value;
  if (line.starts_with("HTTP/")) {
    a->content_range.clear();  // a new response (after 100, ...)
  } else if (client::ParseHeaderLine(line, name, value) && name == "content-range") {
    a->content_range = value;
  }
  return size * n;
}

// Decides, at the first body byte, what this response is.
bool Classify(Attempt& a) {
  curl_easy_getinfo(a.curl, CURLINFO_RESPONSE_CODE, &a.status);
  if (a.status == 206) {
    unsigned long long first = 0;
    if (std::sscanf(a.content_range.c_str(), "bytes %llu-", &first) != 1 || first != a.start) {
      a.failure =
          Error(Code::kMalformed, "206 with Content-Range '" + a.content_range +
                                      "', asked for bytes " + std::to_string(a.start) + "-");
      return false;
    }
  } else if (a.status == 200) {
    a.skip = a.start;  // the whole file again: skip what we have
  }
  return true;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* a = static_cast<Attempt*>(user);
  const size_t len = size * n;
  a->last_byte = std::chrono::steady_clock::now();
  if (a->status == 0 && !Classify(*a)) return 0;
  if (a->status != 200 && a->status != 206) {
    if (a->error_body.size() < 4096) a->error_body.append(data, std::min<size_t>(len, 4096));
    return len;
  }
  a->stats->received += len;
  ByteSpan bytes(reinterpret_cast<const uint8_t*>(data), len);
  if (a->skip > 0) {
    size_t s = static_cast<size_t>(std::min<uint64_t>(a->skip, len));
    a->skip -= s;
    a->stats->skipped += s;
    bytes = bytes.subspan(s);
  }
  if (bytes.empty()) return len;
  Staging& st = *a->staging;
  if (bytes.size() > a->size - st.size()) {
    a->failure = Error(Code::kIntegrity, "the server sent more than the offered " +
                                             std::to_string(a->size) + " bytes");
    return 0;
  }
  if (Status s = st.Append(bytes); !s.ok()) {
    a->failure = s.error();
    a->local = true;
    return 0;
  }
  if (st.size() - a->last_checkpoint >= a->options->checkpoint_bytes) {
    auto durable = st.Checkpoint();
    if (!durable.ok()) {
      a->failure = durable.error();
      a->local = true;
      return 0;
    }
    a->last_checkpoint = st.size();
    if (*a->checkpoint) {
      if (Status s = (*a->checkpoint)(*durable); !s.ok()) {
        a->failure = s.error();
        a->local = true;
        return 0;
      }
    }
  }
  if (*a->progress) (*a->progress)(st.size(), a->size);
  return len;
}

// One HTTP request from staging.size(). Returns OK when it ended normally (any status).
Status Perform(const DownloadRequest& req, const DownloadOptions& o, Attempt& a) {
  CURL* curl = curl_easy_init();
  if (!curl) return Error(Code::kInternal, "curl_easy_init failed");
  a.curl = curl;
  curl_slist* headers = nullptr;
  for (const auto& h : req.headers) headers = curl_slist_append(headers, h.c_str());
  std::string range;
  if (a.start > 0) {
    range = std::to_string(a.start) + "-";
    const std::string etag = req.etag.empty() ? "\"" + req.sha256 + "\"" : req.etag;
    headers = curl_slist_append(headers, ("If-Range: " + etag).c_str());
    curl_easy_setopt(curl, CURLOPT_RANGE, range.c_str());
  }
  char errbuf[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &a);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.connect_timeout.count()));
  a.last_byte = std::chrono::steady_clock::now();
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, OnXfer);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &a);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  if (o.max_bytes_per_s > 0) {
    curl_easy_setopt(curl, CURLOPT_MAX_RECV_SPEED_LARGE,
                     static_cast<curl_off_t>(o.max_bytes_per_s));
  }
  if (!o.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, o.ca_file.c_str());
  if (!o.cert_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, o.cert_file.c_str());
    curl_easy_setopt(curl, CURLOPT_SSLKEY,
                     o.key_file.empty() ? o.cert_file.c_str() : o.key_file.c_str());
  }
  CURLcode rc = curl_easy_perform(curl);
  if (a.status == 0) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (a.failure) return *a.failure;
  if (a.stalled) {
    return Error(Code::kUnavailable, "GET " + req.url + ": stalled: no byte for " +
                                         std::to_string(o.stall_timeout.count()) + " ms");
  }
  if (rc != CURLE_OK) {
    return Error(Code::kUnavailable,
                 "GET " + req.url + ": " + (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
  }
  return OkStatus();
}

Result<std::string> StagedSha256(Staging& staging, uint64_t size) {
  auto src = staging.Open(size);
  if (!src) return Error(Code::kIo, staging.Describe() + ": cannot read the download back");
  Hasher h(HashAlgorithm::kSha256);
  Bytes buf(256 * 1024);
  uint64_t total = 0;
  for (;;) {
    ALOFT_ASSIGN_OR_RETURN(size_t n, src->Read(buf));
    if (n == 0) break;
    total += n;
    h.Update(ByteSpan(buf.data(), n));
  }
  if (total != size) {
    return Error(Code::kIntegrity, staging.Describe() + ": " + std::to_string(total) +
                                       " bytes staged, expected " + std::to_string(size));
  }
  return h.FinishHex();
}

}  // namespace

Result<DownloadStats> Download(const DownloadRequest& req, const DownloadOptions& o,
                               Staging& staging, uint64_t durable, const CheckpointFn& checkpoint,
                               const ProgressFn& progress) {
  // curl_global_init, once per process (this program links libcurl; the loader finds that copy).
  ALOFT_RETURN_IF_ERROR(client::LoadCurl());
  if (req.size > staging.capacity()) {
    return Error(Code::kOutOfRange, "no space: the package has " + std::to_string(req.size) +
                                        " bytes, " + staging.Describe() + " takes " +
                                        std::to_string(staging.capacity()));
  }
  DownloadStats stats;
  ALOFT_ASSIGN_OR_RETURN(stats.resumed_at, staging.Resume(durable));
  auto backoff = o.backoff_initial;
  uint32_t fruitless = 0;
  bool restarted = false;
  uint64_t last_checkpoint = staging.size();
  for (;;) {
    if (staging.size() == req.size) {
      ALOFT_RETURN_IF_ERROR(staging.Finish());
      ALOFT_ASSIGN_OR_RETURN(std::string sha, StagedSha256(staging, req.size));
      if (sha == req.sha256) {
        if (checkpoint) ALOFT_RETURN_IF_ERROR(checkpoint(req.size));
        return stats;
      }
      if (restarted) {
        return Error(Code::kIntegrity, req.url + ": SHA-256 " + sha + ", expected " + req.sha256);
      }
      // A mix of two versions of the file (it changed between requests): once more from 0.
      restarted = true;
      ALOFT_RETURN_IF_ERROR(staging.Resume(0));
      if (checkpoint) ALOFT_RETURN_IF_ERROR(checkpoint(0));
      last_checkpoint = 0;
      continue;
    }
    Attempt a;
    a.staging = &staging;
    a.size = req.size;
    a.start = staging.size();
    a.stats = &stats;
    a.options = &o;
    a.checkpoint = &checkpoint;
    a.progress = &progress;
    a.last_checkpoint = last_checkpoint;
    ++stats.requests;
    Status s = Perform(req, o, a);
    last_checkpoint = a.last_checkpoint;
    const bool progressed = staging.size() > a.start;
    if (s.ok() && a.status == 416) {
      if (a.start >= req.size) continue;  // complete already: verify
      // The file is shorter than we have: start over.
      ALOFT_RETURN_IF_ERROR(staging.Resume(0));
      continue;
    }
    if (s.ok() && (a.status == 403 || a.status == 404 || a.status == 410)) {
      return Error(a.status == 404 ? Code::kNotFound : Code::kPermissionDenied,
                   "GET " + req.url + ": HTTP " + std::to_string(a.status) + " " + a.error_body);
    }
    if (!s.ok() && (a.local || s.error().code() == Code::kIntegrity)) return s.error();
    if (s.ok() && (a.status == 200 || a.status == 206) && staging.size() < req.size) {
      s = Error(Code::kUnavailable, "GET " + req.url + ": body ended after " +
                                        std::to_string(staging.size()) + " of " +
                                        std::to_string(req.size) + " bytes");
    }
    if (s.ok() && a.status != 200 && a.status != 206) {
      s = Error(Code::kUnavailable, "GET " + req.url + ": HTTP " + std::to_string(a.status));
    }
    if (s.ok()) continue;
    ++stats.failures;
    if (progressed) {
      fruitless = 0;
      backoff = o.backoff_initial;
    } else if (++fruitless >= o.max_attempts) {
      return Error(Code::kUnavailable, s.error().message() + " (gave up after " +
                                           std::to_string(fruitless) + " attempts)");
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(o.backoff_max, backoff * 2);
  }
}

}  // namespace aloft::agent
