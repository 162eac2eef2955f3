// The server (ECU) side of UDS: one request at a time through the standard's checks in the
// standard's order (service supported, in this session, security, length, sub-function), the
// suppress-positive-response bit, NRC suppression for functional requests, response pending
// (0x78) sent by the framework whenever a handler takes longer than P2, busy (0x21) for a request
// that arrives meanwhile, and the S3 session timeout. Built in: DiagnosticSessionControl (10),
// TesterPresent (3E), SecurityAccess (27), CommunicationControl (28), ControlDTCSetting (85),
// ReadDataByIdentifier (22), WriteDataByIdentifier (2E), ClearDiagnosticInformation (14) and
// ReadDTCInformation (19 02, 19 0A). Services with effects of their own (the bootloader's 11, 31,
// 34-37) are added with Handle().
//
//   uds::Server ecu(loop, {.name = "ecm"});
//   ecu.Attach(physical);  ecu.Attach(functional, {.functional = true, .reply = &physical});
//   ecu.SetDid(0xF190, {.value = vin});
//   ecu.Handle(0x31, {.sessions = {2}, .security_level = 1, .min_length = 4, .subfunction = true},
//              [](const uds::Request& r, uds::Responder reply) { ... reply.Positive({...}); });
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "uds/authentication.h"
#include "uds/link.h"
#include "uds/uds.h"

namespace aloft::uds {

struct ServerConfig {
  std::string name = "ecu";
  std::chrono::milliseconds p2{50};         // P2server_max, announced in 50 xx
  std::chrono::milliseconds p2_star{5000};  // P2*server_max, announced in 50 xx
  std::chrono::milliseconds s3{5000};       // a non-default session ends after this silence
  std::vector<uint8_t> sessions = {session::kDefault, session::kProgramming, session::kExtended};
  // Added before every request is handled (a slow ECU: P2* stretched; 0x78 covers it).
  std::chrono::milliseconds response_delay{0};
};

struct Request {
  std::vector<uint8_t> bytes;
  bool functional = false;
  uint8_t sid() const { return bytes[0]; }
  // The sub-function without the suppress bit (0 when the request has none).
  uint8_t sub() const { return bytes.size() > 1 ? bytes[1] & 0x7F : 0; }
};

class Server;

// Answers the request it was handed for; copies answer the same request, the first answer wins.
// Until it answers, the framework keeps the tester waiting with 0x78.
class Responder {
 public:
  void Positive(std::vector<uint8_t> response);  // the whole response, SID + 0x40 first
  void Negative(uint8_t nrc);
  bool answered() const;

 private:
  friend class Server;
  Responder(Server* server, uint64_t serial) : server_(server), serial_(serial) {}
  Server* server_;
  uint64_t serial_;
};

struct ServiceRules {
  std::vector<uint8_t> sessions{};  // the sessions it is offered in (empty: all)
  uint8_t security_level = 0;       // the level that must be unlocked (0: none)
  std::string role{};  // the role Authentication (29) must have granted (empty: none), else 0x34
  size_t min_length = 1;
  bool subfunction = false;             // byte 1 is a sub-function, bit 7 its suppress bit
  std::vector<uint8_t> subfunctions{};  // the supported ones (empty: any)
};

struct Did {
  std::vector<uint8_t> value{};
  std::function<std::vector<uint8_t>()> read{};  // a value computed when asked (else `value`)
  bool writable = false;
  std::vector<uint8_t> write_sessions{};  // where 2E may write it (empty: all non-default)
  uint8_t write_security = 0;
  std::string write_role{};  // the role 29 must have granted to write it (empty: none)
  size_t length = 0;         // the length 2E must give (0: any)
};

struct SecurityLevel {
  size_t seed_length = 16;
  // The key the tester must send for `seed`.
  std::function<std::vector<uint8_t>(std::span<const uint8_t> seed)> key{};
  int max_attempts = 3;                    // then NRC 0x36 and the delay
  std::chrono::milliseconds delay{10000};  // NRC 0x37 until it passes
  std::vector<uint8_t> sessions = {session::kProgramming, session::kExtended};
};

struct Dtc {
  uint32_t code = 0;  // 3 bytes
  uint8_t status = 0;
};

struct AttachOptions {
  bool functional = false;
  Link* reply = nullptr;  // where answers go (default: the link the request came on)
};

class Server {
 public:
  using Handler = std::function<void(const Request& request, Responder reply)>;

