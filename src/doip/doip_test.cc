// DoIP (ISO 13400-2) on simulated time: routing activation and its response codes, diagnostic
// messages with positive and negative acknowledgement, the generic header NACKs, vehicle
// identification, entity status and power mode, the inactivity and alive-check timers, one
// connection reaching a CAN ECU behind an edge node, and a 1 MiB flash over DoIP.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "can/sim_bus.h"
#include "doip/client.h"
#include "doip/entity.h"
#include "ecusim/rig.h"
#include "support/matchers.h"
#include "support/temp_dir.h"
#include "uds/client.h"
#include "uds/memory_link.h"
#include "uds/server.h"

namespace aloft::doip {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

std::string Hex(ByteSpan b) {
  std::string s;
  char buf[4];
  for (size_t i = 0; i < b.size(); ++i) {
    std::snprintf(buf, sizeof buf, i ? " %02X" : "%02X", b[i]);
    s += buf;
  }
  return s;
}

// An entity with one ECU (a UDS server with a VIN) at 0x1001, and raw tester connections.
class DoIp : public ::testing::Test {
 protected:
  DoIp() {
    std::tie(entity_side_, ecu_side_) = uds::MemoryLink::Pair(loop_);
    server_.SetDid(0xF190, {.value = Bytes(17, 'W')});
    server_.Attach(*ecu_side_);
    entity_.Route(0x1001, *entity_side_);
  }
  // A raw connection: what it receives is collected as messages.
  struct Raw {
    std::unique_ptr<net::SimStream> end;
    Framer framer{1 << 20};
    std::vector<Message> got;
    std::vector<EventLoop::TimePoint> when;
    bool closed = false;
    void Send(uint8_t version, uint16_t t, Bytes payload) {
      end->Write(Encode(version, t, payload));
    }
  };
  std::unique_ptr<Raw> Connect() {
    auto [tester, entity] = net::SimStream::Pair(loop_);
    entity_.Accept(std::move(entity));
    auto raw = std::make_unique<Raw>();
    raw->end = std::move(tester);
    Raw* r = raw.get();
    r->end->OnData([this, r](ByteSpan d) {
      r->framer.Append(d);
      std::optional<HeaderFailure> f;
      while (auto m = r->framer.Next(&f)) {
        r->got.push_back(*m);
        r->when.push_back(loop_.Now());
      }
    });
    r->end->OnClose([r] { r->closed = true; });
    return raw;
  }
  static Bytes ActivationRequest(uint16_t sa, uint8_t type = 0) {
    return {static_cast<uint8_t>(sa >> 8), static_cast<uint8_t>(sa), type, 0, 0, 0, 0};
  }

