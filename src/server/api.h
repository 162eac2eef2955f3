// What every HTTP route of aloftd shares (private to src/server): who is calling (Caller), what a
// route needs (Access, BodyKind), the route table the application dispatches through, error and
// JSON responses, and the checks on request input (bodies, ids, names, query parameters).
//
// A route file adds its handlers to a RouteTable:
//
//   routes.Add("GET", "/api/v1/devices/{device}", Access::kViewer, BodyKind::kNone,
//              [&ctx](Request& r, Caller&) { return ShowDevice(ctx, r); });
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "http/router.h"
#include "http/server.h"
#include "server/metrics.h"
#include "server/store.h"

namespace aloft::server {

using json = nlohmann::json;
using http::Request;
using http::Response;

// Who is calling.
struct Caller {
  enum Kind { kNone, kOperator, kDevice, kRegistration } kind = kNone;
  std::string actor;      // "token:<name>" / "device:<name>"
  std::string cache_key;  // the auth cache's key for this caller
  Role role = Role::kViewer;
  std::shared_ptr<const Device> device;  // kDevice; shared with the auth cache, never changed
  // kDevice, from the auth cache: what this server learned about the device, shared by every
  // request that finds the same cache entry.
  struct Hints {
    // The Store::ActionsEpoch() at which the device was found without an open action; 0 (never
    // an epoch): unknown.
    std::atomic<uint64_t> no_action_epoch{0};
    std::atomic<bool> counted{false};  // reported to Metrics::DeviceSeen
  };
  std::shared_ptr<Hints> hints;
  // kDevice read from the database by this very request (not the cache): whether the device had
  // an open action then. A check-in needs nothing fresher.
  std::optional<bool> open_action_now;
  std::optional<RegistrationToken> reg_token;  // kRegistration
  // kOperator signed in through the dashboard (a session cookie, not a Bearer token): the
  // session's CSRF token, which every request but GET and HEAD must echo in X-CSRF-Token.
  bool session = false;
  std::string csrf;
};

// The caller a dashboard session stands for (an operator, with the session's CSRF token).
Caller SessionCaller(const Session& s);

// The name of the session cookie (docs/dashboard.md).
inline constexpr std::string_view kSessionCookie = "aloft_session";
// The value of cookie `name` in the request's Cookie header(s), or "".
std::string_view CookieValue(const Request& req, std::string_view name);

// Who may call a route. kDdi: a device through the hawkBit DDI API (`Authorization: TargetToken
// <device token>` or `GatewayToken <ddi_gateway_token>`).
enum class Access {
  kPublic,
  kViewer,
  kRelease,
  kApprover,
  kAdmin,
  kDevice,
  kAnyDevice,  // any device's own token (a route without a {device}), or an operator's GET
  kDeviceOrRegistration,
  kDdi
};

// What a route's request body is: none, JSON (max_json_bytes), a file upload streamed to the
// artifact store's incoming directory (max_upload_bytes), a device log (max_log_bytes).
enum class BodyKind { kNone, kJson, kUpload, kLog };

using Handler = std::function<Result<Response>(Request&, Caller&)>;

struct Route {
  std::string method, pattern;
  Access access;
  BodyKind body;
  Handler fn;
  int metric = 0;  // Metrics route index
};

// The routes of the server, indexed by the router's ids. Filled once, before the server runs;
// read-only (and so thread-safe) afterwards.
class RouteTable {
 public:
  explicit RouteTable(Metrics& metrics) : metrics_(metrics) {}
  void Add(std::string method, std::string pattern, Access access, BodyKind body, Handler fn);
  http::RouteMatch Match(std::string_view method, std::string_view path) const {
    return router_.Match(method, path);
  }
  const Route& operator[](int id) const { return routes_[static_cast<size_t>(id)]; }

 private:
  Metrics& metrics_;
  http::Router router_;
  std::vector<Route> routes_;
};

// ---- responses ----

int HttpStatus(Code c);
Response ErrorResponse(const Error& e);
// A response without a body: 204, or 200 where a peer protocol (hawkBit DDI) expects it.
Response Empty(int status = 204);
inline Response NoContent() { return Empty(); }
// Missing or unknown credentials are 401 with a challenge in the route's scheme; anything else
// (the database is down) keeps its own status.
Response AuthErrorResponse(const Error& e, Access access);
Response JsonResponse(int status, const json& j);

inline Error Invalid(std::string message) {
  return Error(Code::kInvalidArgument, std::move(message));
}

inline int64_t ToMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// ---- request input ----

// The request body as a JSON object, parsed by the project's ParseJson (depth limit, duplicate
// member names refused). An empty body is {} when `allow_empty`.
Result<json> ParseBody(const Request& req, bool allow_empty);
// A decimal integer in int64_t's range, written the one way: an optional '-', digits, no
// leading zeros, nothing else (no '+', spaces or newlines); nullopt otherwise.
std::optional<int64_t> ParseInteger(std::string_view text);
// A positive ParseInteger: what names actions, tokens and software modules; nullopt otherwise.
std::optional<int64_t> ParseId(const std::string& text);
// The "{id}" of the route; `what` names it in the error: "action id 'x' is not a number".
Result<int64_t> PathId(Request& r, std::string_view what);
Result<std::optional<std::string>> OptString(const json& j, const char* key);
Result<std::string> ReqString(const json& j, const char* key);
Result<std::optional<std::vector<std::string>>> OptStringList(const json& j, const char* key);
// kInvalidArgument unless `name` is a plain name (pkg::IsValidName, at most 128); `what` names it.
Status CheckName(std::string_view what, const std::string& name);
Status CheckVersion(const std::string& version);
// The member `key` as an object of attributes: string, number or boolean values.
Result<std::optional<json>> OptAttributes(const json& j, const char* key = "attributes");
// Query parameter `key` as a non-negative integer, at most `max`; `def` when absent.
Result<int64_t> QueryInt(const Request& req, const char* key, int64_t def, int64_t max);
std::optional<std::string> QueryStr(const Request& req, const char* key);

}  // namespace aloft::server
