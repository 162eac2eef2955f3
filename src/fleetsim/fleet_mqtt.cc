// The fleet's MQTT devices (docs/mqtt.md, docs/fleet-sim.md): registered by their first HTTP
// check-in, then a persistent session; an otaCheck when the session comes up and now and then,
// commands pushed to them, reports on up/report (the installing one over HTTP), downloads over
// HTTP as every device does. Commands are idempotent by action id: one for the action a device
// is busy with changes nothing.
#include <nlohmann/json.hpp>

#include "fleetsim/fleet.h"
#include "fleetsim/fleet_device.h"
#include "mqtt/topics.h"

namespace aloft::fleetsim {

using nlohmann::json;

namespace {

// How long an otaCheck waits for its answer before it is sent again.
constexpr int64_t kCheckAnswerMs = 15'000;

}  // namespace

bool Fleet::IsMqtt(uint32_t i) const {
  return mqtt_ && scenario_.groups[devices_[i].group].protocol == Protocol::kMqtt;
}

void Fleet::MqttCheck(uint32_t i) {
  Device& d = devices_[i];
  if (!mqtt_->ready(i)) {
    Schedule(i, now_ms_ + 1000);  // OnMqttReady sends it sooner
    return;
  }
  ++d.check_id;
  const json event = {
      {"method", "otaCheck"}, {"id", d.check_id}, {"params", {{"versions", Versions(i)}}}};
  mqtt_->Publish(i, mqtt::UpTopic(Name(i), "event"), event.dump(), [](bool) {});
  // Unanswered (lost with its connection, or by the server): asked again.
  Schedule(i, now_ms_ + kCheckAnswerMs);
}

void Fleet::MqttReport(uint32_t i, uint8_t stage, const char* status) {
  Device& d = devices_[i];
  json report = {{"id", d.action}, {"status", status}};
  Describe(i, stage, report);
  const uint32_t gen = d.gen;
  mqtt_->Publish(i, mqtt::UpTopic(Name(i), "report"), report.dump(),
                 [this, i, stage, gen](bool acked) {
                   Device& dev = devices_[i];
                   if (dev.gen != gen || dev.stage != kInFlight) return;  // overtaken
                   if (!acked) {
                     ++counters_.mqtt_report_retries;
                     dev.stage = stage;  // the same report again once the session is back
                     Schedule(i, Backoff(i));
                     return;
                   }
                   ++counters_.mqtt_reports;
                   ++counters_.feedbacks;
                   AfterFeedback(i, stage);
                 });
}

void Fleet::OnMqttReady(uint32_t i) {
  Device& d = devices_[i];
  // As the agent does at each connect: it asks what there is (a busy device has its action).
  if (d.stage == kIdle && d.registered) MqttCheck(i);
}

void Fleet::OnMqttMessage(uint32_t i, std::string_view topic, std::string_view payload) {
  Device& d = devices_[i];
  const json m = json::parse(payload, nullptr, false);
  if (!m.is_object()) return;
  const bool answer = m.contains("reply_to") && m["reply_to"] == d.check_id;
  if (topic.ends_with("/down/error")) {
    // The server refused our message: an otaCheck is asked again soon, a report was a repeat.
    if (answer && d.stage == kIdle) Schedule(i, now_ms_ + 5000);
    return;
  }
  if (m.value("method", "") != "otaUpgrade") return;  // otaCancel: our rollouts do not cancel
  const json& p = m.value("params", json::object());
  if (answer) {
    ++counters_.mqtt_checks;
    d.reported = true;
    d.tries = 0;
  } else {
    ++counters_.mqtt_pushes;
  }
  if (d.stage != kIdle || d.outcome == Outcome::kVanished) return;  // busy with its action
  if (!p.value("upgrade", false)) {
    if (answer) {
      std::uniform_int_distribution<int64_t> jitter(0, scenario_.groups[d.group].poll.count() / 5);
      Schedule(i, now_ms_ + scenario_.groups[d.group].poll.count() + jitter(rng_));
    }
    return;
  }
  // A push of the action it finished (the broker delivering again) changes nothing; the same
  // action in the answer to its own otaCheck means the server did not get its last report.
  if (!answer && p.value("id", int64_t{0}) == d.action) return;
  TakeAction(i, p);
}

}  // namespace aloft::fleetsim
