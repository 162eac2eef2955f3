#include "server/app.h"

#include <dirent.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>

#include "core/canonical_json.h"
#include "core/encoding.h"
#include "core/file.h"
#include "core/hash.h"
#include "crypto/keys.h"
#include "crypto/trust.h"
#include "http/router.h"
#include "http/server.h"
#include "mqtt/client.h"
#include "pkg/manifest.h"
#include "pkg/package.h"
#include "server/artifacts.h"
#include "server/ddi.h"
#include "server/deltas.h"
#include "server/download.h"
#include "server/metrics.h"
#include "server/push.h"
#include "server/rollout.h"
#include "server/schedule.h"
#include "server/store.h"

namespace aloft::server {

using json = nlohmann::json;
using http::Request;
using http::Response;

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
    // The Store::actions_epoch() at which the device was found without an open action; 0 (never
    // an epoch): unknown.
    std::atomic<uint64_t> no_action_epoch{0};
    std::atomic<bool> counted{false};  // reported to Metrics::DeviceSeen
  };
  std::shared_ptr<Hints> hints;
  std::optional<DeviceType> reg_type;  // kRegistration
};

constexpr int64_t kFirstTokenLock = 0x416c6f6674000001;  // "Aloft" + 1

// kDdi: a device through the hawkBit DDI API (`Authorization: TargetToken <device token>` or
// `GatewayToken <ddi_gateway_token>`).
enum class Access {
  kPublic,
  kViewer,
  kRelease,
  kApprover,
  kAdmin,
  kDevice,
  kDeviceOrRegistration,
  kDdi
};

enum class BodyKind { kNone, kJson, kUpload, kLog };

int HttpStatus(Code c) {
  switch (c) {
    case Code::kInvalidArgument:
    case Code::kMalformed:
      return 400;
    case Code::kPermissionDenied:
      return 403;
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
      return 409;
    case Code::kOutOfRange:
      return 413;
    case Code::kIntegrity:
    case Code::kUntrusted:
    case Code::kUnsupported:
      return 422;
    case Code::kUnavailable:
      return 503;
    case Code::kIo:
    case Code::kInternal:
      return 500;
  }
  return 500;
}

Response ErrorResponse(const Error& e) {
  return Response::Error(HttpStatus(e.code()), CodeName(e.code()), e.message());
}

// A response without a body: 204, or 200 where a peer protocol (hawkBit DDI) expects it.
Response Empty(int status = 204) {
  Response r;
  r.status = status;
  return r;
}
Response NoContent() { return Empty(); }

// Missing or unknown credentials are 401 with a challenge in the route's scheme; anything else
// (the database is down) keeps its own status.
Response AuthErrorResponse(const Error& e, Access access) {
  Response res = ErrorResponse(e);
  if (e.code() == Code::kPermissionDenied) {
    res.status = 401;
    res.headers.Set("WWW-Authenticate", access == Access::kDdi ? "TargetToken" : "Bearer");
  }
  return res;
}

Response JsonResponse(int status, const json& j) { return Response::Json(status, j.dump()); }

Error Invalid(std::string message) { return Error(Code::kInvalidArgument, std::move(message)); }

int64_t ToMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// ---- JSON bodies ----

// The request body as a JSON object, parsed by the project's ParseJson (depth limit, duplicate
// member names refused).
Result<json> ParseBody(const Request& req, bool allow_empty) {
  if (req.body.empty() && allow_empty) return json::object();
  auto j = ParseJson(req.body);
  if (!j.ok()) return std::move(j).error().WithContext("request body is not valid JSON");
  if (!j->is_object()) return Error(Code::kMalformed, "request body must be a JSON object");
  return std::move(j).value();
}

// A positive decimal id, or nullopt.
std::optional<int64_t> ParseId(const std::string& text) {
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end || v <= 0) return std::nullopt;
  return int64_t{v};
}

// The "{id}" of the route; `what` names it in the error: "action id 'x' is not a number".
Result<int64_t> PathId(Request& r, std::string_view what) {
  const std::string& text = r.params["id"];
  auto id = ParseId(text);
  if (!id) return Invalid(std::string(what) + " id '" + text + "' is not a number");
  return *id;
}

Result<std::optional<std::string>> OptString(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) {
    return Invalid(std::string("field '") + key + "' must be a string, not " + it->type_name());
  }
  return std::optional<std::string>(it->get<std::string>());
}

Result<std::string> ReqString(const json& j, const char* key) {
  ALOFT_ASSIGN_OR_RETURN(auto v, OptString(j, key));
  if (!v) return Invalid(std::string("missing field '") + key + "'");
  return *v;
}

Result<std::optional<std::vector<std::string>>> OptStringList(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<std::vector<std::string>>();
  if (!it->is_array()) {
    return Invalid(std::string("field '") + key + "' must be an array of strings, not " +
                   it->type_name());
  }
  std::vector<std::string> out;
  for (const auto& e : *it) {
    if (!e.is_string()) {
      return Invalid(std::string("field '") + key + "' must contain only strings, found " +
                     e.type_name());
    }
    out.push_back(e.get<std::string>());
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

Status CheckName(std::string_view what, const std::string& name) {
  if (!pkg::IsValidName(name, 128)) {
    return Invalid(std::string(what) + " '" + name +
                   "' is not a valid name (letters, digits, '.', '_', '-'; starting with a "
                   "letter or digit; at most 128)");
  }
  return OkStatus();
}

Status CheckVersion(const std::string& version) {
  if (version.empty() || version.size() > 64) {
    return Invalid("version '" + version + "' must have 1 to 64 characters");
  }
  for (char c : version) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+' || c == '_')) {
      return Invalid("version '" + version +
                     "' may contain only letters, digits, '.', '-', '+', "
                     "'_'");
    }
  }
  return OkStatus();
}

// The member `key` as an object of attributes: string, number or boolean values.
Result<std::optional<json>> OptAttributes(const json& j, const char* key = "attributes") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<json>();
  if (!it->is_object()) {
    return Invalid(std::string("field '") + key + "' must be an object, not " + it->type_name());
  }
  for (const auto& [k, v] : it->items()) {
    if (!(v.is_string() || v.is_number() || v.is_boolean())) {
      return Invalid("attribute '" + k + "' must be a string, number or boolean");
    }
    if (k.size() > 128) return Invalid("attribute name '" + k.substr(0, 32) + "…' is too long");
  }
  return std::optional<json>(*it);
}

Result<int64_t> QueryInt(const Request& req, const char* key, int64_t def, int64_t max) {
  auto it = req.query.find(key);
  if (it == req.query.end()) return def;
  char* end = nullptr;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end || v < 0) {
    return Invalid(std::string("query parameter '") + key + "' must be a non-negative integer");
  }
  return std::min<int64_t>(v, max);
}

std::optional<std::string> QueryStr(const Request& req, const char* key) {
  auto it = req.query.find(key);
  if (it == req.query.end()) return std::nullopt;
  return it->second;
}

// ---- JSON views ----

json ToJson(const DeviceType& t) {
  return {{"name", t.name},
          {"description", t.description},
          {"modules", t.modules},
          {"created", FormatRfc3339Ms(t.created_ms)}};
}

json ToJson(const Release& r) {
  json targets = json::array();
  for (const auto& t : r.targets)
    targets.push_back({{"device_type", t.device_type}, {"module", t.module}});
  json j = {{"id", r.Id()},
            {"name", r.name},
            {"version", r.version},
            {"kind", r.kind},
            {"filename", r.filename},
            {"size", r.artifact.size},
            {"sha256", r.artifact.sha256},
            {"sha1", r.artifact.sha1},
            {"md5", r.artifact.md5},
            {"enabled", r.enabled},
            {"device_types", r.DeviceTypes()},
            {"modules", r.Modules()},
            {"targets", targets},
            {"allowed_devices", r.allowed_devices ? json(*r.allowed_devices) : json(nullptr)},
            {"allowed_sources", r.allowed_sources ? json(*r.allowed_sources) : json(nullptr)},
            {"created", FormatRfc3339Ms(r.created_ms)},
            {"created_by", r.created_by}};
  return j;
}

json ToJson(const Device& d) {
  json attrs = json::parse(d.attributes, nullptr, false);
  if (attrs.is_discarded()) attrs = json::object();
  return {{"name", d.name},
          {"device_type", d.device_type},
          {"group", d.group ? json(*d.group) : json(nullptr)},
          {"tags", d.tags},
          {"attributes", attrs},
          {"versions", d.versions},
          {"created", FormatRfc3339Ms(d.created_ms)},
          {"last_seen", d.last_seen_ms ? json(FormatRfc3339Ms(*d.last_seen_ms)) : json(nullptr)},
          {"gateway", d.gateway ? json(*d.gateway) : json(nullptr)}};
}

json ToJson(const Action& a) {
  json j = {{"id", a.id},
            {"device", a.device},
            {"release", a.release + "@" + a.version},
            {"state", ActionStateName(a.state)},
            {"mode", a.mode},
            {"progress", a.progress},
            {"created", FormatRfc3339Ms(a.created_ms)},
            {"updated", FormatRfc3339Ms(a.updated_ms)},
            {"created_by", a.created_by}};
  if (!a.events.empty()) {
    json events = json::array();
    for (const auto& e : a.events) {
      json ev = {{"at", FormatRfc3339Ms(e.at_ms)}, {"status", e.status}, {"details", e.details}};
      if (e.progress) ev["progress"] = *e.progress;
      if (e.code) ev["code"] = *e.code;
      events.push_back(std::move(ev));
    }
    j["events"] = std::move(events);
  }
  return j;
}

// [ToJson(item), ...]
template <class T>
json JsonList(const std::vector<T>& items) {
  json out = json::array();
  for (const auto& item : items) out.push_back(ToJson(item));
  return out;
}

// ---- the application ----

struct Route {
  std::string method, pattern;
  Access access;
  BodyKind body;
  std::function<Result<Response>(Request&, Caller&)> fn;
  int metric = 0;  // Metrics route index
};

class AppImpl final : public App, public http::Handler {
 public:
  AppImpl(ServerConfig config, const Clock& clock, std::ostream& log)
      : config_(std::move(config)),
        clock_(clock),
        log_(log),
        artifacts_(config_.artifacts_dir.empty() ? config_.data_dir + "/artifacts"
                                                 : config_.artifacts_dir) {}

  ~AppImpl() override {
    if (push_) push_->Stop();
    {
      std::lock_guard lock(engine_mu_);
      stop_engine_ = true;
    }
    engine_cv_.notify_all();
    if (engine_.joinable()) engine_.join();
    if (delta_worker_.joinable()) delta_worker_.join();
    {
      std::lock_guard lock(touch_mu_);
      stop_flusher_ = true;
    }
    touch_cv_.notify_all();
    if (flusher_.joinable()) flusher_.join();
    FlushTouches();
  }

  Status Init();

  Status Bind() override { return server_->Bind(); }
  uint16_t port() const override { return server_->port(); }
  void Run() override { server_->Run(); }
  void Stop() override { server_->Stop(); }
  Result<bool> TickRollouts() override;
  Result<int> MakeQueuedDeltas() override { return deltas_->RunQueue(clock_); }
  bool PushConnected() const override { return push_ && push_->connected(); }

  std::variant<http::BodyPlan, Response> OnHeaders(Request& head) override;
  Response Handle(Request& req) override;

 private:
  int64_t Now() const { return ToMs(clock_.Wall()); }
  void AddRoutes();
  void AddRoute(std::string method, std::string pattern, Access access, BodyKind body,
                std::function<Result<Response>(Request&, Caller&)> fn);
  Result<Caller> Authenticate(const Request& req, Access access);
  // `Authorization: GatewayToken <token>`: the device named in the path, when the token is the
  // configured ddi_gateway_token.
  Result<Caller> AuthenticateGateway(const Request& req, std::string_view token);
  // Whether `caller` may make `req`. A gateway acting for one of its sub-devices on the device
  // API becomes that sub-device: `caller.device` is replaced by it.
  Status Authorize(Caller& caller, Access access, const Request& req);
  Status EnsureAdminToken();
  void CleanIncoming();
  Status LockSqlite(const std::string& db_path);
  void TouchLater(int64_t device_id);
  void FlushTouches();
  std::string BaseUrl(const Request& req) const;
  // Runs `build` in one read transaction and answers 200 with the JSON it built.
  Result<Response> ReadJson(const std::function<Result<json>(Tx&)>& build);
  // `window`: the maintenance window of the action's rollout, when it has one; `delta`: the delta
  // offered instead of the full image.
  Result<json> ActionForDevice(const Request& req, const Device& d, const Action& a,
                               const Release& r, const RolloutEngine::InstallWindow& window,
                               const std::optional<Delta>& delta);
  Result<Response> UploadDelta(Request& req, Caller& c);
  // Moves an upload to its content address, then runs `record` (the transaction that adds the row
  // naming it), so that no row ever names a missing file. When `record` fails and no row names
  // those bytes (`known`: some did before), the file goes again.
  Status AdoptUpload(const std::string& upload, const Artifact& a, bool known,
                     const std::function<Status()>& record);
  void AddRolloutRoutes();
  // A rollout route that changes the rollout named in the path and answers with it.
  void AddRolloutChange(const std::string& verb, Access access,
                        Result<Rollout> (RolloutEngine::*change)(const std::string&,
                                                                 const std::string&, int64_t));

