// libFuzzer target for the UDS request parsers and the bootloader behind them: requests arrive
// at a simulated ECU (ecusim::Ecu on a small SimFlash) over a link in memory, on simulated time.
// An input is requests, each a length byte and its bytes. When the first byte is odd, the
// programming session is unlocked first (10 03, 31 01 02 03, 10 02, 27 01/02 with the right key),
// so that erase, download, transfer and the check routines see the fuzzer's bytes too. The ECU's
// flash persists from input to input, as a real one does.
//
//   build/asan/fuzz/uds_request_fuzz -max_total_time=60 corpus_dir
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "core/hash.h"
#include "ecusim/ecu.h"
#include "uds/memory_link.h"

namespace {

using namespace aloft;

struct World {
  SimLoop loop;
  std::string dir;
  std::unique_ptr<uds::MemoryLink> tester, ecu_side;
  std::unique_ptr<ecusim::Ecu> ecu;
  std::vector<uint8_t> last;
  World() {
    dir = std::filesystem::temp_directory_path() / ("aloft-uds-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::tie(tester, ecu_side) = uds::MemoryLink::Pair(loop);
    ecusim::EcuConfig c{.name = "ecm",
                        .layout = ecusim::BankLayout::kAb,
                        .app_size = 64 << 10,
                        .erase_block = 4096,
                        .max_block_length = 0x0102};
    c.timing = {std::chrono::microseconds(200), std::chrono::microseconds(100), 4096};
    ecu = std::move(ecusim::Ecu::Create(loop, c, dir).value());
    ecu->Attach(*ecu_side);
    tester->AddListener([this](const std::vector<uint8_t>& m) { last = m; });
  }
  ~World() { std::filesystem::remove_all(dir); }
  void Ask(std::vector<uint8_t> request) {
    last.clear();
    tester->Send(std::move(request), nullptr);
    loop.RunFor(std::chrono::milliseconds(20));
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* w = new World();
  if (size == 0) return 0;
  w->ecu->server().Reset();
  if (data[0] & 1) {
    w->Ask({0x10, 0x03});
    w->Ask({0x31, 0x01, 0x02, 0x03});
    w->Ask({0x10, 0x02});
    w->Ask({0x27, 0x01});
    if (w->last.size() == 18) {
      Bytes key = ecusim::SecurityKey(w->ecu->config(), ByteSpan(w->last).subspan(2));
      std::vector<uint8_t> r{0x27, 0x02};
      r.insert(r.end(), key.begin(), key.end());
      w->Ask(r);
    }
  }
  size_t at = 1;
  while (at < size) {
    const size_t n = std::min<size_t>(data[at], size - at - 1);
    ++at;
    if (n > 0) w->Ask(std::vector<uint8_t>(data + at, data + at + n));
    at += n;
  }
  w->loop.RunFor(std::chrono::seconds(6));  // let erases, resets and S3 run out
  return 0;
}
