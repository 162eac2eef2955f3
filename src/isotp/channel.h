// One ISO 15765-2:2016 transport channel on a CAN bus: a pair of CAN identifiers (plus an address
// byte in extended and mixed addressing) carrying messages of up to 4 GiB in both directions at
// once. Segmentation, flow control (block size, STmin, WAIT, overflow), the N_As/N_Bs/N_Cr/N_Ar
// timeouts and padding follow the standard; the channel runs on its bus's EventLoop.
//
//   isotp::Channel tester(*port, {.tx_id = 0x7E0, .rx_id = 0x7E8});
//   tester.OnMessage([](std::vector<uint8_t> msg) { ... });
//   tester.Send({0x22, 0xF1, 0x90}, [](const Status& s) { ... });  // N_USData.confirm
//
// Failures carry the standard's result name first: "N_TIMEOUT_Bs: ...", "N_WRONG_SN: ...".
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "can/bus.h"
#include "isotp/pdu.h"

namespace aloft::isotp {

enum class Addressing {
  kNormal,    // the CAN identifier is the address
  kExtended,  // the first data byte is the target address (N_TA)
  kMixed,     // the first data byte is the address extension (N_AE)
};

struct Address {
  uint32_t tx_id = 0;
  uint32_t rx_id = 0;
  bool extended_ids = false;  // 29-bit CAN identifiers
  Addressing mode = Addressing::kNormal;
  uint8_t tx_address = 0;  // extended / mixed: the first byte of the frames this channel sends
  uint8_t rx_address = 0;  // extended / mixed: the first byte of the frames meant for it
  // Functional (one to many) addressing: single frames only, both ways.
  bool functional = false;
  int address_bytes() const { return mode == Addressing::kNormal ? 0 : 1; }
};

struct Params {
  bool fd = false;  // send CAN FD frames (it receives both kinds either way)
  int tx_dl = 8;    // 8 for classic CAN; 8, 12, 16, 20, 24, 32, 48 or 64 for CAN FD
  bool brs = true;  // CAN FD: the data phase at the data rate
  // Classic frames are padded to 8 bytes with this byte; none: frames as short as their data.
  // CAN FD frames are always padded up to a valid length (with 0xCC when this is none).
  std::optional<uint8_t> padding = 0xCC;

  // As a receiver: what its flow control frames announce, and its buffer.
  uint8_t block_size = 0;           // BS: consecutive frames per flow control (0: all)
  uint8_t st_min = 0;               // STmin, raw (0x00..0x7F ms, 0xF1..0xF9 100..900 us)
  uint32_t max_message = 1u << 20;  // longer first frames are answered with overflow
  int wait_frames = 0;              // flow control WAITs sent before each continue-to-send
  std::chrono::nanoseconds wait_interval = std::chrono::milliseconds(100);

  // A gateway's channel to an ECU that external testers may also talk to: it takes messages
  // only within this long after it sent one itself (0: always), so that it does not answer,
  // with a flow control of its own, first frames meant for another tester.
  std::chrono::nanoseconds rx_window{0};

  // As a sender: the WAITs it accepts in a row (N_WFTmax).
  int max_wait_frames = 10;

  // Timeouts (the standard's values: 1000 ms each).
  std::chrono::nanoseconds n_as = std::chrono::seconds(1);  // our frame onto the bus
  std::chrono::nanoseconds n_ar = std::chrono::seconds(1);  // our flow control onto the bus
  std::chrono::nanoseconds n_bs = std::chrono::seconds(1);  // a flow control after FF / a block
  std::chrono::nanoseconds n_cr = std::chrono::seconds(1);  // the next consecutive frame
  // Our own reaction times (performance, not timeouts): before a flow control, before a CF.
  std::chrono::nanoseconds n_br{0};
  std::chrono::nanoseconds n_cs{0};
};

class Channel {
 public:
  using MessageHandler = std::function<void(std::vector<uint8_t> message)>;
  using StatusHandler = std::function<void(const Status& status)>;