  // Handlers.
  Result<Response> CreateDeviceType(Request& req, Caller& c);
  Result<Response> UploadRelease(Request& req, Caller& c);
  Result<Response> PatchRelease(Request& req, Caller& c);
  Result<Response> CreateDevice(Request& req, Caller& c);
  Result<Response> PatchDevice(Request& req, Caller& c);
  Result<Response> Deploy(Request& req, Caller& c);
  Result<Response> CheckIn(Request& req, Caller& c);
  // The check-in's "action" for the device's open action: null, a cancel, or the offer.
  Result<json> OpenActionJson(const Request& req, const Device& d,
                              const std::optional<Action>& action, const Release& rel);
  // The MQTT bridge's hooks (push.h): a device-API request made as `device`, and the device's
  // offer.
  PushBridge::Call CallAsDevice(const std::string& device, const std::string& method,
                                const std::string& path, const std::string& body);
  Result<json> OfferFor(const std::string& device);
  // A request as the bridge makes it: download URLs name this server's listening address.
  Request BridgeRequest() const;
  // POST /api/v1/push: a push task, now or at a time.
  Result<Response> PushTask(Request& req, Caller& c);
  // The device registry's credentials changed (the broker's password file follows).
  void CredentialsChanged() {
    if (push_) push_->CredentialsChanged();
  }
  Result<Response> Feedback(Request& req, Caller& c);
  // Action `id` when it belongs to the calling device and is open: kNotFound, kAlreadyExists.
  Result<Action> OpenActionOf(Tx& tx, const Caller& c, int64_t id);
  // Moves action `a` to `next` with `event` (progress: the device's percentage, when it gave
  // one); a success records the release's versions as the device's, and returns the device so
  // changed.
  Result<std::optional<Device>> RecordFeedback(Tx& tx, const Caller& c, const Action& a,
                                               ActionState next, std::optional<int64_t> progress,
                                               const ActionEvent& event);
  Result<Response> DeviceDownload(Request& req, Caller& c);
  // kAlreadyExists (409) when the action's rollout has a maintenance window that is closed.
  Status CheckInstallAllowed(int64_t action_id);
  Result<Response> UploadLog(Request& req, Caller& c);
  // The hawkBit DDI API.
  void AddDdiRoutes();
  std::string DdiUrl(const Request& req, const std::string& device) const;
  // Records that the calling device made contact (a DDI poll).
  Status NoteContact(Caller& c);
  // Counts a device's contact in the metrics: a device seen, or one more check-in.
  void CountContact(const Caller& c, int64_t device_id) {
    if (!c.hints || !c.hints->counted.exchange(true, std::memory_order_relaxed)) {
      metrics_.DeviceSeen(device_id);
    } else {
      metrics_.CheckIn();
    }
  }
  // The maintenance window of an action's rollout (`rollout_id`); none (always open) without one.
  Result<RolloutEngine::InstallWindow> WindowOf(std::optional<int64_t> rollout_id) {
    if (!rollout_id) return RolloutEngine::InstallWindow{};
    return rollouts_->WindowFor(*rollout_id, clock_.Wall());
  }
  // What DDI's maintenanceWindow says: nullopt without a window, else whether it is open.
  static std::optional<bool> ShownWindow(const RolloutEngine::InstallWindow& w) {
    return w.spec ? std::optional<bool>(w.open) : std::nullopt;
  }
  Result<Response> DdiPoll(Request& req, Caller& c);
  Result<Response> DdiDeployment(Request& req, Caller& c, bool installed);
  Result<Response> DdiFeedback(Request& req, Caller& c, bool cancel);
  Result<Response> DdiConfigData(Request& req, Caller& c);
  // The release of the path's software module, when the device's open action installs it.
  Result<Release> DdiModule(Request& req, const Caller& c);
  ddi::ArtifactLinks DdiLinks(const Request& req, const Caller& c, const Release& rel);
  // The signed link to an artifact under external_base_url and its expiry (Unix seconds), or
  // nullopt when downloads come from this server.
  std::optional<std::pair<std::string, int64_t>> ExternalUrl(const std::string& sha256) const;
  Result<Response> Stats(Request& req, Caller& c);

  ServerConfig config_;
  const Clock& clock_;
  std::ostream& log_;
  ArtifactStore artifacts_;
  std::unique_ptr<Store> store_;
  crypto::TrustSet trust_;
  Metrics metrics_;
  OpenFiles open_files_;
  std::unique_ptr<http::HttpServer> server_;
  http::Router router_;
  std::vector<Route> routes_;

  void ForgetCachedAuth();
  // Keeps the cached copy of a device current after this server changed it.
  void UpdateCachedDevice(const std::string& cache_key, const Device& d);
  struct CachedAuth {
    Caller caller;
    std::chrono::steady_clock::time_point expires;
  };
  // Sharded, so that the HTTP threads seldom wait for each other.
  static constexpr size_t kShards = 16;
  static constexpr size_t kAuthCacheMax = (1 << 20) / kShards;  // per shard
  struct AuthShard {
    std::mutex mu;
    std::unordered_map<std::string, CachedAuth> map;
  };
  std::array<AuthShard, kShards> auth_cache_;
  AuthShard& AuthShardFor(std::string_view token) {
    return auth_cache_[std::hash<std::string_view>()(token) % kShards];
  }

  File sqlite_lock_;  // held while this server runs on an SQLite database

  std::mutex touch_mu_;  // the flusher's wake-up and stop
  std::condition_variable touch_cv_;
  struct TouchShard {
    std::mutex mu;
    std::vector<std::pair<int64_t, int64_t>> seen;  // (device id, ms), in arrival order
  };
  std::array<TouchShard, kShards> touches_;
  bool stop_flusher_ = false;
  std::thread flusher_;

  std::unique_ptr<RolloutEngine> rollouts_;
  std::unique_ptr<DeltaService> deltas_;
  std::thread delta_worker_;
  std::mutex engine_mu_;
  std::condition_variable engine_cv_;
  bool stop_engine_ = false;
  std::atomic<bool> leader_{false};  // as the engine last found; for the log
  std::thread engine_;
  std::unique_ptr<PushBridge> push_;  // when mqtt_url is set
};

Status AppImpl::Init() {
  if (config_.data_dir.empty()) return Invalid("no data directory given (--data DIR)");
  if (::mkdir(config_.data_dir.c_str(), 0750) != 0 && errno != EEXIST) {
    return ErrnoError("creating " + config_.data_dir, errno);
  }
  ALOFT_RETURN_IF_ERROR(artifacts_.Init());
  CleanIncoming();
  std::string location =
      config_.database.empty() ? config_.data_dir + "/aloft.db" : config_.database;
  const bool pg_location =
      location.starts_with("postgresql://") || location.starts_with("postgres://");
  if (!pg_location) ALOFT_RETURN_IF_ERROR(LockSqlite(location));
  int pool = config_.db_pool;
  if (pg_location && config_.threads == 0) pool = std::max(pool, 16);
  auto store = Store::Open(location, pool);
  if (!store.ok()) return std::move(store).error().WithContext("opening the database");
  store_ = std::move(store).value();
  for (const auto& path : config_.trust) {
    auto key = crypto::PublicKey::Load(path);
    if (!key.ok()) return std::move(key).error().WithContext("loading trust key");
    trust_.Add(std::move(key).value());
  }
  trust_.set_threshold(static_cast<size_t>(std::max(1, config_.trust_threshold)));
  if (!trust_.keys().empty()) ALOFT_RETURN_IF_ERROR(trust_.Validate());
  ALOFT_RETURN_IF_ERROR(EnsureAdminToken());
  if (!pkg::IsValidName(config_.ddi_tenant, 64) || config_.ddi_tenant == "api" ||
      config_.ddi_tenant == "device") {
    return Invalid("ddi_tenant '" + config_.ddi_tenant +
                   "' must be a plain name (letters, digits, '.', '_', '-'), not 'api' or "
                   "'device'");
  }
  if (!config_.external_base_url.empty() && config_.secure_link_secret.empty()) {
    return Invalid("external_base_url needs secure_link_secret (the nginx secure_link secret)");
  }

  http::ServerOptions o;
  o.listen = config_.listen;
  // Database calls block the HTTP thread: microseconds on SQLite, a network round trip on
  // PostgreSQL, where more threads keep the CPUs busy while queries are in flight.
  const int cpus = std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  const bool postgres = store_->database().engine() == db::Engine::kPostgres;
  o.threads = config_.threads > 0 ? config_.threads : postgres ? std::max(8, 4 * cpus) : cpus;
  o.tls_cert = config_.tls_cert;
  o.tls_key = config_.tls_key;
  o.shutdown_grace = std::chrono::seconds(config_.shutdown_grace_s);
  server_ = std::make_unique<http::HttpServer>(o, *this);
  AddRoutes();
  rollouts_ = std::make_unique<RolloutEngine>(
      *store_, HostName() + "/" + std::to_string(::getpid()) + "/" + NewToken("").substr(0, 8),
      std::chrono::seconds(config_.rollout_lease_s));
  std::optional<crypto::PrivateKey> delta_key;
  if (!config_.delta_key.empty()) {
    auto key = crypto::PrivateKey::Load(config_.delta_key);
    if (!key.ok()) return key.error().WithContext("delta_key");
    delta_key = std::move(key).value();
  }
  const bool makes_deltas = delta_key.has_value();
  deltas_ = std::make_unique<DeltaService>(*store_, artifacts_, std::move(delta_key), log_);
  if (makes_deltas && config_.rollout_tick_ms > 0) {
    delta_worker_ = std::thread([this] {
      std::unique_lock lock(engine_mu_);
      while (!stop_engine_) {
        lock.unlock();
        (void)deltas_->RunQueue(clock_);
        lock.lock();
        engine_cv_.wait_for(lock, std::chrono::seconds(1));
      }
    });
  }
  if (config_.rollout_tick_ms > 0) {
    engine_ = std::thread([this] {
      std::unique_lock lock(engine_mu_);
      while (!stop_engine_) {
        lock.unlock();
        (void)TickRollouts();
        lock.lock();
        engine_cv_.wait_for(lock, std::chrono::milliseconds(config_.rollout_tick_ms));
      }
    });
  }
  if (!config_.mqtt_url.empty()) {
    PushOptions po;
    po.url = config_.mqtt_url;
    po.username = config_.mqtt_username;
    po.password = config_.mqtt_password;
    po.ca_file = config_.mqtt_ca_file;
    po.client_id = config_.mqtt_client_id;
    po.group = config_.mqtt_group;
    po.passwd_file = config_.mqtt_broker_passwd;
    po.acl_file = config_.mqtt_broker_acl;
    po.pid_file = config_.mqtt_broker_pid;
    po.max_message_bytes = std::min<uint64_t>(config_.max_json_bytes, 64 << 10);
    PushBridge::Hooks hooks;
    hooks.call = [this](const std::string& d, const std::string& m, const std::string& p,
                        const std::string& b) { return CallAsDevice(d, m, p, b); };
    hooks.offer = [this](const std::string& d) { return OfferFor(d); };
    push_ = std::make_unique<PushBridge>(std::move(po), *store_, std::move(hooks), log_);
    Status s = push_->Start();
    if (!s.ok()) return std::move(s).error().WithContext("starting the MQTT bridge");
  }
  flusher_ = std::thread([this] {
    std::unique_lock lock(touch_mu_);
    while (!stop_flusher_) {
      touch_cv_.wait_for(lock, std::chrono::seconds(1));
      lock.unlock();
      FlushTouches();
      lock.lock();
    }
  });
  return OkStatus();
}

Result<bool> AppImpl::TickRollouts() {
  auto leader = rollouts_->Tick(Now());
  if (!leader.ok()) {
    log_ << "aloftd: rollout engine: " << leader.error().message() << std::endl;
    return leader;
  }
  if (leader_.exchange(*leader) != *leader) {
    log_ << "aloftd: rollout engine: " << (*leader ? "this server leads" : "another server leads")
         << " (" << rollouts_->holder() << ")" << std::endl;
  }
  if (*leader && push_) {
    auto pushed = push_->PushDue(Now());
    if (!pushed.ok()) log_ << "aloftd: MQTT push: " << pushed.error().ToString() << std::endl;
  }
  return leader;
}

// One server per SQLite database: its caches (see CheckIn) rely on being the only writer, and
// several servers are what PostgreSQL is for. The lock goes with the process, kill -9 included.
Status AppImpl::LockSqlite(const std::string& db_path) {
  ALOFT_ASSIGN_OR_RETURN(
      File lock, File::OpenReadWrite(db_path + ".aloftd-lock", File::Creation::kIfMissing, 0640));
  if (::flock(lock.fd(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Error(Code::kUnavailable,
                   "database " + db_path +
                       " is in use by another aloftd; several servers on one "
                       "database need PostgreSQL (--database postgresql://...)");
    }
    return ErrnoError("locking " + lock.path(), errno);
  }
  sqlite_lock_ = std::move(lock);
  return OkStatus();
}

void AppImpl::CleanIncoming() {
  // Uploads interrupted by a crash or kill -9 are never part of a release. The directory may be
  // shared by several servers: remove only this host's files whose process is gone.
  const std::string dir = artifacts_.incoming_dir();
  const std::string prefix = "upload-" + HostName() + "-";
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (!name.starts_with(prefix)) continue;
      pid_t pid = static_cast<pid_t>(std::atol(name.c_str() + prefix.size()));
      // Alive (kill succeeds, or the process belongs to another user): still uploading.
      if (pid > 0 && pid != ::getpid() && (::kill(pid, 0) == 0 || errno == EPERM)) continue;
      ::unlink((dir + "/" + name).c_str());
    }
    ::closedir(d);
  }
}