  Server(EventLoop& loop, ServerConfig config = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void Attach(Link& link, AttachOptions options = AttachOptions());
  void Detach(Link& link);

  void Handle(uint8_t sid, ServiceRules rules, Handler handler);
  void SetDid(uint16_t id, Did did) { dids_[id] = std::move(did); }
  const Did* GetDid(uint16_t id) const;
  // Security access level `level` is sub-functions 2*level-1 (seed) and 2*level (key).
  void SetSecurityLevel(uint8_t level, SecurityLevel s) { levels_[level] = std::move(s); }
  void SetDtcs(std::vector<Dtc> dtcs) { dtcs_ = std::move(dtcs); }
  // Offers Authentication (29, APCE unidirectional) in every session; the roles it grants last
  // until 29 00, a reset or the default session.
  void SetAuthentication(AuthenticationConfig config);
  // Whether 29 granted `role`.
  bool Authenticated(const std::string& role) const { return auth_ && auth_->Has(role); }
  const Authenticator* authentication() const { return auth_.get(); }
  // Why the last 29 request was refused (for logs and tests).
  const std::string& last_authentication_refusal() const { return auth_refusal_; }
  const std::vector<Dtc>& dtcs() const { return dtcs_; }

  // Refuses a session change with an NRC (say 0x22 before the preconditions routine).
  std::function<std::optional<uint8_t>(uint8_t from, uint8_t to)> session_guard;
  std::function<void(uint8_t from, uint8_t to)> on_session_change;
  // Runs after the standard checks, before the handler: an NRC answers instead (fault injection).
  std::function<std::optional<uint8_t>(const Request& request)> intercept;

  uint8_t session() const { return session_; }
  ServerConfig& mutable_config() { return config_; }
  uint8_t security_level() const { return unlocked_; }                    // 0: locked
  bool rx_enabled() const { return comm_ctrl_ == 0 || comm_ctrl_ == 1; }  // normal messages
  bool tx_enabled() const { return comm_ctrl_ == 0 || comm_ctrl_ == 2; }
  bool dtc_setting_on() const { return dtc_on_; }
  bool busy() const { return current_ != nullptr; }
  // A reset (11 01, power on): default session, locked, communication and DTC setting restored,
  // the request in progress dropped. Failed security attempts and their delay survive it.
  void Reset();
  const ServerConfig& config() const { return config_; }
  EventLoop& loop() { return loop_; }

  struct Stats {
    uint64_t requests = 0, positive = 0, negative = 0, pending_sent = 0, busy_refused = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  friend class Responder;
  struct Service {
    ServiceRules rules;
    Handler handler;
  };
  struct Current {
    uint64_t serial;
    Request request;
    Link* reply;
    bool suppress;
    bool pending_sent = false;
    TimerId pending_timer = 0;
  };
  void OnMessage(Link& link, const AttachOptions& options, const std::vector<uint8_t>& bytes);
  void Answer(uint64_t serial, std::vector<uint8_t> response, bool negative);
  void SendNegative(Link* link, uint8_t sid, uint8_t code);
  void SchedulePending(std::chrono::milliseconds after);
  void TouchS3();
  void ChangeSession(uint8_t to);
  void InstallBuiltins();

  void SessionControl(const Request& r, Responder reply);
  void SecurityAccess(const Request& r, Responder reply);
  void ReadDids(const Request& r, Responder reply);
  void WriteDid(const Request& r, Responder reply);
  void ReadDtcs(const Request& r, Responder reply);

  EventLoop& loop_;
  ServerConfig config_;
  std::map<uint8_t, Service> services_;
  std::map<uint16_t, Did> dids_;
  std::map<uint8_t, SecurityLevel> levels_;
  std::vector<Dtc> dtcs_;
  std::unique_ptr<Authenticator> auth_;
  std::string auth_refusal_;
  std::vector<std::pair<Link*, int>> links_;
  std::unique_ptr<Current> current_;
  uint64_t serial_ = 0;
  uint8_t session_ = session::kDefault;
  uint8_t unlocked_ = 0;
  uint8_t comm_ctrl_ = 0;
  bool dtc_on_ = true;
  TimerId s3_timer_ = 0;
  // SecurityAccess: the seed handed out, and the attempts that survive a reset.
  uint8_t seed_level_ = 0;
  std::vector<uint8_t> seed_;
  int failed_attempts_ = 0;
  EventLoop::TimePoint locked_until_{};
  Stats stats_;
};

}  // namespace aloft::uds
