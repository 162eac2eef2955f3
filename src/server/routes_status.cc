// Health, metrics, fleet statistics and the audit log.
#include "core/clock.h"
#include "server/events.h"
#include "server/metrics.h"
#include "server/routes.h"

namespace aloft::server {

namespace {

Result<Response> ShowStats(Context& ctx) {
  server::Stats s;
  ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(s, tx.GetStats(ctx.Now()));
    return OkStatus();
  }));
  json by_version = json::object();
  for (const auto& [k, n] : s.devices_by_version) {
    auto a = k.find('/'), b = k.find('/', a + 1);
    by_version[k.substr(0, a)][k.substr(a + 1, b - a - 1)][k.substr(b + 1)] = n;
  }
  return JsonResponse(200, {{"devices", s.devices},
                            {"releases", s.releases},
                            {"devices_by_type", s.devices_by_type},
                            {"devices_by_version", by_version},
                            {"devices_by_state", s.devices_by_state},
                            {"actions_by_state", s.actions_by_state},
                            {"seen_last_hour", s.seen_hour},
                            {"seen_last_day", s.seen_day},
                            {"failing", s.failing}});
}

}  // namespace

void AddStatusRoutes(RouteTable& routes, Context& ctx) {
  using A = Access;
  using B = BodyKind;
  routes.Add(
      "GET", "/healthz", A::kPublic, B::kNone, [&ctx](Request&, Caller&) -> Result<Response> {
        ALOFT_RETURN_IF_ERROR(ctx.store->Read([](Tx& tx) {
          return tx.CountApiTokens().ok() ? OkStatus() : Error(Code::kUnavailable, "database");
        }));
        return JsonResponse(200, {{"status", "ok"}});
      });
  routes.Add(
      "GET", "/metrics", A::kPublic, B::kNone, [&ctx](Request&, Caller&) -> Result<Response> {
        const auto& c = *ctx.http;
        std::string extra;
        AppendMetric(extra, "aloft_http_connections", "gauge", "Open HTTP connections.",
                     c.connections.load());
        AppendMetric(extra, "aloft_http_connections_accepted_total", "counter",
                     "Accepted connections.", static_cast<int64_t>(c.accepted.load()));
        AppendMetric(extra, "aloft_http_connections_rejected_total", "counter",
                     "Connections closed on accept: max_connections or the per-address limit.",
                     static_cast<int64_t>(c.rejected_connections.load()));
        AppendMetric(extra, "aloft_http_max_connections", "gauge",
                     "Connections allowed at once (max_connections, capped by the descriptor "
                     "limit).",
                     c.max_connections.load());
        AppendMetric(extra, "aloft_db_statements_total", "counter",
                     "SQL statements this server ran on its database.",
                     static_cast<int64_t>(ctx.store->database().statements()));
        if (ctx.push) {
          const auto& p = ctx.push->counters();
          AppendMetric(extra, "aloft_mqtt_connected", "gauge",
                       "1 while the MQTT bridge is connected to the broker.",
                       ctx.push->connected() ? 1 : 0);
          AppendMetric(extra, "aloft_mqtt_connects_total", "counter",
                       "Connections of the MQTT bridge to the broker (more than one: it was "
                       "disconnected).",
                       p.connects.load());
          AppendMetric(extra, "aloft_mqtt_received_total", "counter",
                       "Device messages the MQTT bridge received.", p.received.load());
          AppendMetric(extra, "aloft_mqtt_error_reports_total", "counter",
                       "Device messages refused with an error report.", p.errors.load());
          AppendMetric(extra, "aloft_mqtt_answers_total", "counter",
                       "otaCheck events answered with a command.", p.commands.load());
          AppendMetric(extra, "aloft_mqtt_pushed_total", "counter",
                       "Commands pushed for due actions (rollout waves, push tasks).",
                       p.pushed.load());
          AppendMetric(extra, "aloft_mqtt_dropped_total", "counter",
                       "Device messages dropped because the bridge's queue was full.",
                       p.dropped.load());
          AppendMetric(extra, "aloft_mqtt_unacknowledged", "gauge",
                       "Messages published with QoS 1 and not yet acknowledged by the broker.",
                       static_cast<int64_t>(ctx.push->unacknowledged()));
        }
        Response r = Response::Text(200, ctx.metrics.Render(extra));
        r.headers.Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        return r;
      });

  routes.Add("GET", "/api/v1/events", A::kViewer, B::kNone,
             [&ctx](Request&, Caller& c) -> Result<Response> {
               Response r;
               r.headers.Set("Content-Type", "text/event-stream");
               r.headers.Set("Cache-Control", "no-store");
               r.headers.Set("X-Accel-Buffering", "no");  // nginx: pass each event on at once
               r.stream = ctx.events->Subscribe(c.role == Role::kAdmin);
               return r;
             });
  routes.Add("GET", "/api/v1/stats", A::kViewer, B::kNone,
             [&ctx](Request&, Caller&) { return ShowStats(ctx); });
  routes.Add("GET", "/api/v1/audit", A::kAdmin, B::kNone,
             [&ctx](Request& r, Caller&) -> Result<Response> {
               ALOFT_ASSIGN_OR_RETURN(int64_t limit, QueryInt(r, "limit", 100, 1000));
               ALOFT_ASSIGN_OR_RETURN(int64_t offset, QueryInt(r, "offset", 0, INT64_MAX));
               return ctx.ReadJson([&](Tx& tx) -> Result<json> {
                 ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListAudit(limit, offset));
                 json out = json::array();
                 for (const auto& e : list) {
                   out.push_back({{"id", e.id},
                                  {"at", FormatRfc3339Ms(e.at_ms)},
                                  {"actor", e.actor},
                                  {"action", e.action},
                                  {"object", e.object},
                                  {"details", json::parse(e.details, nullptr, false)}});
                 }
                 return out;
               });
             });
}

}  // namespace aloft::server