Status AppImpl::EnsureAdminToken() {
  // Several servers may start at once on one database: the one whose transaction inserts the
  // first token writes it to its data directory; the others find a token and say nothing.
  std::string path = config_.data_dir + "/admin.token";
  std::string token = NewToken("aloft_a_");
  bool created = false;
  ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
    created = false;
    ALOFT_RETURN_IF_ERROR(tx.Serialize(kFirstTokenLock));
    ALOFT_ASSIGN_OR_RETURN(int64_t count, tx.CountApiTokens());
    if (count > 0) return OkStatus();
    ALOFT_ASSIGN_OR_RETURN(
        ApiToken t,
        tx.CreateApiToken("admin", Role::kAdmin, Sha256Hex(AsBytes(token)), "aloftd", Now()));
    created = true;
    return tx.Audit("aloftd", "token.create", t.name, R"({"role":"admin"})", Now());
  }));
  if (!created) return OkStatus();
  Status written = WriteFileAtomic(path, token + "\n", 0600);
  if (!written.ok()) {
    // Without the file nobody could log in: take the token back so the next start retries.
    (void)store_->Write([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListApiTokens());
      for (const auto& t : list) ALOFT_RETURN_IF_ERROR(tx.DeleteApiToken(t.id));
      return OkStatus();
    });
    return std::move(written).error().WithContext("writing the admin token");
  }
  log_ << "aloftd: created the admin API token in " << path
       << " (keep it secret; use it with `aloft server --token`)" << std::endl;
  return OkStatus();
}

void AppImpl::TouchLater(int64_t device_id) {
  const int64_t now = Now();
  TouchShard& shard = touches_[static_cast<uint64_t>(device_id) % kShards];
  std::lock_guard lock(shard.mu);
  shard.seen.emplace_back(device_id, now);
}

void AppImpl::FlushTouches() {
  std::map<int64_t, int64_t> batch;  // in id order: neighbouring rows are written together
  std::vector<std::pair<int64_t, int64_t>> seen;
  for (TouchShard& shard : touches_) {
    {
      std::lock_guard lock(shard.mu);
      seen.swap(shard.seen);
    }
    for (const auto& [id, ms] : seen) {
      int64_t& at = batch[id];
      at = std::max(at, ms);
    }
    seen.clear();
  }
  if (batch.empty() || !store_) return;
  Status s = store_->Write([&](Tx& tx) { return tx.TouchDevices(batch); });
  if (!s.ok()) log_ << "aloftd: recording last contact: " << s.error().ToString() << std::endl;
}

std::string AppImpl::BaseUrl(const Request& req) const {
  if (!config_.public_url.empty()) return config_.public_url;
  std::string host(req.headers.Get("Host"));
  if (host.empty()) host = config_.listen;
  return std::string(req.tls ? "https://" : "http://") + host;
}

Result<Response> AppImpl::ReadJson(const std::function<Result<json>(Tx&)>& build) {
  json out;
  ALOFT_RETURN_IF_ERROR(store_->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(out, build(tx));
    return OkStatus();
  }));
  return JsonResponse(200, out);
}

// ---- dispatch ----

void AppImpl::AddRoute(std::string method, std::string pattern, Access access, BodyKind body,
                       std::function<Result<Response>(Request&, Caller&)> fn) {
  router_.Add(method, pattern, static_cast<int>(routes_.size()));
  int metric = metrics_.AddRoute(pattern, method);
  routes_.push_back({std::move(method), std::move(pattern), access, body, std::move(fn), metric});
}

Result<Caller> AppImpl::Authenticate(const Request& req, Access access) {
  Caller c;
  if (access == Access::kPublic) return c;
  std::string_view auth = req.headers.Get("Authorization");
  std::string_view token;
  if (access == Access::kDdi) {
    constexpr std::string_view kTarget = "TargetToken ", kGateway = "GatewayToken ";
    if (auth.starts_with(kGateway)) return AuthenticateGateway(req, auth.substr(kGateway.size()));
    if (auth.starts_with(kTarget)) token = auth.substr(kTarget.size());
    if (token.empty()) {
      return Error(Code::kPermissionDenied,
                   "missing credentials: send 'Authorization: TargetToken <device token>' or "
                   "'GatewayToken <gateway token>'");
    }
  } else {
    if (auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) {
      token = auth.substr(7);
    }
    if (token.empty()) {
      return Error(Code::kPermissionDenied,
                   "missing credentials: send 'Authorization: Bearer <token>'");
    }
  }
  // The cache is keyed by the token itself, so a hit costs no SHA-256; the database only ever sees
  // the hash.
  const std::string key(token);
  const auto now = clock_.Monotonic();
  const bool device_route = access == Access::kDevice || access == Access::kDeviceOrRegistration ||
                            access == Access::kDdi;
  AuthShard& shard = AuthShardFor(key);
  {
    std::lock_guard lock(shard.mu);
    auto it = shard.map.find(key);
    if (it != shard.map.end() && it->second.expires > now &&
        (access == Access::kDdi ? it->second.caller.kind == Caller::kDevice
                                : device_route || it->second.caller.kind == Caller::kOperator)) {
      return it->second.caller;
    }
  }
  const std::string hash = Sha256Hex(AsBytes(token));
  Status s = store_->Read([&](Tx& tx) -> Status {
    if (device_route) {
      ALOFT_ASSIGN_OR_RETURN(auto d, tx.AuthenticateDevice(hash));
      if (d) {
        c.kind = Caller::kDevice;
        c.actor = "device:" + d->name;
        c.device = std::make_shared<const Device>(std::move(*d));
        return OkStatus();
      }
      if (access == Access::kDeviceOrRegistration) {
        ALOFT_ASSIGN_OR_RETURN(auto t, tx.FindRegistrationToken(hash));
        if (t) {
          c.kind = Caller::kRegistration;
          c.actor = "registration:" + t->name;
          c.reg_type = std::move(t);
          return OkStatus();
        }
      }
    }
    if (access == Access::kDdi) return OkStatus();  // device tokens only
    ALOFT_ASSIGN_OR_RETURN(auto t, tx.FindApiToken(hash));
    if (t) {
      c.kind = Caller::kOperator;
      c.actor = "token:" + t->name;
      c.role = t->role;
    }
    return OkStatus();
  });
  ALOFT_RETURN_IF_ERROR(s);
  if (c.kind == Caller::kNone) return Error(Code::kPermissionDenied, "unknown or revoked token");
  c.cache_key = key;
  if (c.kind != Caller::kRegistration && config_.auth_cache_s > 0) {
    if (c.kind == Caller::kDevice) c.hints = std::make_shared<Caller::Hints>();
    std::lock_guard lock(shard.mu);
    if (shard.map.size() >= kAuthCacheMax) shard.map.clear();
    shard.map[key] = {c, now + std::chrono::seconds(config_.auth_cache_s)};
  }
  return c;
}

Result<Caller> AppImpl::AuthenticateGateway(const Request& req, std::string_view token) {
  const std::string& expected = config_.ddi_gateway_token;
  if (expected.empty()) {
    return Error(Code::kPermissionDenied,
                 "this server accepts no gateway token (ddi_gateway_token is not set)");
  }
  if (token.size() != expected.size() ||
      CRYPTO_memcmp(token.data(), expected.data(), expected.size()) != 0) {
    return Error(Code::kPermissionDenied, "unknown gateway token");
  }
  auto it = req.params.find("device");
  const std::string name = it == req.params.end() ? "" : it->second;
  Caller c;
  Status s = store_->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(Device d, tx.GetDevice(name));
    c.device = std::make_shared<const Device>(std::move(d));
    return OkStatus();
  });
  if (!s.ok() && s.error().code() == Code::kNotFound) {
    return Error(Code::kNotFound, "controller '" + name +
                                      "' is not a registered device (add it with `aloft server "
                                      "device add`)");
  }
  ALOFT_RETURN_IF_ERROR(s);
  c.kind = Caller::kDevice;
  c.actor = "gateway:" + name;
  return c;
}

void AppImpl::ForgetCachedAuth() {
  for (AuthShard& shard : auth_cache_) {
    std::lock_guard lock(shard.mu);
    shard.map.clear();
  }
}

void AppImpl::UpdateCachedDevice(const std::string& cache_key, const Device& d) {
  AuthShard& shard = AuthShardFor(cache_key);
  std::lock_guard lock(shard.mu);
  auto it = shard.map.find(cache_key);
  if (it != shard.map.end() && it->second.caller.device) {
    it->second.caller.device = std::make_shared<const Device>(d);
  }
}

Status AppImpl::Authorize(Caller& c, Access access, const Request& req) {
  auto need = [&](Role r) -> Status {
    if (c.kind != Caller::kOperator) {
      return Error(Code::kPermissionDenied, "this route needs an operator token");
    }
    if (c.role < r) {
      return Error(Code::kPermissionDenied, "token '" + c.actor.substr(6) + "' has role '" +
                                                std::string(RoleName(c.role)) + "'; " + req.method +
                                                " " + req.path + " needs '" +
                                                std::string(RoleName(r)) + "'");
    }
    return OkStatus();
  };
  switch (access) {
    case Access::kPublic:
      return OkStatus();
    case Access::kViewer:
      return need(Role::kViewer);
    case Access::kRelease:
      return need(Role::kRelease);
    case Access::kApprover:
      return need(Role::kApprover);
    case Access::kAdmin:
      return need(Role::kAdmin);
    case Access::kDevice:
    case Access::kDeviceOrRegistration:
    case Access::kDdi: {
      auto it = req.params.find("device");
      const std::string& name = it == req.params.end() ? "" : it->second;
      if (c.kind == Caller::kDevice) {
        if (c.device->name != name) {
          // A gateway acts for its sub-devices on the native device API (docs/mqtt.md): check-in,
          // feedback, downloads. It then is the sub-device, whose own state the handlers use.
          if (access != Access::kDdi) {
            std::optional<Device> sub;
            Status s = store_->Read([&](Tx& tx) -> Status {
              ALOFT_ASSIGN_OR_RETURN(Device d, tx.GetDevice(name));
              if (d.gateway == c.device->name) sub = std::move(d);
              return OkStatus();
            });
            if (s.ok() && sub) {
              c.actor = "device:" + c.device->name + " for " + name;
              c.device = std::make_shared<const Device>(std::move(*sub));
              c.cache_key.clear();  // the gateway's cache entry and hints are not the sub-device's
              c.hints.reset();
              return OkStatus();
            }
          }
          return Error(Code::kPermissionDenied,
                       "the token belongs to device '" + c.device->name + "', not '" + name + "'");
        }
        return OkStatus();
      }
      if (c.kind == Caller::kRegistration && access == Access::kDeviceOrRegistration) {
        return OkStatus();
      }
      if (c.kind == Caller::kOperator && access == Access::kDevice && req.method == "GET") {
        return OkStatus();  // operators may download what a device would
      }
      return Error(Code::kPermissionDenied, "this route needs the device's own token");
    }
  }
  return OkStatus();
}

