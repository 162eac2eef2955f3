// The server's data: device types and modules, releases and their artifacts, devices, actions and
// their feedback, logs, API tokens and the audit log, over db::Database (SQLite or PostgreSQL; one
// SQL text serves both).
//
// Every access runs in a transaction handed to a callback, so that a change and its audit entry
// commit together and several servers on one PostgreSQL stay consistent:
//
//   ALOFT_RETURN_IF_ERROR(store.Write([&](Tx& tx) -> Status {
//     ALOFT_ASSIGN_OR_RETURN(DeviceType t, tx.CreateDeviceType("board-a", "", now));
//     return tx.Audit(actor, "device-type.create", "board-a", "{}", now);
//   }));
//
// Errors: kNotFound names the missing thing ("device 'dev-9' not found"); kAlreadyExists the
// duplicate; kInvalidArgument a rule the request broke. Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "db/database.h"

namespace aloft::server {

// Ordered: each role may do what the ones before it may. `approver` is `release` plus approving
// rollouts (docs/rollouts.md); roles are stored by name, so the numbers may change.
enum class Role { kViewer = 0, kRelease = 1, kApprover = 2, kAdmin = 3 };
std::string_view RoleName(Role r);
Result<Role> ParseRole(std::string_view name);

struct ApiToken {
  int64_t id = 0;
  std::string name;
  Role role = Role::kViewer;
  int64_t created_ms = 0;
};

// A person who signs in to the dashboard with a password (docs/dashboard.md).
struct User {
  int64_t id = 0;
  std::string name;
  Role role = Role::kViewer;
  std::string password_hash;  // crypto's PHC string ("$scrypt$...")
  int64_t created_ms = 0;
  std::string created_by;
};

// A browser's sign-in: a user's or an API token's, found by the hash of its cookie.
struct Session {
  std::string actor;  // "user:<name>" / "token:<name>"
  Role role = Role::kViewer;
  std::string csrf;  // what unsafe requests must echo in X-CSRF-Token
  int64_t expires_ms = 0;
};

// A token that registers devices of one type at their first check-in (docs/device-api.md).
struct RegistrationToken {
  int64_t id = 0;
  std::string name;  // for operators; may be ""
  std::string device_type;
  int64_t created_ms = 0;
  std::string created_by;
  std::optional<int64_t> expires_ms;  // none: never
  std::optional<int64_t> max_uses;    // none: unlimited
  int64_t uses = 0;
  // Why the token registers nothing at `now` ("expired", "used up"), or "" when it does.
  std::string_view Refusal(int64_t now) const;
};

struct DeviceType {
  int64_t id = 0;
  std::string name;
  std::string description;
  std::vector<std::string> modules;
  int64_t created_ms = 0;
};

struct Artifact {
  std::string sha256, sha1, md5;
  uint64_t size = 0;
};

struct ReleaseTarget {
  std::string device_type;
  std::string module;
};

struct Release {
  int64_t id = 0;
  std::string name, version;
  std::string kind;  // "package" | "artifact"
  std::string filename;
  Artifact artifact;
  std::optional<std::string> manifest;  // the package's signed envelope (JSON text)
  bool enabled = true;
  std::optional<std::vector<std::string>> allowed_devices;
  std::optional<std::vector<std::string>> allowed_sources;
  std::vector<ReleaseTarget> targets;
  int64_t created_ms = 0;
  std::string created_by;

