#include "fleetsim/fleet.h"

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/hash.h"
#include "fleetsim/fleet_device.h"

namespace aloft::fleetsim {

using nlohmann::json;

std::string PathOf(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const size_t path = url.find('/', scheme + 3);
  return path == std::string::npos ? "/" : url.substr(path);
}

const char* ToString(Outcome o) {
  switch (o) {
    case Outcome::kNone:
      return "none";
    case Outcome::kSucceeded:
      return "succeeded";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kCanceled:
      return "canceled";
    case Outcome::kVanished:
      return "vanished";
  }
  return "?";
}

struct Fleet::Download {
  Hasher sha{HashAlgorithm::kSha256};
  uint64_t got = 0;
};

Fleet::Fleet(const Scenario& scenario, Options options, HttpEngine& http)
    : scenario_(scenario), o_(std::move(options)), http_(http), rng_(o_.seed) {
  devices_.resize(scenario.devices());
  down_until_.assign(o_.servers.size(), 0);
  uint32_t i = 0;
  for (size_t g = 0; g < scenario.groups.size(); ++g) {
    for (uint32_t k = 0; k < scenario.groups[g].count; ++k) {
      devices_[i++].group = static_cast<uint16_t>(g);
    }
  }
}

Fleet::~Fleet() = default;

size_t Fleet::size() const { return devices_.size(); }

std::string Fleet::Name(size_t i) const {
  char name[32];
  std::snprintf(name, sizeof name, "sim-%07zu", i);
  return name;
}

DeviceRecord Fleet::Record(size_t i) const {
  const Device& d = devices_[i];
  const DeviceGroup& g = scenario_.groups[d.group];
  return {Name(i),   d.new_version ? scenario_.release_version : g.version,
          d.action,  d.actions,
          d.outcome, d.registered,
          d.reported};
}

uint64_t Fleet::busy() const {
  uint64_t n = 0;
  for (const Device& d : devices_) n += d.action != 0 && d.outcome == Outcome::kNone;
  return n;
}

bool Fleet::AllReported() const {
  for (uint32_t i = 0; i < devices_.size(); ++i) {
    const Device& d = devices_[i];
    // A DDI device tells no version but by closing an action with success.
    if (IsDdi(i) && !d.new_version) continue;
    if (!d.reported && d.stage != kGone) return false;
  }
  return true;
}

void Fleet::SetFaults(const DeviceFaults& faults) {
  faults_ = faults;
  faults_set_ = true;
}

void Fleet::MarkDown(size_t server, int64_t until_ms) {
  if (server < down_until_.size()) down_until_[server] = std::max(down_until_[server], until_ms);
}

void Fleet::MarkUp(size_t server) {
  if (server < down_until_.size()) down_until_[server] = 0;
}

int64_t Fleet::Now() const { return now_ms_; }

void Fleet::Schedule(uint32_t i, int64_t at_ms) {
  Device& d = devices_[i];
  ++d.gen;
  timers_.push({at_ms, i, d.gen});
}

Status Fleet::Start(int64_t now_ms) {
  now_ms_ = now_ms;
  if (scenario_.Uses(Protocol::kMqtt)) {
    ALOFT_ASSIGN_OR_RETURN(
        mqtt_, MqttSessions::New(o_.mqtt_url, {.on_ready = [this](uint32_t i) { OnMqttReady(i); },
                                               .on_message =
                                                   [this](uint32_t i, std::string_view topic,
                                                          std::string_view payload) {
                                                     OnMqttMessage(i, topic, payload);
                                                   }}));
  }
  const int64_t window = scenario_.register_window.count();
  std::uniform_int_distribution<int64_t> spread(0, std::max<int64_t>(window, 0));
  for (uint32_t i = 0; i < devices_.size(); ++i) {
    Schedule(i, now_ms + (window > 0 ? spread(rng_) : 0));
  }
  return OkStatus();
}

void Fleet::Wait(int64_t now_ms, int cap_ms) {
  const int wait = WaitMs(now_ms, cap_ms);
  if (!mqtt_) {
    http_.Poll(wait);
    return;
  }
  mqtt_->Prepare(fds_, 0);
  http_.Poll(wait, &fds_);
  now_ms_ = std::max(now_ms_, now_ms);
  mqtt_->Process(fds_, 0, now_ms_);
}

MqttSessions::Counters Fleet::mqtt_counters() const {
  return mqtt_ ? mqtt_->counters() : MqttSessions::Counters{};
}

int Fleet::WaitMs(int64_t now_ms, int cap_ms) const {
  if (timers_.empty()) return cap_ms;
  return static_cast<int>(std::clamp<int64_t>(timers_.top().at - now_ms, 0, cap_ms));
}

void Fleet::Run(int64_t now_ms) {
  now_ms_ = now_ms;
  // A bounded batch per call, so that answers keep flowing while many devices are due.
  for (int n = 0; n < 5000 && !timers_.empty() && timers_.top().at <= now_ms; ++n) {
    const Due due = timers_.top();
    timers_.pop();
    if (devices_[due.device].gen != due.gen) continue;  // replaced by a later one
    Step(due.device, now_ms);
  }
}

size_t Fleet::ServerFor(uint32_t i) {
  const size_t n = o_.servers.size();
  for (size_t k = 0; k < n; ++k) {
    const size_t s = (i + k) % n;
    if (down_until_[s] <= now_ms_) return s;
  }
  return i % n;
}

std::string Fleet::Base(uint32_t i) { return o_.servers[ServerFor(i)]; }

int64_t Fleet::Backoff(uint32_t i) {
  Device& d = devices_[i];
  d.tries = static_cast<uint16_t>(std::min<int>(d.tries + 1, 6));
  std::uniform_int_distribution<int64_t> jitter(0, 500);
  return now_ms_ + std::min<int64_t>(250LL << d.tries, 8000) + jitter(rng_);
}

void Fleet::Step(uint32_t i, int64_t now_ms) {
  Device& d = devices_[i];
  switch (d.stage) {
    case kIdle:
      if (IsDdi(i)) return d.registered ? DdiPoll(i) : DdiRegister(i);
      return IsMqtt(i) && d.registered ? MqttCheck(i) : CheckIn(i);
    case kFbDownloading:
      return Feedback(i, "downloading");
    case kDownloading:
      return StartDownload(i);
    case kFbDownloaded:
      return Feedback(i, "downloaded");
    case kFbInstalling:
      return Feedback(i, "installing");
    case kPowerCut: {
      // The power goes: the old image starts after the reboot; the install starts over.
      ++counters_.power_cuts;
      d.cut = true;
      d.stage = kFbInstalling;
      Schedule(i, now_ms + scenario_.groups[d.group].reboot.count());
      return;
    }
    case kInstalling: {
      // A vehicle flashes its ECUs batch by batch, telling the server after each.
      if (++d.batch < Batches(i)) {
        d.stage = kFbProgress;
        return Step(i, now_ms);
      }
      d.stage = (d.fate & kHealthFail) ? kFbFailure : kFbInstalled;
      return Step(i, now_ms);
    }
    case kFbProgress:
      return Feedback(i, "installing");
    case kFbInstalled:
      return Feedback(i, "installed");
    case kFbSuccess:
      return Feedback(i, "success");
    case kFbFailure:
      return Feedback(i, "failure");
    case kFbCanceled:
      return Feedback(i, "canceled");
    default:
      return;
  }
}

void Fleet::CheckIn(uint32_t i) {
  Device& d = devices_[i];
  d.stage = kCheckingIn;
  const DeviceGroup& g = scenario_.groups[d.group];
  HttpCall c{
      .method = "POST",
      .url = Base(i) + "/device/v1/" + Name(i) + "/check-in",
      .token = d.registered ? d.token : (g.vehicle() ? o_.vehicle_registration : o_.registration),
      .body = json{{"versions", Versions(i)}}.dump()};
  const size_t server = ServerFor(i);
  http_.Submit(std::move(c), [this, i, server](HttpResult&& r) {
    if (r.status == 0) MarkDown(server, now_ms_ + 2000);
    OnCheckIn(i, std::move(r));
  });
}

void Fleet::OnCheckIn(uint32_t i, HttpResult&& r) {
  Device& d = devices_[i];
  d.stage = kIdle;
  if (r.status != 200) {
    ++counters_.check_in_errors;
    Schedule(i, Backoff(i));
    return;
  }
  ++counters_.check_ins;
  window_.Add(r.latency_us);
  all_.Add(r.latency_us);
  d.tries = 0;
  json answer = json::parse(r.body, nullptr, false);
  if (!answer.is_object()) {
    ++counters_.check_in_errors;
    Schedule(i, Backoff(i));
    return;
  }
  if (!d.registered) {
    d.token = answer.value("token", "");
    if (d.token.empty()) {
      ++counters_.check_in_errors;
      Schedule(i, Backoff(i));
      return;
    }
    d.registered = true;
    ++counters_.registered;
    if (IsMqtt(i)) mqtt_->Open(i, Name(i), d.token);
  }
  d.reported = true;
  const json& action = answer["action"];
  if (action.is_object()) return TakeAction(i, action);
  if (IsMqtt(i)) {
    // From now on it waits for pushes; an otaCheck once its session is up (OnMqttReady), and
    // again now and then.
    Schedule(i, now_ms_ + scenario_.groups[d.group].poll.count());
    return;
  }
  std::uniform_int_distribution<int64_t> jitter(0, scenario_.groups[d.group].poll.count() / 5);
  Schedule(i, now_ms_ + scenario_.groups[d.group].poll.count() + jitter(rng_));
}

void Fleet::TakeAction(uint32_t i, const json& a) {
  Device& d = devices_[i];
  const int64_t id = a.value("id", int64_t{0});
  if (a.value("cancel", false)) {
    d.action = id;
    d.stage = kFbCanceled;
    return Step(i, now_ms_);
  }
  if (id == d.action && d.outcome != Outcome::kNone) {
    // Offered again after it was finished here. Over HTTP the server had answered the final
    // report: it lost it (or kept the action open twice). Over MQTT the broker took the report,
    // but the server may not have handled it yet (with several aloftd in a shared subscription
    // a device's report and its next otaCheck may go to different servers). Told again either
    // way (a report of a closed action is refused, changing nothing).
    if (IsMqtt(i)) {
      ++counters_.mqtt_reoffers;
    } else {
      ++counters_.duplicate_offers;
      Note(Name(i) + " (" + ToString(scenario_.groups[d.group].protocol) + "): action " +
           std::to_string(id) + " offered again after it " + ToString(d.outcome));
    }
    d.stage = d.outcome == Outcome::kSucceeded ? kFbSuccess : kFbFailure;
    return Step(i, now_ms_);
  }
  if (!a.value("install", true)) {
    Schedule(i, now_ms_ + scenario_.groups[d.group].poll.count());
    return;
  }
  const json& dl = a.value("download", json::object());
  const std::string url = dl.value("url", "");
  d.path = PathOf(url);
  d.sha256 = dl.value("sha256", "");
  d.size = dl.value("size", uint64_t{0});
  if (id != d.action) {
    if (d.actions == 0) ++counters_.offered;
    ++d.actions;
    d.action = id;
    d.outcome = Outcome::kNone;
    d.dropped = d.cut = false;
    // Its fate, from the faults in force now.
    const DeviceFaults& f = faults_set_ ? faults_ : scenario_.groups[d.group].faults;
    std::uniform_real_distribution<double> u(0, 1);
    d.fate = 0;
    if (u(rng_) < f.download_drop) d.fate |= kDrop;
    if (u(rng_) < f.health_fail) d.fate |= kHealthFail;
    if (u(rng_) < f.power_cut) d.fate |= kPowerCutFate;
    if (u(rng_) < f.vanish) d.fate |= kVanishFate;
  }
  if (d.fate & kVanishFate) return Finish(i, Outcome::kVanished);
  d.stage = kFbDownloading;
  Step(i, now_ms_);
}

void Fleet::Feedback(uint32_t i, const char* status) {
  Device& d = devices_[i];
  const uint8_t stage = d.stage;
  d.stage = kInFlight;
  // Over MQTT, all but the report that starts an install (it waits for the server's verdict).
  if (IsMqtt(i) && stage != kFbInstalling) return MqttReport(i, stage, status);
  if (IsDdi(i)) return DdiFeedback(i, stage, status);
  json report = {{"status", status}};
  Describe(i, stage, report);
  HttpCall c{.method = "POST",
             .url = Base(i) + "/device/v1/" + Name(i) + "/actions/" + std::to_string(d.action) +
                    "/feedback",
             .token = d.token,
             .body = report.dump()};
  const size_t server = ServerFor(i);
  http_.Submit(std::move(c), [this, i, stage, server](HttpResult&& r) {
    // 2xx taken; 409: the action is already closed (a report whose answer was lost came
    // through): either way this report is done with.
    OnFeedback(i, stage, server, r.status);
  });
}

void Fleet::OnFeedback(uint32_t i, uint8_t stage, size_t server, long status) {
  if (status == 0 || status >= 500) {
    if (status == 0) MarkDown(server, now_ms_ + 2000);
    ++counters_.feedback_retries;
    devices_[i].stage = stage;  // the same report again, later
    Schedule(i, Backoff(i));
    return;
  }
  ++counters_.feedbacks;
  AfterFeedback(i, stage);
}

void Fleet::AfterFeedback(uint32_t i, uint8_t stage) {
  Device& dev = devices_[i];
  dev.tries = 0;
  switch (stage) {
    case kFbDownloading:
      dev.stage = kDownloading;
      return Step(i, now_ms_);
    case kFbDownloaded:
      dev.stage = kFbInstalling;
      return Step(i, now_ms_);
    case kFbInstalling: {
      const int64_t install = scenario_.groups[dev.group].install.count();
      dev.batch = 0;
      if ((dev.fate & kPowerCutFate) && !dev.cut) {
        dev.stage = kPowerCut;
        Schedule(i, now_ms_ + install / 2);
      } else {
        dev.stage = kInstalling;
        Schedule(i, now_ms_ + install);
      }
      return;
    }
    case kFbProgress:
      dev.stage = kInstalling;
      Schedule(i, now_ms_ + scenario_.groups[dev.group].install.count());
      return;
    case kFbInstalled:
      dev.stage = kFbSuccess;
      return Step(i, now_ms_);
    case kFbSuccess:
      dev.new_version = true;
      dev.reported = false;
      return Finish(i, Outcome::kSucceeded);
    case kFbFailure:
      return Finish(i, Outcome::kFailed);
    case kFbCanceled:
      return Finish(i, Outcome::kCanceled);
    default:
      return;
  }
}

void Fleet::StartDownload(uint32_t i) {
  Device& d = devices_[i];
  auto& dl = downloads_[i];
  if (!dl) {
    dl = std::make_unique<Download>();
    d.downloaded_ms = now_ms_;
  }
  d.stage = kInFlight;
  HttpCall c{.method = "GET", .url = Base(i) + d.path, .token = d.token};
  if (IsDdi(i)) c.scheme = "TargetToken";
  c.keep_body = false;
  c.timeout_ms = 120'000;
  c.range_from = dl->got;
  // A drop: the first attempt stops half-way (the connection goes), the next resumes there.
  c.range_to = (d.fate & kDrop) && !d.dropped ? d.size / 2 : (dl->got > 0 ? d.size : 0);
  Download* state = dl.get();
  const size_t server = ServerFor(i);
  http_.Submit(
      std::move(c),
      [this, i, server](HttpResult&& r) {
        if (r.status == 0) MarkDown(server, now_ms_ + 2000);
        OnDownload(i, std::move(r));
      },
      [state](const char* data, size_t n) {
        state->sha.Update(ByteSpan(reinterpret_cast<const uint8_t*>(data), n));
        state->got += n;
      });
}

void Fleet::OnDownload(uint32_t i, HttpResult&& r) {
  Device& d = devices_[i];
  Download& dl = *downloads_[i];
  counters_.download_bytes += r.bytes;
  if (r.status != 200 && r.status != 206) {
    // Nothing usable came (or a piece of it did: the hash took it, so go on from there).
    d.stage = kDownloading;
    Schedule(i, Backoff(i));
    return;
  }
  if ((d.fate & kDrop) && !d.dropped) {
    d.dropped = true;
    ++counters_.download_drops;
    d.stage = kDownloading;
    Schedule(i, now_ms_ + 1000);  // the link comes back; the download resumes
    return;
  }
  if (dl.got < d.size) {
    d.stage = kDownloading;
    Schedule(i, Backoff(i));
    return;
  }
  ++counters_.downloads;
  const bool good = dl.got == d.size && dl.sha.FinishHex() == d.sha256;
  const int64_t took = now_ms_ - d.downloaded_ms;
  downloads_.erase(i);
  if (!good) {
    ++counters_.bad_downloads;
    Note(Name(i) + ": download of action " + std::to_string(d.action) + " failed its check (" +
         std::to_string(dl.got) + " of " + std::to_string(d.size) + " bytes)");
    d.stage = kFbFailure;
    return Step(i, now_ms_);
  }
  // The rest of its bandwidth's time (the bytes came over loopback).
  const uint64_t bps = std::max<uint64_t>(scenario_.groups[d.group].bandwidth_bps, 1);
  const int64_t transfer_ms = static_cast<int64_t>(d.size * 1000 / bps);
  d.stage = kFbDownloaded;
  Schedule(i, now_ms_ + std::max<int64_t>(transfer_ms - took, 0));
}

void Fleet::Note(const std::string& line) {
  if (notes_.size() < 10) notes_.push_back(line);
}

void Fleet::Finish(uint32_t i, Outcome o) {
  Device& d = devices_[i];
  const bool again = d.outcome == o;  // its final report told again (TakeAction)
  d.outcome = o;
  d.path.clear();
  d.path.shrink_to_fit();
  d.sha256.clear();
  d.sha256.shrink_to_fit();
  downloads_.erase(i);
  switch (again ? Outcome::kNone : o) {
    case Outcome::kSucceeded:
      ++counters_.succeeded;
      break;
    case Outcome::kFailed:
      ++counters_.failed;
      break;
    case Outcome::kCanceled:
      ++counters_.canceled;
      break;
    case Outcome::kVanished:
      ++counters_.vanished;
      d.stage = kGone;
      return;
    case Outcome::kNone:
      break;
  }
  // As the agent does: a check-in at once, with what it runs now.
  d.stage = kIdle;
  Schedule(i, now_ms_ + 100);
}

json Fleet::Versions(uint32_t i) const {
  const Device& d = devices_[i];
  const DeviceGroup& g = scenario_.groups[d.group];
  const std::string& version = d.new_version ? scenario_.release_version : g.version;
  if (!g.vehicle()) return {{"main", version}};
  json v = json::object();
  for (const std::string& ecu : g.ecus) v[ecu] = version;  // all-new or all-old, never mixed
  return v;
}

int Fleet::Batches(uint32_t i) const {
  const DeviceGroup& g = scenario_.groups[devices_[i].group];
  if (!g.vehicle()) return 1;
  const int n = static_cast<int>(g.ecus.size());
  return (n + g.ecus_at_once() - 1) / g.ecus_at_once();
}

void Fleet::Describe(uint32_t i, uint8_t stage, json& report) const {
  const Device& d = devices_[i];
  const DeviceGroup& g = scenario_.groups[d.group];
  if (!g.vehicle()) return;
  const int n = static_cast<int>(g.ecus.size());
  const int at_once = g.ecus_at_once();
  std::string details;
  auto line = [&details](const std::string& text) {
    details += (details.empty() ? "" : "\n") + text;
  };
  switch (stage) {
    case kFbProgress:
      // As aloft-vehicle tells it: one line per ECU.
      for (int k = 0; k < n; ++k) {
        line(g.ecus[k] + ": " + (k < d.batch * at_once ? "flashed" : "waiting"));
      }
      report["progress"] = 100 * d.batch / Batches(i);
      break;
    case kFbSuccess:
      for (const std::string& ecu : g.ecus) {
        line(ecu + ": " + g.version + " -> " + scenario_.release_version);
      }
      break;
    case kFbFailure:
      line(g.ecus[i % n] + ": flash check failed (31 01 02 02: 0x72); every ECU back on " +
           g.version);
      break;
    default:
      return;
  }
  report["details"] = details;
}

LatencyHistogram Fleet::TakeWindow() {
  LatencyHistogram w;
  std::swap(w, window_);
  return w;
}

}  // namespace aloft::fleetsim