std::variant<http::BodyPlan, Response> AppImpl::OnHeaders(Request& head) {
  auto m = router_.Match(head.method, head.path);
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
      plan.max_size = config_.max_json_bytes;
      break;
    case BodyKind::kLog:
      plan.max_size = config_.max_log_bytes;
      break;
    case BodyKind::kUpload: {
      // Refuse an upload before its first byte when the caller may not make it.
      auto caller = Authenticate(head, route.access);
      if (!caller.ok()) return AuthErrorResponse(caller.error(), route.access);
      Status s = Authorize(*caller, route.access, head);
      if (!s.ok()) return ErrorResponse(s.error());
      plan.max_size = config_.max_upload_bytes;
      plan.to_file_dir = artifacts_.incoming_dir();
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
    auto caller = Authenticate(req, route.access);
    if (!caller.ok()) {
      res = AuthErrorResponse(caller.error(), route.access);
    } else if (Status s = Authorize(*caller, route.access, req); !s.ok()) {
      res = ErrorResponse(s.error());
    } else if (route.body == BodyKind::kNone && req.body_size > 0) {
      res = Response::Error(400, "invalid-argument",
                            req.method + " " + req.path + " takes no request body");
    } else {
      auto r = route.fn(req, *caller);
      res = r.ok() ? std::move(r).value() : ErrorResponse(r.error());
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_.RecordRequest(metric, res.status, seconds);
  if (res.status >= 500) {
    log_ << "aloftd: " << req.method << " " << req.path << " -> " << res.status << " " << res.body
         << std::endl;
  }
  return res;
}

// ---- routes ----

void AppImpl::AddRoutes() {
  using A = Access;
  using B = BodyKind;

  AddRoute("GET", "/healthz", A::kPublic, B::kNone, [this](Request&, Caller&) -> Result<Response> {
    ALOFT_RETURN_IF_ERROR(store_->Read([](Tx& tx) {
      return tx.CountApiTokens().ok() ? OkStatus() : Error(Code::kUnavailable, "database");
    }));
    return JsonResponse(200, {{"status", "ok"}});
  });
  AddRoute("GET", "/metrics", A::kPublic, B::kNone, [this](Request&, Caller&) -> Result<Response> {
    const auto& c = server_->counters();
    std::string extra;
    AppendMetric(extra, "aloft_http_connections", "gauge", "Open HTTP connections.",
                 c.connections.load());
    AppendMetric(extra, "aloft_http_connections_accepted_total", "counter", "Accepted connections.",
                 static_cast<int64_t>(c.accepted.load()));
    if (push_) {
      const auto& p = push_->counters();
      AppendMetric(extra, "aloft_mqtt_connected", "gauge",
                   "1 while the MQTT bridge is connected to the broker.",
                   push_->connected() ? 1 : 0);
      AppendMetric(extra, "aloft_mqtt_received_total", "counter",
                   "Device messages the MQTT bridge received.", p.received.load());
      AppendMetric(extra, "aloft_mqtt_error_reports_total", "counter",
                   "Device messages refused with an error report.", p.errors.load());
      AppendMetric(extra, "aloft_mqtt_answers_total", "counter",
                   "otaCheck events answered with a command.", p.commands.load());
      AppendMetric(extra, "aloft_mqtt_pushed_total", "counter",
                   "Commands pushed for due actions (rollout waves, push tasks).", p.pushed.load());
      AppendMetric(extra, "aloft_mqtt_dropped_total", "counter",
                   "Device messages dropped because the bridge's queue was full.",
                   p.dropped.load());
      AppendMetric(extra, "aloft_mqtt_unacknowledged", "gauge",
                   "Messages published with QoS 1 and not yet acknowledged by the broker.",
                   static_cast<int64_t>(push_->unacknowledged()));
    }
    Response r = Response::Text(200, metrics_.Render(extra));
    r.headers.Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    return r;
  });

  // -- device types and modules --
  AddRoute("GET", "/api/v1/device-types", A::kViewer, B::kNone, [this](Request&, Caller&) {
    return ReadJson([](Tx& tx) -> Result<json> {
      ALOFT_ASSIGN_OR_RETURN(auto types, tx.ListDeviceTypes());
      return JsonList(types);
    });
  });
  AddRoute("POST", "/api/v1/device-types", A::kAdmin, B::kJson,
           [this](Request& r, Caller& c) { return CreateDeviceType(r, c); });
  AddRoute("GET", "/api/v1/device-types/{type}", A::kViewer, B::kNone, [this](Request& r, Caller&) {
    return ReadJson([&](Tx& tx) -> Result<json> {
      ALOFT_ASSIGN_OR_RETURN(auto t, tx.GetDeviceType(r.params["type"]));
      return ToJson(t);
    });
  });
  AddRoute("DELETE", "/api/v1/device-types/{type}", A::kAdmin, B::kNone,
           [this](Request& r, Caller& c) -> Result<Response> {
             ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
               ALOFT_RETURN_IF_ERROR(tx.DeleteDeviceType(r.params["type"]));
               return tx.Audit(c.actor, "device-type.delete", r.params["type"], "{}", Now());
             }));
             return NoContent();
           });
  AddRoute("POST", "/api/v1/device-types/{type}/modules", A::kAdmin, B::kJson,
           [this](Request& r, Caller& c) -> Result<Response> {
             ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(r, false));
             ALOFT_ASSIGN_OR_RETURN(std::string name, ReqString(body, "name"));
             ALOFT_RETURN_IF_ERROR(CheckName("module", name));
             json out;
             ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
               ALOFT_RETURN_IF_ERROR(tx.AddModule(r.params["type"], name));
               ALOFT_RETURN_IF_ERROR(
                   tx.Audit(c.actor, "module.create", r.params["type"] + "/" + name, "{}", Now()));
               ALOFT_ASSIGN_OR_RETURN(auto t, tx.GetDeviceType(r.params["type"]));
               out = ToJson(t);
               return OkStatus();
             }));
             return JsonResponse(201, out);
           });
  AddRoute("DELETE", "/api/v1/device-types/{type}/modules/{module}", A::kAdmin, B::kNone,
           [this](Request& r, Caller& c) -> Result<Response> {
             ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
               ALOFT_RETURN_IF_ERROR(tx.DeleteModule(r.params["type"], r.params["module"]));
               return tx.Audit(c.actor, "module.delete",
                               r.params["type"] + "/" + r.params["module"], "{}", Now());
             }));
             return NoContent();
           });
  AddRoute("POST", "/api/v1/device-types/{type}/registration-tokens", A::kAdmin, B::kNone,
           [this](Request& r, Caller& c) -> Result<Response> {
             std::string token = NewToken("aloft_r_");
             ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
               ALOFT_RETURN_IF_ERROR(tx.CreateRegistrationToken(
                   r.params["type"], Sha256Hex(AsBytes(token)), c.actor, Now()));
               return tx.Audit(c.actor, "registration-token.create", r.params["type"], "{}", Now());
             }));
             return JsonResponse(201, {{"device_type", r.params["type"]}, {"token", token}});
           });

  // -- releases --
  AddRoute("GET", "/api/v1/releases", A::kViewer, B::kNone, [this](Request& r, Caller&) {
    return ReadJson([&](Tx& tx) -> Result<json> {
      ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListReleases(QueryStr(r, "name")));
      return JsonList(list);
    });
  });
  AddRoute("POST", "/api/v1/releases", A::kRelease, B::kUpload,
           [this](Request& r, Caller& c) { return UploadRelease(r, c); });
  AddRoute("GET", "/api/v1/releases/{name}/{version}", A::kViewer, B::kNone,
           [this](Request& r, Caller&) {
             return ReadJson([&](Tx& tx) -> Result<json> {
               ALOFT_ASSIGN_OR_RETURN(auto rel,
                                      tx.GetRelease(r.params["name"], r.params["version"]));
               json out = ToJson(rel);
               if (rel.manifest) out["manifest"] = json::parse(*rel.manifest, nullptr, false);
               return out;
             });
           });
  AddRoute("POST", "/api/v1/releases/{name}/{version}/deltas", A::kRelease, B::kUpload,
           [this](Request& r, Caller& c) { return UploadDelta(r, c); });
  AddRoute("PATCH", "/api/v1/releases/{name}/{version}", A::kRelease, B::kJson,
           [this](Request& r, Caller& c) { return PatchRelease(r, c); });
  AddRoute("DELETE", "/api/v1/releases/{name}/{version}", A::kRelease, B::kNone,
           [this](Request& r, Caller& c) -> Result<Response> {
             std::optional<std::string> orphan;
             std::string id = r.params["name"] + "@" + r.params["version"];
             ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
               ALOFT_ASSIGN_OR_RETURN(orphan,
                                      tx.DeleteRelease(r.params["name"], r.params["version"]));
               return tx.Audit(c.actor, "release.delete", id, "{}", Now());
             }));
             if (orphan) artifacts_.Remove(*orphan);
             return NoContent();
           });
  AddRoute("GET", "/api/v1/releases/{name}/{version}/artifact", A::kViewer, B::kNone,
           [this](Request& r, Caller&) -> Result<Response> {
             Release rel;
             ALOFT_RETURN_IF_ERROR(store_->Read([&](Tx& tx) -> Status {
               ALOFT_ASSIGN_OR_RETURN(rel, tx.GetRelease(r.params["name"], r.params["version"]));
               return OkStatus();
             }));
             return ServeArtifact(artifacts_.PathOf(rel.artifact.sha256), rel.artifact.size,
                                  rel.artifact.sha256, rel.filename, r, metrics_, open_files_);
           });

  // -- devices --
  AddRoute("GET", "/api/v1/devices", A::kViewer, B::kNone,
           [this](Request& r, Caller&) -> Result<Response> {
             DeviceFilter f;
             f.device_type = QueryStr(r, "type");
             f.group = QueryStr(r, "group");
             f.tag = QueryStr(r, "tag");
             ALOFT_ASSIGN_OR_RETURN(f.limit, QueryInt(r, "limit", 100, 1000));
             ALOFT_ASSIGN_OR_RETURN(f.offset, QueryInt(r, "offset", 0, INT64_MAX));
             return ReadJson([&](Tx& tx) -> Result<json> {
               ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListDevices(f));
               ALOFT_ASSIGN_OR_RETURN(int64_t total, tx.CountDevices(f));
               return json{{"total", total}, {"items", JsonList(list)}};
             });
           });
  AddRoute("POST", "/api/v1/devices", A::kAdmin, B::kJson,
           [this](Request& r, Caller& c) { return CreateDevice(r, c); });
  AddRoute("GET", "/api/v1/devices/{device}", A::kViewer, B::kNone, [this](Request& r, Caller&) {
    return ReadJson([&](Tx& tx) -> Result<json> {
      ALOFT_ASSIGN_OR_RETURN(auto d, tx.GetDevice(r.params["device"]));
      json out = ToJson(d);
      ALOFT_ASSIGN_OR_RETURN(auto open, tx.OpenActionFor(d.id));
      out["action"] = open ? ToJson(*open) : json(nullptr);
      return out;
    });
  });
  AddRoute("PATCH", "/api/v1/devices/{device}", A::kAdmin, B::kJson,
           [this](Request& r, Caller& c) { return PatchDevice(r, c); });
  AddRoute("DELETE", "/api/v1/devices/{device}", A::kAdmin, B::kNone,
           [this](Request& r, Caller& c) -> Result<Response> {
             ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
               ALOFT_RETURN_IF_ERROR(tx.DeleteDevice(r.params["device"]));
               return tx.Audit(c.actor, "device.delete", r.params["device"], "{}", Now());
             }));
             ForgetCachedAuth();
             CredentialsChanged();
             return NoContent();
           });
  AddRoute("GET", "/api/v1/devices/{device}/actions", A::kViewer, B::kNone,
           [this](Request& r, Caller&) -> Result<Response> {
             ActionFilter f;
             f.device = r.params["device"];
             ALOFT_ASSIGN_OR_RETURN(f.limit, QueryInt(r, "limit", 100, 1000));
             return ReadJson([&](Tx& tx) -> Result<json> {
               ALOFT_RETURN_IF_ERROR(tx.GetDevice(r.params["device"]));
               ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListActions(f));
               return JsonList(list);
             });
           });
  AddRoute("GET", "/api/v1/devices/{device}/logs", A::kViewer, B::kNone,
           [this](Request& r, Caller&) -> Result<Response> {
             ALOFT_ASSIGN_OR_RETURN(int64_t limit, QueryInt(r, "limit", 20, 1000));
             return ReadJson([&](Tx& tx) -> Result<json> {
               ALOFT_ASSIGN_OR_RETURN(auto d, tx.GetDevice(r.params["device"]));
               ALOFT_ASSIGN_OR_RETURN(auto logs, tx.ListLogs(d.id, limit));
               json out = json::array();
               for (const auto& l : logs) {
                 out.push_back({{"id", l.id},
                                {"action", l.action_id ? json(*l.action_id) : json(nullptr)},
                                {"at", FormatRfc3339Ms(l.at_ms)},
                                {"content", l.content}});
               }
               return out;
             });
           });

  // -- deployments and actions --
  AddRoute("POST", "/api/v1/deployments", A::kRelease, B::kJson,
           [this](Request& r, Caller& c) { return Deploy(r, c); });
  AddRoute("GET", "/api/v1/actions", A::kViewer, B::kNone,
           [this](Request& r, Caller&) -> Result<Response> {
             ActionFilter f;
             f.device = QueryStr(r, "device");
             if (auto s = QueryStr(r, "state")) {
               ALOFT_ASSIGN_OR_RETURN(f.state, ParseActionState(*s));
             }
             ALOFT_ASSIGN_OR_RETURN(f.limit, QueryInt(r, "limit", 100, 1000));
             ALOFT_ASSIGN_OR_RETURN(f.offset, QueryInt(r, "offset", 0, INT64_MAX));
             return ReadJson([&](Tx& tx) -> Result<json> {
               ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListActions(f));
               return JsonList(list);
             });
           });
  AddRoute("GET", "/api/v1/actions/{id}", A::kViewer, B::kNone,
           [this](Request& r, Caller&) -> Result<Response> {
             ALOFT_ASSIGN_OR_RETURN(int64_t id, PathId(r, "action"));
             return ReadJson([&](Tx& tx) -> Result<json> {
               ALOFT_ASSIGN_OR_RETURN(auto a, tx.GetAction(id));
               return ToJson(a);
             });
           });
  AddRoute(
      "POST", "/api/v1/actions/{id}/cancel", A::kRelease, B::kNone,
      [this](Request& r, Caller& c) -> Result<Response> {
        ALOFT_ASSIGN_OR_RETURN(int64_t id, PathId(r, "action"));
        json out;
        ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
          ALOFT_ASSIGN_OR_RETURN(auto a, tx.GetAction(id));
          if (IsTerminal(a.state) || a.state == ActionState::kCanceling) {
            return Error(Code::kAlreadyExists, "action " + std::to_string(id) + " is already " +
                                                   std::string(ActionStateName(a.state)) +
                                                   "; nothing to cancel");
          }
          // What the device has not begun closes at once; what it has, it is told to stop,
          // and its answer closes.
          const ActionState next =
              a.state == ActionState::kPending ? ActionState::kCanceled : ActionState::kCanceling;
          ALOFT_RETURN_IF_ERROR(tx.UpdateAction(id, next, a.progress,
                                                {Now(), std::string(ActionStateName(next)),
                                                 std::nullopt, std::nullopt, "by " + c.actor}));
          ALOFT_RETURN_IF_ERROR(
              tx.Audit(c.actor, "action.cancel", std::to_string(id), "{}", Now()));
          ALOFT_ASSIGN_OR_RETURN(a, tx.GetAction(id));
          out = ToJson(a);
          return OkStatus();
        }));
        return JsonResponse(200, out);
      });
  AddRoute("POST", "/api/v1/push", A::kRelease, B::kJson,
           [this](Request& r, Caller& c) { return PushTask(r, c); });
  AddRoute("GET", "/api/v1/stats", A::kViewer, B::kNone,
           [this](Request& r, Caller& c) { return Stats(r, c); });
  AddRoute("GET", "/api/v1/audit", A::kAdmin, B::kNone,
           [this](Request& r, Caller&) -> Result<Response> {
             ALOFT_ASSIGN_OR_RETURN(int64_t limit, QueryInt(r, "limit", 100, 1000));
             ALOFT_ASSIGN_OR_RETURN(int64_t offset, QueryInt(r, "offset", 0, INT64_MAX));
             return ReadJson([&](Tx& tx) -> Result<json> {
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

  // -- API tokens --
  AddRoute("GET", "/api/v1/tokens", A::kAdmin, B::kNone, [this](Request&, Caller&) {
    return ReadJson([](Tx& tx) -> Result<json> {
      ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListApiTokens());
      json out = json::array();
      for (const auto& t : list) {
        out.push_back({{"id", t.id},
                       {"name", t.name},
                       {"role", RoleName(t.role)},
                       {"created", FormatRfc3339Ms(t.created_ms)}});
      }
      return out;
    });
  });
  AddRoute(
      "POST", "/api/v1/tokens", A::kAdmin, B::kJson,
      [this](Request& r, Caller& c) -> Result<Response> {
        ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(r, false));
        ALOFT_ASSIGN_OR_RETURN(std::string name, ReqString(body, "name"));
        ALOFT_RETURN_IF_ERROR(CheckName("token name", name));
        ALOFT_ASSIGN_OR_RETURN(std::string role_name, ReqString(body, "role"));
        ALOFT_ASSIGN_OR_RETURN(Role role, ParseRole(role_name));
        std::string token = NewToken("aloft_a_");
        ApiToken t;
        ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
          ALOFT_ASSIGN_OR_RETURN(
              t, tx.CreateApiToken(name, role, Sha256Hex(AsBytes(token)), c.actor, Now()));
          return tx.Audit(c.actor, "token.create", name, json({{"role", role_name}}).dump(), Now());
        }));
        return JsonResponse(201,
                            {{"id", t.id}, {"name", name}, {"role", role_name}, {"token", token}});
      });
  AddRoute("DELETE", "/api/v1/tokens/{id}", A::kAdmin, B::kNone,
           [this](Request& r, Caller& c) -> Result<Response> {
             ALOFT_ASSIGN_OR_RETURN(int64_t id, PathId(r, "token"));
             ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
               ALOFT_RETURN_IF_ERROR(tx.DeleteApiToken(id));
               return tx.Audit(c.actor, "token.delete", std::to_string(id), "{}", Now());
             }));
             ForgetCachedAuth();
             return NoContent();
           });

  // -- the device API --
  AddRolloutRoutes();
  AddRoute("POST", "/device/v1/{device}/check-in", A::kDeviceOrRegistration, B::kJson,
           [this](Request& r, Caller& c) { return CheckIn(r, c); });
  AddRoute("POST", "/device/v1/{device}/actions/{id}/feedback", A::kDevice, B::kJson,
           [this](Request& r, Caller& c) { return Feedback(r, c); });
  AddRoute("GET", "/device/v1/{device}/actions/{id}/artifact", A::kDevice, B::kNone,
           [this](Request& r, Caller& c) { return DeviceDownload(r, c); });
  AddRoute("POST", "/device/v1/{device}/logs", A::kDevice, B::kLog,
           [this](Request& r, Caller& c) { return UploadLog(r, c); });
  AddDdiRoutes();
}

