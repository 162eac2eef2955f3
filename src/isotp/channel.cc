#include "isotp/channel.h"

#include <algorithm>
#include <cstdio>

namespace aloft::isotp {

using std::chrono::nanoseconds;

Channel::Channel(can::CanBus& bus, Address address, Params params)
    : bus_(bus), loop_(bus.loop()), address_(address), params_(std::move(params)) {
  if (!params_.fd) params_.tx_dl = 8;
  params_.tx_dl = can::DlcToLength(can::LengthToDlc(std::clamp(params_.tx_dl, 8, 64)), true);
  listener_ = bus_.AddListener([this](const can::CanEvent& e) { OnBusEvent(e); });
}

Channel::~Channel() {
  bus_.RemoveListener(listener_);
  if (tx_.timer) loop_.Cancel(tx_.timer);
  if (rx_.timer) loop_.Cancel(rx_.timer);
}

std::string Channel::name() const {
  char buf[48];
  std::snprintf(buf, sizeof buf, address_.extended_ids ? "%08X/%08X" : "%03X/%03X", address_.tx_id,
                address_.rx_id);
  return buf;
}

Error Channel::Fail(Code code, const char* result, const std::string& what) const {
  return Error(code, std::string(result) + ": ISO-TP " + name() + ": " + what);
}

can::Frame Channel::MakeFrame(const std::vector<uint8_t>& pdu) const {
  std::vector<uint8_t> bytes;
  bytes.reserve(pdu.size() + 1);
  if (address_.address_bytes()) bytes.push_back(address_.tx_address);
  bytes.insert(bytes.end(), pdu.begin(), pdu.end());
  if (params_.fd) {
    return can::Frame::Fd(address_.tx_id, address_.extended_ids, bytes, params_.brs,
                          params_.padding.value_or(0xCC));
  }
  if (params_.padding) bytes.resize(8, *params_.padding);
  return can::Frame::Classic(address_.tx_id, address_.extended_ids, bytes);
}

void Channel::OnBusEvent(const can::CanEvent& e) {
  switch (e.kind) {
    case can::CanEvent::Kind::kFrame:
      OnFrame(e.frame);
      return;
    case can::CanEvent::Kind::kSent:
      if (tx_.phase == TxPhase::kConfirm && e.frame == tx_.pending) {
        TxConfirmed();
      } else if (rx_.fc_pending && e.frame == rx_.fc) {
        RxConfirmed();
      }
      return;
    default:
      return;  // error frames are retransmitted by the controller; timeouts cover the rest
  }
}

void Channel::OnFrame(const can::Frame& f) {
  if (f.remote || f.id != address_.rx_id || f.extended != address_.extended_ids) return;
  std::span<const uint8_t> payload = f.payload();
  const int ab = address_.address_bytes();
  if (ab) {
    if (payload.empty() || payload[0] != address_.rx_address) return;
    payload = payload.subspan(1);
  }
  ++stats_.frames_received;
  if (params_.rx_window.count() > 0 && (!sent_any_ || loop_.Now() - last_tx_ > params_.rx_window) &&
      !rx_.active) {
    ++stats_.frames_ignored;  // not an answer to anything this channel sent
    return;
  }
  Result<Pdu> pdu = Decode(payload, f.length(), ab);
  if (!pdu.ok()) {
    ++stats_.frames_ignored;
    return;
  }
  if (address_.functional && pdu->type != PduType::kSingle) {
    ++stats_.frames_ignored;  // functional addressing carries single frames only
    return;
  }
  switch (pdu->type) {
    case PduType::kSingle:
      OnSingle(*pdu);
      return;
    case PduType::kFirst:
      OnFirst(*pdu, f.length());
      return;
    case PduType::kConsecutive:
      OnConsecutive(*pdu);
      return;
    case PduType::kFlowControl:
      OnFlowControl(*pdu);
      return;
  }
}

// --- sending ---------------------------------------------------------------------------------

void Channel::Send(std::vector<uint8_t> message, StatusHandler done) {
  const int ab = address_.address_bytes();
  Status refused = OkStatus();
  if (message.empty()) {
    refused = Error(Code::kInvalidArgument, "ISO-TP " + name() + ": an empty message");
  } else if (message.size() > 0xFFFFFFFFu) {
    refused = Error(Code::kInvalidArgument, "ISO-TP " + name() + ": a message above 4 GiB");
  } else if (address_.functional &&
             message.size() > static_cast<size_t>(SingleFrameCapacity(params_.tx_dl, ab))) {
    refused = Error(Code::kInvalidArgument,
                    "ISO-TP " + name() + ": a functional request of " +
                        std::to_string(message.size()) + " bytes (single frames only, at most " +
                        std::to_string(SingleFrameCapacity(params_.tx_dl, ab)) + ")");
  }
  if (!refused.ok()) {
    ++stats_.send_errors;
    if (done) done(refused);
    return;
  }
  queue_.push_back({std::move(message), std::move(done)});
  StartNext();
}

void Channel::StartNext() {
  if (tx_.phase != TxPhase::kIdle || queue_.empty()) return;
  tx_ = Tx{};
  tx_.out = std::move(queue_.front());
  queue_.pop_front();
  const int ab = address_.address_bytes();
  const std::vector<uint8_t>& m = tx_.out.message;
  if (m.size() <= static_cast<size_t>(SingleFrameCapacity(params_.tx_dl, ab))) {
    SendTxFrame(EncodeSingle(m, params_.tx_dl, ab), Sent::kSingle);
    return;
  }
  tx_.offset =
      static_cast<size_t>(FirstFrameCapacity(params_.tx_dl, ab, static_cast<uint32_t>(m.size())));
  tx_.sn = 1;
  SendTxFrame(EncodeFirst(m, params_.tx_dl, ab), Sent::kFirst);
}

void Channel::TxTimer(nanoseconds after, std::function<void()> fn) {
  if (tx_.timer) loop_.Cancel(tx_.timer);
  tx_.timer = loop_.After(after, [this, fn = std::move(fn)] {
    tx_.timer = 0;
    fn();
  });
}

void Channel::SendTxFrame(const std::vector<uint8_t>& pdu, Sent what) {
  tx_.pending = MakeFrame(pdu);
  tx_.last = what;
  tx_.phase = TxPhase::kConfirm;
  Status sent = bus_.Send(tx_.pending);
  if (!sent.ok()) {
    TxDone(Fail(sent.error().code(), "N_ERROR", sent.error().message()));
    return;
  }
  ++stats_.frames_sent;
  sent_any_ = true;
  last_tx_ = loop_.Now();
  TxTimer(params_.n_as, [this] {
    TxDone(Fail(Code::kUnavailable, "N_TIMEOUT_A",
                "a frame was not sent within N_As (" +
                    std::to_string(params_.n_as.count() / 1'000'000) + " ms)"));
  });
}

void Channel::TxConfirmed() {
  if (tx_.timer) loop_.Cancel(tx_.timer);
  tx_.timer = 0;
  const auto wait_fc = [this] {
    tx_.phase = TxPhase::kWaitFlowControl;
    TxTimer(params_.n_bs, [this] {
      TxDone(Fail(Code::kUnavailable, "N_TIMEOUT_Bs",
                  "no flow control within N_Bs (" +
                      std::to_string(params_.n_bs.count() / 1'000'000) + " ms)"));
    });
  };
  switch (tx_.last) {
    case Sent::kSingle:
      TxDone(OkStatus());
      return;
    case Sent::kFirst:
      wait_fc();
      return;
    case Sent::kConsecutive:
      if (tx_.offset >= tx_.out.message.size()) {
        TxDone(OkStatus());
      } else if (tx_.block_left > 0 && --tx_.block_left == 0) {
        wait_fc();
      } else {
        tx_.phase = TxPhase::kGap;
        const nanoseconds gap = std::max<nanoseconds>(tx_.st_min, params_.n_cs);
        if (gap.count() == 0) {
          SendNextConsecutive();
        } else {
          TxTimer(gap, [this] { SendNextConsecutive(); });
        }
      }
      return;
  }
}

void Channel::SendNextConsecutive() {
  const std::vector<uint8_t>& m = tx_.out.message;
  const size_t n = std::min(m.size() - tx_.offset, static_cast<size_t>(ConsecutiveFrameCapacity(
                                                       params_.tx_dl, address_.address_bytes())));
  std::span<const uint8_t> part(m.data() + tx_.offset, n);
  tx_.offset += n;
  const uint8_t sn = tx_.sn;
  tx_.sn = static_cast<uint8_t>((tx_.sn + 1) & 0x0F);
  SendTxFrame(EncodeConsecutive(sn, part), Sent::kConsecutive);
}

void Channel::OnFlowControl(const Pdu& pdu) {
  if (tx_.phase != TxPhase::kWaitFlowControl) {
    ++stats_.frames_ignored;  // an unexpected flow control is ignored
    return;
  }
  switch (static_cast<FlowStatus>(pdu.fs)) {
    case FlowStatus::kContinue:
      tx_.waits = 0;
      tx_.block_left = pdu.bs;
      tx_.st_min = StMin(pdu.st_min);
      tx_.phase = TxPhase::kGap;
      if (params_.n_cs.count() == 0) {
        if (tx_.timer) loop_.Cancel(tx_.timer);
        tx_.timer = 0;
        SendNextConsecutive();
      } else {
        TxTimer(params_.n_cs, [this] { SendNextConsecutive(); });
      }
      return;
    case FlowStatus::kWait:
      if (++tx_.waits > params_.max_wait_frames) {
        TxDone(Fail(Code::kUnavailable, "N_WFT_OVRN",
                    "the receiver sent more than " + std::to_string(params_.max_wait_frames) +
                        " flow control WAITs in a row"));
        return;
      }
      TxTimer(params_.n_bs, [this] {
        TxDone(
            Fail(Code::kUnavailable, "N_TIMEOUT_Bs", "no flow control within N_Bs after a WAIT"));
      });
      return;
    case FlowStatus::kOverflow:
      TxDone(Fail(Code::kOutOfRange, "N_BUFFER_OVFLW",
                  "the receiver cannot take a message of " +
                      std::to_string(tx_.out.message.size()) + " bytes"));
      return;
    default:
      TxDone(Fail(Code::kMalformed, "N_INVALID_FS",
                  "flow control with flow status " + std::to_string(pdu.fs)));
      return;
  }
}

void Channel::TxDone(Status status) {
  if (tx_.timer) loop_.Cancel(tx_.timer);
  tx_.timer = 0;
  StatusHandler done = std::move(tx_.out.done);
  tx_ = Tx{};
  if (status.ok()) {
    ++stats_.messages_sent;
  } else {
    ++stats_.send_errors;
  }
  if (done) done(status);
  StartNext();
}

// --- receiving -------------------------------------------------------------------------------

void Channel::RxTimer(nanoseconds after, std::function<void()> fn) {
  if (rx_.timer) loop_.Cancel(rx_.timer);
  rx_.timer = loop_.After(after, [this, fn = std::move(fn)] {
    rx_.timer = 0;
    fn();
  });
}

void Channel::RxReset() {
  if (rx_.timer) loop_.Cancel(rx_.timer);
  rx_ = Rx{};
}

void Channel::RxFail(Status status) {
  RxReset();
  ++stats_.receive_errors;
  if (on_rx_error_) on_rx_error_(status);
}

void Channel::OnSingle(const Pdu& pdu) {
  if (rx_.active) {
    RxFail(Fail(Code::kMalformed, "N_UNEXP_PDU",
                "a single frame interrupted a segmented message at " +
                    std::to_string(rx_.message.size()) + " of " + std::to_string(rx_.length) +
                    " bytes"));
  }
  ++stats_.messages_received;
  if (on_message_) on_message_(std::vector<uint8_t>(pdu.data.begin(), pdu.data.end()));
}

void Channel::OnFirst(const Pdu& pdu, int can_dl) {
  if (rx_.active) {
    RxFail(Fail(Code::kMalformed, "N_UNEXP_PDU",
                "a first frame interrupted a segmented message at " +
                    std::to_string(rx_.message.size()) + " of " + std::to_string(rx_.length) +
                    " bytes"));
  }
  if (pdu.length > params_.max_message) {
    RxReset();
    SendFlowControl(FlowStatus::kOverflow);
    return;
  }
  rx_.active = true;
  rx_.length = pdu.length;
  rx_.message.reserve(pdu.length);
  rx_.message.assign(pdu.data.begin(), pdu.data.end());
  rx_.sn = 1;
  rx_.rx_dl = can_dl;
  rx_.waits_left = params_.wait_frames;
  if (on_first_frame_) on_first_frame_(pdu.length);
  NextFlowControl();
}

void Channel::NextFlowControl() {
  const FlowStatus fs = rx_.waits_left > 0 ? FlowStatus::kWait : FlowStatus::kContinue;
  if (fs == FlowStatus::kWait) --rx_.waits_left;
  if (params_.n_br.count() == 0) {
    SendFlowControl(fs);
  } else {
    RxTimer(params_.n_br, [this, fs] { SendFlowControl(fs); });
  }
}

void Channel::SendFlowControl(FlowStatus fs) {
  rx_.fc = MakeFrame(EncodeFlowControl(fs, params_.block_size, params_.st_min));
  rx_.fc_status = fs;
  Status sent = bus_.Send(rx_.fc);
  if (!sent.ok()) {
    if (rx_.active) RxFail(Fail(sent.error().code(), "N_ERROR", sent.error().message()));
    return;
  }
  ++stats_.frames_sent;
  rx_.fc_pending = true;
  RxTimer(params_.n_ar, [this] {
    rx_.fc_pending = false;
    if (rx_.active) {
      RxFail(Fail(Code::kUnavailable, "N_TIMEOUT_A",
                  "a flow control was not sent within N_Ar (" +
                      std::to_string(params_.n_ar.count() / 1'000'000) + " ms)"));
    }
  });
}

void Channel::RxConfirmed() {
  rx_.fc_pending = false;
  if (rx_.timer) loop_.Cancel(rx_.timer);
  rx_.timer = 0;
  if (!rx_.active) return;  // an overflow answer
  if (rx_.fc_status == FlowStatus::kWait) {
    RxTimer(params_.wait_interval, [this] { NextFlowControl(); });
    return;
  }
  AwaitConsecutive();
}

void Channel::AwaitConsecutive() {
  RxTimer(params_.n_cr, [this] {
    RxFail(Fail(Code::kUnavailable, "N_TIMEOUT_Cr",
                "no consecutive frame within N_Cr (" +
                    std::to_string(params_.n_cr.count() / 1'000'000) + " ms) at " +
                    std::to_string(rx_.message.size()) + " of " + std::to_string(rx_.length) +
                    " bytes"));
  });
}

void Channel::OnConsecutive(const Pdu& pdu) {
  // A consecutive frame while our continue-to-send awaits its confirmation: the sender heard a
  // flow control, so ours is out (a bus whose confirmations come late, such as a remote hub).
  if (rx_.active && rx_.fc_pending && rx_.fc_status == FlowStatus::kContinue) RxConfirmed();
  if (!rx_.active || rx_.fc_pending || rx_.fc_status != FlowStatus::kContinue) {
    ++stats_.frames_ignored;  // not expecting one
    return;
  }
  if (pdu.sn != rx_.sn) {
    RxFail(Fail(Code::kMalformed, "N_WRONG_SN",
                "consecutive frame with sequence number " + std::to_string(pdu.sn) + ", expected " +
                    std::to_string(rx_.sn)));
    return;
  }
  const size_t remaining = rx_.length - rx_.message.size();
  const size_t expected =
      std::min(remaining,
               static_cast<size_t>(ConsecutiveFrameCapacity(rx_.rx_dl, address_.address_bytes())));
  if (pdu.data.size() < expected) {
    ++stats_.frames_ignored;  // shorter than the first frame's length promised: ignored
    return;
  }
  rx_.message.insert(rx_.message.end(), pdu.data.begin(), pdu.data.begin() + expected);
  rx_.sn = static_cast<uint8_t>((rx_.sn + 1) & 0x0F);
  if (rx_.message.size() == rx_.length) {
    std::vector<uint8_t> message = std::move(rx_.message);
    RxReset();
    ++stats_.messages_received;
    if (on_message_) on_message_(std::move(message));
    return;
  }
  if (params_.block_size && ++rx_.block_count == params_.block_size) {
    rx_.block_count = 0;
    rx_.waits_left = params_.wait_frames;
    if (rx_.timer) loop_.Cancel(rx_.timer);
    rx_.timer = 0;
    NextFlowControl();
    return;
  }
  AwaitConsecutive();
}

}  // namespace aloft::isotp
