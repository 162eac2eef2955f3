#include "doip/client.h"

#include <cstdio>

namespace aloft::doip {

namespace {

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

std::string Hex4(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04X", v);
  return buf;
}

}  // namespace

class Client::DiagLink final : public uds::Link {
 public:
  DiagLink(Client* client, uint16_t target) : client_(client), target_(target) {
    client_->links_[target] = this;
  }
  ~DiagLink() override {
    if (client_) client_->links_.erase(target_);
  }
  void Send(std::vector<uint8_t> message, Done done) override {
    if (!client_) {
      if (done) done(Error(Code::kUnavailable, name() + ": the DoIP client is gone"));
      return;
    }
    client_->SendDiagnostic(target_, std::move(message), std::move(done));
  }
  EventLoop& loop() override { return loop_ref(); }
  std::string name() const override { return "DoIP " + Hex4(target_); }
  size_t max_message() const override { return 0xFFFFFF; }
  void Receive(const std::vector<uint8_t>& m) { Deliver(m); }
  void Detach() { client_ = nullptr; }

 private:
  EventLoop& loop_ref() { return *loop_; }
  Client* client_;
  uint16_t target_;
  EventLoop* loop_ = &client_->loop();
};

Client::Client(std::unique_ptr<net::Stream> stream, uint16_t source, uint8_t version)
    : stream_(std::move(stream)), source_(source), version_(version) {
  stream_->OnData([this](ByteSpan d) { OnData(d); });
  stream_->OnClose(
      [this] { FailAll(Error(Code::kUnavailable, "DoIP: the entity closed the connection")); });
}

Client::~Client() {
  *alive_ = false;
  for (auto& [t, l] : links_) l->Detach();
  for (auto& a : acks_) stream_->loop().Cancel(a.timer);
  stream_->OnData(nullptr);
  stream_->OnClose(nullptr);
  stream_->Close();
}

void Client::Activate(std::function<void(Result<uint16_t>)> done, uint8_t activation_type) {
  activation_done_ = std::move(done);
  Bytes p{static_cast<uint8_t>(source_ >> 8),
          static_cast<uint8_t>(source_),
          activation_type,
          0,
          0,
          0,
          0};
  stream_->Write(Encode(version_, type::kRoutingActivationRequest, p));
}

std::unique_ptr<uds::Link> Client::LinkTo(uint16_t target) {
  return std::make_unique<DiagLink>(this, target);
}

void Client::SendDiagnostic(uint16_t target, std::vector<uint8_t> data, uds::Link::Done done) {
  if (!stream_->open()) {
    if (done) done(Error(Code::kUnavailable, "DoIP: the connection is closed"));
    return;
  }
  stream_->Write(
      Encode(version_, type::kDiagnosticMessage, EncodeDiagnostic(source_, target, data)));
  const TimerId timer =
      stream_->loop().After(ack_timeout, [this, alive = std::weak_ptr<bool>(alive_)] {
        if (alive.expired()) return;
        FailAll(Error(Code::kUnavailable, "DoIP: no diagnostic message acknowledgement within " +
                                              std::to_string(ack_timeout.count()) + " ms"));
      });
  acks_.push_back({target, std::move(done), timer});
}

void Client::FailAll(const Status& why) {
  std::deque<PendingAck> pending = std::move(acks_);
  acks_.clear();
  for (auto& a : pending) {
    stream_->loop().Cancel(a.timer);
    if (a.done) a.done(why);
  }
  if (activation_done_) {
    auto d = std::move(activation_done_);
    activation_done_ = nullptr;
    d(why.error());
  }
}

void Client::OnData(ByteSpan data) {
  framer_.Append(data);
  while (true) {
    std::optional<HeaderFailure> failure;
    std::optional<Message> m = framer_.Next(&failure);
    if (failure) {
      FailAll(Error(Code::kMalformed, "DoIP: a broken message from the entity: " + failure->why));
      stream_->Close();
      return;
    }
    if (!m) return;
    Handle(*m);
  }
}

void Client::Handle(const Message& m) {
  const Bytes& p = m.payload;
  switch (m.type) {
    case type::kRoutingActivationResponse: {
      if (p.size() < 9 || !activation_done_) return;
      auto done = std::move(activation_done_);
      activation_done_ = nullptr;
      const uint8_t code = p[4];
      if (code != activation::kSuccess) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "0x%02X (", code);
        return done(Error(Code::kUnavailable, std::string("DoIP routing activation: ") + buf +
                                                  ActivationName(code) + ")"));
      }
      return done(Get16(p.data() + 2));
    }
    case type::kAliveCheckRequest: {
      Bytes r{static_cast<uint8_t>(source_ >> 8), static_cast<uint8_t>(source_)};
      stream_->Write(Encode(version_, type::kAliveCheckResponse, r));
      return;
    }
    case type::kDiagnosticAck:
    case type::kDiagnosticNack: {
      if (acks_.empty() || p.size() < 5) return;
      PendingAck a = std::move(acks_.front());
      acks_.pop_front();
      stream_->loop().Cancel(a.timer);
      if (!a.done) return;
      if (m.type == type::kDiagnosticAck) return a.done(OkStatus());
      char buf[16];
      std::snprintf(buf, sizeof buf, "0x%02X (", p[4]);
      return a.done(Error(Code::kUnavailable, "DoIP diagnostic message to " + Hex4(a.target) +
                                                  ": negative acknowledgement " + buf +
                                                  DiagNackName(p[4]) + ")"));
    }
    case type::kDiagnosticMessage: {
      Result<DiagnosticMessage> d = ParseDiagnostic(p);
      if (!d.ok() || d->target != source_) return;
      auto it = links_.find(d->source);
      if (it != links_.end())
        it->second->Receive(std::vector<uint8_t>(d->data.begin(), d->data.end()));
      return;
    }
    case type::kNack:
      FailAll(Error(Code::kMalformed, "DoIP: the entity refused a message (generic NACK " +
                                          std::to_string(p.empty() ? 0 : p[0]) + ")"));
      return;
    default:
      return;
  }
}

}  // namespace aloft::doip
