// Seeds a server database for benchmarks: a device type, N devices named bench-000000... whose
// tokens are "aloft_d_bench" + the same six digits (so wrk scripts can compute them), each already
// seen and reporting main=1.0.0. With --mqtt, each also gets the broker password hash of its token
// (devices.mqtt_secret), so that aloftd lets it log in to the broker (bench/push.sh).
//
// With --groups G, device i is in group "gNN" (i mod G) instead of "bench", one in ten runs main
// 1.1.0 and one in a hundred has never been seen; the others were seen within the last hour
// (bench/dashboard.sh).
//
// Usage: aloft_bench_seed DATABASE N [--mqtt] [--groups G]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "core/encoding.h"
#include "core/hash.h"
#include "mqtt/client.h"
#include "server/store.h"

int main(int argc, char** argv) {
  bool mqtt = false;
  int groups = 0;
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--mqtt") {
      mqtt = true;
    } else if (a == "--groups" && i + 1 < argc) {
      groups = std::atoi(argv[++i]);
    } else {
      argc = 0;  // usage
    }
  }
  if (argc < 3 || groups < 0 || groups > 100) {
    std::fprintf(stderr, "usage: %s DATABASE N [--mqtt] [--groups G (1..100)]\n", argv[0]);
    return 2;
  }
  const std::string location = argv[1];
  const int n = std::atoi(argv[2]);
  auto store = aloft::server::Store::Open(location, 1);
  if (!store.ok()) {
    std::fprintf(stderr, "seed: %s\n", store.error().ToString().c_str());
    return 1;
  }
  const int64_t now = groups ? std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count()
                             : 1700000000000;
  aloft::Status s = (*store)->Write([&](aloft::server::Tx& tx) -> aloft::Status {
    ALOFT_ASSIGN_OR_RETURN(auto type, tx.CreateDeviceType("bench-board", "benchmark", now));
    auto& c = tx.connection();
    for (int i = 0; i < n; ++i) {
      char name[32], token[48];
      std::snprintf(name, sizeof name, "bench-%06d", i);
      std::snprintf(token, sizeof token, "aloft_d_bench%06d", i);
      char group[16] = "bench";
      if (groups) std::snprintf(group, sizeof group, "g%02d", i % groups);
      const std::optional<int64_t> seen =
          groups && i % 100 == 99 ? std::nullopt
                                  : std::optional<int64_t>(groups ? now - (i % 3600) * 1000 : now);
      ALOFT_ASSIGN_OR_RETURN(
          auto rows,
          c.Query("INSERT INTO devices (name, device_type_id, token_hash, grp, attributes, "
                  "created_ms, last_seen_ms, mqtt_secret) VALUES (?, ?, ?, ?, '{}', ?, ?, ?) "
                  "RETURNING id",
                  {name, type.id, aloft::Sha256Hex(aloft::AsBytes(token)), std::string(group), now,
                   seen,
                   mqtt ? std::optional<std::string>(aloft::mqtt::PasswordHash(token))
                        : std::nullopt}));
      ALOFT_RETURN_IF_ERROR(c.Query(
          "INSERT INTO device_versions (device_id, module, version, updated_ms) VALUES (?, 'main', "
          "?, ?)",
          {rows.at(0).Int(0), groups && i % 10 == 3 ? "1.1.0" : "1.0.0", now}));
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