  std::string Id() const { return name + "@" + version; }
  std::vector<std::string> Modules() const;
  std::vector<std::string> DeviceTypes() const;
  // The module whose version stands for the device's (allowed_sources, deltas): the first one,
  // "main" when there is none.
  std::string FirstModule() const;
  // Why the release may not go to device `device` whose modules run `versions` (allowed_devices;
  // allowed_sources, which every module of the release must run one of), or nullopt when it may.
  std::optional<std::string> RefusalFor(const std::string& device,
                                        const std::map<std::string, std::string>& versions) const;
  // kUntrusted when `signed_only` (require_signed_releases) and this release is a plain artifact
  // (one uploaded before the setting): it is neither deployed nor rolled out.
  Status CheckSigned(bool signed_only) const;
};

struct Device {
  int64_t id = 0;
  std::string name;
  std::string device_type;
  int64_t device_type_id = 0;
  std::optional<std::string> group;
  std::vector<std::string> tags;
  std::string attributes = "{}";                // JSON object text
  std::map<std::string, std::string> versions;  // module -> version
  int64_t created_ms = 0;
  std::optional<int64_t> last_seen_ms;
  std::optional<std::string> gateway;  // the gateway device it is reached through (docs/mqtt.md)
};

// An action whose command is due to be pushed over MQTT: to the device's own topics, or to its
// gateway's.
struct DuePush {
  int64_t action = 0;
  std::string device;
  std::optional<std::string> gateway;
};

// Which devices a listing or a deployment means; empty fields do not filter.
struct DeviceFilter {
  std::optional<std::string> device_type, group, tag;
  std::vector<std::string> names;
  std::optional<std::string> name_prefix;
  // Devices running `version` (of `module` when given).
  std::optional<std::string> version, module;
  // "idle", "updating" (an open action), "never-seen", "failing" (the latest action failed).
  std::optional<std::string> state;
  std::optional<int64_t> seen_after_ms;  // last contact after this time
  std::optional<std::string> attribute;  // devices that report this attribute (e.g. "vin")
  int64_t limit = 100, offset = 0;
};

enum class ActionState {
  kPending,
  kDownloading,
  kDownloaded,
  kInstalling,
  kInstalled,
  kSucceeded,
  kFailed,
  kCanceled,
  // An operator canceled an action the device had begun (downloading or downloaded, or any open
  // state through /api/v1/actions/{id}/cancel): the device is told, and its acknowledgement (or
  // a final result that got there first) closes it. Open.
  kCanceling
};
std::string_view ActionStateName(ActionState s);
Result<ActionState> ParseActionState(std::string_view name);
bool IsTerminal(ActionState s);

struct ActionEvent {
  int64_t at_ms = 0;
  std::string status;
  std::optional<int64_t> progress, code;
  std::string details;
};

struct Action {
  int64_t id = 0;
  int64_t device_id = 0;
  std::string device;
  int64_t release_id = 0;
  std::string release, version;
  ActionState state = ActionState::kPending;
  std::string mode;  // "forced" | "soft" | "download-only"
  int64_t progress = 0;
  int64_t created_ms = 0, updated_ms = 0;
  std::string created_by;
  std::optional<int64_t> rollout_id;  // set when a rollout made it
  int64_t wave = 0;
  std::optional<int64_t> delta_id;  // the delta it offers instead of the full image
  std::vector<ActionEvent> events;  // filled by GetAction only
};

struct ActionFilter {
  std::optional<std::string> device;
  std::optional<ActionState> state;
  std::optional<int64_t> release_id;
  int64_t limit = 100, offset = 0;
};

struct DeviceLog {
  int64_t id = 0;
  std::optional<int64_t> action_id;
  int64_t at_ms = 0;
  std::string content;
};

struct AuditEntry {
  int64_t id = 0, at_ms = 0;
  std::string actor, action, object, details;
};

struct Stats {
  std::map<std::string, int64_t> devices_by_type;
  // "type/module/version" -> devices
  std::map<std::string, int64_t> devices_by_version;
  std::map<std::string, int64_t> devices_by_state;  // "idle" | "updating" | "never-seen"
  std::map<std::string, int64_t> actions_by_state;
  int64_t devices = 0, releases = 0;
  int64_t seen_hour = 0, seen_day = 0;  // devices in contact within the last hour, day
  int64_t failing = 0;                  // devices whose latest action failed
};

// The dashboard's live feed (events.h): how far it has looked, per kind of change, and what
// changed beyond that.
struct ChangeMarks {
  int64_t actions_ms = 0, rollouts_ms = 0, deltas_ms = 0, seen_ms = 0;
  int64_t device_id = 0, release_id = 0, audit_id = 0;
};
struct Changes {
  struct Rollout {
    int64_t id = 0, wave = 0, updated_ms = 0;
    std::string name, state;
  };
  struct Action {
    int64_t id = 0, updated_ms = 0;
    std::string device, state;
    std::optional<std::string> rollout;
  };
  struct Delta {
    int64_t id = 0, updated_ms = 0;
    std::string release, base, state;
  };
  std::vector<Rollout> rollouts;
  std::vector<Action> actions;
  std::vector<Delta> deltas;
  bool devices_seen = false;  // a device made contact after seen_ms
  bool new_devices = false, new_releases = false, new_audit = false;
  ChangeMarks marks;  // the newest of each kind seen now (at least the marks given)
};

// A TUF metadata file as a repository serves it (docs/trust.md).
struct TufFile {
  std::string role;  // "root", "targets", "snapshot", "timestamp", or a delegated role
  int64_t version = 0;
  std::string body;
  int64_t expires_ms = 0;
};
// A target the newest targets metadata (and its delegations) lists.
struct TufTarget {
  std::string name, sha256;
  int64_t length = 0;
};

// An encrypted release's content key: its id and the key sealed with the server's own key
// (crypto::WrapContentKey, base64).
struct ReleaseKey {
  std::string key_id, sealed;
};

// A device's Uptane state: its enrolled key and its last version manifest.
struct UptaneDevice {
  std::string key_object;  // TUF key object (JSON text)
  int64_t counter = 0;
  std::string manifest;  // the last signed version manifest (JSON text)
};

// SQL the store's files share: action `a` is its device's latest and it failed (the device
// counts as "failing").
inline constexpr std::string_view kLatestActionFailed =
    "a.state = 'failed' AND a.id = (SELECT MAX(b.id) FROM actions b WHERE b.device_id = "
    "a.device_id)";

// One transaction's view of the store.
class Tx {
 public:
  // `actions_written`, when given, is set once this transaction wrote to the actions table.
  explicit Tx(db::Connection& c, bool* actions_written = nullptr)
      : c_(c), actions_written_(actions_written) {}

