// The simulated fleet (docs/fleet-sim.md): every device of a scenario as a few hundred bytes of
// state and one timer, talking the native device API to one or several aloftd through one
// HttpEngine. A device checks in (the first time with the registration token, which registers
// it), takes its action, reports downloading, downloads the artifact (checking its SHA-256;
// a dropped download resumes with Range), waits out its bandwidth, reports downloaded and
// installing, installs for its install time (a power cut restarts it), then reports success
// (and its new version at the next check-in) or, when its health check fails, failure. What
// each device did is kept for the end's checks.
//
//   Fleet fleet(scenario, {.servers = {"http://127.0.0.1:8080"}, .registration = tok}, http);
//   fleet.Start(now_ms);
//   while (...) { fleet.Run(now_ms); http.Poll(fleet.WaitMs(now_ms)); }
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "fleetsim/http_engine.h"
#include "fleetsim/latency.h"
#include "fleetsim/mqtt_sessions.h"
#include "fleetsim/scenario.h"

namespace aloft::fleetsim {

// What a device did with the actions it was given (the end's checks compare it with the
// server's records).
enum class Outcome : uint8_t { kNone, kSucceeded, kFailed, kCanceled, kVanished };
const char* ToString(Outcome o);

struct DeviceRecord {
  std::string name;
  std::string version;  // what it runs now, as it would report it
  int64_t action = 0;   // the last action it was given
  int actions = 0;      // distinct actions it was given
  Outcome outcome = Outcome::kNone;
  bool registered = false;
  bool reported = false;  // its current version was sent in a check-in the server answered
};

struct FleetCounters {
  uint64_t check_ins = 0, check_in_errors = 0;  // answered 200 / not (transport, 5xx)
  uint64_t feedbacks = 0, feedback_retries = 0;
  uint64_t downloads = 0, download_drops = 0, download_bytes = 0, bad_downloads = 0;
  uint64_t power_cuts = 0;
  uint64_t registered = 0;
  uint64_t offered = 0;  // devices that received their first action
  uint64_t succeeded = 0, failed = 0, canceled = 0, vanished = 0;
  uint64_t duplicate_offers = 0;  // an action offered again after the device finished it
  // MQTT devices: otaCheck events answered, commands pushed to idle devices (not answers), reports
  // acknowledged by the broker and sent again after a lost connection.
  uint64_t mqtt_checks = 0, mqtt_pushes = 0, mqtt_reports = 0, mqtt_report_retries = 0;
  // MQTT devices offered their finished action again in an otaCheck answer: their final report
  // (taken by the broker) not yet handled by a server; told again.
  uint64_t mqtt_reoffers = 0;
  uint64_t ddi_polls = 0, ddi_deployments = 0;  // DDI devices: polls and deploymentBase reads
};

// "/a/b?c" of "http://host:port/a/b?c" (a URL the server gave, to be asked of the server the
// device uses now).
std::string PathOf(const std::string& url);

class Fleet {
 public:
  struct Options {
    std::vector<std::string> servers;    // aloftd base URLs; device i starts on i % n
    std::string registration;            // a registration token of `device_type`
    std::string mqtt_url{};              // the broker, for devices of protocol mqtt
    std::string admin_token{};           // adds the devices of protocol ddi (as operators do)
    std::string vehicle_registration{};  // a registration token of the vehicles' type
    uint64_t seed = 1;
  };
  Fleet(const Scenario& scenario, Options options, HttpEngine& http);
  ~Fleet();

  // The first check-ins, spread over the scenario's register window from `now_ms`. Fails only
  // for a bad broker URL.
  Status Start(int64_t now_ms);
  // Runs every device whose time has come.
  void Run(int64_t now_ms);
  // Waits for the network (HTTP answers, MQTT messages) up to WaitMs(now_ms, cap_ms) and hands
  // what came to the devices.
  void Wait(int64_t now_ms, int cap_ms = 20);
  // How long until the next device's time (at most `cap_ms`).
  int WaitMs(int64_t now_ms, int cap_ms = 50) const;
  // From now on, devices decide their actions' fates with `faults`.
  void SetFaults(const DeviceFaults& faults);
  // Requests go to servers other than `server` until `until_ms` (a load balancer's view: a
  // server that did not answer is left alone for a while; one known dead until MarkUp).
  void MarkDown(size_t server, int64_t until_ms);
  void MarkUp(size_t server);

