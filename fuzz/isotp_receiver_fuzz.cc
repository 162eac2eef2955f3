// libFuzzer target for the ISO-TP receiver (isotp::Channel with the PDU decoder): an input is a
// run of CAN frames arriving at a channel on a simulated bus, on simulated time. Its first byte
// picks the channel's shape (classic or CAN FD, normal or extended addressing, block size); then
// each frame is a length byte (its low 7 bits: payload length, capped at 64; bit 7: a 5 ms pause
// before it), an identifier byte (even: the channel's receive identifier, odd: another one) and
// the payload. Whatever arrives, a delivered message is no longer than the channel accepts.
//
//   build/asan/fuzz/isotp_receiver_fuzz -max_total_time=60 corpus_dir
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "can/sim_bus.h"
#include "isotp/channel.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace aloft;
  if (size < 1) return 0;
  const uint8_t shape = data[0];
  const bool fd = shape & 1, extended = shape & 2;
  SimLoop loop;
  can::SimBus bus(loop, {.rates = {500'000, 2'000'000}, .fd = true, .tx_queue = 4096});
  auto rx_port = bus.Attach("receiver");
  auto tx_port = bus.Attach("sender");
  isotp::Address a{.tx_id = 0x7E8, .rx_id = 0x7E0};
  if (extended) {
    a.mode = isotp::Addressing::kExtended;
    a.tx_address = 0xF1;
    a.rx_address = 0x10;
  }
  isotp::Params p{.fd = fd,
                  .tx_dl = fd ? 64 : 8,
                  .block_size = static_cast<uint8_t>(shape >> 4),
                  .max_message = 8192};
  isotp::Channel channel(*rx_port, a, p);
  size_t delivered = 0;
  channel.OnMessage([&](std::vector<uint8_t> m) {
    if (m.size() > 8192 || m.empty()) std::abort();
    delivered += m.size();
  });
  channel.OnReceiveError([](const Status&) {});
  size_t at = 1;
  while (at + 2 <= size) {
    const uint8_t len_byte = data[at], id_byte = data[at + 1];
    at += 2;
    const size_t len = std::min<size_t>({static_cast<size_t>(len_byte & 0x7F), 64, size - at});
    can::Frame f;
    f.id = (id_byte & 1) ? 0x7E1 : 0x7E0;
    f.fd = len > 8 || (id_byte & 2);
    f.dlc = can::LengthToDlc(static_cast<int>(len));
    for (size_t i = 0; i < len; ++i) f.data[i] = data[at + i];
    at += len;
    if (len_byte & 0x80) loop.RunFor(std::chrono::milliseconds(5));
    (void)tx_port->Send(f);
  }
  loop.RunUntilIdle(std::chrono::seconds(5));
  return 0;
}
