#include "uds/server.h"

#include <algorithm>

#include "core/hash.h"

namespace aloft::uds {

namespace {

bool Contains(const std::vector<uint8_t>& v, uint8_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// NRCs a server keeps to itself when the request was functionally addressed (ISO 14229-1 7.5).
bool SuppressedForFunctional(uint8_t code) {
  return code == nrc::kServiceNotSupported || code == nrc::kSubFunctionNotSupported ||
         code == nrc::kRequestOutOfRange || code == nrc::kSubFunctionNotSupportedInActiveSession ||
         code == nrc::kServiceNotSupportedInActiveSession;
}

}  // namespace

void Responder::Positive(std::vector<uint8_t> response) {
  server_->Answer(serial_, std::move(response), false);
}

void Responder::Negative(uint8_t code) { server_->Answer(serial_, {code}, true); }

bool Responder::answered() const {
  return !server_->current_ || server_->current_->serial != serial_;
}

Server::Server(EventLoop& loop, ServerConfig config) : loop_(loop), config_(std::move(config)) {
  InstallBuiltins();
}

Server::~Server() {
  for (auto& [link, id] : links_) link->RemoveListener(id);
  if (s3_timer_) loop_.Cancel(s3_timer_);
  if (current_ && current_->pending_timer) loop_.Cancel(current_->pending_timer);
}

void Server::Attach(Link& link, AttachOptions options) {
  Link* l = &link;
  const int id = link.AddListener(
      [this, l, options](const std::vector<uint8_t>& m) { OnMessage(*l, options, m); });
  links_.emplace_back(l, id);
}

void Server::Detach(Link& link) {
  std::erase_if(links_, [&](const auto& e) {
    if (e.first != &link) return false;
    link.RemoveListener(e.second);
    return true;
  });
  if (current_ && current_->reply == &link) current_->reply = nullptr;
}

void Server::Handle(uint8_t s, ServiceRules rules, Handler handler) {
  services_[s] = {std::move(rules), std::move(handler)};
}

const Did* Server::GetDid(uint16_t id) const {
  auto it = dids_.find(id);
  return it == dids_.end() ? nullptr : &it->second;
}

void Server::SendNegative(Link* link, uint8_t s, uint8_t code) {
  ++stats_.negative;
  if (link) link->Send({sid::kNegativeResponse, s, code}, nullptr);
}

void Server::OnMessage(Link& link, const AttachOptions& options,
                       const std::vector<uint8_t>& bytes) {
  if (bytes.empty()) return;
  Link* reply = options.reply ? options.reply : &link;
  ++stats_.requests;
  TouchS3();
  const uint8_t s = bytes[0];
  const bool suppress_bit = bytes.size() > 1 && (bytes[1] & 0x80);
  if (current_) {
    // A request while one is in progress: tester present without a response is fine;
    // anything else is told to come back.
    if (s == sid::kTesterPresent && suppress_bit) return;
    ++stats_.busy_refused;
    SendNegative(reply, s, nrc::kBusyRepeatRequest);
    return;
  }
  auto refuse = [&](uint8_t code) {
    if (options.functional && SuppressedForFunctional(code)) return;
    SendNegative(reply, s, code);
  };
  auto it = services_.find(s);
  if (it == services_.end()) return refuse(nrc::kServiceNotSupported);
  const ServiceRules& rules = it->second.rules;
  if (!rules.sessions.empty() && !Contains(rules.sessions, session_)) {
    return refuse(nrc::kServiceNotSupportedInActiveSession);
  }
  if (!rules.role.empty() && !Authenticated(rules.role)) {
    return refuse(nrc::kAuthenticationRequired);
  }
  if (rules.security_level && unlocked_ != rules.security_level) {
    return refuse(nrc::kSecurityAccessDenied);
  }
  if (bytes.size() < std::max<size_t>(rules.min_length, rules.subfunction ? 2 : 1)) {
    return refuse(nrc::kIncorrectMessageLength);
  }
  if (rules.subfunction && !rules.subfunctions.empty() &&
      !Contains(rules.subfunctions, bytes[1] & 0x7F)) {
    return refuse(nrc::kSubFunctionNotSupported);
  }
  current_ = std::make_unique<Current>();
  current_->serial = ++serial_;
  current_->request = {bytes, options.functional};
  current_->reply = reply;
  current_->suppress = rules.subfunction && suppress_bit;
  const uint64_t serial = current_->serial;
  SchedulePending(config_.p2 - std::min(config_.p2 / 5, std::chrono::milliseconds(10)));
  Handler handler = it->second.handler;
  auto dispatch = [this, serial, handler] {
    if (!current_ || current_->serial != serial) return;
    const Request request = current_->request;  // the handler's own: it may answer and go on
    if (intercept) {
      if (std::optional<uint8_t> code = intercept(request)) {
        return Answer(serial, {*code}, true);
      }
    }
    handler(request, Responder(this, serial));
  };
  if (config_.response_delay.count() > 0) {
    loop_.After(config_.response_delay, dispatch);
  } else {
    dispatch();
  }
}

void Server::SchedulePending(std::chrono::milliseconds after) {
  if (!current_) return;
  const uint64_t serial = current_->serial;
  current_->pending_timer = loop_.After(after, [this, serial] {
    if (!current_ || current_->serial != serial) return;
    current_->pending_timer = 0;
    current_->pending_sent = true;
    ++stats_.pending_sent;
    if (current_->reply) {
      current_->reply->Send(
          {sid::kNegativeResponse, current_->request.sid(), nrc::kResponsePending}, nullptr);
    }
    SchedulePending(config_.p2_star * 4 / 5);
  });
}

void Server::Answer(uint64_t serial, std::vector<uint8_t> response, bool negative) {
  if (!current_ || current_->serial != serial) return;  // answered already, or reset since
  std::unique_ptr<Current> c = std::move(current_);
  if (c->pending_timer) loop_.Cancel(c->pending_timer);
  TouchS3();
  if (negative) {
    const uint8_t code = response.at(0);
    if (c->request.functional && SuppressedForFunctional(code) && !c->pending_sent) return;
    SendNegative(c->reply, c->request.sid(), code);
    return;
  }
  ++stats_.positive;
  if (c->suppress && !c->pending_sent) return;
  if (response.size() > (c->reply ? c->reply->max_message() : 4095)) {
    SendNegative(c->reply, c->request.sid(), nrc::kResponseTooLong);
    return;
  }
  if (c->reply) c->reply->Send(std::move(response), nullptr);
}

void Server::TouchS3() {
  if (s3_timer_) loop_.Cancel(s3_timer_);
  s3_timer_ = 0;
  if (session_ == session::kDefault) return;
  s3_timer_ = loop_.After(config_.s3, [this] {
    s3_timer_ = 0;
    if (!current_) ChangeSession(session::kDefault);
  });
}

void Server::ChangeSession(uint8_t to) {
  const uint8_t from = session_;
  session_ = to;
  unlocked_ = 0;  // a session change locks security again
  seed_level_ = 0;
  if (to == session::kDefault) {
    if (auth_) auth_->Reset();  // the default session is unauthenticated
    comm_ctrl_ = 0;             // leaving the non-default sessions ends 28 and 85
    dtc_on_ = true;
    if (s3_timer_) loop_.Cancel(s3_timer_);
    s3_timer_ = 0;
  }
  if (from != to && on_session_change) on_session_change(from, to);
}

void Server::Reset() {
  if (current_ && current_->pending_timer) loop_.Cancel(current_->pending_timer);
  current_.reset();
  ChangeSession(session::kDefault);
}

void Server::SetAuthentication(AuthenticationConfig config) {
  auth_ = std::make_unique<Authenticator>(std::move(config));
  Handle(sid::kAuthentication, {.min_length = 2, .subfunction = true},
         [this](const Request& r, Responder reply) {
           Authenticator::Answer a = auth_->Handle(r.bytes);
           if (a.nrc) {
             auth_refusal_ = a.why;
             return reply.Negative(a.nrc);
           }
           auth_refusal_.clear();
           reply.Positive(std::move(a.positive));
         });
}

void Server::InstallBuiltins() {
  std::vector<uint8_t> non_default = {session::kProgramming, session::kExtended};
  Handle(sid::kDiagnosticSessionControl, {.min_length = 2, .subfunction = true},
         [this](const Request& r, Responder reply) { SessionControl(r, reply); });
  Handle(sid::kTesterPresent, {.min_length = 2, .subfunction = true, .subfunctions = {0x00}},
         [](const Request& r, Responder reply) {
           if (r.bytes.size() != 2) return reply.Negative(nrc::kIncorrectMessageLength);
           reply.Positive({0x7E, 0x00});
         });
  Handle(sid::kSecurityAccess, {.sessions = non_default, .min_length = 2, .subfunction = true},
         [this](const Request& r, Responder reply) { SecurityAccess(r, reply); });
  Handle(sid::kCommunicationControl,
         {.sessions = non_default,
          .min_length = 3,
          .subfunction = true,
          .subfunctions = {0x00, 0x01, 0x02, 0x03}},
         [this](const Request& r, Responder reply) {
           const uint8_t type = r.bytes[2] & 0x03;
           if (r.bytes.size() != 3) return reply.Negative(nrc::kIncorrectMessageLength);
           if (type == 0) return reply.Negative(nrc::kRequestOutOfRange);
           comm_ctrl_ = r.sub();
           reply.Positive({0x68, r.sub()});
         });
  Handle(
      sid::kControlDtcSetting,
      {.sessions = non_default, .min_length = 2, .subfunction = true, .subfunctions = {0x01, 0x02}},
      [this](const Request& r, Responder reply) {
        dtc_on_ = r.sub() == 0x01;
        reply.Positive({0xC5, r.sub()});
      });
  Handle(sid::kReadDataByIdentifier, {.min_length = 3},
         [this](const Request& r, Responder reply) { ReadDids(r, reply); });
  Handle(sid::kWriteDataByIdentifier, {.sessions = non_default, .min_length = 4},
         [this](const Request& r, Responder reply) { WriteDid(r, reply); });
  Handle(sid::kClearDiagnosticInformation, {.min_length = 4},
         [this](const Request& r, Responder reply) {
           if (r.bytes.size() != 4 && r.bytes.size() != 5) {
             return reply.Negative(nrc::kIncorrectMessageLength);
           }
           const uint32_t group =
               static_cast<uint32_t>(BigEndian(std::span(r.bytes).subspan(1, 3)));
           if (group != 0xFFFFFF) return reply.Negative(nrc::kRequestOutOfRange);
           for (Dtc& d : dtcs_) d.status = 0;
           reply.Positive({0x54});
         });
  Handle(sid::kReadDtcInformation,
         {.min_length = 2, .subfunction = true, .subfunctions = {0x02, 0x0A}},
         [this](const Request& r, Responder reply) { ReadDtcs(r, reply); });
}

void Server::SessionControl(const Request& r, Responder reply) {
  const uint8_t to = r.sub();
  if (r.bytes.size() != 2) return reply.Negative(nrc::kIncorrectMessageLength);
  if (!Contains(config_.sessions, to)) return reply.Negative(nrc::kSubFunctionNotSupported);
  if (session_guard) {
    if (std::optional<uint8_t> refused = session_guard(session_, to)) {
      return reply.Negative(*refused);
    }
  }
  ChangeSession(to);
  std::vector<uint8_t> out{0x50, to};
  PutBigEndian(out, static_cast<uint64_t>(config_.p2.count()), 2);
  PutBigEndian(out, static_cast<uint64_t>(config_.p2_star.count() / 10), 2);
  reply.Positive(std::move(out));
  TouchS3();
}

void Server::SecurityAccess(const Request& r, Responder reply) {
  const uint8_t sub = r.sub();
  const uint8_t level = static_cast<uint8_t>((sub + 1) / 2);
  auto it = levels_.find(level);
  if (sub == 0 || sub > 0x7E || it == levels_.end()) {
    return reply.Negative(nrc::kSubFunctionNotSupported);
  }
  const SecurityLevel& l = it->second;
  if (!Contains(l.sessions, session_)) {
    return reply.Negative(nrc::kSubFunctionNotSupportedInActiveSession);
  }
  if (sub % 2 == 1) {  // requestSeed
    if (r.bytes.size() < 2) return reply.Negative(nrc::kIncorrectMessageLength);
    if (loop_.Now() < locked_until_) return reply.Negative(nrc::kRequiredTimeDelayNotExpired);
    std::vector<uint8_t> out{0x67, sub};
    if (unlocked_ == level) {
      out.resize(2 + l.seed_length, 0x00);  // unlocked already: a zero seed
      return reply.Positive(std::move(out));
    }
    seed_.assign(l.seed_length, 0);
    SecureRandom(seed_);
    seed_level_ = level;
    out.insert(out.end(), seed_.begin(), seed_.end());
    return reply.Positive(std::move(out));
  }
  // sendKey
  if (seed_level_ != level) return reply.Negative(nrc::kRequestSequenceError);
  const std::vector<uint8_t> expected = l.key(seed_);
  if (r.bytes.size() != 2 + expected.size()) {
    return reply.Negative(nrc::kIncorrectMessageLength);
  }
  seed_level_ = 0;
  if (!std::equal(expected.begin(), expected.end(), r.bytes.begin() + 2)) {
    if (++failed_attempts_ >= l.max_attempts) {
      failed_attempts_ = 0;
      locked_until_ = loop_.Now() + l.delay;
      return reply.Negative(nrc::kExceededNumberOfAttempts);
    }
    return reply.Negative(nrc::kInvalidKey);
  }
  failed_attempts_ = 0;
  unlocked_ = level;
  reply.Positive({0x67, sub});
}

void Server::ReadDids(const Request& r, Responder reply) {
  std::vector<uint16_t> ids;
  if (auto bad = ParseDidList(r.bytes, &ids)) return reply.Negative(bad->nrc);
  if (ids.size() > 16) return reply.Negative(nrc::kIncorrectMessageLength);
  std::vector<uint8_t> out{0x62};
  bool any = false;
  for (uint16_t id : ids) {
    const Did* d = GetDid(id);
    if (!d) continue;
    any = true;
    PutBigEndian(out, id, 2);
    const std::vector<uint8_t> value = d->read ? d->read() : d->value;
    out.insert(out.end(), value.begin(), value.end());
  }
  if (!any) return reply.Negative(nrc::kRequestOutOfRange);
  reply.Positive(std::move(out));
}

void Server::WriteDid(const Request& r, Responder reply) {
  const uint16_t id = static_cast<uint16_t>((r.bytes[1] << 8) | r.bytes[2]);
  auto it = dids_.find(id);
  if (it == dids_.end() || !it->second.writable) return reply.Negative(nrc::kRequestOutOfRange);
  Did& d = it->second;
  if (!d.write_sessions.empty() && !Contains(d.write_sessions, session_)) {
    return reply.Negative(nrc::kRequestOutOfRange);
  }
  if (d.length && r.bytes.size() - 3 != d.length) {
    return reply.Negative(nrc::kIncorrectMessageLength);
  }
  if (!d.write_role.empty() && !Authenticated(d.write_role)) {
    return reply.Negative(nrc::kAuthenticationRequired);
  }
  if (d.write_security && unlocked_ != d.write_security) {
    return reply.Negative(nrc::kSecurityAccessDenied);
  }
  d.value.assign(r.bytes.begin() + 3, r.bytes.end());
  d.read = nullptr;
  reply.Positive({0x6E, r.bytes[1], r.bytes[2]});
}

void Server::ReadDtcs(const Request& r, Responder reply) {
  std::vector<uint8_t> out{0x59, r.sub(), 0xFF};  // every status bit supported
  if (r.sub() == 0x02) {
    if (r.bytes.size() != 3) return reply.Negative(nrc::kIncorrectMessageLength);
    for (const Dtc& d : dtcs_) {
      if (!(d.status & r.bytes[2])) continue;
      PutBigEndian(out, d.code, 3);
      out.push_back(d.status);
    }
  } else {  // 0x0A: every supported DTC
    if (r.bytes.size() != 2) return reply.Negative(nrc::kIncorrectMessageLength);
    for (const Dtc& d : dtcs_) {
      PutBigEndian(out, d.code, 3);
      out.push_back(d.status);
    }
  }
  reply.Positive(std::move(out));
}

}  // namespace aloft::uds