  size_t size() const;
  DeviceRecord Record(size_t i) const;
  std::string Name(size_t i) const;
  const FleetCounters& counters() const { return counters_; }
  // The first few oddities seen (a download that failed its hash, an action offered again).
  const std::vector<std::string>& notes() const { return notes_; }
  // The MQTT sessions' own counters (connects, refusals, drops); zero without MQTT devices.
  MqttSessions::Counters mqtt_counters() const;
  // Check-in latencies since the last call (the window) and over the whole run.
  LatencyHistogram TakeWindow();
  const LatencyHistogram& all_latencies() const { return all_; }
  // Devices busy with an action now (offered, not finished).
  uint64_t busy() const;
  // Every device that is not gone has told the server the version it runs now.
  bool AllReported() const;

 private:
  struct Device;
  struct Download;
  void Schedule(uint32_t i, int64_t at_ms);
  void Step(uint32_t i, int64_t now_ms);
  void CheckIn(uint32_t i);
  void OnCheckIn(uint32_t i, HttpResult&& r);
  void TakeAction(uint32_t i, const nlohmann::json& action);
  void Feedback(uint32_t i, const char* status);
  void StartDownload(uint32_t i);
  void OnDownload(uint32_t i, HttpResult&& r);
  void Install(uint32_t i);
  // A report's answer (HTTP `status`, 0: none): sent again later, or the next stage.
  void OnFeedback(uint32_t i, uint8_t stage, size_t server, long status);
  void AfterFeedback(uint32_t i, uint8_t stage);
  void Note(const std::string& line);
  // What it runs, as a check-in's "versions": {"main": v}, or a vehicle's {"ecm": v, ...}.
  nlohmann::json Versions(uint32_t i) const;
  // A report's progress and details (a vehicle's ECUs); empty for other devices.
  void Describe(uint32_t i, uint8_t stage, nlohmann::json& report) const;
  int Batches(uint32_t i) const;
  void Finish(uint32_t i, Outcome o);
  // MQTT devices (fleet_mqtt.cc).
  bool IsMqtt(uint32_t i) const;
  void MqttCheck(uint32_t i);
  void MqttReport(uint32_t i, uint8_t stage, const char* status);
  void OnMqttReady(uint32_t i);
  void OnMqttMessage(uint32_t i, std::string_view topic, std::string_view payload);
  // hawkBit DDI devices (fleet_ddi.cc).
  bool IsDdi(uint32_t i) const;
  std::string DdiRoot(uint32_t i);
  void DdiRegister(uint32_t i);
  // A DDI GET with the device's TargetToken: `then` with its JSON answer, or a backoff.
  void DdiGet(uint32_t i, const std::string& url,
              std::function<void(const nlohmann::json&, int64_t latency_us)> then);
  void DdiPoll(uint32_t i);
  void DdiDeployment(uint32_t i, int64_t action, const std::string& path);
  void DdiFeedback(uint32_t i, uint8_t stage, const char* status);
  size_t ServerFor(uint32_t i);
  std::string Base(uint32_t i);
  int64_t Now() const;
  int64_t Backoff(uint32_t i);

  const Scenario& scenario_;
  Options o_;
  HttpEngine& http_;
  std::vector<Device> devices_;
  std::vector<int64_t> down_until_;
  std::unordered_map<uint32_t, std::unique_ptr<Download>> downloads_;
  std::unique_ptr<MqttSessions> mqtt_;
  std::vector<pollfd> fds_;
  std::vector<std::string> notes_;
  struct Due {
    int64_t at;
    uint32_t device, gen;
    bool operator>(const Due& o) const { return at > o.at; }
  };
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> timers_;
  DeviceFaults faults_;
  bool faults_set_ = false;
  std::mt19937_64 rng_;
  FleetCounters counters_;
  LatencyHistogram window_, all_;
  int64_t now_ms_ = 0;
};

}  // namespace aloft::fleetsim
