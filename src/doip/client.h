// The tester's side of DoIP: one TCP connection to a DoIP entity, routing activation for the
// tester's logical address, alive-check answers, and a uds::Link per target ECU (diagnostic
// messages out, their acknowledgements awaited, the ECU's answers in).
//
//   doip::Client doip(std::move(stream), 0x0E80);
//   doip.Activate([&](Result<uint16_t> entity) { ... });
//   auto link = doip.LinkTo(0x1001);          // the ECU at logical address 0x1001
//   uds::Client tester(*link);
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>

#include "doip/message.h"
#include "net/stream.h"
#include "uds/link.h"

namespace aloft::doip {

class Client {
 public:
  Client(std::unique_ptr<net::Stream> stream, uint16_t source = 0x0E80,
         uint8_t version = kVersion2012);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Routing activation; `done` gets the entity's logical address, or kUnavailable naming the
  // response code ("DoIP routing activation: 0x07 (denied: requires TLS)").
  void Activate(std::function<void(Result<uint16_t>)> done, uint8_t activation_type = 0x00);
  // A UDS link to the ECU at `target` (valid while this Client lives).
  std::unique_ptr<uds::Link> LinkTo(uint16_t target);
  bool open() const { return stream_ && stream_->open(); }
  EventLoop& loop() { return stream_->loop(); }
  // How long a diagnostic message may wait for its acknowledgement (A_DoIP_Diagnostic_Message).
  std::chrono::milliseconds ack_timeout{2000};

 private:
  class DiagLink;
  void OnData(ByteSpan data);
  void Handle(const Message& m);
  void SendDiagnostic(uint16_t target, std::vector<uint8_t> data, uds::Link::Done done);
  void FailAll(const Status& why);

  std::unique_ptr<net::Stream> stream_;
  uint16_t source_;
  uint8_t version_;
  Framer framer_{1 << 24};
  std::function<void(Result<uint16_t>)> activation_done_;
  struct PendingAck {
    uint16_t target;
    uds::Link::Done done;
    TimerId timer;
  };
  std::deque<PendingAck> acks_;  // acknowledgements come in the order the messages went
  std::map<uint16_t, DiagLink*> links_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace aloft::doip
