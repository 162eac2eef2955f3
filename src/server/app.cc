#include "server/app.h"

#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <thread>

#include "core/encoding.h"
#include "core/hash.h"
#include "crypto/keys.h"
#include "http/server.h"
#include "pkg/manifest.h"
#include "server/api.h"
#include "server/auth.h"
#include "server/context.h"
#include "server/device_api.h"
#include "server/events.h"
#include "server/housekeeping.h"
#include "server/routes.h"
#include "server/tuf_director.h"
#include "server/tuf_image.h"
#include "server/web.h"

namespace aloft::server {

std::string HostName() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || !host[0]) return "localhost";
  std::string out = host;
  for (auto& c : out)
    if (c == '-' || c == '/') c = '_';
  return out;
}

std::string NewToken(std::string_view prefix) {
  uint8_t bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) std::abort();  // no randomness: nothing is safe
  return std::string(prefix) + HexEncode(ByteSpan(bytes, sizeof bytes));
}

namespace {

// What the bridge's requests carry as Host, for the download URLs they are given: the address
// this server listens on (loopback when it listens on every address). public_url overrides it.
std::string LocalHost(const std::string& listen, uint16_t port) {
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") host = "127.0.0.1";
  return host + ":" + std::to_string(port);
}

// The application: wires the route files (routes.h) to the HTTP server, authenticates and
// dispatches each request, and runs the background tasks.
class AppImpl final : public App, public http::Handler {
 public:
  AppImpl(ServerConfig config, const Clock& clock, std::ostream& log)
      : ctx_(std::move(config), clock, log), routes_(ctx_.metrics) {}

  ~AppImpl() override {
    if (ctx_.push) ctx_.push->Stop();
    engine_.Stop();
    feed_.Stop();
    delta_worker_.Stop();
    flusher_.Stop();
    tuf_refresh_.Stop();
    if (ctx_.contacts) ctx_.contacts->Flush();
  }

  Status Init();

  Status Bind() override { return server_->Bind(); }
  uint16_t port() const override { return server_->port(); }
  void Run() override { server_->Run(); }
  void Stop() override { server_->Stop(); }
  Result<bool> TickRollouts() override;
  Result<int> MakeQueuedDeltas() override { return ctx_.deltas->RunQueue(ctx_.clock); }
  bool PushConnected() const override { return ctx_.push && ctx_.push->connected(); }

  std::variant<http::BodyPlan, Response> OnHeaders(Request& head) override;
  Response Handle(Request& req) override;

 private:
  // Opens the store, loads the keys and checks the configuration (the parts before the HTTP
  // server exists).
  Status InitState();
  Status StartPush();
  Status StartTuf();
  // The dashboard's files (web.h); only an explicit web_dir that cannot be read is an error.
  Status LoadWeb();
  // Whether an unrouted GET of `path` is the dashboard's (not an API's).
  bool DashboardPath(const std::string& path) const;
  // The MQTT bridge's hooks (push.h): a device-API request made as `device`, and the device's
  // offer.
  PushBridge::Call CallAsDevice(const std::string& device, const std::string& method,
                                const std::string& path, const std::string& body);
  Result<json> OfferFor(const std::string& device);
  // A request as the bridge makes it: download URLs name this server's listening address.
  Request BridgeRequest() const;
  // The route's handler's answer; an exception it lets escape (a bug: handlers return errors as
  // values) is logged and answered 500, and the server goes on.
  Response Run(const Route& route, Request& req, Caller& caller);