  // Tokens are stored as SHA-256 hex of the secret.
  Result<ApiToken> CreateApiToken(const std::string& name, Role role, const std::string& hash,
                                  const std::string& by, int64_t now);
  Result<std::optional<ApiToken>> FindApiToken(const std::string& hash);
  Result<std::vector<ApiToken>> ListApiTokens();
  Status DeleteApiToken(int64_t id);
  Result<int64_t> CountApiTokens();

  // Users (names are unique) and their sessions; deleting a user or an API token ends its
  // sessions. ChangeUser also ends the user's sessions (its role or password changed).
  Result<User> CreateUser(const User& u);
  Result<std::optional<User>> FindUser(const std::string& name);
  Result<std::vector<User>> ListUsers();
  Status ChangeUser(const std::string& name, std::optional<Role> role,
                    const std::optional<std::string>& password_hash);
  Status DeleteUser(const std::string& name);
  // `owner`: the user's id or the API token's id, by `s.actor`'s kind.
  Status CreateSession(const std::string& hash, const Session& s, int64_t owner, int64_t now);
  // The unexpired session of cookie hash `hash`.
  Result<std::optional<Session>> FindSession(const std::string& hash, int64_t now);
  Status DeleteSession(const std::string& hash);
  // Deletes the sessions that expired before `now`; how many.
  Result<int64_t> PruneSessions(int64_t now);

  Result<DeviceType> CreateDeviceType(const std::string& name, const std::string& description,
                                      int64_t now);
  Result<std::vector<DeviceType>> ListDeviceTypes();
  Result<DeviceType> GetDeviceType(const std::string& name);
  Status DeleteDeviceType(const std::string& name);
  Status AddModule(const std::string& type, const std::string& module);
  Status DeleteModule(const std::string& type, const std::string& module);
  // `t` gives name, created_ms, created_by, expires_ms and max_uses; the result has its id.
  Result<RegistrationToken> CreateRegistrationToken(const std::string& type,
                                                    const std::string& hash,
                                                    const RegistrationToken& t);
  Result<std::optional<RegistrationToken>> FindRegistrationToken(const std::string& hash);
  Result<std::vector<RegistrationToken>> ListRegistrationTokens(
      const std::optional<std::string>& type);
  // Counts one registration; kPermissionDenied when the token expired, is used up or is gone
  // (checked and counted in one statement: concurrent registrations never exceed max_uses).
  Status UseRegistrationToken(int64_t id, int64_t now);
  Status DeleteRegistrationToken(int64_t id);

