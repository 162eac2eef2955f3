#include "vehicle/agent_ecus.h"

#include <mutex>
#include <thread>

#include "core/hash.h"
#include "core/io.h"
#include "http/background_server.h"
#include "http/router.h"
#include "pkg/package.h"

namespace aloft::vehicle {
namespace {

enum Route { kCheckIn, kArtifact, kFeedback };

bool Final(const std::string& status) {
  return status == "success" || status == "failure" || status == "canceled";
}

// "bytes=A-B" or "bytes=A-" within `size`: [first, last]; nullopt for anything else (the whole
// artifact is sent, as aloftd does for a Range it does not take).
std::optional<std::pair<uint64_t, uint64_t>> ParseRange(std::string_view h, uint64_t size) {
  if (h.substr(0, 6) != "bytes=") return std::nullopt;
  h.remove_prefix(6);
  const size_t dash = h.find('-');
  if (dash == std::string_view::npos || dash == 0 || h.find(',') != std::string_view::npos) {
    return std::nullopt;
  }
  auto number = [](std::string_view s, uint64_t& out) {
    if (s.empty() || s.size() > 18) return false;
    out = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
      out = out * 10 + static_cast<uint64_t>(c - '0');
    }
    return true;
  };
  uint64_t first = 0, last = size ? size - 1 : 0;
  if (!number(h.substr(0, dash), first)) return std::nullopt;
  if (dash + 1 < h.size() && !number(h.substr(dash + 1), last)) return std::nullopt;
  if (last < first) return std::nullopt;
  return std::make_pair(first, std::min(last, size ? size - 1 : 0));
}

}  // namespace

struct AgentEcuServer::Impl : http::Handler {
  struct Entry {
    Ecu ecu;
    State state;
    std::shared_ptr<const Bytes> package;
    std::string sha256;
    nlohmann::json manifest;
    bool closed = true;   // no open offer
    bool cancel = false;  // withdrawn: the agent is asked to drop it
  };
  AgentEcuServer& owner;
  mutable std::mutex mu;
  std::map<std::string, Entry> ecus;
  http::Router router;
  http::BackgroundServer server;

  explicit Impl(AgentEcuServer& o) : owner(o) {
    router.Add("POST", "/device/v1/{device}/check-in", kCheckIn);
    router.Add("GET", "/device/v1/{device}/actions/{id}/artifact", kArtifact);
    router.Add("POST", "/device/v1/{device}/actions/{id}/feedback", kFeedback);
  }

  std::variant<http::BodyPlan, http::Response> OnHeaders(http::Request& head) override {
    if (auto refused = http::RefuseRequestHead(head)) return *refused;
    const http::RouteMatch m = router.Match(head.method, head.path);
    if (auto r = http::Unrouted(m, head, " on the gateway")) return *r;
    head.route = m.id;
    head.params = m.params;
    const std::string& device = head.params["device"];
    std::lock_guard<std::mutex> lock(mu);
    auto it = ecus.find(device);
    const std::string_view auth = head.headers.Get("Authorization");
    if (it == ecus.end() || auth.substr(0, 7) != "Bearer " ||
        Sha256Hex(AsBytes(auth.substr(7))) != Sha256Hex(AsBytes(it->second.ecu.token))) {
      return http::Response::Error(401, "unauthorized",
                                   "no ECU '" + device + "' with this token on the gateway");
    }
    http::BodyPlan plan;
    plan.max_size = 64 * 1024;
    return plan;
  }

  http::Response Handle(http::Request& request) override {
    const std::string device = request.params["device"];
    if (request.route == kCheckIn) return CheckIn(device, request);
    int64_t id = 0;
    try {
      id = std::stoll(request.params["id"]);
    } catch (...) {
      return http::Response::Error(404, "not-found", "no action '" + request.params["id"] + "'");
    }
    if (request.route == kArtifact) return Artifact(device, id, request);
    return Feedback(device, id, request);
  }

  http::Response CheckIn(const std::string& device, const http::Request& request) {
    nlohmann::json body = request.body.empty()
                              ? nlohmann::json::object()
                              : nlohmann::json::parse(request.body, nullptr, false);
    if (!body.is_object()) {
      return http::Response::Error(400, "bad-request", "the check-in body is not a JSON object");
    }
    std::lock_guard<std::mutex> lock(mu);
    Entry& e = ecus.at(device);
    e.state.seen = true;
    if (body.contains("versions") && body["versions"].is_object()) {
      e.state.versions.clear();
      for (const auto& [module, version] : body["versions"].items()) {
        if (version.is_string()) e.state.versions[module] = version.get<std::string>();
      }
    }
    nlohmann::json action = nullptr;
    if (!e.closed && e.cancel) {
      action = {{"id", e.state.action}, {"state", "canceling"}, {"cancel", true}};
    } else if (!e.closed) {
      const nlohmann::json& s = e.manifest["signed"];
      nlohmann::json modules = nlohmann::json::array();
      for (const auto& c : s.value("components", nlohmann::json::array())) {
        modules.push_back(c.value("name", ""));
      }
      const std::string host(request.headers.Get("Host"));
      action = {{"id", e.state.action},
                {"release", s.value("name", "")},
                {"version", s.value("version", "")},
                {"kind", "package"},
                {"modules", modules},
                {"mode", e.state.install ? "forced" : "download-only"},
                {"state", "pending"},
                {"install", e.state.install},
                {"download",
                 {{"url", "http://" + host + "/device/v1/" + device + "/actions/" +
                              std::to_string(e.state.action) + "/artifact"},
                  {"size", e.package->size()},
                  {"sha256", e.sha256},
                  {"filename", s.value("name", "package") + ".aloft"}}},
                {"manifest", e.manifest}};
    }
    // Often while an offer is open: the campaign waits on this ECU.
    return http::Response::Json(200, nlohmann::json{{"device", device},
                                                    {"poll_interval_s", e.closed ? 10 : 1},
                                                    {"action", action}}
                                         .dump());
  }

