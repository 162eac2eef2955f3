// Seeds a server database for benchmarks: a device type, N devices named bench-000000... whose
// tokens are "aloft_d_bench" + the same six digits (so wrk scripts can compute them), each already
// seen and reporting main=1.0.0. With --mqtt, each also gets the broker password hash of its token
// (devices.mqtt_secret), so that aloftd lets it log in to the broker (bench/push.sh).
//
// Usage: aloft_bench_seed DATABASE N [--mqtt]
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "core/encoding.h"
#include "core/hash.h"
#include "mqtt/client.h"
#include "server/store.h"

int main(int argc, char** argv) {
  const bool mqtt = argc == 4 && std::string(argv[3]) == "--mqtt";
  if (argc != 3 && !mqtt) {
    std::fprintf(stderr, "usage: %s DATABASE N [--mqtt]\n", argv[0]);
    return 2;
  }
  const std::string location = argv[1];
  const int n = std::atoi(argv[2]);
  auto store = aloft::server::Store::Open(location, 1);
  if (!store.ok()) {
    std::fprintf(stderr, "seed: %s\n", store.error().ToString().c_str());
    return 1;
  }
  const int64_t now = 1700000000000;
  aloft::Status s = (*store)->Write([&](aloft::server::Tx& tx) -> aloft::Status {
    ALOFT_ASSIGN_OR_RETURN(auto type, tx.CreateDeviceType("bench-board", "benchmark", now));
    auto& c = tx.connection();
    for (int i = 0; i < n; ++i) {
      char name[32], token[48];
      std::snprintf(name, sizeof name, "bench-%06d", i);
      std::snprintf(token, sizeof token, "aloft_d_bench%06d", i);
      ALOFT_ASSIGN_OR_RETURN(
          auto rows,
          c.Query("INSERT INTO devices (name, device_type_id, token_hash, grp, attributes, "
                  "created_ms, last_seen_ms, mqtt_secret) VALUES (?, ?, ?, 'bench', '{}', ?, ?, ?) "
                  "RETURNING id",
                  {name, type.id, aloft::Sha256Hex(aloft::AsBytes(token)), now, now,
                   mqtt ? std::optional<std::string>(aloft::mqtt::PasswordHash(token))
                        : std::nullopt}));
      ALOFT_RETURN_IF_ERROR(c.Query(
          "INSERT INTO device_versions (device_id, module, version, updated_ms) VALUES (?, 'main', "
          "'1.0.0', ?)",
          {rows.at(0).Int(0), now}));
    }
    return aloft::OkStatus();
  });
  if (!s.ok()) {
    std::fprintf(stderr, "seed: %s\n", s.error().ToString().c_str());
    return 1;
  }
  std::printf("seeded %d devices into %s\n", n, (*store)->database().Describe().c_str());
  return 0;
}