  // Inserts the release and its artifact row (kept when another release has the same bytes).
  Result<Release> CreateRelease(const Release& r);
  Result<std::vector<Release>> ListReleases(const std::optional<std::string>& name);
  Result<Release> GetRelease(const std::string& name, const std::string& version);
  Result<Release> GetReleaseById(int64_t id);
  Status UpdateRelease(const Release& r);  // enabled, allowed_devices, allowed_sources
  // Deletes a release no action refers to; returns the SHA-256 of its artifact when no other
  // release uses those bytes (the caller removes the file).
  Result<std::optional<std::string>> DeleteRelease(const std::string& name,
                                                   const std::string& version);
  Result<bool> ArtifactKnown(const std::string& sha256);

  // `mqtt_secret`: the broker's password hash of the device token (mqtt::PasswordHash).
  Result<Device> CreateDevice(const Device& d, const std::string& token_hash,
                              const std::string& mqtt_secret = "");
  Result<Device> GetDevice(const std::string& name);
  Result<std::vector<Device>> ListDevices(const DeviceFilter& f);
  // Counts what ListDevices would return without limit.
  Result<int64_t> CountDevices(const DeviceFilter& f);
  Status UpdateDevice(const Device& d);  // group, tags, attributes, gateway
  // The id of `d.gateway` (none without one); kInvalidArgument when it is `d` itself or is behind
  // a gateway of its own (gateways do not nest), kNotFound when there is no such device.
  Result<std::optional<int64_t>> GatewayIdFor(const Device& d);
  // (device name, broker password hash) of every device that has one, in id order.
  Result<std::vector<std::pair<std::string, std::string>>> MqttCredentials();
  // The aloftd bridges' broker users (name, password hash), each aloftd's written at its start.
  Status PutMqttBridge(const std::string& username, const std::string& hash, int64_t now);
  Result<std::vector<std::pair<std::string, std::string>>> MqttBridges();
  // Actions whose push is due at `now`, by id, after `after_id`.
  Result<std::vector<DuePush>> DuePushes(int64_t now, int64_t after_id, int64_t limit);
  // The pushes of these actions were delivered to the broker.
  Status ClearPushes(const std::vector<int64_t>& action_ids);
  // Makes the open actions of these devices (none: every open action of `rollout_id`) due to be
  // pushed at `at`; returns how many.
  Result<int64_t> SchedulePushes(const std::vector<int64_t>& device_ids,
                                 std::optional<int64_t> rollout_id, int64_t at);
  Status DeleteDevice(const std::string& name);
  // The device whose token hashes to `token_hash` and whether it has an open action (in the same
  // query: a check-in's first contact costs one round trip), or nullopt.
  Result<std::optional<std::pair<Device, bool>>> AuthenticateDevice(const std::string& token_hash);
  // The same for a device named by its certificate (docs/identity.md).
  Result<std::optional<std::pair<Device, bool>>> AuthenticateDeviceNamed(const std::string& name);
  // The same for several token hashes in one query: token hash -> (device, open action). Unknown
  // hashes are absent.
  Result<std::map<std::string, std::pair<Device, bool>>> AuthenticateDevices(
      const std::vector<std::string>& token_hashes);
  // Stores the versions that differ from `known` (the device's current map).
  Status RecordVersions(int64_t device_id, const std::map<std::string, std::string>& known,
                        const std::map<std::string, std::string>& reported, int64_t now);
  Status SetAttributes(int64_t device_id, const std::string& attributes_json);
  Status TouchDevices(const std::map<int64_t, int64_t>& last_seen_ms);

