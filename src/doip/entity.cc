#include "doip/entity.h"

#include <algorithm>
#include <deque>

namespace aloft::doip {

struct Entity::Conn {
  std::unique_ptr<net::Stream> stream;
  bool tls = false;
  Framer framer{0};
  bool activated = false;
  uint16_t sa = 0;
  bool closed = false;
  bool alive_answered = false;
  TimerId inactivity = 0;
  EventLoop::TimePoint answers_from{};  // answers wait until then (answer_gap after an ACK)
  std::deque<Bytes> held;               // answers waiting, in order
  TimerId flush = 0;
};

namespace {

void Put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

}  // namespace

Entity::Entity(EventLoop& loop, EntityConfig config) : loop_(loop), config_(std::move(config)) {}

Entity::~Entity() {
  *alive_ = false;
  for (auto& [address, t] : targets_) t.link->RemoveListener(t.listener);
  for (auto& c : conns_) {
    if (c->inactivity) loop_.Cancel(c->inactivity);
    if (c->flush) loop_.Cancel(c->flush);
    c->stream->OnData(nullptr);
    c->stream->OnClose(nullptr);
    c->stream->Close();
  }
}

void Entity::Route(uint16_t address, uds::Link& link) {
  Unroute(address);
  Target t{&link, 0};
  t.listener = link.AddListener([this, address](const std::vector<uint8_t>& message) {
    auto it = targets_.find(address);
    if (it == targets_.end() || !it->second.last || it->second.last->closed) return;
    Answer(it->second.last, Encode(config_.version, type::kDiagnosticMessage,
                                   EncodeDiagnostic(address, it->second.tester, message)));
  });
  targets_[address] = t;
}

void Entity::Unroute(uint16_t address) {
  auto it = targets_.find(address);
  if (it == targets_.end()) return;
  it->second.link->RemoveListener(it->second.listener);
  targets_.erase(it);
}

void Entity::Accept(std::unique_ptr<net::Stream> stream, bool tls) {
  auto c = std::make_unique<Conn>();
  Conn* raw = c.get();
  c->stream = std::move(stream);
  c->tls = tls;
  c->framer = Framer(config_.max_data);
  c->stream->OnData([this, raw](ByteSpan data) { OnData(raw, data); });
  c->stream->OnClose([this, raw] { CloseConn(raw); });
  // A tester has T_TCP_Initial_Inactivity to activate routing.
  c->inactivity = loop_.After(config_.initial_inactivity, [this, raw] {
    raw->inactivity = 0;
    ++stats_.closed_inactive;
    CloseConn(raw);
  });
  conns_.push_back(std::move(c));
}

void Entity::Touch(Conn* c) {
  if (!c->activated) return;
  if (c->inactivity) loop_.Cancel(c->inactivity);
  c->inactivity = loop_.After(config_.general_inactivity, [this, c] {
    c->inactivity = 0;
    ++stats_.closed_inactive;
    CloseConn(c);
  });
}

void Entity::CloseConn(Conn* c) {
  if (c->closed) return;
  c->closed = true;
  if (c->inactivity) loop_.Cancel(c->inactivity);
  if (c->flush) loop_.Cancel(c->flush);
  c->inactivity = c->flush = 0;
  c->stream->OnData(nullptr);
  c->stream->OnClose(nullptr);
  c->stream->Close();
  for (auto& [address, t] : targets_) {
    if (t.last == c) t.last = nullptr;
  }
  // Freed after the callback that closed it has returned.
  loop_.Post([this, c, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    std::erase_if(conns_, [c](const auto& p) { return p.get() == c; });
  });
}

void Entity::Send(Conn* c, uint16_t t, ByteSpan payload) {
  if (!c->closed) c->stream->Write(Encode(config_.version, t, payload));
}

void Entity::Answer(Conn* c, Bytes message) {
  if (c->closed) return;
  if (c->held.empty() && loop_.Now() >= c->answers_from) {
    c->stream->Write(std::move(message));
    return;
  }
  c->held.push_back(std::move(message));
  if (c->flush) return;
  c->flush = loop_.At(c->answers_from, [c] {
    c->flush = 0;
    while (!c->held.empty() && !c->closed) {
      c->stream->Write(std::move(c->held.front()));
      c->held.pop_front();
    }
  });
}

void Entity::Nack(Conn* c, uint8_t code, bool close) {
  ++stats_.header_nacks;
  Send(c, type::kNack, Bytes{code});
  if (close) CloseConn(c);
}

void Entity::OnData(Conn* c, ByteSpan data) {
  c->framer.Append(data);
  while (!c->closed) {
    std::optional<HeaderFailure> failure;
    std::optional<Message> m = c->framer.Next(&failure);
    if (failure) {
      Nack(c, failure->code, failure->code == nack::kIncorrectPattern);
      continue;
    }
    if (!m) return;
    Handle(c, *m);
  }
}

void Entity::Handle(Conn* c, const Message& m) {
  auto bounds = PayloadBounds(m.type);
  const bool tcp_type = m.type == type::kRoutingActivationRequest ||
                        m.type == type::kAliveCheckResponse || m.type == type::kDiagnosticMessage ||
                        m.type == type::kEntityStatusRequest || m.type == type::kPowerModeRequest;
  if (!bounds || !tcp_type) return Nack(c, nack::kUnknownPayloadType, false);
  if (m.payload.size() < bounds->first || m.payload.size() > bounds->second) {
    return Nack(c, nack::kInvalidPayloadLength, true);
  }
  Touch(c);
  switch (m.type) {
    case type::kRoutingActivationRequest:
      return Activate(c, m);
    case type::kAliveCheckResponse:
      c->alive_answered = true;
      return;
    case type::kDiagnosticMessage:
      return Diagnostic(c, m);
    case type::kEntityStatusRequest:
    case type::kPowerModeRequest: {
      Bytes answer = Datagram(Encode(m.version, m.type, {}));
      if (!answer.empty()) c->stream->Write(std::move(answer));
      return;
    }
    default:
      return;
  }
}

void Entity::ActivationAnswer(Conn* c, uint16_t sa, uint8_t code) {
  Bytes p;
  Put16(p, sa);
  Put16(p, config_.logical_address);
  p.push_back(code);
  p.insert(p.end(), 4, 0x00);  // reserved by ISO 13400
  Send(c, type::kRoutingActivationResponse, p);
  if (code == activation::kSuccess) {
    ++stats_.activations;
  } else {
    ++stats_.refused_activations;
    CloseConn(c);
  }
}

void Entity::Activate(Conn* c, const Message& m) {
  const uint16_t sa = Get16(m.payload.data());
  const uint8_t type = m.payload[2];
  if (sa < config_.tester_min || sa > config_.tester_max) {
    return ActivationAnswer(c, sa, activation::kUnknownSource);
  }
  if (type != 0x00 && type != 0x01) return ActivationAnswer(c, sa, activation::kUnsupportedType);
  if (config_.require_tls && !c->tls) return ActivationAnswer(c, sa, activation::kRequiresTls);
  if (c->activated) {
    if (c->sa != sa) return ActivationAnswer(c, sa, activation::kDifferentSource);
    return ActivationAnswer(c, sa, activation::kSuccess);  // again, the same: fine
  }
  // The same tester address on another socket: that socket must prove it is alive.
  std::vector<Conn*> same;
  int active = 0;
  for (auto& other : conns_) {
    if (other.get() == c || other->closed || !other->activated) continue;
    ++active;
    if (other->sa == sa) same.push_back(other.get());
  }
  if (!same.empty()) return FinishActivation(c, sa, same, false);
  if (active >= config_.max_sockets) {
    std::vector<Conn*> all;
    for (auto& other : conns_) {
      if (other.get() != c && !other->closed && other->activated) all.push_back(other.get());
    }
    return FinishActivation(c, sa, all, true);
  }
  Admit(c, sa);
}

// Routing activated: the general inactivity timer replaces the initial one (Touch).
void Entity::Admit(Conn* c, uint16_t sa) {
  c->activated = true;
  c->sa = sa;
  Touch(c);
  ActivationAnswer(c, sa, activation::kSuccess);
}

// Sends alive checks to `checked`, waits T_TCP_Alive_Check, closes those that stayed silent and
// then activates `c`, unless a socket with the same address answered (0x03) or, when a socket
// had to be freed, none was (0x01).
void Entity::FinishActivation(Conn* c, uint16_t sa, std::vector<Conn*> checked, bool must_free) {
  for (Conn* o : checked) {
    o->alive_answered = false;
    Send(o, type::kAliveCheckRequest, {});
  }
  loop_.After(config_.alive_check,
              [this, c, sa, checked, must_free, alive = std::weak_ptr<bool>(alive_)] {
                if (alive.expired()) return;
                auto exists = [this](Conn* p) {
                  return std::any_of(conns_.begin(), conns_.end(),
                                     [p](const auto& q) { return q.get() == p && !q->closed; });
                };
                if (!exists(c)) return;
                bool freed = false, same_alive = false;
                for (Conn* o : checked) {
                  if (!exists(o)) {
                    freed = true;
                    continue;
                  }
                  if (!o->alive_answered) {
                    CloseConn(o);
                    freed = true;
                  } else if (!must_free) {
                    same_alive = true;
                  }
                }
                if (same_alive) return ActivationAnswer(c, sa, activation::kSourceActiveElsewhere);
                if (must_free && !freed)
                  return ActivationAnswer(c, sa, activation::kAllSocketsTaken);
                Admit(c, sa);
              });
}

void Entity::Diagnostic(Conn* c, const Message& m) {
  Result<DiagnosticMessage> d = ParseDiagnostic(m.payload);
  if (!d.ok()) return Nack(c, nack::kInvalidPayloadLength, true);
  ++stats_.diagnostic;
  auto nack = [&](uint8_t code) {
    ++stats_.diagnostic_nacks;
    Bytes p;
    Put16(p, d->target);
    Put16(p, d->source);
    p.push_back(code);
    Send(c, type::kDiagnosticNack, p);
  };
  if (!c->activated || d->source != c->sa) {
    nack(diag_nack::kInvalidSource);
    return CloseConn(c);
  }
  auto it = targets_.find(d->target);
  if (it == targets_.end()) return nack(diag_nack::kUnknownTarget);
  if (d->data.size() > config_.max_data - 4) return nack(diag_nack::kTooLarge);
  Bytes ack;
  Put16(ack, d->target);
  Put16(ack, d->source);
  ack.push_back(0x00);
  Send(c, type::kDiagnosticAck, ack);
  if (config_.answer_gap.count() > 0) c->answers_from = loop_.Now() + config_.answer_gap;
  it->second.last = c;
  it->second.tester = d->source;
  it->second.link->Send(std::vector<uint8_t>(d->data.begin(), d->data.end()), nullptr);
}

Bytes Entity::Announcement() const {
  VehicleAnnouncement a{config_.vin, config_.logical_address, config_.eid, config_.gid, 0x00, {}};
  return Encode(config_.version, type::kVehicleAnnouncement, EncodeAnnouncement(a));
}

Bytes Entity::Datagram(ByteSpan datagram) {
  std::optional<HeaderFailure> failure;
  std::optional<Header> h = PeekHeader(datagram, &failure, config_.max_data);
  if (!h) return {};
  auto answer_nack = [&](uint8_t code) {
    return Encode(config_.version, type::kNack, Bytes{code});
  };
  if (failure) return answer_nack(failure->code);
  if (datagram.size() != kHeader + h->length) return answer_nack(nack::kInvalidPayloadLength);
  ByteSpan p = datagram.subspan(kHeader);
  auto bounds = PayloadBounds(h->type);
  if (!bounds) return answer_nack(nack::kUnknownPayloadType);
  if (p.size() < bounds->first || p.size() > bounds->second) {
    return answer_nack(nack::kInvalidPayloadLength);
  }
  const uint8_t version = h->version == kVersionAny ? config_.version : h->version;
  switch (h->type) {
    case type::kVehicleIdRequest:
      break;
    case type::kVehicleIdRequestEid:
      if (!std::equal(p.begin(), p.end(), config_.eid.begin())) return {};
      break;
    case type::kVehicleIdRequestVin:
      if (std::string(p.begin(), p.end()) != config_.vin) return {};
      break;
    case type::kEntityStatusRequest: {
      Bytes s{config_.node_type, static_cast<uint8_t>(config_.max_sockets),
              static_cast<uint8_t>(std::count_if(conns_.begin(), conns_.end(),
                                                 [](const auto& c) { return !c->closed; }))};
      for (int i = 3; i >= 0; --i) s.push_back(static_cast<uint8_t>(config_.max_data >> (8 * i)));
      return Encode(version, type::kEntityStatusResponse, s);
    }
    case type::kPowerModeRequest:
      return Encode(version, type::kPowerModeResponse, Bytes{config_.power_mode});
    default:
      return answer_nack(nack::kUnknownPayloadType);
  }
  VehicleAnnouncement a{config_.vin, config_.logical_address, config_.eid, config_.gid, 0x00, {}};
  return Encode(version, type::kVehicleAnnouncement, EncodeAnnouncement(a));
}

}  // namespace aloft::doip