  SimLoop loop_;
  EntityConfig config_{};
  std::unique_ptr<uds::MemoryLink> entity_side_, ecu_side_;  // outlive those that use them
  Entity entity_{loop_, config_};
  uds::Server server_{loop_, {.name = "ecm"}};
};

TEST_F(DoIp, RoutingActivation_ResponseCodes) {
  struct Case {
    uint16_t sa;
    uint8_t type;
    uint8_t code;
    bool closed;
  };
  for (const Case& c : {Case{0x0E80, 0x00, 0x10, false}, Case{0x0001, 0x00, 0x00, true},
                        Case{0x0E80, 0xE0, 0x06, true}, Case{0x0E80, 0x01, 0x10, false}}) {
    auto raw = Connect();
    raw->Send(kVersion2012, type::kRoutingActivationRequest, ActivationRequest(c.sa, c.type));
    loop_.RunFor(milliseconds(10));
    ASSERT_EQ(raw->got.size(), 1u);
    EXPECT_EQ(raw->got[0].type, type::kRoutingActivationResponse);
    EXPECT_EQ(Hex(raw->got[0].payload),
              Hex(Bytes{static_cast<uint8_t>(c.sa >> 8), static_cast<uint8_t>(c.sa), 0x10, 0x00,
                        c.code, 0, 0, 0, 0}));
    EXPECT_EQ(raw->closed, c.closed) << int(c.code);
  }
}

TEST_F(DoIp, RequiresTls_PlainConnectionAnswered0x07) {
  EntityConfig c;
  c.require_tls = true;
  Entity tls_only(loop_, c);
  auto [tester, entity] = net::SimStream::Pair(loop_);
  tls_only.Accept(std::move(entity));
  Client client(std::move(tester));
  std::optional<Result<uint16_t>> r;
  client.Activate([&](Result<uint16_t> x) { r = std::move(x); });
  loop_.RunFor(milliseconds(10));
  EXPECT_THAT(*r, IsError(Code::kUnavailable, HasSubstr("0x07 (denied: requires TLS)")));
}

TEST_F(DoIp, DiagnosticMessages_AckThenAnswer_NackForUnknownTargetAndUnactivated) {
  auto raw = Connect();
  // Before routing activation: NACK 0x02 and the socket is closed.
  raw->Send(kVersion2012, type::kDiagnosticMessage,
            EncodeDiagnostic(0x0E80, 0x1001, Bytes{0x22, 0xF1, 0x90}));
  loop_.RunFor(milliseconds(10));
  ASSERT_EQ(raw->got.size(), 1u);
  EXPECT_EQ(raw->got[0].type, type::kDiagnosticNack);
  EXPECT_EQ(Hex(raw->got[0].payload), "10 01 0E 80 02");
  EXPECT_TRUE(raw->closed);

  raw = Connect();
  raw->Send(kVersion2012, type::kRoutingActivationRequest, ActivationRequest(0x0E80));
  raw->Send(kVersion2012, type::kDiagnosticMessage,
            EncodeDiagnostic(0x0E80, 0x1001, Bytes{0x22, 0xF1, 0x90}));
  raw->Send(kVersion2012, type::kDiagnosticMessage,
            EncodeDiagnostic(0x0E80, 0x2222, Bytes{0x3E, 0x00}));
  loop_.RunFor(milliseconds(10));
  ASSERT_EQ(raw->got.size(), 4u);
  EXPECT_EQ(raw->got[1].type, type::kDiagnosticAck);
  EXPECT_EQ(Hex(raw->got[1].payload), "10 01 0E 80 00");
  EXPECT_EQ(raw->got[2].type, type::kDiagnosticNack);
  EXPECT_EQ(Hex(raw->got[2].payload), "22 22 0E 80 03") << "unknown target";
  EXPECT_EQ(raw->got[3].type, type::kDiagnosticMessage);
  EXPECT_THAT(Hex(raw->got[3].payload), ::testing::StartsWith("10 01 0E 80 62 F1 90 57"));
  EXPECT_FALSE(raw->closed);
}

// aloft-ecu-sim's answer gap: an answer leaves no sooner than 20 ms after the ACK (scapy).
TEST_F(DoIp, AnswerGap_AnswerWaitsAfterTheAck) {
  EntityConfig c;
  c.answer_gap = std::chrono::milliseconds(20);
  Entity gapped(loop_, c);
  gapped.Route(0x1001, *entity_side_);
  auto [tester, entity] = net::SimStream::Pair(loop_);
  gapped.Accept(std::move(entity));
  Raw raw;
  raw.end = std::move(tester);
  Raw* r = &raw;
  raw.end->OnData([this, r](ByteSpan d) {
    r->framer.Append(d);
    std::optional<HeaderFailure> f;
    while (auto m = r->framer.Next(&f)) {
      r->got.push_back(*m);
      r->when.push_back(loop_.Now());
    }
  });
  raw.Send(kVersion2012, type::kRoutingActivationRequest, ActivationRequest(0x0E80));
  raw.Send(kVersion2012, type::kDiagnosticMessage,
           EncodeDiagnostic(0x0E80, 0x1001, Bytes{0x22, 0xF1, 0x90}));
  loop_.RunFor(milliseconds(100));
  ASSERT_EQ(raw.got.size(), 3u);
  EXPECT_EQ(raw.got[1].type, type::kDiagnosticAck);
  EXPECT_EQ(raw.got[2].type, type::kDiagnosticMessage);
  EXPECT_GE(raw.when[2] - raw.when[1], milliseconds(20));
  gapped.Unroute(0x1001);
}

TEST_F(DoIp, GenericHeaderNacks) {
  struct Case {
    Bytes bytes;
    uint8_t code;
    bool closed;
  };
  const std::vector<Case> cases = {
      {{0x02, 0xFC, 0x00, 0x05, 0, 0, 0, 0}, nack::kIncorrectPattern, true},
      {{0x02, 0xFD, 0x12, 0x34, 0, 0, 0, 0}, nack::kUnknownPayloadType, false},
      {{0x02, 0xFD, 0x00, 0x05, 0, 0, 0, 2, 0x0E, 0x80}, nack::kInvalidPayloadLength, true},
      {{0x02, 0xFD, 0x80, 0x01, 0x7F, 0, 0, 0}, nack::kMessageTooLarge, false},
  };
  for (const Case& c : cases) {
    auto raw = Connect();
    raw->end->Write(c.bytes);
    loop_.RunFor(milliseconds(10));
    ASSERT_GE(raw->got.size(), 1u) << int(c.code);
    EXPECT_EQ(raw->got[0].type, type::kNack);
    EXPECT_EQ(raw->got[0].payload, Bytes{c.code});
    EXPECT_EQ(raw->closed, c.closed) << int(c.code);
  }
}

TEST_F(DoIp, VehicleIdentification_StatusAndPowerMode_OverUdp) {
  auto answer = entity_.Datagram(Encode(kVersionAny, type::kVehicleIdRequest, {}));
  ASSERT_GE(answer.size(), kHeader + 32);
  auto a = ParseAnnouncement(ByteSpan(answer).subspan(kHeader));
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->vin, "WALOFT00000000001");
  EXPECT_EQ(a->logical_address, 0x1000);
  EXPECT_EQ(answer[0], kVersion2012) << "0xFF in the request: its own version in the answer";
  const std::string vin = "WALOFT00000000001", other = "WOTHER00000000001";
  EXPECT_FALSE(
      entity_
          .Datagram(Encode(kVersion2012, type::kVehicleIdRequestVin, Bytes(vin.begin(), vin.end())))
          .empty());
  EXPECT_TRUE(entity_
                  .Datagram(Encode(kVersion2012, type::kVehicleIdRequestVin,
                                   Bytes(other.begin(), other.end())))
                  .empty());
  EXPECT_FALSE(entity_
                   .Datagram(Encode(kVersion2012, type::kVehicleIdRequestEid,
                                    Bytes(config_.eid.begin(), config_.eid.end())))
                   .empty());
  auto status = entity_.Datagram(Encode(kVersion2012, type::kEntityStatusRequest, {}));
  EXPECT_EQ(Hex(ByteSpan(status).subspan(kHeader)), "00 04 00 00 01 00 00");
  auto power = entity_.Datagram(Encode(kVersion2019, type::kPowerModeRequest, {}));
  EXPECT_EQ(power[0], kVersion2019);
  EXPECT_EQ(Hex(ByteSpan(power).subspan(kHeader)), "01");
  auto bad = entity_.Datagram(Bytes{0x02, 0xFD, 0x00, 0x01, 0, 0, 0, 1, 0});
  EXPECT_EQ(Hex(bad), "02 FD 00 00 00 00 00 01 04");
}

