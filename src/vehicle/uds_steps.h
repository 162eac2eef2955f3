// Short UDS sequences a campaign sends outside the flasher: a list of requests one after the
// other (27 01 standing for "unlock programming": authentication and security access as the ECU
// takes them), and reading an ECU's image back (35, 36 ..., 37) for the backup of a single-bank
// ECU.
#pragma once

#include <functional>
#include <vector>

#include "core/encoding.h"
#include "uds/authentication.h"
#include "uds/client.h"

namespace aloft::vehicle {

using KeyFunction = std::function<Bytes(std::span<const uint8_t> seed)>;

// What unlocks an ECU's programming: security access with `key` (27), authentication with
// `credentials` (29, docs/identity.md), or both; a null member is a step the ECU does not take.
struct Unlock {
  KeyFunction key{};
  std::shared_ptr<const uds::TesterCredentials> credentials{};
};

// Sends `requests` in order; a negative answer or a transport error ends it with that error. A
// 27 with an odd sub-function is the unlock: 29 01 / 29 03 first with credentials, then the 27
// followed by the key (unless the seed is all zero: unlocked), or no 27 without a key.
void RunSequence(uds::Client& client, std::vector<std::vector<uint8_t>> requests, Unlock unlock,
                 std::function<void(Status)> done);

// Reads `size` bytes at `address` with RequestUpload, from the programming session (10 03,
// 31 01 02 03, 10 02, 27), then resets the ECU (11 01), which starts its application again. The
// image comes back with trailing erased bytes (0xFF) trimmed to a multiple of `unit`.
void ReadBack(uds::Client& client, uint64_t address, uint64_t size, Unlock unlock, size_t unit,
              std::function<void(Result<Bytes>)> done);

}  // namespace aloft::vehicle