  Channel(can::CanBus& bus, Address address, Params params = {});
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // N_USData.request: sent after the messages queued before it; `done` gets N_USData.confirm.
  // kInvalidArgument at once (through `done`) for an empty message, one above 4 GiB - 1, or one
  // longer than a single frame on a functional channel.
  void Send(std::vector<uint8_t> message, StatusHandler done = nullptr);
  // N_USData.indication: a whole message received.
  void OnMessage(MessageHandler handler) { on_message_ = std::move(handler); }
  // N_USDataFF.indication: a segmented message of `length` bytes has begun.
  void OnFirstFrame(std::function<void(uint32_t length)> handler) {
    on_first_frame_ = std::move(handler);
  }
  // A reception that ended in error (N_TIMEOUT_Cr, N_WRONG_SN, N_UNEXP_PDU, N_TIMEOUT_A).
  void OnReceiveError(StatusHandler handler) { on_rx_error_ = std::move(handler); }

  bool sending() const { return tx_.phase != TxPhase::kIdle; }
  bool receiving() const { return rx_.active; }
  const Address& address() const { return address_; }
  const Params& params() const { return params_; }
  std::string name() const;  // "7E0/7E8"

  struct Stats {
    uint64_t frames_sent = 0, frames_received = 0, frames_ignored = 0;
    uint64_t messages_sent = 0, messages_received = 0;
    uint64_t send_errors = 0, receive_errors = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  enum class TxPhase { kIdle, kConfirm, kWaitFlowControl, kGap };
  enum class Sent { kSingle, kFirst, kConsecutive };
  struct Outgoing {
    std::vector<uint8_t> message;
    StatusHandler done;
  };
  struct Tx {
    TxPhase phase = TxPhase::kIdle;
    Outgoing out;
    size_t offset = 0;
    uint8_t sn = 0;
    int block_left = 0;
    std::chrono::microseconds st_min{0};
    int waits = 0;
    Sent last = Sent::kSingle;
    can::Frame pending;
    TimerId timer = 0;
  };
  struct Rx {
    bool active = false;
    std::vector<uint8_t> message;
    uint32_t length = 0;
    uint8_t sn = 0;
    int block_count = 0;
    int rx_dl = 8;
    int waits_left = 0;
    bool fc_pending = false;
    FlowStatus fc_status = FlowStatus::kContinue;
    can::Frame fc;
    TimerId timer = 0;
  };

  void OnBusEvent(const can::CanEvent& e);
  void OnFrame(const can::Frame& f);
  can::Frame MakeFrame(const std::vector<uint8_t>& pdu) const;

  void StartNext();
  void SendTxFrame(const std::vector<uint8_t>& pdu, Sent what);
  void TxConfirmed();
  void SendNextConsecutive();
  void OnFlowControl(const Pdu& pdu);
  void TxDone(Status status);
  void TxTimer(std::chrono::nanoseconds after, std::function<void()> fn);

  void OnSingle(const Pdu& pdu);
  void OnFirst(const Pdu& pdu, int can_dl);
  void OnConsecutive(const Pdu& pdu);
  void SendFlowControl(FlowStatus fs);
  void NextFlowControl();
  void RxConfirmed();
  void AwaitConsecutive();
  void RxFail(Status status);
  void RxTimer(std::chrono::nanoseconds after, std::function<void()> fn);
  void RxReset();

  Error Fail(Code code, const char* result, const std::string& what) const;

  can::CanBus& bus_;
  EventLoop& loop_;
  EventLoop::TimePoint last_tx_{};
  bool sent_any_ = false;
  Address address_;
  Params params_;
  int listener_ = 0;
  std::deque<Outgoing> queue_;
  Tx tx_;
  Rx rx_;
  MessageHandler on_message_;
  std::function<void(uint32_t)> on_first_frame_;
  StatusHandler on_rx_error_;
  Stats stats_;
};

}  // namespace aloft::isotp