// ---- the hawkBit DDI API (docs/ddi.md) ----

void AppImpl::AddDdiRoutes() {
  using A = Access;
  using B = BodyKind;
  const std::string base = "/" + config_.ddi_tenant + "/controller/v1/{device}";
  AddRoute("GET", base, A::kDdi, B::kNone, [this](Request& r, Caller& c) { return DdiPoll(r, c); });
  AddRoute("GET", base + "/deploymentBase/{id}", A::kDdi, B::kNone,
           [this](Request& r, Caller& c) { return DdiDeployment(r, c, false); });
  AddRoute("GET", base + "/installedBase/{id}", A::kDdi, B::kNone,
           [this](Request& r, Caller& c) { return DdiDeployment(r, c, true); });
  AddRoute("POST", base + "/deploymentBase/{id}/feedback", A::kDdi, B::kJson,
           [this](Request& r, Caller& c) { return DdiFeedback(r, c, false); });
  AddRoute("GET", base + "/cancelAction/{id}", A::kDdi, B::kNone,
           [this](Request& r, Caller& c) -> Result<Response> {
             ALOFT_ASSIGN_OR_RETURN(const int64_t id, PathId(r, "action"));
             return ReadJson([&](Tx& tx) -> Result<json> {
               ALOFT_ASSIGN_OR_RETURN(Action a, tx.GetAction(id));
               if (a.device_id != c.device->id || a.state != ActionState::kCanceling) {
                 return Error(Code::kNotFound, "action " + std::to_string(id) + " of device '" +
                                                   c.device->name + "' is not being canceled");
               }
               return json{{"id", std::to_string(id)},
                           {"cancelAction", {{"stopId", std::to_string(id)}}}};
             });
           });
  AddRoute("POST", base + "/cancelAction/{id}/feedback", A::kDdi, B::kJson,
           [this](Request& r, Caller& c) { return DdiFeedback(r, c, true); });
  AddRoute("PUT", base + "/configData", A::kDdi, B::kJson,
           [this](Request& r, Caller& c) { return DdiConfigData(r, c); });
  AddRoute("GET", base + "/softwaremodules/{module}/artifacts", A::kDdi, B::kNone,
           [this](Request& r, Caller& c) -> Result<Response> {
             ALOFT_ASSIGN_OR_RETURN(Release rel, DdiModule(r, c));
             return JsonResponse(200, ddi::ArtifactJson(rel, DdiLinks(r, c, rel)));
           });
  AddRoute("GET", base + "/softwaremodules/{module}/artifacts/{file}", A::kDdi, B::kNone,
           [this](Request& r, Caller& c) -> Result<Response> {
             ALOFT_ASSIGN_OR_RETURN(Release rel, DdiModule(r, c));
             const std::string& file = r.params["file"];
             if (file == rel.filename) {
               return ServeArtifact(artifacts_.PathOf(rel.artifact.sha256), rel.artifact.size,
                                    rel.artifact.sha256, rel.filename, r, metrics_, open_files_);
             }
             if (file == rel.filename + ".MD5SUM") {
               Response res = Response::Text(200, ddi::Md5SumFile(rel));
               res.headers.Set("Content-Disposition",
                               "attachment; filename=\"" + rel.filename + ".MD5SUM\"");
               return res;
             }
             return Error(Code::kNotFound, "software module " + r.params["module"] +
                                               " has no artifact '" + file + "' (it has '" +
                                               rel.filename + "')");
           });
}

std::string AppImpl::DdiUrl(const Request& req, const std::string& device) const {
  return BaseUrl(req) + "/" + config_.ddi_tenant + "/controller/v1/" + http::PercentEncode(device);
}

Status AppImpl::NoteContact(Caller& c) {
  if (!c.device->last_seen_ms) {  // "never seen" ends at once; later contacts are written behind
    Device d = *c.device;
    d.last_seen_ms = Now();
    ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) { return tx.TouchDevices({{d.id, Now()}}); }));
    if (!c.cache_key.empty()) UpdateCachedDevice(c.cache_key, d);
    c.device = std::make_shared<const Device>(std::move(d));
  } else {
    TouchLater(c.device->id);
  }
  CountContact(c, c.device->id);
  return OkStatus();
}

Result<Response> AppImpl::DdiPoll(Request& req, Caller& c) {
  ALOFT_RETURN_IF_ERROR(NoteContact(c));
  const Device& d = *c.device;
  std::optional<Action> action;
  std::optional<int64_t> installed;
  Release rel;
  ALOFT_RETURN_IF_ERROR(store_->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(action, tx.OpenActionFor(d.id));
    if (action) {
      ALOFT_ASSIGN_OR_RETURN(rel, tx.GetReleaseById(action->release_id));
      return OkStatus();
    }
    ALOFT_ASSIGN_OR_RETURN(installed, tx.LastSucceededAction(d.id));
    return OkStatus();
  }));
  const std::string url = DdiUrl(req, d.name);
  json links = json::object();
  bool active = false;
  if (action && action->state == ActionState::kCanceling) {
    links["cancelAction"] = {{"href", url + "/cancelAction/" + std::to_string(action->id)}};
    active = true;
  } else if (action && rel.enabled) {
    ALOFT_ASSIGN_OR_RETURN(auto window, WindowOf(action->rollout_id));
    const ddi::Handling h = ddi::HandlingFor(action->mode, window.open);
    links["deploymentBase"] = {
        {"href", url + "/deploymentBase/" + std::to_string(action->id) +
                     "?c=" + ddi::ChangeTag(*action, h, ShownWindow(window))}};
    active = true;
  } else if (installed) {
    links["installedBase"] = {{"href", url + "/installedBase/" + std::to_string(*installed)}};
  }
  if (d.attributes.empty() || d.attributes == "{}") {
    links["configData"] = {{"href", url + "/configData"}};
  }
  const int64_t sleep = active ? config_.poll_interval_active_s : config_.poll_interval_s;
  return JsonResponse(
      200, {{"config", {{"polling", {{"sleep", FormatDuration(std::chrono::seconds(sleep))}}}}},
            {"_links", links}});
}

ddi::ArtifactLinks AppImpl::DdiLinks(const Request& req, const Caller& c, const Release& rel) {
  const std::string path = DdiUrl(req, c.device->name) + "/softwaremodules/" +
                           std::to_string(rel.id) + "/artifacts/" +
                           http::PercentEncode(rel.filename);
  auto external = ExternalUrl(rel.artifact.sha256);
  return {external ? external->first : path, path + ".MD5SUM"};
}

Result<Release> AppImpl::DdiModule(Request& req, const Caller& c) {
  const std::string& text = req.params["module"];
  auto id = ParseId(text);
  if (!id) return Invalid("software module id '" + text + "' is not a number");
  Release rel;
  ALOFT_RETURN_IF_ERROR(store_->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(auto action, tx.OpenActionFor(c.device->id));
    if (!action || action->release_id != *id || action->state == ActionState::kCanceling) {
      return Error(Code::kNotFound, "software module " + text + " is not assigned to device '" +
                                        c.device->name + "'");
    }
    ALOFT_ASSIGN_OR_RETURN(rel, tx.GetReleaseById(*id));
    return OkStatus();
  }));
  return rel;
}

Result<Response> AppImpl::DdiDeployment(Request& req, Caller& c, bool installed) {
  ALOFT_ASSIGN_OR_RETURN(const int64_t id, PathId(req, "action"));
  int64_t history = 0;  // actionHistory: how many messages; negative: all
  if (auto h = QueryStr(req, "actionHistory")) {
    char* end = nullptr;
    long long v = std::strtoll(h->c_str(), &end, 10);
    if (h->empty() || *end) return Invalid("query parameter 'actionHistory' must be an integer");
    history = v;
  }
  Action a;
  Release rel;
  ALOFT_RETURN_IF_ERROR(store_->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(a, tx.GetAction(id));
    const std::string what = "action " + std::to_string(id) + " of device '" + c.device->name + "'";
    if (a.device_id != c.device->id) return Error(Code::kNotFound, what + " not found");
    if (installed && a.state != ActionState::kSucceeded) {
      return Error(Code::kNotFound,
                   what + " is " + std::string(ActionStateName(a.state)) + ", not installed");
    }
    if (!installed && (IsTerminal(a.state) || a.state == ActionState::kCanceling)) {
      return Error(Code::kNotFound, what + " is " + std::string(ActionStateName(a.state)) +
                                        "; it is no longer offered");
    }
    ALOFT_ASSIGN_OR_RETURN(rel, tx.GetReleaseById(a.release_id));
    return OkStatus();
  }));
  ALOFT_ASSIGN_OR_RETURN(auto window,
                         WindowOf(installed ? std::optional<int64_t>() : a.rollout_id));
  return JsonResponse(
      200,
      ddi::DeploymentJson(a, rel, DdiLinks(req, c, rel), ddi::HandlingFor(a.mode, window.open),
                          ShownWindow(window), history ? ddi::HistoryJson(a, history) : json()));
}

Result<Response> AppImpl::DdiFeedback(Request& req, Caller& c, bool cancel) {
  ALOFT_ASSIGN_OR_RETURN(const int64_t id, PathId(req, "action"));
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  ALOFT_ASSIGN_OR_RETURN(ddi::Feedback f, ddi::ParseFeedback(body));
  bool window_open = true;  // asked only when the feedback could mean installing
  if (!cancel && ddi::MayMeanInstalling(f)) {
    auto allowed = CheckInstallAllowed(id);
    if (!allowed.ok() && allowed.error().code() != Code::kAlreadyExists) return allowed.error();
    window_open = allowed.ok();
  }
  std::optional<Device> updated;
  std::optional<std::string> gone;  // the action is closed: 410, as hawkBit answers
  ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(Action a, tx.GetAction(id));
    const std::string what = "action " + std::to_string(id);
    if (a.device_id != c.device->id) {
      return Error(Code::kNotFound, what + " not found for device '" + c.device->name + "'");
    }
    if (IsTerminal(a.state)) {
      gone = what + " is already " + std::string(ActionStateName(a.state)) +
             "; feedback is no longer accepted";
      return OkStatus();
    }
    std::optional<ActionState> next;
    if (cancel) {
      if (a.state != ActionState::kCanceling) {
        return Error(Code::kAlreadyExists, what + " is " + std::string(ActionStateName(a.state)) +
                                               ", not being canceled");
      }
      next = ddi::CancelTransition(f, ddi::StateBeforeCancel(a));
    } else {
      next = ddi::DeploymentTransition(f, a.state, window_open);
    }
    std::string status = next && *next != a.state ? std::string(ActionStateName(*next))
                                                  : (cancel ? "cancel-" : "") + f.execution;
    if (f.finished != "none") status += " (" + f.finished + ")";
    ALOFT_ASSIGN_OR_RETURN(updated, RecordFeedback(tx, c, a, next.value_or(a.state), f.progress,
                                                   {Now(), status, f.progress, f.code, f.details}));
    return OkStatus();
  }));
  if (gone) return Response::Error(410, "gone", *gone);
  if (updated && !c.cache_key.empty()) UpdateCachedDevice(c.cache_key, *updated);
  return Empty(200);
}

Result<Response> AppImpl::DdiConfigData(Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  ALOFT_ASSIGN_OR_RETURN(auto mode_text, OptString(body, "mode"));
  const std::string mode = mode_text.value_or("merge");
  if (mode != "merge" && mode != "replace" && mode != "remove") {
    return Invalid("mode '" + mode + "' is not one of merge, replace, remove");
  }
  ALOFT_ASSIGN_OR_RETURN(auto data, OptAttributes(body, "data"));
  if (!data) return Invalid("missing field 'data' (an object of attribute: value)");
  Device d;
  ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(d, tx.GetDevice(c.device->name));
    json attrs = json::parse(d.attributes, nullptr, false);
    if (!attrs.is_object() || mode == "replace") attrs = json::object();
    for (const auto& [k, v] : data->items()) {
      if (mode == "remove") {
        attrs.erase(k);
      } else {
        attrs[k] = v;
      }
    }
    d.attributes = attrs.dump();
    return tx.SetAttributes(d.id, d.attributes);
  }));
  if (!c.cache_key.empty()) UpdateCachedDevice(c.cache_key, d);
  return Empty(200);
}