TEST_F(DoIp, Timers_InitialInactivity_AliveCheck) {
  auto idle = Connect();
  loop_.RunFor(milliseconds(1999));
  EXPECT_FALSE(idle->closed);
  loop_.RunFor(milliseconds(2));
  EXPECT_TRUE(idle->closed) << "no routing activation within 2 s";

  // One socket: a silent tester holds it; the next tester gets it after an alive check.
  EntityConfig one;
  one.max_sockets = 1;
  Entity small(loop_, one);
  auto [t1, e1] = net::SimStream::Pair(loop_);
  small.Accept(std::move(e1));
  Client answering(std::move(t1));  // a Client answers alive checks
  std::optional<Result<uint16_t>> r1;
  answering.Activate([&](Result<uint16_t> x) { r1 = std::move(x); });
  loop_.RunFor(milliseconds(10));
  ASSERT_THAT(*r1, IsOk());
  auto [t2, e2] = net::SimStream::Pair(loop_);
  small.Accept(std::move(e2));
  Client second(std::move(t2), 0x0E81);
  std::optional<Result<uint16_t>> r2;
  second.Activate([&](Result<uint16_t> x) { r2 = std::move(x); });
  loop_.RunFor(milliseconds(600));
  EXPECT_THAT(*r2, IsError(Code::kUnavailable, HasSubstr("0x01")))
      << "the first tester answered its alive check";
  // A raw, silent tester in the socket instead: it is closed and the newcomer activated.
  Entity small2(loop_, one);
  auto [t3, e3] = net::SimStream::Pair(loop_);
  small2.Accept(std::move(e3));
  t3->Write(Encode(kVersion2012, type::kRoutingActivationRequest, ActivationRequest(0x0E80)));
  bool silent_closed = false;
  t3->OnClose([&] { silent_closed = true; });
  loop_.RunFor(milliseconds(10));
  auto [t4, e4] = net::SimStream::Pair(loop_);
  small2.Accept(std::move(e4));
  Client newcomer(std::move(t4), 0x0E81);
  std::optional<Result<uint16_t>> r4;
  newcomer.Activate([&](Result<uint16_t> x) { r4 = std::move(x); });
  loop_.RunFor(milliseconds(600));
  EXPECT_THAT(*r4, IsOk());
  EXPECT_TRUE(silent_closed);
}

