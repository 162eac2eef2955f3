// ISO 15765-2 channels over the simulated bus, on simulated time: segmentation both ways, CAN FD
// escapes, flow control (BS, STmin, WAIT, overflow), each timeout, wrong sequence numbers and
// unexpected frames, the addressing formats, padding.
#include "isotp/channel.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <numeric>
#include <optional>

#include "can/sim_bus.h"
#include "support/matchers.h"

namespace aloft::isotp {
namespace {

using can::CanEvent;
using can::Frame;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using ::testing::HasSubstr;

std::vector<uint8_t> Bytes(size_t n, uint8_t seed = 1) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 8));
  return v;
}

int64_t Us(EventLoop::TimePoint t) {
  return std::chrono::duration_cast<microseconds>(t.time_since_epoch()).count();
}

int64_t Ns(EventLoop::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// When a frame seen at `e.at` (the end of its end-of-frame field) started on a 500 kbit/s bus.
int64_t Start(const CanEvent& e) {
  return Ns(e.at) - can::Duration(e.frame, {500'000}).count() + 3 * 2000;
}

class IsoTp : public ::testing::Test {
 protected:
  void SetUpBus(can::BitRates rates = {500'000}, bool fd = false) {
    bus_.emplace(loop_, can::SimBusConfig{.name = "diag", .rates = rates, .fd = fd});
    tester_port_ = bus_->Attach("tester");
    ecu_port_ = bus_->Attach("ecu");
    raw_port_ = bus_->Attach("raw");
    bus_->AddMonitor([this](const CanEvent& e) {
      if (e.kind == CanEvent::Kind::kFrame) trace_.push_back(e);
    });
  }
  void SetUp() override { SetUpBus(); }

  // The frames on the bus with identifier `id`.
  std::vector<CanEvent> On(uint32_t id) const {
    std::vector<CanEvent> out;
    for (const auto& e : trace_) {
      if (e.frame.id == id) out.push_back(e);
    }
    return out;
  }

  struct Inbox {
    std::vector<std::vector<uint8_t>> messages;
    std::vector<Status> errors;
    void Attach(Channel& c) {
      c.OnMessage([this](std::vector<uint8_t> m) { messages.push_back(std::move(m)); });
      c.OnReceiveError([this](const Status& s) { errors.push_back(s); });
    }
  };

  SimLoop loop_;
  std::optional<can::SimBus> bus_;
  std::unique_ptr<can::SimPort> tester_port_, ecu_port_, raw_port_;
  std::vector<CanEvent> trace_;
};

const Address kTester{.tx_id = 0x7E0, .rx_id = 0x7E8};
const Address kEcu{.tx_id = 0x7E8, .rx_id = 0x7E0};

TEST_F(IsoTp, Segmentation_BothWaysAtOnce_FullDuplex) {
  Channel tester(*tester_port_, kTester);
  Channel ecu(*ecu_port_, kEcu);
  Inbox at_ecu, at_tester;
  at_ecu.Attach(ecu);
  at_tester.Attach(tester);
  const auto up = Bytes(4095, 3), down = Bytes(1000, 9);
  std::optional<Status> up_done, down_done;
  tester.Send(up, [&](const Status& s) { up_done = s; });
  ecu.Send(down, [&](const Status& s) { down_done = s; });
  loop_.RunUntilIdle();
  ASSERT_TRUE(up_done && down_done);
  EXPECT_THAT(*up_done, IsOk());
  EXPECT_THAT(*down_done, IsOk());
  ASSERT_EQ(at_ecu.messages.size(), 1u);
  EXPECT_EQ(at_ecu.messages[0], up);
  ASSERT_EQ(at_tester.messages.size(), 1u);
  EXPECT_EQ(at_tester.messages[0], down);
  // 4095 bytes: a first frame of 6 and 584 consecutive frames of 7 (the last of 5), one flow
  // control the other way; the two transfers interleave on the bus.
  EXPECT_EQ(tester.stats().frames_sent, 1u + 585 + 1);
  std::vector<Frame> data;  // the tester's FF and CFs (its flow control for the ECU aside)
  for (const auto& e : On(0x7E0)) {
    if (e.frame.data[0] >> 4 != 3) data.push_back(e.frame);
  }
  ASSERT_EQ(data.size(), 586u);
  EXPECT_EQ(data[0].data[0], 0x1F);
  EXPECT_EQ(data[0].data[1], 0xFF);
  EXPECT_EQ(data[1].data[0], 0x21) << "the first consecutive frame has SN 1";
  EXPECT_EQ(data[16].data[0], 0x20) << "SN wraps from 15 to 0";
  EXPECT_EQ(data[17].data[0], 0x21);
}

TEST_F(IsoTp, CanFd_SingleFrameEscape_FirstFrameEscape) {
  SetUpBus({500'000, 2'000'000}, true);
  Params fd{.fd = true, .tx_dl = 64, .max_message = 1 << 20};
  Channel tester(*tester_port_, kTester, fd);
  Channel ecu(*ecu_port_, kEcu, fd);
  Inbox at_ecu;
  at_ecu.Attach(ecu);
  tester.Send(Bytes(40));       // one frame: 00 28 + 40 bytes, padded to 48
  tester.Send(Bytes(5000, 4));  // FF_DL above 4095: the 32-bit escape
  tester.Send(Bytes(3, 5));     // short form, an FD frame of 8 bytes
  loop_.RunUntilIdle();
  ASSERT_EQ(at_ecu.messages.size(), 3u);
  EXPECT_EQ(at_ecu.messages[0], Bytes(40));
  EXPECT_EQ(at_ecu.messages[1], Bytes(5000, 4));
  EXPECT_EQ(at_ecu.messages[2], Bytes(3, 5));
  const auto frames = On(0x7E0);
  EXPECT_TRUE(frames[0].frame.fd);
  EXPECT_TRUE(frames[0].frame.brs);
  EXPECT_EQ(frames[0].frame.length(), 48);
  EXPECT_EQ(frames[0].frame.data[0], 0x00);
  EXPECT_EQ(frames[0].frame.data[1], 40);
  EXPECT_EQ(frames[0].frame.data[42], 0xCC) << "padding";
  EXPECT_EQ(frames[1].frame.data[0], 0x10);
  EXPECT_EQ(frames[1].frame.data[1], 0x00);
  EXPECT_EQ(frames[1].frame.length(), 64);
  // 5000 - 58 = 4942 bytes in CFs of 63: 79 frames; then the 3-byte SF.
  EXPECT_EQ(frames.size(), 1u + 1 + 79 + 1);
  EXPECT_EQ(frames.back().frame.length(), 4);
}

TEST_F(IsoTp, FlowControl_BlockSizeAndStMin_AreHonoured) {
  Channel tester(*tester_port_, kTester);
  Channel ecu(*ecu_port_, kEcu, {.block_size = 4, .st_min = 0xF5});  // 500 us
  Inbox at_ecu;
  at_ecu.Attach(ecu);
  tester.Send(Bytes(6 + 7 * 10));  // FF + 10 CFs
  loop_.RunUntilIdle();
  ASSERT_EQ(at_ecu.messages.size(), 1u);
  const auto cfs = On(0x7E0);
  EXPECT_EQ(On(0x7E8).size(), 3u) << "flow controls after the FF, CF 4 and CF 8";
  // Within a block, each consecutive frame starts STmin after the previous one was confirmed
  // (the end of its end-of-frame field, which is when `at` says it arrived).
  for (size_t i = 2; i < cfs.size(); ++i) {
    if ((i - 1) % 4 == 0) continue;  // the first CF of a block follows a flow control
    EXPECT_EQ(Start(cfs[i]) - Ns(cfs[i - 1].at), 500'000) << "CF " << i;
  }
  // Milliseconds: STmin 10.
  trace_.clear();
  Channel slow(*raw_port_, {.tx_id = 0x701, .rx_id = 0x709}, {.st_min = 10});
  Channel fast(*tester_port_, {.tx_id = 0x709, .rx_id = 0x701});
  fast.Send(Bytes(6 + 7 * 3));
  loop_.RunUntilIdle();
  const auto f = On(0x709);
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(Start(f[3]) - Ns(f[2].at), 10'000'000);
}

TEST_F(IsoTp, FlowControlWait_ThenContinue_OrTooManyWaits) {
  Channel tester(*tester_port_, kTester, {.max_wait_frames = 3});
  Channel ecu(*ecu_port_, kEcu, {.wait_frames = 2, .wait_interval = milliseconds(200)});
  Inbox at_ecu;
  at_ecu.Attach(ecu);
  std::optional<Status> done;
  tester.Send(Bytes(100), [&](const Status& s) { done = s; });
  loop_.RunUntilIdle();
  ASSERT_TRUE(done);
  EXPECT_THAT(*done, IsOk());
  ASSERT_EQ(at_ecu.messages.size(), 1u);
  const auto fcs = On(0x7E8);
  ASSERT_EQ(fcs.size(), 3u);
  EXPECT_EQ(fcs[0].frame.data[0], 0x31);
  EXPECT_EQ(fcs[1].frame.data[0], 0x31);
  EXPECT_EQ(fcs[2].frame.data[0], 0x30);
  EXPECT_GE(Us(fcs[2].at) - Us(fcs[0].at), 400'000);

  Channel busy(*raw_port_, {.tx_id = 0x7E9, .rx_id = 0x7E1}, {.wait_frames = 5});
  Channel sender(*tester_port_, {.tx_id = 0x7E1, .rx_id = 0x7E9}, {.max_wait_frames = 3});
  sender.Send(Bytes(100), [&](const Status& s) { done = s; });
  loop_.RunUntilIdle();
  EXPECT_THAT(*done, IsError(Code::kUnavailable, HasSubstr("N_WFT_OVRN")));
}

TEST_F(IsoTp, FlowControlOverflow_AbortsTheSender) {
  Channel tester(*tester_port_, kTester);
  Channel ecu(*ecu_port_, kEcu, {.max_message = 100});
  Inbox at_ecu;
  at_ecu.Attach(ecu);
  std::optional<Status> done;
  tester.Send(Bytes(101), [&](const Status& s) { done = s; });
  loop_.RunUntilIdle();
  EXPECT_THAT(*done, IsError(Code::kOutOfRange, HasSubstr("N_BUFFER_OVFLW")));
  EXPECT_TRUE(at_ecu.messages.empty());
  EXPECT_EQ(On(0x7E8).at(0).frame.data[0], 0x32);
  // The next message goes through.
  tester.Send(Bytes(100), [&](const Status& s) { done = s; });
  loop_.RunUntilIdle();
  EXPECT_THAT(*done, IsOk());
  EXPECT_EQ(at_ecu.messages.size(), 1u);
}

TEST_F(IsoTp, InvalidFlowStatus_Aborts) {
  Channel tester(*tester_port_, kTester);
  std::optional<Status> done;
  tester.Send(Bytes(20), [&](const Status& s) { done = s; });
  loop_.RunFor(milliseconds(1));
  ASSERT_THAT(
      raw_port_->Send(Frame::Classic(0x7E8, false, {0x37, 0, 0, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC})),
      IsOk());
  loop_.RunUntilIdle();
  EXPECT_THAT(*done, IsError(Code::kMalformed, HasSubstr("N_INVALID_FS")));
}

TEST_F(IsoTp, Timeout_Bs_NoFlowControl) {
  Channel tester(*tester_port_, kTester);  // nobody listens on 0x7E0, though the ECU acks
  std::optional<Status> done;
  std::optional<int64_t> at;
  tester.Send(Bytes(20), [&](const Status& s) {
    done = s;
    at = Us(loop_.Now());
  });
  loop_.RunUntilIdle();
  EXPECT_THAT(*done, IsError(Code::kUnavailable, HasSubstr("N_TIMEOUT_Bs")));
  EXPECT_EQ(*at, Us(On(0x7E0)[0].at) + 1'000'000) << "N_Bs counts from the FF's confirmation";
}

TEST_F(IsoTp, Timeout_Cr_SenderStopsMidMessage) {
  Channel ecu(*ecu_port_, kEcu);
  Inbox at_ecu;
  at_ecu.Attach(ecu);
  // A raw sender: the first frame and one consecutive frame, then silence.
  ASSERT_THAT(raw_port_->Send(Frame::Classic(0x7E0, false, {0x10, 20, 1, 2, 3, 4, 5, 6})), IsOk());
  loop_.RunFor(milliseconds(5));
  ASSERT_THAT(raw_port_->Send(Frame::Classic(0x7E0, false, {0x21, 7, 8, 9, 10, 11, 12, 13})),
              IsOk());
  loop_.RunUntilIdle();
  ASSERT_EQ(at_ecu.errors.size(), 1u);
  EXPECT_THAT(at_ecu.errors[0], IsError(Code::kUnavailable, HasSubstr("N_TIMEOUT_Cr")));
  EXPECT_THAT(at_ecu.errors[0], IsError(Code::kUnavailable, HasSubstr("13 of 20 bytes")));
  EXPECT_FALSE(ecu.receiving());
}

TEST_F(IsoTp, Timeout_As_FrameNeverLeaves) {
  // Alone on a bus, a node's frame is never acknowledged: the controller retries, N_As expires.
  SimLoop loop;
  can::SimBus lonely(loop, {});
  auto port = lonely.Attach("alone");
  Channel tester(*port, kTester, {.n_as = milliseconds(70)});
  std::optional<Status> done;
  tester.Send(Bytes(3), [&](const Status& s) { done = s; });
  loop.RunFor(milliseconds(100));
  ASSERT_TRUE(done);
  EXPECT_THAT(*done, IsError(Code::kUnavailable, HasSubstr("N_TIMEOUT_A")));
  EXPECT_THAT(*done, IsError(Code::kUnavailable, HasSubstr("N_As (70 ms)")));
}

TEST_F(IsoTp, Timeout_Ar_FlowControlNeverLeaves) {
  // The ECU takes 1 ms before its flow control; the others leave the bus meanwhile.
  Channel ecu(*ecu_port_, kEcu, {.n_ar = milliseconds(50), .n_br = milliseconds(1)});
  Inbox at_ecu;
  at_ecu.Attach(ecu);
  ASSERT_THAT(raw_port_->Send(Frame::Classic(0x7E0, false, {0x10, 20, 1, 2, 3, 4, 5, 6})), IsOk());
  loop_.RunFor(microseconds(300));  // the FF is through
  raw_port_.reset();
  tester_port_.reset();  // the ECU is alone: its flow control is never acknowledged
  loop_.RunFor(milliseconds(60));
  ASSERT_EQ(at_ecu.errors.size(), 1u);
  EXPECT_THAT(at_ecu.errors[0], IsError(Code::kUnavailable, HasSubstr("N_Ar (50 ms)")));
}

TEST_F(IsoTp, WrongSequenceNumber_AbortsTheReception) {
  Channel ecu(*ecu_port_, kEcu);
  Inbox at_ecu;
  at_ecu.Attach(ecu);
  ASSERT_THAT(raw_port_->Send(Frame::Classic(0x7E0, false, {0x10, 20, 1, 2, 3, 4, 5, 6})), IsOk());
  loop_.RunFor(milliseconds(2));
  ASSERT_THAT(raw_port_->Send(Frame::Classic(0x7E0, false, {0x22, 7, 8, 9, 10, 11, 12, 13})),
              IsOk());
  loop_.RunUntilIdle();
  ASSERT_EQ(at_ecu.errors.size(), 1u);
  EXPECT_THAT(at_ecu.errors[0],
              IsError(Code::kMalformed, HasSubstr("N_WRONG_SN: ISO-TP 7E8/7E0: consecutive frame "
                                                  "with sequence number 2, expected 1")));
  EXPECT_TRUE(at_ecu.messages.empty());
}

TEST_F(IsoTp, UnexpectedFrames_NewSingleOrFirstFrameWins_StrayOnesIgnored) {
  Channel ecu(*ecu_port_, kEcu);
  Inbox at_ecu;
  at_ecu.Attach(ecu);
  // A stray consecutive frame and a stray flow control: ignored.
  ASSERT_THAT(raw_port_->Send(Frame::Classic(0x7E0, false, {0x21, 1, 2, 3, 4, 5, 6, 7})), IsOk());
  ASSERT_THAT(raw_port_->Send(Frame::Classic(0x7E0, false, {0x30, 0, 0})), IsOk());
  // A first frame, then a single frame before its consecutive frames.
  ASSERT_THAT(raw_port_->Send(Frame::Classic(0x7E0, false, {0x10, 20, 1, 2, 3, 4, 5, 6})), IsOk());
  ASSERT_THAT(raw_port_->Send(Frame::Classic(0x7E0, false, {0x02, 0x3E, 0x00})), IsOk());
  loop_.RunUntilIdle();
  ASSERT_EQ(at_ecu.messages.size(), 1u);
  EXPECT_EQ(at_ecu.messages[0], (std::vector<uint8_t>{0x3E, 0x00}));
  ASSERT_EQ(at_ecu.errors.size(), 1u);
  EXPECT_THAT(at_ecu.errors[0], IsError(Code::kMalformed, HasSubstr("N_UNEXP_PDU")));
  EXPECT_EQ(ecu.stats().frames_ignored, 2u);
  // A first frame during a reception starts the new message.
  Channel tester(*tester_port_, kTester);
  ASSERT_THAT(raw_port_->Send(Frame::Classic(0x7E0, false, {0x10, 20, 9, 9, 9, 9, 9, 9})), IsOk());
  loop_.RunFor(milliseconds(1));
  tester.Send(Bytes(30));
  loop_.RunUntilIdle();
  ASSERT_EQ(at_ecu.messages.size(), 2u);
  EXPECT_EQ(at_ecu.messages[1], Bytes(30));
  EXPECT_EQ(at_ecu.errors.size(), 2u);
}

TEST_F(IsoTp, ExtendedAndMixedAddressing_29Bit_ManyChannelsOnOneBus) {
  // Extended addressing: several ECUs share CAN identifiers, the first byte names the target.
  Address t1{.tx_id = 0x6F1,
             .rx_id = 0x6F8,
             .mode = Addressing::kExtended,
             .tx_address = 0x10,
             .rx_address = 0xF1};
  Address e1{.tx_id = 0x6F8,
             .rx_id = 0x6F1,
             .mode = Addressing::kExtended,
             .tx_address = 0xF1,
             .rx_address = 0x10};
  Address e2 = e1;
  e2.rx_address = 0x20;
  // Mixed addressing on 29-bit identifiers (normal fixed style ids with an address extension).
  Address t3{.tx_id = 0x18CE10F1,
             .rx_id = 0x18CEF110,
             .extended_ids = true,
             .mode = Addressing::kMixed,
             .tx_address = 0x55,
             .rx_address = 0x55};
  Address e3{.tx_id = 0x18CEF110,
             .rx_id = 0x18CE10F1,
             .extended_ids = true,
             .mode = Addressing::kMixed,
             .tx_address = 0x55,
             .rx_address = 0x55};
  Channel tester1(*tester_port_, t1), tester3(*tester_port_, t3);
  Channel ecu1(*ecu_port_, e1), ecu3(*ecu_port_, e3);
  Channel ecu2(*raw_port_, e2);
  Inbox in1, in2, in3, back1;
  in1.Attach(ecu1);
  in2.Attach(ecu2);
  in3.Attach(ecu3);
  back1.Attach(tester1);
  ecu1.OnMessage([&](std::vector<uint8_t> m) {
    in1.messages.push_back(m);
    ecu1.Send(Bytes(50, 77));  // answers while the other transfer runs
  });
  tester1.Send(Bytes(100, 1));
  tester3.Send(Bytes(200, 2));
  loop_.RunUntilIdle();
  ASSERT_EQ(in1.messages.size(), 1u);
  EXPECT_EQ(in1.messages[0], Bytes(100, 1));
  EXPECT_TRUE(in2.messages.empty()) << "addressed to 0x10, not 0x20";
  ASSERT_EQ(in3.messages.size(), 1u);
  EXPECT_EQ(in3.messages[0], Bytes(200, 2));
  ASSERT_EQ(back1.messages.size(), 1u);
  EXPECT_EQ(back1.messages[0], Bytes(50, 77));
  EXPECT_EQ(On(0x6F1)[0].frame.data[0], 0x10);
  EXPECT_EQ(On(0x6F1)[0].frame.data[1], 0x10) << "then the FF's N_PCI";
  EXPECT_EQ(On(0x18CE10F1)[0].frame.data[0], 0x55);
}

TEST_F(IsoTp, FunctionalRequests_ReachEveryEcu_SingleFramesOnly) {
  Channel functional(*tester_port_, {.tx_id = 0x7DF, .rx_id = 0x7E8, .functional = true});
  Channel ecu_a(*ecu_port_, {.tx_id = 0x7E8, .rx_id = 0x7DF, .functional = true});
  Channel ecu_b(*raw_port_, {.tx_id = 0x7E9, .rx_id = 0x7DF, .functional = true});
  Inbox a, b;
  a.Attach(ecu_a);
  b.Attach(ecu_b);
  std::optional<Status> done;
  functional.Send({0x3E, 0x80}, [&](const Status& s) { done = s; });
  loop_.RunUntilIdle();
  EXPECT_THAT(*done, IsOk());
  EXPECT_EQ(a.messages.size(), 1u);
  EXPECT_EQ(b.messages.size(), 1u);
  functional.Send(Bytes(8), [&](const Status& s) { done = s; });
  EXPECT_THAT(*done, IsError(Code::kInvalidArgument, HasSubstr("single frames only")));
  functional.Send({}, [&](const Status& s) { done = s; });
  EXPECT_THAT(*done, IsError(Code::kInvalidArgument, HasSubstr("empty")));
}

TEST_F(IsoTp, Padding_OnOrOff) {
  Channel padded(*tester_port_, kTester);
  Channel bare(*raw_port_, {.tx_id = 0x7E1, .rx_id = 0x7E9}, {.padding = std::nullopt});
  Channel ecu(*ecu_port_, kEcu);
  Channel ecu2(*ecu_port_, {.tx_id = 0x7E9, .rx_id = 0x7E1}, {.padding = std::nullopt});
  Inbox in1, in2;
  in1.Attach(ecu);
  in2.Attach(ecu2);
  padded.Send({0x10, 0x03});
  bare.Send({0x10, 0x03});
  bare.Send(Bytes(10));
  loop_.RunUntilIdle();
  EXPECT_EQ(ToString(On(0x7E0)[0].frame), "7E0#021003CCCCCCCCCC");
  EXPECT_EQ(ToString(On(0x7E1)[0].frame), "7E1#021003");
  EXPECT_EQ(On(0x7E1).back().frame.length(), 5) << "the last CF: PCI and 4 bytes";
  EXPECT_EQ(On(0x7E9)[0].frame.length(), 3) << "an unpadded flow control";
  EXPECT_EQ(in2.messages.size(), 2u);
}

TEST_F(IsoTp, BitErrorsOnTheBus_MessagesStillWhole) {
  bus_->SetErrorRate(0.05);
  Channel tester(*tester_port_, kTester);
  Channel ecu(*ecu_port_, kEcu);
  Inbox at_ecu;
  at_ecu.Attach(ecu);
  for (int i = 0; i < 10; ++i) tester.Send(Bytes(300 + i, static_cast<uint8_t>(i)));
  loop_.RunUntilIdle();
  ASSERT_EQ(at_ecu.messages.size(), 10u);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(at_ecu.messages[i], Bytes(300 + i, static_cast<uint8_t>(i)));
  EXPECT_GT(bus_->stats().error_frames, 10u);
}

}  // namespace
}  // namespace aloft::isotp

namespace aloft::isotp {
namespace {

// A gateway's channel answers only first frames that follow a request of its own: another
// tester on the same identifiers gets its transfer without a second flow control.
TEST_F(IsoTp, RxWindow_UnsolicitedFirstFramesLeftToTheirTester) {
  Channel ecu(*ecu_port_, kEcu);
  Channel tester(*tester_port_, kTester);
  Channel gateway(*raw_port_, kTester, {.rx_window = std::chrono::seconds(10)});
  Inbox at_tester, at_gateway;
  at_tester.Attach(tester);
  at_gateway.Attach(gateway);
  ecu.Send(Bytes(30));  // an answer to the tester
  loop_.RunUntilIdle();
  EXPECT_EQ(at_tester.messages.size(), 1u);
  EXPECT_TRUE(at_gateway.messages.empty());
  EXPECT_EQ(On(0x7E0).size(), 1u) << "one flow control, the tester's";
  // After the gateway sent a request itself, it takes the answer.
  gateway.Send({0x22, 0xF1, 0x90});
  loop_.RunUntilIdle();
  ecu.Send(Bytes(30, 7));
  loop_.RunUntilIdle();
  EXPECT_EQ(at_gateway.messages.size(), 1u);
}

// A CanBus whose transmit confirmations come 1 ms late (a remote bus, such as a hub's client):
// consecutive frames that arrive before our flow control is confirmed are not lost.
class LateConfirmations final : public can::CanBus {
 public:
  explicit LateConfirmations(can::CanBus& inner) : inner_(inner) {
    inner_.AddListener([this](const can::CanEvent& e) {
      if (e.kind != can::CanEvent::Kind::kSent) return listeners_.Notify(e);
      inner_.loop().After(std::chrono::milliseconds(1), [this, e] { listeners_.Notify(e); });
    });
  }
  Status Send(const can::Frame& f) override { return inner_.Send(f); }
  int AddListener(Listener l) override { return listeners_.Add(std::move(l)); }
  void RemoveListener(int id) override { listeners_.Remove(id); }
  can::NodeState state() const override { return inner_.state(); }
  can::BitRates rates() const override { return inner_.rates(); }
  bool fd() const override { return inner_.fd(); }
  EventLoop& loop() override { return inner_.loop(); }
  std::string name() const override { return "late"; }

 private:
  can::CanBus& inner_;
  can::Listeners listeners_;
};

TEST_F(IsoTp, ConsecutiveFramesBeforeOurFlowControlIsConfirmed_AreKept) {
  LateConfirmations late(*tester_port_);
  Channel tester(late, kTester);
  Channel ecu(*ecu_port_, kEcu);
  Inbox at_tester;
  at_tester.Attach(tester);
  ecu.Send(Bytes(100, 3));
  loop_.RunUntilIdle();
  ASSERT_EQ(at_tester.messages.size(), 1u);
  EXPECT_EQ(at_tester.messages[0], Bytes(100, 3));
}

}  // namespace
}  // namespace aloft::isotp