// ---- handlers ----

void AppImpl::AddRolloutChange(const std::string& verb, Access access,
                               Result<Rollout> (RolloutEngine::*change)(const std::string&,
                                                                        const std::string&,
                                                                        int64_t)) {
  AddRoute("POST", "/api/v1/rollouts/{rollout}/" + verb, access, BodyKind::kNone,
           [this, change](Request& r, Caller& c) -> Result<Response> {
             ALOFT_ASSIGN_OR_RETURN(Rollout out,
                                    ((*rollouts_).*change)(r.params["rollout"], c.actor, Now()));
             return Response::Json(200, RolloutJson(out));
           });
}

void AppImpl::AddRolloutRoutes() {
  using A = Access;
  using B = BodyKind;
  AddRoute("POST", "/api/v1/rollouts", A::kRelease, B::kJson,
           [this](Request& r, Caller& c) -> Result<Response> {
             ALOFT_ASSIGN_OR_RETURN(RolloutSpec spec, ParseRolloutSpec(r.body));
             if (config_.rollout_approval) spec.needs_approval = true;
             ALOFT_ASSIGN_OR_RETURN(Rollout out, rollouts_->Create(spec, c.actor, Now()));
             return Response::Json(201, RolloutJson(out));
           });
  AddRoute("GET", "/api/v1/rollouts", A::kViewer, B::kNone,
           [this](Request&, Caller&) -> Result<Response> {
             ALOFT_ASSIGN_OR_RETURN(auto list, rollouts_->List());
             std::string out = "[";
             for (const auto& r : list) out += (out.size() > 1 ? "," : "") + RolloutJson(r);
             return Response::Json(200, out + "]");
           });
  AddRoute("GET", "/api/v1/rollouts/{rollout}", A::kViewer, B::kNone,
           [this](Request& r, Caller&) -> Result<Response> {
             ALOFT_ASSIGN_OR_RETURN(RolloutStatus st, rollouts_->StatusOf(r.params["rollout"]));
             return Response::Json(200, RolloutStatusJson(st));
           });
  AddRolloutChange("approve", A::kApprover, &RolloutEngine::Approve);
  AddRolloutChange("pause", A::kRelease, &RolloutEngine::Pause);
  AddRolloutChange("resume", A::kRelease, &RolloutEngine::Resume);
  AddRolloutChange("confirm", A::kRelease, &RolloutEngine::Confirm);
  AddRolloutChange("cancel", A::kRelease, &RolloutEngine::Cancel);
}

Result<Response> AppImpl::CreateDeviceType(Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  ALOFT_ASSIGN_OR_RETURN(std::string name, ReqString(body, "name"));
  ALOFT_RETURN_IF_ERROR(CheckName("device type", name));
  ALOFT_ASSIGN_OR_RETURN(auto description, OptString(body, "description"));
  ALOFT_ASSIGN_OR_RETURN(auto modules, OptStringList(body, "modules"));
  if (modules) {
    for (const auto& m : *modules) ALOFT_RETURN_IF_ERROR(CheckName("module", m));
  }
  json out;
  ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(DeviceType t,
                           tx.CreateDeviceType(name, description.value_or(""), Now()));
    if (modules) {
      for (const auto& m : *modules) {
        if (m != "main") ALOFT_RETURN_IF_ERROR(tx.AddModule(name, m));
      }
    }
    ALOFT_RETURN_IF_ERROR(tx.Audit(c.actor, "device-type.create", name, body.dump(), Now()));
    ALOFT_ASSIGN_OR_RETURN(t, tx.GetDeviceType(name));
    out = ToJson(t);
    return OkStatus();
  }));
  return JsonResponse(201, out);
}

// A sink that only lets the package reader check every payload.
class DiscardSink final : public pkg::PayloadSink {
 public:
  Status Begin(const pkg::Component&) override { return OkStatus(); }
  Status Write(ByteSpan) override { return OkStatus(); }
  Status End(const pkg::Component&) override { return OkStatus(); }
};

Result<Response> AppImpl::UploadRelease(Request& req, Caller& c) {
  if (req.body_file.empty() || req.body_size == 0) {
    return Invalid("the upload is empty: send the file as the request body");
  }
  const std::string upload = req.body_file;
  Release rel;
  rel.created_by = c.actor;
  rel.created_ms = Now();
  auto name = QueryStr(req, "name");
  if (!name) {
    // A signed .aloft package: everything comes from its verified manifest.
    if (trust_.keys().empty()) {
      return Error(Code::kUntrusted,
                   "this server has no trust keys configured (aloftd --trust KEY.pub), so it "
                   "accepts no signed package; upload a plain artifact with name= and version=");
    }
    ALOFT_ASSIGN_OR_RETURN(File f, File::OpenRead(upload));
    std::string origin = QueryStr(req, "filename").value_or("uploaded package");
    auto reader = pkg::PackageReader::Open(f, origin, &trust_);
    if (!reader.ok()) return std::move(reader).error();
    DiscardSink sink;
    ALOFT_RETURN_IF_ERROR((*reader)->ReadPayloads(sink, /*raw=*/true));
    const pkg::Manifest& m = (*reader)->manifest();
    rel.name = m.name;
    rel.version = m.version.ToString();
    rel.kind = "package";
    rel.filename = QueryStr(req, "filename").value_or(m.name + "-" + rel.version + ".aloft");
    ALOFT_ASSIGN_OR_RETURN(rel.manifest, pkg::SerializeEnvelope((*reader)->envelope()));
    for (const auto& hw : m.hardware) {
      for (const auto& comp : m.components) rel.targets.push_back({hw, comp.name});
    }
  } else {
    rel.name = *name;
    ALOFT_RETURN_IF_ERROR(CheckName("release name", rel.name));
    auto version = QueryStr(req, "version");
    if (!version) return Invalid("missing query parameter 'version' for a plain artifact");
    rel.version = *version;
    auto type = QueryStr(req, "device_type");
    if (!type) return Invalid("missing query parameter 'device_type' for a plain artifact");
    rel.kind = "artifact";
    rel.filename = QueryStr(req, "filename").value_or(rel.name + "-" + rel.version);
    rel.targets.push_back({*type, QueryStr(req, "module").value_or("main")});
  }
  ALOFT_RETURN_IF_ERROR(CheckVersion(rel.version));
  if (rel.filename.size() > 200 || rel.filename.find('/') != std::string::npos ||
      rel.filename.find('"') != std::string::npos) {
    return Invalid("filename '" + rel.filename + "' must be a plain file name");
  }
  ALOFT_ASSIGN_OR_RETURN(rel.artifact, ArtifactStore::Digest(upload));
  // The file goes to its content address first; the release row appears only after it is there,
  // so a crash in between leaves at most an unreferenced file, never a half-visible release.
  bool known = false;
  ALOFT_RETURN_IF_ERROR(store_->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(known, tx.ArtifactKnown(rel.artifact.sha256));
    ALOFT_ASSIGN_OR_RETURN(auto existing, tx.ListReleases(rel.name));
    for (const auto& e : existing) {
      if (e.version == rel.version) {
        return Error(Code::kAlreadyExists, "release " + rel.Id() +
                                               " already exists; releases are immutable, "
                                               "upload a new version");
      }
    }
    return OkStatus();
  }));
  json out;
  ALOFT_RETURN_IF_ERROR(AdoptUpload(upload, rel.artifact, known, [&] {
    return store_->Write([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(Release created, tx.CreateRelease(rel));
      out = ToJson(created);
      return tx.Audit(
          c.actor, "release.create", rel.Id(),
          json({{"sha256", rel.artifact.sha256}, {"size", rel.artifact.size}, {"kind", rel.kind}})
              .dump(),
          Now());
    });
  }));
  return JsonResponse(201, out);
}

Status AppImpl::AdoptUpload(const std::string& upload, const Artifact& a, bool known,
                            const std::function<Status()>& record) {
  ALOFT_RETURN_IF_ERROR(artifacts_.Adopt(upload, a));
  Status s = record();
  if (!s.ok() && !known) {
    bool still = true;
    (void)store_->Read([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(still, tx.ArtifactKnown(a.sha256));
      return OkStatus();
    });
    if (!still) artifacts_.Remove(a.sha256);
  }
  return s;
}

Result<Response> AppImpl::UploadDelta(Request& req, Caller& c) {
  if (req.body_file.empty() || req.body_size == 0) {
    return Invalid("the upload is empty: send the delta package as the request body");
  }
  if (trust_.keys().empty()) {
    return Error(Code::kUntrusted,
                 "this server has no trust keys configured, so it accepts no "
                 "signed package");
  }
  Release rel;
  ALOFT_RETURN_IF_ERROR(store_->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(rel, tx.GetRelease(req.params["name"], req.params["version"]));
    return OkStatus();
  }));
  ALOFT_ASSIGN_OR_RETURN(File f, File::OpenRead(req.body_file));
  auto reader = pkg::PackageReader::Open(f, "uploaded delta", &trust_);
  if (!reader.ok()) return std::move(reader).error();
  DiscardSink sink;
  ALOFT_RETURN_IF_ERROR((*reader)->ReadPayloads(sink, /*raw=*/true));
  const pkg::Manifest& m = (*reader)->manifest();
  if (m.name != rel.name || m.version.ToString() != rel.version) {
    return Invalid("the package is " + m.name + "@" + m.version.ToString() + ", not " + rel.Id());
  }
  std::string base;
  for (const auto& comp : m.components) {
    if (comp.type != pkg::ComponentType::kDelta || !comp.base) {
      return Invalid("component '" + comp.name +
                     "' is a full image; upload full packages as "
                     "releases, deltas here");
    }
    if (!base.empty() && comp.base->version != base) {
      return Invalid("the components apply to different base versions (" + base + ", " +
                     comp.base->version + ")");
    }
    base = comp.base->version;
  }
  if (base.empty()) return Invalid("the package has no components");
  ALOFT_ASSIGN_OR_RETURN(std::string manifest, pkg::SerializeEnvelope((*reader)->envelope()));
  ALOFT_ASSIGN_OR_RETURN(Artifact artifact, ArtifactStore::Digest(req.body_file));
  bool known = false;
  ALOFT_RETURN_IF_ERROR(store_->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(known, tx.ArtifactKnown(artifact.sha256));
    return OkStatus();
  }));
  Delta d;
  ALOFT_RETURN_IF_ERROR(AdoptUpload(req.body_file, artifact, known, [&]() -> Status {
    ALOFT_ASSIGN_OR_RETURN(d, deltas_->AddUploaded(rel, base, artifact, manifest, c.actor, Now()));
    return OkStatus();
  }));
  return JsonResponse(201, {{"release", rel.Id()},
                            {"base_version", d.base_version},
                            {"size", d.artifact.size},
                            {"sha256", d.artifact.sha256},
                            {"source", d.source}});
}

Result<Response> AppImpl::PatchRelease(Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  for (const auto& [k, v] : body.items()) {
    if (k != "enabled" && k != "allowed_devices" && k != "allowed_sources") {
      return Invalid("field '" + k +
                     "' cannot be changed (a release is immutable; enabled, allowed_devices and "
                     "allowed_sources can)");
    }
  }
  auto en = body.find("enabled");
  if (en != body.end() && !en->is_boolean()) {
    return Invalid(std::string("field 'enabled' must be a boolean, not ") + en->type_name());
  }
  ALOFT_ASSIGN_OR_RETURN(auto devices, OptStringList(body, "allowed_devices"));
  ALOFT_ASSIGN_OR_RETURN(auto sources, OptStringList(body, "allowed_sources"));
  json out;
  ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(Release r, tx.GetRelease(req.params["name"], req.params["version"]));
    if (en != body.end()) r.enabled = en->get<bool>();
    if (body.contains("allowed_devices")) r.allowed_devices = devices;
    if (body.contains("allowed_sources")) r.allowed_sources = sources;
    ALOFT_RETURN_IF_ERROR(tx.UpdateRelease(r));
    ALOFT_RETURN_IF_ERROR(tx.Audit(c.actor, "release.update", r.Id(), body.dump(), Now()));
    out = ToJson(r);
    return OkStatus();
  }));
  return JsonResponse(200, out);
}

Result<Response> AppImpl::CreateDevice(Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  Device d;
  ALOFT_ASSIGN_OR_RETURN(d.name, ReqString(body, "name"));
  ALOFT_RETURN_IF_ERROR(CheckName("device", d.name));
  ALOFT_ASSIGN_OR_RETURN(d.device_type, ReqString(body, "device_type"));
  ALOFT_ASSIGN_OR_RETURN(d.group, OptString(body, "group"));
  if (d.group) ALOFT_RETURN_IF_ERROR(CheckName("group", *d.group));
  ALOFT_ASSIGN_OR_RETURN(auto tags, OptStringList(body, "tags"));
  if (tags) {
    for (const auto& t : *tags) ALOFT_RETURN_IF_ERROR(CheckName("tag", t));
    d.tags = *tags;
  }
  ALOFT_ASSIGN_OR_RETURN(auto attrs, OptAttributes(body));
  if (attrs) d.attributes = attrs->dump();
  ALOFT_ASSIGN_OR_RETURN(d.gateway, OptString(body, "gateway"));
  d.created_ms = Now();
  std::string token = NewToken("aloft_d_");
  const std::string mqtt_secret = mqtt::PasswordHash(token);
  json out;
  ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(Device created,
                           tx.CreateDevice(d, Sha256Hex(AsBytes(token)), mqtt_secret));
    out = ToJson(created);
    return tx.Audit(c.actor, "device.create", d.name, json({{"device_type", d.device_type}}).dump(),
                    Now());
  }));
  CredentialsChanged();
  out["token"] = token;
  return JsonResponse(201, out);
}