  // Opens a pending action for `release_id` on each of `device_ids` that has no open action, in
  // four statements whatever the number of devices. Maps each device to its new action's id, or
  // to the id of the open action that kept it from getting one (`created` false). `push_due_ms`
  // schedules an MQTT push of the new actions.
  struct NewAction {
    int64_t id = 0;
    bool created = false;
  };
  Result<std::map<int64_t, NewAction>> CreateActions(const std::vector<int64_t>& device_ids,
                                                     int64_t release_id, const std::string& mode,
                                                     const std::string& by, int64_t now,
                                                     std::optional<int64_t> push_due_ms);
  // With its events unless `with_events` is false (what a device's feedback, download or log
  // needs: the action's state, not its history).
  Result<Action> GetAction(int64_t id, bool with_events = true);
  Result<std::vector<Action>> ListActions(const ActionFilter& f);
  Result<std::optional<Action>> OpenActionFor(int64_t device_id);
  // The id of the device's newest succeeded action.
  Result<std::optional<int64_t>> LastSucceededAction(int64_t device_id);
  // Moves the action to `state` (terminal states close it) and records the event. An action
  // keeps its first event and its newest kMaxActionEvents - 1: a device cannot grow its history
  // without bound.
  static constexpr int64_t kMaxActionEvents = 100;
  Status UpdateAction(int64_t id, ActionState state, int64_t progress, const ActionEvent& event);

  // Adds a device log, then drops the device's oldest logs beyond `max_count` logs or beyond
  // `max_bytes` bytes of logs in all (the newest is always kept).
  Result<int64_t> AddLog(int64_t device_id, std::optional<int64_t> action_id,
                         const std::string& content, int64_t now, int64_t max_count,
                         int64_t max_bytes);
  // The device's newest logs first, `limit` of them, older than log `before` when given.
  Result<std::vector<DeviceLog>> ListLogs(int64_t device_id, int64_t limit,
                                          std::optional<int64_t> before = std::nullopt);

  Status Audit(const std::string& actor, const std::string& action, const std::string& object,
               const std::string& details_json, int64_t now);
  Result<std::vector<AuditEntry>> ListAudit(int64_t limit, int64_t offset);

  // `now`: what "seen in the last hour" counts from.
  Result<Stats> GetStats(int64_t now);
  // What changed after `since` (times less `overlap_ms`: servers' clocks differ, and a
  // transaction may commit a time older than one already seen); at most `limit` actions and
  // rollouts, the oldest first. The caller drops what it already saw.
  Result<Changes> ChangesSince(const ChangeMarks& since, int64_t overlap_ms, int64_t limit);
  // The marks of now: the newest time or id of each kind.
  Result<ChangeMarks> ChangeMarksNow();

  // Makes concurrent transactions that call Serialize(key) run one after another (servers on one
  // PostgreSQL racing to create the first admin token, to elect a leader, ...).
  Status Serialize(int64_t key);

  // ---- TUF repositories (store_tuf.cc) ----
  // Version `version` of `role`'s file in repository `repo`, or its newest without a version.
  Result<std::optional<TufFile>> GetTufFile(const std::string& repo, const std::string& role,
                                            std::optional<int64_t> version);
  // The newest version of each role's file.
  Result<std::vector<TufFile>> NewestTufFiles(const std::string& repo);
  Status PutTufFile(const std::string& repo, const TufFile& f, int64_t now);
  // Replaces the list of targets of `repo`.
  Status SetTufTargets(const std::string& repo, const std::vector<TufTarget>& targets);
  Result<std::optional<TufTarget>> FindTufTarget(const std::string& repo, const std::string& name);
  // The name under which `repo` lists the file with `sha256`, if it lists one.
  Result<std::optional<TufTarget>> FindTufTargetBySha256(const std::string& repo,
                                                         const std::string& sha256);
  // Deletes the versions of `role` in `repo` older than `version`.
  Status PruneTufFiles(const std::string& repo, const std::string& role, int64_t version);
  // Encrypted releases: a device's X25519 public key (base64), a release's sealed content key.
  Result<std::optional<std::string>> GetDeviceKey(int64_t device_id);
  Status PutDeviceKey(int64_t device_id, const std::string& x25519, int64_t now);
  Result<std::optional<ReleaseKey>> GetReleaseKey(int64_t release_id);
  Status PutReleaseKey(int64_t release_id, const ReleaseKey& k, int64_t now);
  Result<std::optional<UptaneDevice>> GetUptaneDevice(int64_t device_id);
  Status PutUptaneDevice(int64_t device_id, const UptaneDevice& u, int64_t now);
  // The targets whose file (an artifact with their SHA-256) the server does not hold.
  Result<std::vector<std::string>> TufTargetsWithoutFile(const std::string& repo);

