// The fleet's hawkBit DDI devices (docs/ddi.md, docs/fleet-sim.md), as SWUpdate's suricatta
// behaves: added by the operator (POST /api/v1/devices with the admin token: DDI devices do not
// register themselves), then polls of /{tenant}/controller/v1/{name} with their TargetToken; a
// deploymentBase link is read, its chunk's artifact downloaded (resumed with Range) and checked
// against its SHA-256, and progress told with DDI feedback (download, downloaded, proceeding,
// closed with success or failure). The server learns the new version from closed + success.
#include <nlohmann/json.hpp>

#include "fleetsim/fleet.h"
#include "fleetsim/fleet_device.h"

namespace aloft::fleetsim {

using nlohmann::json;

bool Fleet::IsDdi(uint32_t i) const {
  return scenario_.groups[devices_[i].group].protocol == Protocol::kDdi;
}

std::string Fleet::DdiRoot(uint32_t i) { return Base(i) + "/default/controller/v1/" + Name(i); }

void Fleet::DdiRegister(uint32_t i) {
  Device& d = devices_[i];
  d.stage = kCheckingIn;
  const json body = {{"name", Name(i)}, {"device_type", "sim-board"}};
  HttpCall c{.method = "POST",
             .url = Base(i) + "/api/v1/devices",
             .token = o_.admin_token,
             .body = body.dump()};
  const size_t server = ServerFor(i);
  http_.Submit(std::move(c), [this, i, server](HttpResult&& r) {
    Device& dev = devices_[i];
    dev.stage = kIdle;
    if (r.status == 0) MarkDown(server, now_ms_ + 2000);
    const json answer = json::parse(r.body, nullptr, false);
    const std::string token = answer.is_object() ? answer.value("token", "") : "";
    if (r.status != 201 || token.empty()) {
      // 409: added by a request whose answer was lost, and its token with it. As an operator
      // would: delete it (it has no actions yet: the rollout starts after every registration)
      // and add it again.
      if (r.status == 409) {
        HttpCall del{.method = "DELETE",
                     .url = Base(i) + "/api/v1/devices/" + Name(i),
                     .token = o_.admin_token};
        ++counters_.check_in_errors;
        dev.stage = kCheckingIn;
        http_.Submit(std::move(del), [this, i](HttpResult&&) {
          devices_[i].stage = kIdle;
          Schedule(i, Backoff(i));
        });
        return;
      }
      ++counters_.check_in_errors;
      Schedule(i, Backoff(i));
      return;
    }
    dev.token = token;
    dev.registered = true;
    ++counters_.registered;
    Schedule(i, now_ms_);  // its first poll
  });
}

void Fleet::DdiGet(uint32_t i, const std::string& url,
                   std::function<void(const json&, int64_t latency_us)> then) {
  Device& d = devices_[i];
  d.stage = kCheckingIn;
  HttpCall c{.method = "GET", .url = url, .token = d.token, .scheme = "TargetToken"};
  const size_t server = ServerFor(i);
  http_.Submit(std::move(c), [this, i, server, then = std::move(then)](HttpResult&& r) {
    devices_[i].stage = kIdle;
    const json answer = json::parse(r.body, nullptr, false);
    if (r.status != 200 || !answer.is_object()) {
      if (r.status == 0) MarkDown(server, now_ms_ + 2000);
      ++counters_.check_in_errors;
      Schedule(i, Backoff(i));
      return;
    }
    then(answer, r.latency_us);
  });
}

void Fleet::DdiPoll(uint32_t i) {
  DdiGet(i, DdiRoot(i), [this, i](const json& answer, int64_t latency_us) {
    Device& dev = devices_[i];
    ++counters_.check_ins;
    ++counters_.ddi_polls;
    window_.Add(latency_us);
    all_.Add(latency_us);
    dev.tries = 0;
    // What it runs is what its last closed + success told (nothing before that).
    dev.reported = dev.new_version;
    const json links = answer.value("_links", json::object());
    const std::string href = links.value("deploymentBase", json::object()).value("href", "");
    if (!href.empty()) {
      // .../deploymentBase/{id}?c=...
      const size_t at = href.find("/deploymentBase/");
      const int64_t id = at == std::string::npos ? 0 : std::atoll(href.c_str() + at + 16);
      if (id > 0) return DdiDeployment(i, id, PathOf(href));
    }
    std::uniform_int_distribution<int64_t> jitter(0, scenario_.groups[dev.group].poll.count() / 5);
    Schedule(i, now_ms_ + scenario_.groups[dev.group].poll.count() + jitter(rng_));
  });
}

void Fleet::DdiDeployment(uint32_t i, int64_t action, const std::string& path) {
  DdiGet(i, Base(i) + path, [this, i, action](const json& answer, int64_t) {
    ++counters_.ddi_deployments;
    // The first chunk's first artifact, as the native action's download.
    const json deployment = answer.value("deployment", json::object());
    const json chunks = deployment.value("chunks", json::array());
    json artifact = json::object();
    if (!chunks.empty() && chunks[0].is_object()) {
      const json artifacts = chunks[0].value("artifacts", json::array());
      if (artifacts.is_array() && !artifacts.empty()) artifact = artifacts[0];
    }
    json a = {{"id", action}, {"install", deployment.value("update", "") != "skip"}};
    if (artifact.is_object()) {
      a["download"] = {{"url", artifact.value("_links", json::object())
                                   .value("download-http", json::object())
                                   .value("href", "")},
                       {"sha256", artifact.value("hashes", json::object()).value("sha256", "")},
                       {"size", artifact.value("size", uint64_t{0})}};
    }
    TakeAction(i, a);
  });
}

void Fleet::DdiFeedback(uint32_t i, uint8_t stage, const char* status) {
  Device& d = devices_[i];
  // The native statuses as DDI executions.
  const std::string s = status;
  std::string execution = "proceeding", finished = "none";
  if (s == "downloading") {
    execution = "download";
  } else if (s == "downloaded") {
    execution = "downloaded";
  } else if (s == "success") {
    execution = "closed";
    finished = "success";
  } else if (s == "failure") {
    execution = "closed";
    finished = "failure";
  } else if (s == "canceled") {
    execution = "canceled";
  }
  const json body = {{"status",
                      {{"execution", execution},
                       {"result", {{"finished", finished}}},
                       {"details", json::array({"fleet-sim: " + s})}}}};
  HttpCall c{.method = "POST",
             .url = DdiRoot(i) + "/deploymentBase/" + std::to_string(d.action) + "/feedback",
             .token = d.token,
             .scheme = "TargetToken",
             .body = body.dump()};
  const size_t server = ServerFor(i);
  http_.Submit(std::move(c), [this, i, stage, server](HttpResult&& r) {
    // 200 taken; 410: the action is closed already (a feedback whose answer was lost).
    OnFeedback(i, stage, server, r.status);
  });
}

}  // namespace aloft::fleetsim