Result<Response> AppImpl::PatchDevice(Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  for (const auto& [k, v] : body.items()) {
    if (k != "group" && k != "tags" && k != "attributes" && k != "gateway") {
      return Invalid("field '" + k +
                     "' cannot be changed (group, tags, attributes and gateway can)");
    }
  }
  ALOFT_ASSIGN_OR_RETURN(auto group, OptString(body, "group"));
  if (group) ALOFT_RETURN_IF_ERROR(CheckName("group", *group));
  ALOFT_ASSIGN_OR_RETURN(auto tags, OptStringList(body, "tags"));
  if (tags) {
    for (const auto& t : *tags) ALOFT_RETURN_IF_ERROR(CheckName("tag", t));
  }
  ALOFT_ASSIGN_OR_RETURN(auto attrs, OptAttributes(body));
  ALOFT_ASSIGN_OR_RETURN(auto gateway, OptString(body, "gateway"));
  json out;
  ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(Device d, tx.GetDevice(req.params["device"]));
    if (body.contains("group")) d.group = group;
    if (body.contains("gateway")) d.gateway = gateway;
    if (tags) d.tags = *tags;
    if (attrs) d.attributes = attrs->dump();
    ALOFT_RETURN_IF_ERROR(tx.UpdateDevice(d));
    ALOFT_RETURN_IF_ERROR(tx.Audit(c.actor, "device.update", d.name, body.dump(), Now()));
    ALOFT_ASSIGN_OR_RETURN(d, tx.GetDevice(d.name));
    out = ToJson(d);
    return OkStatus();
  }));
  ForgetCachedAuth();
  return JsonResponse(200, out);
}

Result<Response> AppImpl::Deploy(Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  ALOFT_ASSIGN_OR_RETURN(std::string release_id, ReqString(body, "release"));
  auto at = release_id.find('@');
  if (at == std::string::npos || at == 0 || at + 1 == release_id.size()) {
    return Invalid("field 'release' must be NAME@VERSION, got '" + release_id + "'");
  }
  ALOFT_ASSIGN_OR_RETURN(auto devices, OptStringList(body, "devices"));
  ALOFT_ASSIGN_OR_RETURN(auto group, OptString(body, "group"));
  ALOFT_ASSIGN_OR_RETURN(auto tag, OptString(body, "tag"));
  int targets = (devices ? 1 : 0) + (group ? 1 : 0) + (tag ? 1 : 0);
  if (targets != 1) {
    return Invalid("name exactly one target: 'devices' (a list), 'group' or 'tag'");
  }
  if (devices && devices->empty()) return Invalid("field 'devices' is empty");
  ALOFT_ASSIGN_OR_RETURN(auto mode_opt, OptString(body, "mode"));
  std::string mode = mode_opt.value_or("forced");
  if (mode != "forced" && mode != "soft" && mode != "download-only") {
    return Invalid("mode '" + mode + "' is not one of forced, soft, download-only");
  }
  bool push = false;
  if (auto it = body.find("push"); it != body.end() && !it->is_null()) {
    if (!it->is_boolean()) return Invalid("field 'push' must be true or false");
    push = it->get<bool>();
    if (push && !push_) {
      return Error(Code::kUnsupported,
                   "this server has no MQTT broker configured (mqtt_url); 'push' cannot be true");
    }
  }
  json created = json::array(), skipped = json::array();
  ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
    created = json::array();
    skipped = json::array();
    ALOFT_ASSIGN_OR_RETURN(Release rel,
                           tx.GetRelease(release_id.substr(0, at), release_id.substr(at + 1)));
    if (!rel.enabled) {
      return Invalid("release " + rel.Id() + " is disabled; enable it before deploying");
    }
    DeviceFilter f;
    f.limit = 1000000;
    if (devices) f.names = *devices;
    f.group = group;
    f.tag = tag;
    ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListDevices(f));
    if (devices) {
      for (const auto& n : *devices) {
        bool found = false;
        for (const auto& d : list) found = found || d.name == n;
        if (!found) return Error(Code::kNotFound, "device '" + n + "' not found");
      }
    }
    if (list.empty()) {
      return Error(Code::kNotFound, std::string("no devices in ") +
                                        (group ? "group '" + *group + "'" : "tag '" + *tag + "'"));
    }
    auto types = rel.DeviceTypes();
    for (const auto& d : list) {
      std::string reason;
      if (std::find(types.begin(), types.end(), d.device_type) == types.end()) {
        reason = "device type '" + d.device_type + "' is not a target of " + rel.Id();
      } else {
        auto it = d.versions.find(rel.FirstModule());
        reason = rel.RefusalFor(d.name, it == d.versions.end() ? "" : it->second).value_or("");
      }
      if (reason.empty()) {
        auto a = tx.CreateAction(d.id, rel.id, mode, c.actor, Now());
        if (a.ok()) {
          created.push_back({{"id", a->id}, {"device", d.name}});
          if (push) {
            auto scheduled = tx.SchedulePushes({d.id}, std::nullopt, Now());
            if (!scheduled.ok()) return std::move(scheduled).error();
          }
          continue;
        }
        if (a.error().code() != Code::kAlreadyExists) return std::move(a).error();
        reason = a.error().message();
      }
      skipped.push_back({{"device", d.name}, {"reason", reason}});
    }
    return tx.Audit(
        c.actor, "deployment.create", rel.Id(),
        json({{"target", body}, {"created", created.size()}, {"skipped", skipped.size()}}).dump(),
        Now());
  }));
  return JsonResponse(201, {{"release", release_id}, {"actions", created}, {"skipped", skipped}});
}

std::optional<std::pair<std::string, int64_t>> AppImpl::ExternalUrl(
    const std::string& sha256) const {
  if (config_.external_base_url.empty()) return std::nullopt;
  std::string base = config_.external_base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  auto scheme = base.find("://");
  auto path_start = base.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  std::string uri = (path_start == std::string::npos ? "" : base.substr(path_start)) + "/" +
                    ArtifactStore::RelativePath(sha256);
  int64_t expires = Now() / 1000 + config_.link_ttl_s;
  return std::pair{base + "/" + ArtifactStore::RelativePath(sha256) +
                       "?md5=" + SecureLinkMd5(expires, uri, config_.secure_link_secret) +
                       "&expires=" + std::to_string(expires),
                   expires};
}

Result<json> AppImpl::ActionForDevice(const Request& req, const Device& d, const Action& a,
                                      const Release& full,
                                      const RolloutEngine::InstallWindow& window,
                                      const std::optional<Delta>& delta) {
  Release r = full;  // what is downloaded: the release's own artifact, or the delta package
  if (delta) {
    r.artifact = delta->artifact;
    r.filename = full.name + "-" + delta->base_version + "-to-" + full.version + ".aloft";
    r.manifest = delta->manifest;
  }
  json download = {{"size", r.artifact.size},
                   {"sha256", r.artifact.sha256},
                   {"sha1", r.artifact.sha1},
                   {"md5", r.artifact.md5},
                   {"filename", r.filename}};
  if (delta) {
    download["delta"] = {{"base_version", delta->base_version}, {"full_size", full.artifact.size}};
  }
  if (auto external = ExternalUrl(r.artifact.sha256)) {
    download["url"] = external->first;
    download["expires"] = FormatRfc3339Ms(external->second * 1000);
  } else {
    download["url"] = BaseUrl(req) + "/device/v1/" + http::PercentEncode(d.name) + "/actions/" +
                      std::to_string(a.id) + "/artifact";
  }
  json j = {{"id", a.id},
            {"release", r.name},
            {"version", r.version},
            {"kind", r.kind},
            {"modules", r.Modules()},
            {"mode", a.mode},
            {"state", ActionStateName(a.state)},
            {"install", a.mode != "download-only" && window.open},
            {"download", download}};
  if (window.spec) {
    j["maintenance_window"] = {
        {"schedule", window.spec->schedule},
        {"duration", window.spec->duration},
        {"time_zone", window.spec->time_zone},
        {"open", window.open},
        {"next_start",
         window.next_start ? json(FormatRfc3339(*window.next_start)) : json(nullptr)}};
  }
  j["manifest"] = r.manifest ? json::parse(*r.manifest, nullptr, false) : json(nullptr);
  return j;
}

Result<Response> AppImpl::CheckIn(Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, true));
  std::map<std::string, std::string> versions;
  if (auto it = body.find("versions"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) {
      return Invalid(std::string("field 'versions' must be an object of module: version, not ") +
                     it->type_name());
    }
    for (const auto& [m, v] : it->items()) {
      ALOFT_RETURN_IF_ERROR(CheckName("module", m));
      if (!v.is_string()) return Invalid("version of module '" + m + "' must be a string");
      ALOFT_RETURN_IF_ERROR(CheckVersion(v.get<std::string>()));
      versions[m] = v.get<std::string>();
    }
  }
  // One "version": the device type's first module (push devices report {"version": "1.0.0"}).
  ALOFT_ASSIGN_OR_RETURN(auto single_version, OptString(body, "version"));
  if (single_version) {
    if (!versions.empty()) return Invalid("give 'version' or 'versions', not both");
    ALOFT_RETURN_IF_ERROR(CheckVersion(*single_version));
  }
  ALOFT_ASSIGN_OR_RETURN(auto attrs, OptAttributes(body));
  const std::string& name = req.params["device"];
  std::optional<std::string> new_token;
  std::shared_ptr<const Device> device = c.device;  // not copied unless something changed
  if (c.kind == Caller::kRegistration) {
    ALOFT_RETURN_IF_ERROR(CheckName("device", name));
    new_token = NewToken("aloft_d_");
    const std::string mqtt_secret = mqtt::PasswordHash(*new_token);
    Device d;
    d.name = name;
    d.device_type = c.reg_type->name;
    d.created_ms = Now();
    if (attrs) d.attributes = attrs->dump();
    Status s = store_->Write([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(d, tx.CreateDevice(d, Sha256Hex(AsBytes(*new_token)), mqtt_secret));
      return tx.Audit(c.actor, "device.register", name,
                      json({{"device_type", d.device_type}}).dump(), Now());
    });
    if (!s.ok() && s.error().code() == Code::kAlreadyExists) {
      return Error(Code::kAlreadyExists, "device '" + name +
                                             "' is already registered; check in with its "
                                             "device token");
    }
    ALOFT_RETURN_IF_ERROR(s);
    CredentialsChanged();
    device = std::make_shared<const Device>(std::move(d));
  }
  if (single_version) {
    DeviceType type;
    ALOFT_RETURN_IF_ERROR(store_->Read([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(type, tx.GetDeviceType(device->device_type));
      return OkStatus();
    }));
    versions[type.modules.empty() ? std::string("main") : type.modules[0]] = *single_version;
  }
  bool versions_changed = false;
  for (const auto& [m, v] : versions) {
    auto it = device->versions.find(m);
    versions_changed = versions_changed || it == device->versions.end() || it->second != v;
  }
  std::string attrs_text = attrs ? attrs->dump() : "";
  bool attrs_changed = attrs && attrs_text != device->attributes;
  // Last contact is written behind, in batches, except the first one: "never seen" must end at
  // once.
  bool first_contact = !device->last_seen_ms;
  if (versions_changed || attrs_changed || first_contact) {
    Device d = *device;
    ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
      ALOFT_RETURN_IF_ERROR(tx.RecordVersions(d.id, d.versions, versions, Now()));
      if (attrs_changed) ALOFT_RETURN_IF_ERROR(tx.SetAttributes(d.id, attrs_text));
      if (first_contact) ALOFT_RETURN_IF_ERROR(tx.TouchDevices({{d.id, Now()}}));
      return OkStatus();
    }));
    for (const auto& [m, v] : versions) d.versions[m] = v;
    if (attrs_changed) d.attributes = attrs_text;
    if (first_contact) d.last_seen_ms = Now();
    if (c.kind == Caller::kDevice) UpdateCachedDevice(c.cache_key, d);
    device = std::make_shared<const Device>(std::move(d));
  }
  const Device& d = *device;
  if (!first_contact) TouchLater(d.id);
  CountContact(c, d.id);

  std::optional<Action> action;
  Release rel;
  // Nearly every check-in finds no open action. On SQLite this server is the only writer, so the
  // answer found earlier stays true until this server writes to the actions table.
  const bool sole_writer = store_->sole_writer() && c.hints;
  const uint64_t epoch = store_->actions_epoch();  // before the read (see actions_epoch())
  if (!sole_writer || c.hints->no_action_epoch.load(std::memory_order_relaxed) != epoch) {
    ALOFT_RETURN_IF_ERROR(store_->Read([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(action, tx.OpenActionFor(d.id));
      if (action) {
        ALOFT_ASSIGN_OR_RETURN(rel, tx.GetReleaseById(action->release_id));
      }
      return OkStatus();
    }));
    if (sole_writer && !action) c.hints->no_action_epoch.store(epoch, std::memory_order_relaxed);
  }
  // A disabled release offers nothing new, but a cancel is still told.
  const bool offer = action && (rel.enabled || action->state == ActionState::kCanceling);
  if (!new_token && !offer) {
    // The answer to nearly every check-in, built without a JSON tree.
    return Response::Json(
        200, "{\"action\":null,\"device\":" + http::JsonQuote(d.name) +
                 ",\"poll_interval_s\":" + std::to_string(config_.poll_interval_s) + "}");
  }
  json out = {{"device", d.name}, {"action", nullptr}};
  if (new_token) out["token"] = *new_token;
  ALOFT_ASSIGN_OR_RETURN(out["action"], OpenActionJson(req, d, action, rel));
  out["poll_interval_s"] =
      out["action"].is_null() ? config_.poll_interval_s : config_.poll_interval_active_s;
  return JsonResponse(200, out);
}

