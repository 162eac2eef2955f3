#include "fleetsim/checks.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "client/http_client.h"

namespace aloft::fleetsim {

using nlohmann::json;

namespace {

Result<json> Get(const std::string& base, const std::string& token, const std::string& path) {
  client::HttpRequest req{.url = base + path};
  req.headers = client::BearerHeaders(token);
  req.timeout_s = 120;
  ALOFT_ASSIGN_OR_RETURN(client::HttpResponse res, client::Send(req));
  if (res.status != 200) {
    return Error(Code::kUnavailable, "GET " + path + ": " + std::to_string(res.status) + " " +
                                         client::ErrorMessage(res));
  }
  json j = json::parse(res.body, nullptr, false);
  if (j.is_discarded()) return Error(Code::kMalformed, "GET " + path + ": not JSON");
  return j;
}

}  // namespace

namespace {

// The version a device's modules run: one, or "mixed: ..." listing them when they differ.
std::string ModulesVersion(const json& versions) {
  if (!versions.is_object()) return "";
  std::string one, all;
  bool mixed = false;
  for (const auto& [module, v] : versions.items()) {
    if (!v.is_string() || v.get<std::string>().empty()) continue;
    const std::string text = v.get<std::string>();
    if (!one.empty() && text != one) mixed = true;
    if (one.empty()) one = text;
    all += (all.empty() ? "" : ", ") + module + " " + text;
  }
  return mixed ? "mixed: " + all : one;
}

}  // namespace

Result<ServerView> ReadServerView(const std::string& base, const std::string& admin_token,
                                  const std::vector<std::string>& releases) {
  ServerView v;
  constexpr int kPage = 1000;
  for (int64_t offset = 0;; offset += kPage) {
    ALOFT_ASSIGN_OR_RETURN(json page, Get(base, admin_token,
                                          "/api/v1/actions?limit=" + std::to_string(kPage) +
                                              "&offset=" + std::to_string(offset)));
    if (!page.is_array()) return Error(Code::kMalformed, "GET /api/v1/actions: not a list");
    for (const json& a : page) {
      const std::string release = a.value("release", "");
      if (std::find(releases.begin(), releases.end(), release) == releases.end()) continue;
      v.actions[a.value("device", "")].push_back({a.value("id", int64_t{0}), a.value("state", "")});
    }
    if (page.size() < kPage) break;
  }
  for (int64_t offset = 0;; offset += kPage) {
    ALOFT_ASSIGN_OR_RETURN(json page, Get(base, admin_token,
                                          "/api/v1/devices?limit=" + std::to_string(kPage) +
                                              "&offset=" + std::to_string(offset)));
    const json items = page.value("items", json::array());
    for (const json& d : items) {
      v.versions[d.value("name", "")] = ModulesVersion(d.value("versions", json::object()));
    }
    if (items.size() < kPage) break;
  }
  return v;
}

CheckReport Check(const Fleet& fleet, const ServerView& server, uint64_t duplicate_offers) {
  CheckReport r;
  r.devices = fleet.size();
  r.duplicated = duplicate_offers;
  auto note = [&r](const std::string& line) {
    if (r.examples.size() < 10) r.examples.push_back(line);
  };
  for (size_t i = 0; i < fleet.size(); ++i) {
    const DeviceRecord d = fleet.Record(i);
    auto it = server.actions.find(d.name);
    const std::vector<ServerView::Action> none;
    const auto& actions = it == server.actions.end() ? none : it->second;
    for (const auto& a : actions) ++r.server_states[a.state];
    if (actions.size() > 1 || d.actions > 1) {
      ++r.duplicated;
      note(d.name + ": " + std::to_string(actions.size()) + " actions on the server, " +
           std::to_string(d.actions) + " given to the device");
    }
    const ServerView::Action* a = actions.empty() ? nullptr : &actions.back();
    // What the server must say of what the device did.
    const char* want = nullptr;
    switch (d.outcome) {
      case Outcome::kSucceeded:
        want = "succeeded";
        break;
      case Outcome::kFailed:
        want = "failed";
        break;
      case Outcome::kCanceled:
        want = "canceled";
        break;
      case Outcome::kVanished:
      case Outcome::kNone:
        break;
    }
    if (want) {
      if (!a || a->id != d.action || a->state != want) {
        ++r.lost;
        note(d.name + ": the device's action " + std::to_string(d.action) + " " + want +
             "; the server has " + (a ? std::to_string(a->id) + " " + a->state : "none"));
      }
    } else if (a && (a->state == "succeeded" || a->state == "failed")) {
      ++r.lost;
      note(d.name + ": the server has action " + std::to_string(a->id) + " " + a->state +
           ", which the device never finished (" + ToString(d.outcome) + ")");
    } else if (d.outcome == Outcome::kVanished && a) {
      ++r.vanished_open;
    }
    auto v = server.versions.find(d.name);
    const std::string held = v == server.versions.end() ? "" : v->second;
    if (held.starts_with("mixed")) {
      ++r.mixed;
      note(d.name + ": the server has its modules on different versions (" + held + ")");
    } else if (d.reported && held != d.version) {
      ++r.wrong_version;
      note(d.name + ": runs " + d.version + ", the server says " +
           (held.empty() ? "nothing" : held));
    }
    if (held == d.version && d.outcome == Outcome::kSucceeded) ++r.on_release;
  }
  return r;
}

}  // namespace aloft::fleetsim
