// How the agent talks to aloftd: the check-in and the feedback on an action. Over HTTP (the native
// device API, docs/device-api.md) or over MQTT (push_link.h, docs/mqtt.md), which falls back to
// HTTP while the broker is unreachable. Downloads are always HTTP(S) (downloader.h).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "client/http_client.h"
#include "core/error.h"

namespace aloft::agent {

class Uplink {
 public:
  virtual ~Uplink() = default;
  // Reports `body` ({"versions": {...}, "attributes": {...}}) and returns the server's answer, as
  // the native check-in gives it: {"action": {...}} when there is something to do (an offer, or
  // {"id", "cancel": true}), and maybe "poll_interval_s". kUnavailable when the server could not
  // be reached (retry later); other codes when it refused.
  virtual Result<nlohmann::json> CheckIn(const nlohmann::json& body) = 0;
  // Feedback on `action` ({"status": ..., "progress": ...}). A final report (success, failure,
  // canceled) is only OK once the server (HTTP) or the broker (MQTT, QoS 1) has it. An action the
  // server closed already is OK: a repeated final report.
  virtual Status Feedback(int64_t action, const nlohmann::json& body) = 0;
  // Asks the server's leave to install `action` now, as the report "installing" (progress 0),
  // and waits for the server's own answer: OK, or kAlreadyExists when the server refuses (its
  // rollout's maintenance window closed since the check-in that said "install", or the action
  // closed), with the server's reason. kUnavailable when the server could not be reached.
  virtual Status StartInstall(int64_t action) = 0;
};

// The native device API at `server` ("http://host:port"), as `device` with its `token`. A
// gateway's uplink for a sub-device has the sub-device's name and the gateway's token.
// `token` may be empty for a device that authenticates with the certificate in `tls`.
std::unique_ptr<Uplink> MakeHttpUplink(std::string server, std::string device, std::string token,
                                       client::TlsFiles tls);

// Whether a feedback status closes the action.
inline bool FinalStatus(const std::string& status) {
  return status == "success" || status == "failure" || status == "canceled";
}

}  // namespace aloft::agent