// One TCP connection reaching a CAN ECU behind the entity (an edge node routing to ISO-TP).
TEST_F(DoIp, EdgeNode_RoutesToACanEcuBehindIt) {
  can::SimBus bus(loop_, {.name = "body"});
  auto gateway_port = bus.Attach("gateway");
  auto ecu_port = bus.Attach("bcm");
  isotp::Channel gw(*gateway_port, {.tx_id = 0x741, .rx_id = 0x749});
  isotp::Channel ecu(*ecu_port, {.tx_id = 0x749, .rx_id = 0x741});
  uds::IsoTpLink gw_link(gw, *gateway_port), ecu_link(ecu, *ecu_port);
  uds::Server bcm(loop_, {.name = "bcm"});
  bcm.SetDid(0xF18C, {.value = Bytes{'B', 'C', 'M', '-', '7'}});
  bcm.Attach(ecu_link);
  entity_.Route(0x1741, gw_link);

  auto [tester, entity] = net::SimStream::Pair(loop_);
  entity_.Accept(std::move(entity));
  Client doip(std::move(tester));
  std::optional<Result<uint16_t>> act;
  doip.Activate([&](Result<uint16_t> x) { act = std::move(x); });
  loop_.RunFor(milliseconds(10));
  ASSERT_THAT(*act, IsOk());
  auto to_bcm = doip.LinkTo(0x1741);
  auto to_ecm = doip.LinkTo(0x1001);
  uds::Client bcm_tester(*to_bcm), ecm_tester(*to_ecm);
  std::optional<Result<uds::Response>> a, b;
  bcm_tester.Request({0x22, 0xF1, 0x8C}, [&](Result<uds::Response> r) { a = std::move(r); });
  ecm_tester.Request({0x22, 0xF1, 0x90}, [&](Result<uds::Response> r) { b = std::move(r); });
  loop_.RunFor(milliseconds(100));
  ASSERT_TRUE(a && a->ok());
  EXPECT_EQ(Hex((*a)->bytes), "62 F1 8C 42 43 4D 2D 37");
  ASSERT_TRUE(b && b->ok());
  EXPECT_TRUE((*b)->positive());
  // A target nobody answers for: the NACK reaches the UDS client as an error.
  auto nowhere = doip.LinkTo(0x3333);
  uds::Client lost(*nowhere);
  std::optional<Result<uds::Response>> c;
  lost.Request({0x3E, 0x00}, [&](Result<uds::Response> r) { c = std::move(r); });
  loop_.RunFor(milliseconds(100));
  EXPECT_THAT(*c, IsError(Code::kUnavailable, HasSubstr("0x03 (unknown target address)")));
  entity_.Unroute(0x1741);  // gw_link goes with this scope
}

// Must show 3 (DoIP): the full sequence flashes 1 MiB and the ECU starts the new image.
TEST(DoIpFlash, OneMiB_ThenBootsTheNewImage) {
  testing::TempDir dir;
  auto rig =
      ecusim::Rig::Create({.name = "ecm", .max_block_length = 0x4002}, {.doip = true}, dir.path());
  ASSERT_THAT(rig, IsOk());
  ASSERT_THAT((*rig)->ecu().Provision(ecusim::MakeAppImage("1.0.0", "P", Bytes(100, 1))), IsOk());
  Bytes body((1 << 20) - ecusim::kAppHeader);
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<uint8_t>(i * 31 + (i >> 9));
  auto plan = (*rig)->Plan(ecusim::MakeAppImage("3.0.0", "P", body));
  plan.expect_version = "3.0.0";
  auto report = (*rig)->Flash(plan);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ((*rig)->ecu().status().version, "3.0.0");
  EXPECT_EQ(report->max_block_length, 0x4002u);
}

}  // namespace
}  // namespace aloft::doip
