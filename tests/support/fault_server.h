// A small HTTP/1.1 server on 127.0.0.1 that plays aloftd's device API for agent tests and breaks
// on request: a check-in answer you set, an artifact served with Range support, feedback recorded,
// and faults queued for the next artifact responses (a connection reset or a clean close after N
// body bytes, a stall, a 503, a server that ignores Range). Every response closes its connection.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/encoding.h"

namespace aloft::testing {

class FaultServer {
 public:
  enum class Fault {
    kReset,        // send `at` body bytes, then reset the connection (RST)
    kTruncate,     // send `at` body bytes, then close cleanly (FIN): a short body
    kStall,        // send `at` body bytes, then send nothing until the client gives up
    kStatus503,    // answer 503
    kIgnoreRange,  // answer 200 with the whole file whatever the Range
  };

  FaultServer();
  ~FaultServer();

  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // The URL the check-in answer points at.
  std::string artifact_url() const { return base() + "/device/v1/dev/actions/1/artifact"; }

  void SetArtifact(Bytes bytes);
  // A file served at `path` (GET); other paths outside the device API are 404. `endless`: the
  // file's bytes sent again and again, without end.
  void SetFile(const std::string& path, std::string bytes, bool endless = false);
  // Members added to every check-in answer (Uptane: "director").
  void SetCheckInExtra(nlohmann::json extra);
  // The bodies of the check-ins received.
  std::vector<nlohmann::json> check_in_bodies() const;
  // The "action" of the check-in answer (null: nothing to do).
  void SetAction(nlohmann::json action);
  void QueueFault(Fault f, uint64_t at = 0);
  // Feedback with `status` is answered `http_status` with an error `message`, as aloftd refuses
  // "installing" (409) once its rollout's maintenance window closed; 0 stops refusing it.
  void RefuseFeedback(const std::string& status, int http_status, std::string message = "");

  std::vector<nlohmann::json> feedback() const;
  uint64_t body_bytes_sent() const { return body_sent_; }
  int artifact_requests() const { return artifact_requests_; }
  int check_ins() const { return check_ins_; }

 private:
  void Accept();
  void Serve(int fd);

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> workers_;
  mutable std::mutex mu_;
  std::map<std::string, std::pair<std::string, bool>> files_;
  nlohmann::json check_in_extra_ = nlohmann::json::object();
  std::vector<nlohmann::json> check_in_bodies_;
  Bytes artifact_;
  nlohmann::json action_;
  std::deque<std::pair<Fault, uint64_t>> faults_;
  std::vector<nlohmann::json> feedback_;
  std::map<std::string, std::pair<int, std::string>> refusals_;
  std::atomic<uint64_t> body_sent_{0};
  std::atomic<int> artifact_requests_{0}, check_ins_{0};
};

}  // namespace aloft::testing