  Context ctx_;
  RouteTable routes_;
  std::unique_ptr<http::HttpServer> server_;
  File sqlite_lock_;                 // held while this server runs on an SQLite database
  std::atomic<bool> leader_{false};  // as the engine last found; for the log
  PeriodicTask engine_, delta_worker_, flusher_, feed_, tuf_refresh_;
};

Status AppImpl::InitState() {
  const ServerConfig& config = ctx_.config;
  if (config.data_dir.empty()) return Invalid("no data directory given (--data DIR)");
  if (::mkdir(config.data_dir.c_str(), 0750) != 0 && errno != EEXIST) {
    return ErrnoError("creating " + config.data_dir, errno);
  }
  ALOFT_RETURN_IF_ERROR(ctx_.artifacts.Init());
  CleanIncoming(ctx_.artifacts.incoming_dir(), HostName());
  std::string location = config.database.empty() ? config.data_dir + "/aloft.db" : config.database;
  const bool pg_location =
      location.starts_with("postgresql://") || location.starts_with("postgres://");
  if (!pg_location) {
    ALOFT_ASSIGN_OR_RETURN(sqlite_lock_, LockSqlite(location));
  }
  int pool = config.db_pool;
  if (pg_location && config.threads == 0) pool = std::max(pool, 16);
  auto store = Store::Open(location, pool);
  if (!store.ok()) return std::move(store).error().WithContext("opening the database");
  ctx_.store = std::move(store).value();
  ALOFT_ASSIGN_OR_RETURN(ctx_.device_certs, DeviceCertificates::Open(config, ctx_.clock));
  ctx_.auth = std::make_unique<Auth>(ctx_.config, ctx_.clock, *ctx_.store, ctx_.device_certs.get());
  ctx_.contacts = std::make_unique<ContactRecorder>(*ctx_.store, ctx_.clock, ctx_.log);
  for (const auto& path : config.trust) {
    auto key = crypto::PublicKey::Load(path);
    if (!key.ok()) return std::move(key).error().WithContext("loading trust key");
    ctx_.trust.Add(std::move(key).value());
  }
  ctx_.trust.set_threshold(static_cast<size_t>(std::max(1, config.trust_threshold)));
  if (!ctx_.trust.keys().empty()) ALOFT_RETURN_IF_ERROR(ctx_.trust.Validate());
  ALOFT_RETURN_IF_ERROR(EnsureAdminToken(ctx_));
  if (!pkg::IsValidName(config.ddi_tenant, 64) || config.ddi_tenant == "api" ||
      config.ddi_tenant == "device") {
    return Invalid("ddi_tenant '" + config.ddi_tenant +
                   "' must be a plain name (letters, digits, '.', '_', '-'), not 'api' or "
                   "'device'");
  }
  if (!config.external_base_url.empty() && config.secure_link_secret.empty()) {
    return Invalid("external_base_url needs secure_link_secret (the nginx secure_link secret)");
  }
  return OkStatus();
}

Status AppImpl::Init() {
  ALOFT_RETURN_IF_ERROR(InitState());
  const ServerConfig& config = ctx_.config;
  http::ServerOptions o;
  o.listen = config.listen;
  // Database calls block the HTTP thread: microseconds on SQLite, a network round trip on
  // PostgreSQL, where more threads keep the CPUs busy while queries are in flight, and let
  // concurrent first contacts share their lookups (Auth). wrk check-ins over 100,000 devices on
  // 2 cores, one run each: 8 threads 16.7k/s, 16 threads 22.5k, 32 threads 26.3k, 64 22.1k.
  const int cpus = std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  const bool postgres = ctx_.store->database().engine() == db::Engine::kPostgres;
  o.threads = config.threads > 0 ? config.threads : postgres ? std::max(32, 8 * cpus) : cpus;
  o.tls_cert = config.tls_cert;
  o.tls_key = config.tls_key;
  // Behind a proxy without TLS, device certificates come in a header (device_certs.h).
  if (!config.tls_cert.empty()) o.tls_client_ca = config.device_ca_file;
  o.shutdown_grace = std::chrono::seconds(config.shutdown_grace_s);
  o.max_connections = config.max_connections;
  o.max_connections_per_address = config.max_connections_per_address;
  server_ = std::make_unique<http::HttpServer>(o, *this);
  ctx_.http = &server_->counters();

  AddStatusRoutes(routes_, ctx_);
  AddDeviceTypeRoutes(routes_, ctx_);
  AddTokenRoutes(routes_, ctx_);
  AddSessionRoutes(routes_, ctx_);
  AddReleaseRoutes(routes_, ctx_);
  AddDeviceRoutes(routes_, ctx_);
  AddActionRoutes(routes_, ctx_);
  AddRolloutRoutes(routes_, ctx_);
  AddDeviceApiRoutes(routes_, ctx_);
  AddDdiRoutes(routes_, ctx_);
  AddTufRoutes(routes_, ctx_);

  ctx_.rollouts = std::make_unique<RolloutEngine>(
      *ctx_.store, HostName() + "/" + std::to_string(::getpid()) + "/" + NewToken("").substr(0, 8),
      std::chrono::seconds(config.rollout_lease_s), config.require_signed_releases);
  std::optional<crypto::PrivateKey> delta_key;
  if (!config.delta_key.empty()) {
    auto key = crypto::PrivateKey::Load(config.delta_key);
    if (!key.ok()) return key.error().WithContext("delta_key");
    delta_key = std::move(key).value();
  }
  const bool makes_deltas = delta_key.has_value();
  ALOFT_ASSIGN_OR_RETURN(ctx_.content_keys, ContentKeys::Open(config.content_key_file.empty()
                                                                  ? config.data_dir + "/content.key"
                                                                  : config.content_key_file));
  ctx_.deltas = std::make_unique<DeltaService>(*ctx_.store, ctx_.artifacts, std::move(delta_key),
                                               ctx_.content_keys.get(), ctx_.log);
  if (makes_deltas && config.rollout_tick_ms > 0) {
    delta_worker_.Start([this] { (void)ctx_.deltas->RunQueue(ctx_.clock); },
                        std::chrono::seconds(1), /*run_first=*/true);
  }
  if (config.rollout_tick_ms > 0) {
    engine_.Start([this] { (void)TickRollouts(); },
                  std::chrono::milliseconds(config.rollout_tick_ms),
                  /*run_first=*/true);
  }
  ALOFT_RETURN_IF_ERROR(StartTuf());
  ALOFT_RETURN_IF_ERROR(StartPush());
  ctx_.events = std::make_unique<EventHub>(*ctx_.store, ctx_.log);
  feed_.Start([this] { ctx_.events->Tick(ctx_.Now()); }, std::chrono::milliseconds(500),
              /*run_first=*/false);
  ALOFT_RETURN_IF_ERROR(LoadWeb());
  flusher_.Start([this] { ctx_.contacts->Flush(); }, std::chrono::seconds(1),
                 /*run_first=*/false);
  return OkStatus();
}

Status AppImpl::LoadWeb() {
  const std::string dir =
      ctx_.config.web_dir.empty() ? WebAssets::DefaultDir() : ctx_.config.web_dir;
  if (dir.empty()) {
    ctx_.log << "aloftd: no dashboard found (build it with scripts/web.sh, or set web_dir); "
                "the API is served"
             << std::endl;
    return OkStatus();
  }
  auto web = WebAssets::Load(dir);
  if (!web.ok()) {
    if (!ctx_.config.web_dir.empty()) return std::move(web).error().WithContext("web_dir");
    ctx_.log << "aloftd: dashboard not served: " << web.error().message() << std::endl;
    return OkStatus();
  }
  ctx_.web = std::make_unique<WebAssets>(std::move(web).value());
  return OkStatus();
}

Status AppImpl::StartTuf() {
  const ServerConfig& c = ctx_.config;
  if (!c.tuf_director_key.empty()) {
    auto key = crypto::PrivateKey::Load(c.tuf_director_key);
    if (!key.ok()) return key.error().WithContext("tuf_director_key");
    ALOFT_ASSIGN_OR_RETURN(ctx_.director,
                           Director::Create(*ctx_.store, std::move(*key),
                                            {.lifetime_ms = c.tuf_director_lifetime_s * 1000}));
  }
  if (c.tuf_snapshot_key.empty()) return OkStatus();
  auto snapshot = crypto::PrivateKey::Load(c.tuf_snapshot_key);
  if (!snapshot.ok()) return snapshot.error().WithContext("tuf_snapshot_key");
  auto timestamp = crypto::PrivateKey::Load(c.tuf_timestamp_key);
  if (!timestamp.ok()) return timestamp.error().WithContext("tuf_timestamp_key");
  ImageRepository::Options o;
  o.snapshot_lifetime_ms = c.tuf_snapshot_lifetime_s * 1000;
  o.timestamp_lifetime_ms = c.tuf_timestamp_lifetime_s * 1000;
  ALOFT_ASSIGN_OR_RETURN(ctx_.image, ImageRepository::Create(*ctx_.store, std::move(*snapshot),
                                                             std::move(*timestamp), o));
  // The online roles are signed again well before they expire (each server looks; one signs).
  tuf_refresh_.Start(
      [this] {
        if (Status s = ctx_.image->Refresh(ctx_.Now()); !s.ok()) {
          ctx_.log << "aloftd: TUF timestamp not refreshed: " << s.error().message() << std::endl;
        }
      },
      std::chrono::seconds(60), /*run_first=*/true);
  return OkStatus();
}

Status AppImpl::StartPush() {
  if (ctx_.config.mqtt_url.empty()) return OkStatus();
  PushOptions po;
  po.url = ctx_.config.mqtt_url;
  po.username = ctx_.config.mqtt_username;
  if (po.username.empty()) {
    // One user per aloftd (the broker binds client ids to user names), the same across restarts.
    std::error_code ec;
    const auto dir = std::filesystem::absolute(ctx_.config.data_dir, ec).lexically_normal();
    po.username = "aloftd-" + HostName() + "-" + Sha256Hex(AsBytes(dir.string())).substr(0, 8);
  }
  po.password = ctx_.config.mqtt_password;
  po.ca_file = ctx_.config.mqtt_ca_file;
  po.client_id = ctx_.config.mqtt_client_id;
  po.group = ctx_.config.mqtt_group;
  po.passwd_file = ctx_.config.mqtt_broker_passwd;
  po.acl_file = ctx_.config.mqtt_broker_acl;
  po.pid_file = ctx_.config.mqtt_broker_pid;
  po.max_message_bytes = std::min<uint64_t>(ctx_.config.max_json_bytes, 64 << 10);
  PushBridge::Hooks hooks;
  hooks.call = [this](const std::string& d, const std::string& m, const std::string& p,
                      const std::string& b) { return CallAsDevice(d, m, p, b); };
  hooks.offer = [this](const std::string& d) { return OfferFor(d); };
  ctx_.push = std::make_unique<PushBridge>(std::move(po), *ctx_.store, std::move(hooks), ctx_.log);
  Status s = ctx_.push->Start();
  if (!s.ok()) return std::move(s).error().WithContext("starting the MQTT bridge");
  return OkStatus();
}

Result<bool> AppImpl::TickRollouts() {
  auto leader = ctx_.rollouts->Tick(ctx_.Now());
  if (!leader.ok()) {
    ctx_.log << "aloftd: rollout engine: " << leader.error().message() << std::endl;
    return leader;
  }
  for (const auto& failure : ctx_.rollouts->TakeFailures()) {
    ctx_.log << "aloftd: rollout engine: " << failure << " (the other rollouts went on)"
             << std::endl;
  }
  if (leader_.exchange(*leader) != *leader) {
    // One write, so that another thread's line cannot land inside it (aloftd's "listening" line
    // is read by scripts for the port).
    ctx_.log << ("aloftd: rollout engine: " +
                 std::string(*leader ? "this server leads" : "another server leads") + " (" +
                 ctx_.rollouts->holder() + ")\n")
             << std::flush;
  }
  if (*leader && ctx_.push) {
    auto pushed = ctx_.push->PushDue(ctx_.Now());
    if (!pushed.ok()) ctx_.log << "aloftd: MQTT push: " << pushed.error().ToString() << std::endl;
  }
  return leader;
}

bool AppImpl::DashboardPath(const std::string& path) const {
  for (std::string_view api : {"/api/", "/device/", "/tuf/", "/metrics", "/healthz"}) {
    if (path.starts_with(api)) return false;
  }
  // hawkBit DDI of any tenant (/<tenant>/controller/...): a client on a wrong tenant gets the
  // DDI's 404, not a page.
  const auto second = path.find('/', 1);
  return second == std::string::npos || !path.substr(second).starts_with("/controller/");
}

std::variant<http::BodyPlan, Response> AppImpl::OnHeaders(Request& head) {
  auto m = routes_.Match(head.method, head.path);
  if (m.kind == http::RouteMatch::kNoPath && (head.method == "GET" || head.method == "HEAD") &&
      DashboardPath(head.path)) {
    if (!head.headers.Get("Content-Length").empty() && head.headers.Get("Content-Length") != "0") {
      return Response::Error(400, "invalid-argument", head.method + " takes no request body");
    }
    return ctx_.web ? ctx_.web->Serve(head) : NoDashboard();
  }
  if (m.kind == http::RouteMatch::kNoPath) {
    return Response::Error(404, "not-found", "no route " + head.path);
  }
  if (m.kind == http::RouteMatch::kWrongMethod) {
    Response r = Response::Error(
        405, "method-not-allowed",
        head.method + " is not allowed on " + head.path + " (allowed: " + m.allowed + ")");
    r.headers.Set("Allow", m.allowed);
    return r;
  }
  head.route = m.id;
  head.params = std::move(m.params);
  const Route& route = routes_[m.id];
  // Credentials are checked before a byte of the body is read (or 100 Continue is sent): an
  // unauthenticated client costs a header's worth of memory, whatever Content-Length it claims.
  auto caller = ctx_.auth->Authenticate(head, route.access);
  if (!caller.ok()) {
    ctx_.metrics.RecordRequest(route.metric, 401, 0);
    return AuthErrorResponse(caller.error(), route.access);
  }
  if (Status s = ctx_.auth->Authorize(*caller, route.access, head); !s.ok()) {
    Response r = ErrorResponse(s.error());
    ctx_.metrics.RecordRequest(route.metric, r.status, 0);
    return r;
  }
  head.handler_state = std::move(caller).value();
  http::BodyPlan plan;
  switch (route.body) {
    case BodyKind::kNone: {
      std::string_view len = head.headers.Get("Content-Length");
      if ((!len.empty() && len != "0") || head.headers.Has("Transfer-Encoding")) {
        return Response::Error(400, "invalid-argument",
                               head.method + " " + head.path + " takes no request body");
      }
      plan.max_size = 0;
      break;
    }
    case BodyKind::kJson:
      plan.max_size = ctx_.config.max_json_bytes;
      break;
    case BodyKind::kLog:
      plan.max_size = ctx_.config.max_log_bytes;
      break;
    case BodyKind::kUpload: {
      plan.max_size = ctx_.config.max_upload_bytes;
      plan.to_file_dir = ctx_.artifacts.incoming_dir();
      plan.file_prefix = "upload-" + HostName() + "-";
      break;
    }
  }
  return plan;
}

Response AppImpl::Handle(Request& req) {
  const auto start = std::chrono::steady_clock::now();
  Response res;
  int metric = 0;
  if (req.route < 0) {  // OnHeaders answers unrouted requests itself; this is a safety net
    res = Response::Error(404, "not-found", "no route " + req.path);
  } else {
    const Route& route = routes_[req.route];
    metric = route.metric;
    Caller* caller = std::any_cast<Caller>(&req.handler_state);  // set by OnHeaders
    if (!caller) {
      res = Response::Error(500, "internal", "the request was not authenticated");
    } else if (route.body == BodyKind::kNone && req.body_size > 0) {
      res = Response::Error(400, "invalid-argument",
                            req.method + " " + req.path + " takes no request body");
    } else {
      res = Run(route, req, *caller);
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ctx_.metrics.RecordRequest(metric, res.status, seconds);
  if (res.status >= 500) {
    ctx_.log << "aloftd: " << req.method << " " << req.path << " -> " << res.status << " "
             << res.body << std::endl;
  }
  return res;
}

Response AppImpl::Run(const Route& route, Request& req, Caller& caller) {
  try {
    auto r = route.fn(req, caller);
    return r.ok() ? std::move(r).value() : ErrorResponse(r.error());
  } catch (const std::exception& e) {
    ctx_.log << "aloftd: " << req.method << " " << route.pattern << ": internal error: " << e.what()
             << std::endl;
    return Response::Error(500, "internal",
                           "internal error while answering " + req.method + " " + route.pattern +
                               "; the server's log has details");
  }
}

Request AppImpl::BridgeRequest() const {
  Request req;
  req.remote_address = "mqtt";
  req.headers.Set("Host", LocalHost(ctx_.config.listen, server_->port()));
  req.tls = !ctx_.config.tls_cert.empty();
  return req;
}

PushBridge::Call AppImpl::CallAsDevice(const std::string& device, const std::string& method,
                                       const std::string& path, const std::string& body) {
  Request req = BridgeRequest();
  req.method = method;
  req.path = path;
  req.target = path;
  req.body = body;
  req.body_size = body.size();
  auto m = routes_.Match(method, path);
  if (m.kind != http::RouteMatch::kFound || routes_[m.id].access == Access::kPublic) {
    return {404, Response::Error(404, "not-found", "no route " + path).body};
  }
  req.route = m.id;
  req.params = std::move(m.params);
  const Route& route = routes_[m.id];
  Caller c;
  Status s = ctx_.store->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(Device d, tx.GetDevice(device));
    c.device = std::make_shared<const Device>(std::move(d));
    return OkStatus();
  });
  Response res;
  if (!s.ok()) {
    res = ErrorResponse(s.error());
  } else {
    c.kind = Caller::kDevice;
    c.actor = "device:" + device;
    if (Status a = ctx_.auth->Authorize(c, route.access, req); !a.ok()) {
      res = ErrorResponse(a.error());
    } else {
      res = Run(route, req, c);
    }
  }
  ctx_.metrics.RecordRequest(route.metric, res.status, 0);
  return {res.status, res.body};
}

Result<json> AppImpl::OfferFor(const std::string& name) {
  Device d;
  std::optional<Action> action;
  Release rel;
  ALOFT_RETURN_IF_ERROR(ctx_.store->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(d, tx.GetDevice(name));
    ALOFT_ASSIGN_OR_RETURN(action, tx.OpenActionFor(d.id));
    if (action) {
      ALOFT_ASSIGN_OR_RETURN(rel, tx.GetReleaseById(action->release_id));
    }
    return OkStatus();
  }));
  return OpenActionJson(ctx_, BridgeRequest(), d, action, rel);
}

}  // namespace

Result<std::unique_ptr<App>> App::Create(const ServerConfig& config, const Clock& clock,
                                         std::ostream& log) {
  auto app = std::make_unique<AppImpl>(config, clock, log);
  ALOFT_RETURN_IF_ERROR(app->Init());
  return std::unique_ptr<App>(std::move(app));
}

}  // namespace aloft::server