  http::Response Artifact(const std::string& device, int64_t id, const http::Request& request) {
    std::shared_ptr<const Bytes> package;
    std::string sha;
    {
      std::lock_guard<std::mutex> lock(mu);
      const Entry& e = ecus.at(device);
      if (e.closed || e.state.action != id) {
        return http::Response::Error(404, "not-found",
                                     "no open action " + std::to_string(id) + " for " + device);
      }
      package = e.package;
      sha = e.sha256;
    }
    http::Response r;
    r.headers.Set("Content-Type", "application/octet-stream");
    r.headers.Set("ETag", "\"" + sha + "\"");
    r.headers.Set("Accept-Ranges", "bytes");
    const std::string_view range = request.headers.Get("Range");
    const std::string_view if_range = request.headers.Get("If-Range");
    auto asked = range.empty() || (!if_range.empty() && if_range != "\"" + sha + "\"")
                     ? std::nullopt
                     : ParseRange(range, package->size());
    if (asked && asked->first >= package->size()) {
      http::Response none =
          http::Response::Error(416, "range-not-satisfiable",
                                "the artifact has " + std::to_string(package->size()) + " bytes");
      none.headers.Set("Content-Range", "bytes */" + std::to_string(package->size()));
      return none;
    }
    const uint64_t first = asked ? asked->first : 0;
    const uint64_t last = asked ? asked->second : package->size() - 1;
    r.status = asked ? 206 : 200;
    if (asked) {
      r.headers.Set("Content-Range", "bytes " + std::to_string(first) + "-" + std::to_string(last) +
                                         "/" + std::to_string(package->size()));
    }
    if (!package->empty()) {
      r.body.assign(reinterpret_cast<const char*>(package->data()) + first, last - first + 1);
    }
    return r;
  }

  http::Response Feedback(const std::string& device, int64_t id, const http::Request& request) {
    nlohmann::json body = nlohmann::json::parse(request.body, nullptr, false);
    if (!body.is_object() || !body.contains("status") || !body["status"].is_string()) {
      return http::Response::Error(400, "bad-request",
                                   "feedback needs a JSON object with a \"status\" string");
    }
    const std::string status = body["status"];
    {
      std::lock_guard<std::mutex> lock(mu);
      Entry& e = ecus.at(device);
      if (e.closed || e.state.action != id) {
        return http::Response::Error(
            409, "conflict", "action " + std::to_string(id) + " of " + device + " is not open");
      }
      if (status == "installing" && !e.state.install) {
        return http::Response::Error(409, "conflict",
                                     "the gateway has not let " + device + " install yet");
      }
      if (status == "canceled" && !e.cancel) {
        return http::Response::Error(
            409, "conflict",
            "action " + std::to_string(id) + " of " + device + " is not canceling");
      }
      e.state.status = status;
      e.state.details = body.value("details", nlohmann::json());
      if (Final(status)) e.closed = true;
    }
    if (owner.on_feedback) owner.on_feedback(device, body);
    return http::Response::Json(200, nlohmann::json{{"id", id}, {"state", status}}.dump());
  }
};

AgentEcuServer::AgentEcuServer(std::vector<Ecu> ecus) : impl_(std::make_unique<Impl>(*this)) {
  for (Ecu& e : ecus) impl_->ecus[e.name].ecu = std::move(e);
}

AgentEcuServer::~AgentEcuServer() { Stop(); }

Status AgentEcuServer::Start(const std::string& listen) {
  return impl_->server.Start(http::SmallApi(listen), *impl_, "the in-car device API");
}

uint16_t AgentEcuServer::port() const { return impl_->server.port(); }

void AgentEcuServer::Stop() { impl_->server.Stop(); }

Status AgentEcuServer::Offer(const std::string& ecu, std::shared_ptr<const Bytes> package,
                             int64_t id) {
  MemorySource source(*package);
  ALOFT_ASSIGN_OR_RETURN(auto reader,
                         pkg::PackageReader::Open(source, ecu + "'s package", nullptr));
  ALOFT_ASSIGN_OR_RETURN(std::string text, pkg::SerializeEnvelope(reader->envelope()));
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->ecus.find(ecu);
  if (it == impl_->ecus.end()) {
    return Error(Code::kNotFound, "no agent ECU '" + ecu + "' on the gateway");
  }
  Impl::Entry& e = it->second;
  e.package = std::move(package);
  e.sha256 = Sha256Hex(*e.package);
  e.manifest = nlohmann::json::parse(text);
  e.closed = e.cancel = false;
  e.state.action = id;
  e.state.install = false;
  e.state.status.clear();
  e.state.details = nullptr;
  return OkStatus();
}

void AgentEcuServer::Allow(const std::string& ecu) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (auto it = impl_->ecus.find(ecu); it != impl_->ecus.end()) it->second.state.install = true;
}

void AgentEcuServer::Withdraw(const std::string& ecu) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (auto it = impl_->ecus.find(ecu); it != impl_->ecus.end() && !it->second.closed) {
    it->second.cancel = true;
  }
}

std::vector<std::string> AgentEcuServer::names() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<std::string> out;
  for (const auto& [name, e] : impl_->ecus) out.push_back(name);
  return out;
}

AgentEcuServer::State AgentEcuServer::state(const std::string& ecu) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->ecus.find(ecu);
  return it == impl_->ecus.end() ? State{} : it->second.state;
}

}  // namespace aloft::vehicle