  db::Connection& connection() { return c_; }
  // Callers that change the actions table with their own SQL say so (see Store::actions_epoch).
  void ActionsWritten() {
    if (actions_written_) *actions_written_ = true;
  }

 private:
  // kNotFound: "<what> '<name>' not found".
  static Error NotFound(std::string_view what, std::string_view name);
  Result<int64_t> DeviceTypeId(const std::string& name);
  Result<std::vector<ReleaseTarget>> TargetsOf(int64_t release_id);
  Result<std::vector<Device>> FillDevices(db::Rows rows);
  // "SELECT <columns> FROM <table and joins> " + where (which may also order and limit). With
  // `rows_out`, also the rows themselves, whose `extra_columns` (", expr, ...") follow the
  // device's own.
  Result<std::vector<Device>> DevicesWhere(const std::string& where, const db::Params& params,
                                           db::Rows* rows_out = nullptr,
                                           const std::string& extra_columns = "");
  Result<std::vector<Release>> ReleasesWhere(const std::string& where, const db::Params& params);
  Status InsertTags(int64_t device_id, const std::vector<std::string>& tags);
  Result<std::vector<Action>> ActionsWhere(const std::string& where, const db::Params& params);

  db::Connection& c_;
  bool* actions_written_;
};

class Store {
 public:
  // Opens (and migrates) the database at `location` (see db::Database::Open).
  static Result<std::unique_ptr<Store>> Open(const std::string& location, int pool_size);

  Status Write(const std::function<Status(Tx&)>& fn);
  Status Read(const std::function<Status(Tx&)>& fn);
  db::Database& database() { return *db_; }

  // A value that moves on whenever device `device_id`'s actions may have changed, or nullopt
  // when this server cannot know (PostgreSQL while its notification connection is down). A
  // caller that read it *before* a Read and found no open action for the device knows there is
  // still none while the value is unchanged. Never 0.
  //
  // SQLite: aloftd is the only writer, and the value moves on after each of its commits that
  // wrote to the actions table. PostgreSQL, which several servers share: it also moves on for a
  // device when any server's commit changes the device's actions (a trigger notifies, this store
  // listens: LISTEN/NOTIFY), and for every device when the listening connection was lost or is
  // back (notifications may have been missed). On PostgreSQL it costs a round trip on the
  // listening connection, shared by concurrent callers (see db::Listener::Sync).
  std::optional<uint64_t> ActionsEpoch(int64_t device_id) const;
  // For a caller that learns the device only from its read: EpochMark() before the read, then
  // ActionsEpochSince(device, mark) after it is the device's epoch, or nullopt when something
  // that may concern it happened in between (or nothing can be known).
  uint64_t EpochMark() const { return counter_.load(std::memory_order_acquire); }
  // Without ActionsEpoch's round trip: a value for remembering, never for trusting.
  std::optional<uint64_t> ActionsEpochSince(int64_t device_id, uint64_t mark) const;
  // Whether the PostgreSQL notification connection is up (always true on SQLite).
  bool listening() const { return listening_.load(std::memory_order_acquire); }

  ~Store();

 private:
  explicit Store(std::unique_ptr<db::Database> db) : db_(std::move(db)) {}
  Status StartListening();
  // The device's epoch from what has been heard so far; nullopt while not listening.
  std::optional<uint64_t> EpochNow(int64_t device_id) const;
  void Notified(std::string_view payload);
  void Listening(bool up);
  // A new value of the one counter every epoch is taken from.
  uint64_t NextEpoch() { return counter_.fetch_add(1, std::memory_order_acq_rel) + 1; }

  std::unique_ptr<db::Database> db_;
  std::atomic<uint64_t> counter_{1};
  // This process's writes to actions, and (PostgreSQL) the listener's losses and returns: every
  // device's epoch is at least this.
  std::atomic<uint64_t> all_epoch_{1};
  std::atomic<bool> listening_{true};
  // PostgreSQL: the epoch of each device whose actions another commit changed, sharded.
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<int64_t, uint64_t> epochs;
  };
  std::array<Shard, kShards> shards_;
  std::unique_ptr<db::Listener> listener_;  // last: stopped before what its callbacks use
};

}  // namespace aloft::server
