#include "vehicle/hmi.h"

#include <thread>

#include "client/http_client.h"
#include "http/background_server.h"
#include "http/router.h"

namespace aloft::vehicle {
namespace {

enum Route { kScreen, kAccept, kDefer };

nlohmann::json Screen(const DriverPrompt& d, const std::string& activity) {
  return {{"screen", d.Screen()},
          {"asking", d.asking()},
          {"deferrals", d.deferrals()},
          {"activity", activity}};
}

}  // namespace

struct HmiServer::Impl : http::Handler {
  DriverPrompt& driver;
  std::function<std::string()> activity;
  std::function<void(const std::function<void()>&)> on_loop;
  http::Router router;
  http::BackgroundServer server;

  Impl(DriverPrompt& d, std::function<std::string()> doing,
       std::function<void(const std::function<void()>&)> run)
      : driver(d), activity(std::move(doing)), on_loop(std::move(run)) {
    router.Add("GET", "/v1/screen", kScreen);
    router.Add("POST", "/v1/accept", kAccept);
    router.Add("POST", "/v1/defer", kDefer);
  }

  std::variant<http::BodyPlan, http::Response> OnHeaders(http::Request& head) override {
    if (auto refused = http::RefuseRequestHead(head)) return *refused;
    const http::RouteMatch m = router.Match(head.method, head.path);
    if (auto r = http::Unrouted(m, head, " here: /v1/screen, /v1/accept, /v1/defer")) return *r;
    head.route = m.id;
    http::BodyPlan plan;
    plan.max_size = 4096;
    return plan;
  }

  http::Response Handle(http::Request& request) override {
    Status status = OkStatus();
    nlohmann::json screen;
    on_loop([&] {
      if (request.route == kAccept) status = driver.Accept();
      if (request.route == kDefer) status = driver.Defer();
      screen = Screen(driver, activity ? activity() : "");
    });
    if (!status.ok()) {
      const bool none_left = status.error().code() == Code::kOutOfRange;
      return http::Response::Error(409, none_left ? "no-deferrals-left" : "not-asking",
                                   status.error().message());
    }
    return http::Response::Json(200, screen.dump());
  }
};

HmiServer::HmiServer(DriverPrompt& driver, std::function<std::string()> activity,
                     std::function<void(const std::function<void()>&)> on_loop)
    : impl_(std::make_unique<Impl>(driver, std::move(activity), std::move(on_loop))) {}

HmiServer::~HmiServer() { Stop(); }

Status HmiServer::Start(const std::string& listen) {
  return impl_->server.Start(http::SmallApi(listen), *impl_, "the driver's screen API");
}

uint16_t HmiServer::port() const { return impl_->server.port(); }

void HmiServer::Stop() { impl_->server.Stop(); }

Result<nlohmann::json> CallHmi(const std::string& endpoint, const std::string& verb) {
  const bool get = verb == "screen";
  if (!get && verb != "accept" && verb != "defer") {
    return Error(Code::kInvalidArgument, "no such request: " + verb);
  }
  const std::string url = "http://" + endpoint + "/v1/" + verb;
  client::HttpRequest request;
  request.method = get ? "GET" : "POST";
  request.url = url;
  request.timeout_s = 10;
  Result<client::HttpResponse> sent = client::Send(request);
  if (!sent.ok()) {
    return std::move(sent).error().WithContext("the driver's screen API at " + endpoint +
                                               " (is aloft-vehicle running?)");
  }
  const client::HttpResponse& r = *sent;
  nlohmann::json body = nlohmann::json::parse(r.body, nullptr, false);
  if (r.status == 200 && body.is_object()) return body;
  if (body.is_object() && body.contains("message")) {
    return Error(r.status == 409 ? Code::kUnavailable : Code::kInternal,
                 body["message"].get<std::string>());
  }
  return Error(Code::kMalformed,
               url + " answered " + std::to_string(r.status) + ": " + r.body.substr(0, 200));
}

}  // namespace aloft::vehicle
