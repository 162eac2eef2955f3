#include "server/events.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "core/canonical_json.h"

namespace aloft::server {

namespace {

void AppendEvent(std::string& out, std::string_view name, const nlohmann::json& data) {
  out.append("event: ").append(name).append("\ndata: ").append(DumpJson(data)).append("\n\n");
}

constexpr size_t kMaxNamedDevices = 100;

}  // namespace

std::shared_ptr<http::Stream> EventHub::Subscribe(bool admin) {
  auto stream = std::make_shared<http::Stream>();
  // The browser reconnects 2 s after a lost connection; the first event says the feed is live.
  stream->Push("retry: 2000\n\n");
  std::string hello;
  AppendEvent(hello, "hello", nlohmann::json::object());
  stream->Push(hello);
  std::lock_guard lock(mu_);
  subscribers_.push_back({stream, admin});
  return stream;
}

size_t EventHub::subscribers() const {
  std::lock_guard lock(mu_);
  return subscribers_.size();
}

std::pair<std::string, std::string> EventHub::Format(const Changes& c) {
  std::string all, admin;
  for (const auto& r : c.rollouts) {
    if (r.updated_ms <= floor_.rollouts_ms || !sent_.insert({'r', r.id, r.updated_ms}).second) {
      continue;
    }
    AppendEvent(all, "rollout",
                {{"id", r.id}, {"name", r.name}, {"state", r.state}, {"wave", r.wave}});
  }
  std::set<std::string> rollouts, devices;
  size_t actions = 0;
  std::map<std::string, size_t> states;
  for (const auto& a : c.actions) {
    if (a.updated_ms <= floor_.actions_ms || !sent_.insert({'a', a.id, a.updated_ms}).second) {
      continue;
    }
    ++actions;
    ++states[a.state];
    if (a.rollout) rollouts.insert(*a.rollout);
    if (devices.size() < kMaxNamedDevices) devices.insert(a.device);
  }
  if (actions > 0) {
    // Devices beyond the first hundred are not named: a page showing one of them refreshes on
    // "more": true.
    AppendEvent(all, "actions",
                {{"count", actions},
                 {"states", states},
                 {"rollouts", rollouts},
                 {"devices", devices},
                 {"more", devices.size() < actions && devices.size() >= kMaxNamedDevices}});
  }
  for (const auto& d : c.deltas) {
    if (d.updated_ms <= floor_.deltas_ms || !sent_.insert({'d', d.id, d.updated_ms}).second) {
      continue;
    }
    AppendEvent(all, "delta", {{"release", d.release}, {"base", d.base}, {"state", d.state}});
  }
  if (c.devices_seen || c.new_devices) {
    AppendEvent(all, "devices", {{"seen", c.devices_seen}, {"added", c.new_devices}});
  }
  if (c.new_releases) AppendEvent(all, "releases", nlohmann::json::object());
  if (c.new_audit) AppendEvent(admin, "audit", nlohmann::json::object());
  return {all, admin};
}

void EventHub::Broadcast(const std::string& all, const std::string& admin_only) {
  std::lock_guard lock(mu_);
  std::erase_if(subscribers_, [&](Subscriber& s) {
    if (!all.empty() && !s.stream->Push(all)) return true;
    if (s.admin && !admin_only.empty() && !s.stream->Push(admin_only)) return true;
    return s.stream->gone();
  });
}

void EventHub::Tick(int64_t now_ms) {
  if (subscribers() == 0) {
    marked_ = false;  // the next listener starts from then, not from a stale mark
    return;
  }
  if (!marked_) {
    // The first look after nobody listened only sets the marks: the pages fetched the state.
    Status s = store_.Read([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(marks_, tx.ChangeMarksNow());
      return OkStatus();
    });
    if (!s.ok()) {
      log_ << "aloftd: live feed: " << s.error().ToString() << std::endl;
      return;
    }
    marked_ = true;
    floor_ = marks_;
    sent_.clear();
    return;
  }
  Changes changes;
  Status s = store_.Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(changes, tx.ChangesSince(marks_, kOverlapMs, kBatch));
    return OkStatus();
  });
  if (!s.ok()) {
    log_ << "aloftd: live feed: " << s.error().ToString() << std::endl;
    return;
  }
  auto [all, admin] = Format(changes);
  marks_ = changes.marks;
  // Forget what lies before every overlap window.
  const int64_t oldest =
      std::min({marks_.rollouts_ms, marks_.actions_ms, marks_.deltas_ms}) - kOverlapMs;
  std::erase_if(sent_, [&](const auto& k) { return std::get<2>(k) < oldest; });
  if (now_ms - last_ping_ms_ >= kPingMs) {
    all.append(": ping\n\n");
    last_ping_ms_ = now_ms;
  }
  if (!all.empty() || !admin.empty()) Broadcast(all, admin);
}

}  // namespace aloft::server
