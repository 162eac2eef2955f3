// The dashboard's live feed (docs/dashboard.md): GET /api/v1/events answers with server-sent
// events that name what changed (a rollout's state or wave, the actions of devices and
// rollouts, deltas, new devices, releases, audit entries, devices seen), so that an open page
// fetches only what it shows and only when it changed; it never polls the whole state.
//
// One look at the database serves every open page: Tick() (every 500 ms, while anyone listens)
// asks the Store what changed after the marks it keeps, by time or id on indexed columns; with
// several aloftd on one PostgreSQL each server sees the others' changes the same way. Times are
// looked at with an overlap (servers' clocks differ, transactions commit out of order) and
// what was sent already is not sent again. A comment line every 15 s keeps proxies from closing
// an idle stream and finds pages that went away. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "http/message.h"
#include "server/store.h"

namespace aloft::server {

class EventHub {
 public:
  EventHub(Store& store, std::ostream& log) : store_(store), log_(log) {}

  // A new page's stream; `admin`: it may also hear of audit entries.
  std::shared_ptr<http::Stream> Subscribe(bool admin);
  // Looks for changes and sends them to every open stream; `now_ms` paces the keep-alive
  // comments. Does nothing while nobody listens.
  void Tick(int64_t now_ms);
  size_t subscribers() const;

  static constexpr int64_t kOverlapMs = 3000;
  static constexpr int64_t kPingMs = 15000;
  static constexpr int64_t kBatch = 1000;

 private:
  struct Subscriber {
    std::shared_ptr<http::Stream> stream;
    bool admin = false;
  };
  // The events of `changes` not sent before, as SSE text: for everyone and for admins only.
  std::pair<std::string, std::string> Format(const Changes& changes);
  void Broadcast(const std::string& all, const std::string& admin_only);

  Store& store_;
  std::ostream& log_;
  mutable std::mutex mu_;  // subscribers_
  std::vector<Subscriber> subscribers_;
  // Tick's own state (one Tick at a time: the app's task).
  bool marked_ = false;
  ChangeMarks marks_;
  ChangeMarks floor_;  // the marks when the feed started: what pages fetched themselves
  int64_t last_ping_ms_ = 0;
  // (kind, id, updated_ms) already sent, within the overlap.
  std::set<std::tuple<char, int64_t, int64_t>> sent_;
};

}  // namespace aloft::server
