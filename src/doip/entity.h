// A DoIP entity (ISO 13400-2): the vehicle's side of diagnostic communication over IP. Testers
// connect (TCP), activate routing for their logical address, and send diagnostic messages to
// target addresses; the entity acknowledges each and hands its UDS bytes to that target's
// uds::Link: its own ECU's server, or (an edge node, a gateway) a CAN ECU behind it over ISO-TP.
// Answers come back as diagnostic messages to the tester that last addressed the target. UDP
// datagrams (vehicle identification by VIN or EID, entity status, power mode) get their answers
// from Datagram(). Timers: initial inactivity (2 s to activate), general inactivity (5 min), alive
// checks (500 ms) when sockets run out or a tester address is active elsewhere.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/event_loop.h"
#include "doip/message.h"
#include "net/stream.h"
#include "uds/link.h"

namespace aloft::doip {

struct EntityConfig {
  std::string vin = "WALOFT00000000001";
  uint16_t logical_address = 0x1000;
  std::array<uint8_t, 6> eid{0x02, 0x00, 0x00, 0x00, 0x10, 0x00};
  std::array<uint8_t, 6> gid{0x02, 0x00, 0x00, 0x00, 0x10, 0x00};
  uint8_t version = kVersion2012;  // what it writes; it reads 2012 and 2019
  uint8_t node_type = 0x00;        // 0 gateway, 1 node
  int max_sockets = 4;
  uint32_t max_data = 0x10000;                        // the largest payload it takes
  uint16_t tester_min = 0x0E00, tester_max = 0x0FFF;  // external test equipment
  bool require_tls = false;   // plain connections are answered 0x07 on routing activation
  uint8_t power_mode = 0x01;  // ready
  std::chrono::milliseconds initial_inactivity{2000};
  std::chrono::milliseconds general_inactivity{300000};
  std::chrono::milliseconds alive_check{500};
  // The least time between a diagnostic message's ACK and an answer to the tester. 0 on
  // simulated time; aloft-ecu-sim uses 20 ms on real sockets: scapy 2.5's DoIP socket peeks at
  // all it can read and takes an ACK with whatever follows it for one message, losing the answer
  // (with 2 ms, 3 of 8 runs still lost one; a real ECU often takes that long anyway).
  std::chrono::microseconds answer_gap{0};
};

class Entity {
 public:
  Entity(EventLoop& loop, EntityConfig config);
  ~Entity();
  Entity(const Entity&) = delete;
  Entity& operator=(const Entity&) = delete;

  // Diagnostic messages to `address` go over `link`; what comes back on it goes to the tester.
  // The link must outlive the route: Unroute (or destroy the entity) before it goes.
  void Route(uint16_t address, uds::Link& link);
  void Unroute(uint16_t address);
  // A new connection from a tester (`tls`: it came in on the TLS port).
  void Accept(std::unique_ptr<net::Stream> stream, bool tls = false);
  // The answer to a UDP datagram (empty: none is due, as for another vehicle's VIN).
  Bytes Datagram(ByteSpan datagram);
  // The vehicle announcement message (0x0004) this entity sends when it starts.
  Bytes Announcement() const;
  size_t connections() const { return conns_.size(); }
  const EntityConfig& config() const { return config_; }

  struct Stats {
    uint64_t activations = 0, refused_activations = 0, diagnostic = 0, diagnostic_nacks = 0,
             header_nacks = 0, closed_inactive = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Conn;
  void OnData(Conn* c, ByteSpan data);
  void Handle(Conn* c, const Message& m);
  void Activate(Conn* c, const Message& m);
  void FinishActivation(Conn* c, uint16_t sa, std::vector<Conn*> checked, bool must_free);
  void Diagnostic(Conn* c, const Message& m);
  void Send(Conn* c, uint16_t type, ByteSpan payload);
  void Nack(Conn* c, uint8_t code, bool close);
  void CloseConn(Conn* c);
  void Touch(Conn* c);
  void ActivationAnswer(Conn* c, uint16_t sa, uint8_t code);
  void Admit(Conn* c, uint16_t sa);
  void Answer(Conn* c, Bytes message);

  EventLoop& loop_;
  EntityConfig config_;
  std::vector<std::unique_ptr<Conn>> conns_;
  struct Target {
    uds::Link* link;
    int listener;
    Conn* last = nullptr;  // the connection answers go to
    uint16_t tester = 0;
  };
  std::map<uint16_t, Target> targets_;
  Stats stats_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace aloft::doip
