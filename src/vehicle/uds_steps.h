// Short UDS sequences a campaign sends outside the flasher: a list of requests one after the
// other (27 01 answered with the key the ECU's seed asks for), and reading an ECU's image back
// (35, 36 ..., 37) for the backup of a single-bank ECU.
#pragma once

#include <functional>
#include <vector>

#include "core/encoding.h"
#include "uds/client.h"

namespace aloft::vehicle {

using KeyFunction = std::function<Bytes(std::span<const uint8_t> seed)>;

// Sends `requests` in order; a negative answer or a transport error ends it with that error. A
// 27 with an odd sub-function is followed by the key (unless the seed is all zero: unlocked).
void RunSequence(uds::Client& client, std::vector<std::vector<uint8_t>> requests, KeyFunction key,
                 std::function<void(Status)> done);

// Reads `size` bytes at `address` with RequestUpload, from the programming session (10 03,
// 31 01 02 03, 10 02, 27), then resets the ECU (11 01), which starts its application again. The
// image comes back with trailing erased bytes (0xFF) trimmed to a multiple of `unit`.
void ReadBack(uds::Client& client, uint64_t address, uint64_t size, KeyFunction key, size_t unit,
              std::function<void(Result<Bytes>)> done);

}  // namespace aloft::vehicle