Result<json> AppImpl::OpenActionJson(const Request& req, const Device& d,
                                     const std::optional<Action>& action, const Release& rel) {
  if (action && action->state == ActionState::kCanceling) {
    // The device is told to stop; its "canceled" feedback closes the action.
    return json{{"id", action->id},
                {"release", rel.name},
                {"version", rel.version},
                {"state", "canceling"},
                {"cancel", true}};
  }
  if (action && rel.enabled) {
    ALOFT_ASSIGN_OR_RETURN(auto window, WindowOf(action->rollout_id));
    ALOFT_ASSIGN_OR_RETURN(auto delta, deltas_->ForAction(*action, rel, d, Now()));
    return ActionForDevice(req, d, *action, rel, window, delta);
  }
  return json(nullptr);
}

namespace {
// What the bridge's requests carry as Host, for the download URLs they are given: the address
// this server listens on (loopback when it listens on every address). public_url overrides it.
std::string LocalHost(const std::string& listen, uint16_t port) {
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") host = "127.0.0.1";
  return host + ":" + std::to_string(port);
}
}  // namespace

Request AppImpl::BridgeRequest() const {
  Request req;
  req.remote_address = "mqtt";
  req.headers.Set("Host", LocalHost(config_.listen, server_->port()));
  req.tls = !config_.tls_cert.empty();
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
  auto m = router_.Match(method, path);
  if (m.kind != http::RouteMatch::kFound || routes_[m.id].access == Access::kPublic) {
    return {404, Response::Error(404, "not-found", "no route " + path).body};
  }
  req.route = m.id;
  req.params = std::move(m.params);
  const Route& route = routes_[m.id];
  Caller c;
  Status s = store_->Read([&](Tx& tx) -> Status {
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
    if (Status a = Authorize(c, route.access, req); !a.ok()) {
      res = ErrorResponse(a.error());
    } else {
      auto r = route.fn(req, c);
      res = r.ok() ? std::move(r).value() : ErrorResponse(r.error());
    }
  }
  metrics_.RecordRequest(route.metric, res.status, 0);
  return {res.status, res.body};
}

Result<json> AppImpl::OfferFor(const std::string& name) {
  Device d;
  std::optional<Action> action;
  Release rel;
  ALOFT_RETURN_IF_ERROR(store_->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(d, tx.GetDevice(name));
    ALOFT_ASSIGN_OR_RETURN(action, tx.OpenActionFor(d.id));
    if (action) {
      ALOFT_ASSIGN_OR_RETURN(rel, tx.GetReleaseById(action->release_id));
    }
    return OkStatus();
  }));
  return OpenActionJson(BridgeRequest(), d, action, rel);
}

Result<Response> AppImpl::PushTask(Request& req, Caller& c) {
  if (!push_) {
    return Error(Code::kUnsupported,
                 "this server has no MQTT broker configured (mqtt_url); nothing can be pushed");
  }
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  for (const auto& [k, v] : body.items()) {
    if (k != "devices" && k != "rollout" && k != "at") {
      return Invalid("unknown field '" + k + "' (known: devices, rollout, at)");
    }
  }
  ALOFT_ASSIGN_OR_RETURN(auto devices, OptStringList(body, "devices"));
  ALOFT_ASSIGN_OR_RETURN(auto rollout, OptString(body, "rollout"));
  if ((devices ? 1 : 0) + (rollout ? 1 : 0) != 1) {
    return Invalid("name exactly one target: 'devices' (a list) or 'rollout'");
  }
  if (devices && devices->empty()) return Invalid("field 'devices' is empty");
  ALOFT_ASSIGN_OR_RETURN(auto at_text, OptString(body, "at"));
  int64_t at = Now();
  if (at_text) {
    auto parsed = ParseRfc3339(*at_text);
    if (!parsed) return Invalid("field 'at' must be an RFC 3339 time, got '" + *at_text + "'");
    at = ToMs(*parsed);
  }
  std::optional<int64_t> rollout_id;
  if (rollout) {
    ALOFT_ASSIGN_OR_RETURN(Rollout r, rollouts_->Get(*rollout));
    rollout_id = r.id;
  }
  int64_t scheduled = 0;
  ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
    std::vector<int64_t> ids;
    if (!rollout) {
      for (const auto& n : *devices) {
        ALOFT_ASSIGN_OR_RETURN(Device d, tx.GetDevice(n));
        ids.push_back(d.id);
      }
    }
    ALOFT_ASSIGN_OR_RETURN(scheduled, tx.SchedulePushes(ids, rollout_id, at));
    return tx.Audit(c.actor, "push.create", rollout ? "rollout:" + *rollout : "devices",
                    json({{"target", body}, {"actions", scheduled}}).dump(), Now());
  }));
  return JsonResponse(201, {{"actions", scheduled}, {"at", FormatRfc3339Ms(at)}});
}

Result<Response> AppImpl::Feedback(Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(const int64_t id, PathId(req, "action"));
  const std::string& id_text = req.params["id"];
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  ALOFT_ASSIGN_OR_RETURN(std::string status, ReqString(body, "status"));
  static const std::map<std::string, ActionState> kStatus = {
      {"downloading", ActionState::kDownloading}, {"downloaded", ActionState::kDownloaded},
      {"installing", ActionState::kInstalling},   {"installed", ActionState::kInstalled},
      {"success", ActionState::kSucceeded},       {"failure", ActionState::kFailed},
      {"canceled", ActionState::kCanceled}};
  auto st = kStatus.find(status);
  if (st == kStatus.end()) {
    return Invalid("status '" + status +
                   "' is not one of downloading, downloaded, installing, installed, success, "
                   "failure, canceled");
  }
  std::optional<int64_t> progress, code;
  if (auto it = body.find("progress"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 100) {
      return Invalid("field 'progress' must be an integer from 0 to 100");
    }
    progress = it->get<int64_t>();
  }
  if (auto it = body.find("code"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer()) return Invalid("field 'code' must be an integer");
    code = it->get<int64_t>();
  }
  std::string details;
  if (auto it = body.find("details"); it != body.end() && !it->is_null()) {
    if (it->is_string()) {
      details = it->get<std::string>();
    } else if (it->is_array()) {
      for (const auto& e : *it) {
        if (!e.is_string()) return Invalid("field 'details' must be a string or strings");
        details += (details.empty() ? "" : "\n") + e.get<std::string>();
      }
    } else {
      return Invalid("field 'details' must be a string or an array of strings");
    }
  }
  if (details.size() > 64 * 1024) return Invalid("field 'details' exceeds 65536 bytes");
  if (st->second == ActionState::kInstalling) ALOFT_RETURN_IF_ERROR(CheckInstallAllowed(id));
  json out;
  std::optional<Device> updated;
  ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(Action a, OpenActionOf(tx, c, id));
    const ActionState next = st->second;
    if (a.state == ActionState::kCanceling && next != ActionState::kInstalled &&
        next != ActionState::kSucceeded && next != ActionState::kFailed &&
        next != ActionState::kCanceled) {
      return Error(Code::kAlreadyExists,
                   "action " + id_text +
                       " is being canceled: report 'canceled' to confirm, or the result of an "
                       "install already under way");
    }
    if (next == ActionState::kCanceled && a.state != ActionState::kCanceling) {
      return Error(Code::kAlreadyExists,
                   "action " + id_text + " was not canceled; report 'failure' to give it up");
    }
    ALOFT_ASSIGN_OR_RETURN(updated, RecordFeedback(tx, c, a, next, progress,
                                                   {Now(), status, progress, code, details}));
    out = {{"id", id}, {"state", ActionStateName(next)}};
    return OkStatus();
  }));
  if (updated) UpdateCachedDevice(c.cache_key, *updated);
  return JsonResponse(200, out);
}

Result<Action> AppImpl::OpenActionOf(Tx& tx, const Caller& c, int64_t id) {
  ALOFT_ASSIGN_OR_RETURN(Action a, tx.GetAction(id));
  if (a.device_id != c.device->id) {
    return Error(Code::kNotFound,
                 "action " + std::to_string(id) + " not found for device '" + c.device->name + "'");
  }
  if (IsTerminal(a.state)) {
    return Error(Code::kAlreadyExists, "action " + std::to_string(id) + " is already " +
                                           std::string(ActionStateName(a.state)) +
                                           "; feedback is no longer accepted");
  }
  return a;
}

Result<std::optional<Device>> AppImpl::RecordFeedback(Tx& tx, const Caller& c, const Action& a,
                                                      ActionState next,
                                                      std::optional<int64_t> progress,
                                                      const ActionEvent& event) {
  int64_t pct = progress.value_or(next == ActionState::kDownloading ? a.progress : 100);
  if ((next == a.state && !progress) || next == ActionState::kFailed ||
      next == ActionState::kCanceled || next == ActionState::kCanceling ||
      next == ActionState::kPending) {
    pct = a.progress;
  }
  ALOFT_RETURN_IF_ERROR(tx.UpdateAction(a.id, next, pct, event));
  if (next != ActionState::kSucceeded) return std::optional<Device>();
  ALOFT_ASSIGN_OR_RETURN(Release rel, tx.GetReleaseById(a.release_id));
  ALOFT_ASSIGN_OR_RETURN(Device d, tx.GetDevice(c.device->name));
  std::map<std::string, std::string> versions;
  for (const auto& m : rel.Modules()) versions[m] = rel.version;
  ALOFT_RETURN_IF_ERROR(tx.RecordVersions(d.id, d.versions, versions, Now()));
  for (const auto& [m, v] : versions) d.versions[m] = v;
  return std::optional<Device>(std::move(d));
}

Status AppImpl::CheckInstallAllowed(int64_t action_id) {
  std::optional<int64_t> rollout;
  ALOFT_RETURN_IF_ERROR(store_->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(
        db::Rows rows,
        tx.connection().Query("SELECT rollout_id FROM actions WHERE id = ?", {action_id}));
    if (!rows.empty()) rollout = rows[0].OptInt(0);
    return OkStatus();
  }));
  ALOFT_ASSIGN_OR_RETURN(auto window, WindowOf(rollout));
  if (window.open) return OkStatus();
  return Error(
      Code::kAlreadyExists,
      "action " + std::to_string(action_id) +
          " may not install outside its rollout's maintenance window ('" + window.spec->schedule +
          "' for " + window.spec->duration + ", " + window.spec->time_zone +
          "); it opens next at " +
          (window.next_start ? FormatRfc3339(*window.next_start) : "no time within a year"));
}

Result<Response> AppImpl::DeviceDownload(Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(const int64_t id, PathId(req, "action"));
  const std::string& id_text = req.params["id"];
  Release rel;
  std::optional<int64_t> delta_id;
  ALOFT_RETURN_IF_ERROR(store_->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(Action a, tx.GetAction(id));
    // Authorize let only the path's device, or its gateway, this far.
    if (a.device != req.params["device"]) {
      return Error(Code::kNotFound,
                   "action " + id_text + " not found for device '" + req.params["device"] + "'");
    }
    if (c.kind == Caller::kDevice && IsTerminal(a.state)) {
      return Error(Code::kPermissionDenied, "action " + id_text + " is " +
                                                std::string(ActionStateName(a.state)) +
                                                "; its artifact is no longer offered");
    }
    ALOFT_ASSIGN_OR_RETURN(rel, tx.GetReleaseById(a.release_id));
    delta_id = a.delta_id;
    return OkStatus();
  }));
  if (delta_id) {
    ALOFT_ASSIGN_OR_RETURN(Delta delta, deltas_->Get(*delta_id));
    return ServeArtifact(artifacts_.PathOf(delta.artifact.sha256), delta.artifact.size,
                         delta.artifact.sha256,
                         rel.name + "-" + delta.base_version + "-to-" + rel.version + ".aloft", req,
                         metrics_, open_files_);
  }
  return ServeArtifact(artifacts_.PathOf(rel.artifact.sha256), rel.artifact.size,
                       rel.artifact.sha256, rel.filename, req, metrics_, open_files_);
}

Result<Response> AppImpl::UploadLog(Request& req, Caller& c) {
  std::optional<int64_t> action;
  if (auto a = QueryStr(req, "action")) {
    action = ParseId(*a);
    if (!action) return Invalid("query parameter 'action' must be an id");
  }
  if (req.body.empty()) return Invalid("the log is empty");
  int64_t id = 0;
  ALOFT_RETURN_IF_ERROR(store_->Write([&](Tx& tx) -> Status {
    if (action) {
      ALOFT_ASSIGN_OR_RETURN(Action a, tx.GetAction(*action));
      if (a.device_id != c.device->id) {
        return Error(Code::kNotFound, "action " + std::to_string(*action) +
                                          " not found for device '" + c.device->name + "'");
      }
    }
    ALOFT_ASSIGN_OR_RETURN(id, tx.AddLog(c.device->id, action, req.body, Now()));
    return OkStatus();
  }));
  return JsonResponse(201, {{"id", id}, {"bytes", req.body.size()}});
}

Result<Response> AppImpl::Stats(Request&, Caller&) {
  server::Stats s;
  ALOFT_RETURN_IF_ERROR(store_->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(s, tx.GetStats());
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
                            {"actions_by_state", s.actions_by_state}});
}

}  // namespace

Result<std::unique_ptr<App>> App::Create(const ServerConfig& config, const Clock& clock,
                                         std::ostream& log) {
  auto app = std::make_unique<AppImpl>(config, clock, log);
  ALOFT_RETURN_IF_ERROR(app->Init());
  return std::unique_ptr<App>(std::move(app));
}

}  // namespace aloft::server
