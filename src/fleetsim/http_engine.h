// Many HTTP/1.1 requests at once from one thread, over libcurl's multi interface: at most
// `max_in_flight` requests run at a time (each on a keep-alive connection libcurl reuses), the
// rest wait in order. The fleet simulator's devices share it: a device is a few hundred bytes
// of state, not a socket.
//
//   HttpEngine http(64);
//   http.Submit({.method = "POST", .url = u, .token = t, .body = b}, [](HttpResult r) { ... });
//   while (busy) http.Poll(50);   // runs transfers, calls callbacks
#pragma once

#include <poll.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/error.h"

namespace aloft::fleetsim {

struct HttpCall {
  std::string method = "GET";
  std::string url{};
  std::string token{};   // "Authorization: Bearer" when not empty
  std::string scheme{};  // instead of Bearer ("TargetToken": hawkBit DDI)
  std::string body{};    // JSON, for POST
  uint64_t range_from = 0;
  uint64_t range_to = 0;     // a Range request when above range_from
  bool keep_body = true;     // false: only its length and SHA-256 (downloads)
  long timeout_ms = 30'000;  // the whole request
};

struct HttpResult {
  long status = 0;         // 0: no answer (error says why)
  std::string error{};     // transport failure: refused, reset, timed out
  std::string body{};      // when kept
  uint64_t bytes = 0;      // body length
  int64_t latency_us = 0;  // from sending to the last byte
};

class HttpEngine {
 public:
  using Done = std::function<void(HttpResult&&)>;
  explicit HttpEngine(size_t max_in_flight);
  ~HttpEngine();
  HttpEngine(const HttpEngine&) = delete;
  HttpEngine& operator=(const HttpEngine&) = delete;

  // Queues `call`; `done` runs from Poll once it ended. `on_data`, for a call that does not keep
  // its body, sees each piece as it arrives.
  void Submit(HttpCall call, Done done, std::function<void(const char*, size_t)> on_data = nullptr);
  // Runs transfers for up to `timeout_ms` (less when one ends or one of `extra`'s descriptors is
  // ready: their revents are set); calls the callbacks of those that ended. Returns how many
  // ended.
  size_t Poll(int timeout_ms, std::vector<pollfd>* extra = nullptr);
  size_t in_flight() const { return running_; }
  size_t queued() const { return queue_.size(); }

  struct Transfer;

 private:
  void Start(std::unique_ptr<Transfer> t);
  void StartQueued();

  void* multi_ = nullptr;
  size_t max_in_flight_;
  size_t running_ = 0;
  std::deque<std::unique_ptr<Transfer>> queue_;
  std::vector<void*> idle_handles_;  // easy handles to reuse
  std::unordered_set<Transfer*> active_;
};

}  // namespace aloft::fleetsim
