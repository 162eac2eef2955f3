// libFuzzer target for the DoIP parsers: the stream framer and the entity behind it (a TCP
// connection's bytes, on simulated time), the UDP datagram handler, and the payload parsers. The
// entity routes 0x1001 to a UDS server, so diagnostic messages that get through reach one.
//
//   build/asan/fuzz/doip_parser_fuzz -max_total_time=60 corpus_dir
#include <cstddef>
#include <cstdint>

#include "doip/entity.h"
#include "net/stream.h"
#include "uds/memory_link.h"
#include "uds/server.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace aloft;
  const ByteSpan input(data, size);
  (void)doip::ParseAnnouncement(input);
  (void)doip::ParseDiagnostic(input);
  SimLoop loop;
  auto [entity_side, ecu_side] = uds::MemoryLink::Pair(loop);
  uds::Server server(loop, {.name = "ecm"});
  server.SetDid(0xF190, {.value = Bytes(17, 'W')});
  server.Attach(*ecu_side);
  {
    doip::Entity entity(loop, {});
    entity.Route(0x1001, *entity_side);
    (void)entity.Datagram(input);
    auto [tester, end] = net::SimStream::Pair(loop);
    entity.Accept(std::move(end));
    // The bytes arrive in two pieces, split where the first byte says.
    const size_t cut = size ? data[0] % (size + 1) : 0;
    tester->Write(Bytes(data, data + cut));
    tester->Write(Bytes(data + cut, data + size));
    loop.RunUntilIdle(std::chrono::seconds(3));
  }
  loop.RunUntilIdle(std::chrono::seconds(1));
  return 0;
}
