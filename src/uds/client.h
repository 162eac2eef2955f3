// The tester side of UDS: one request at a time on a Link, waiting P2 for the answer and P2*
// after each response pending (0x78), repeating a request answered busy (0x21), adopting the
// P2 and P2* a DiagnosticSessionControl response announces, and keeping a session alive with
// TesterPresent. Functional requests collect every ECU's answer until P2 passes.
//
//   uds::Client tester(link);
//   tester.Request({0x22, 0xF1, 0x90}, [](Result<uds::Response> r) { ... });
//
// A transport failure or timeout is an Error; a negative response is a Response with nrc() set.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <vector>

#include "uds/link.h"
#include "uds/uds.h"

namespace aloft::uds {

struct ClientConfig {
  // P2client and P2*client: the server's P2 and P2* plus what the transport may add.
  std::chrono::milliseconds p2{150};
  std::chrono::milliseconds p2_star{5500};
  std::chrono::milliseconds transport_margin{100};  // added to the P2 values a 50 xx announces
  int busy_retries = 5;
  std::chrono::milliseconds busy_delay{50};
  std::chrono::milliseconds tester_present{2000};  // interval of 3E 80 once started
};

class Client {
 public:
  using Done = std::function<void(Result<Response> response)>;

  explicit Client(Link& link, ClientConfig config = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends `request` after those queued before it. With the suppress bit set, `done` gets an
  // empty positive Response once P2 passes without a negative answer.
  void Request(std::vector<uint8_t> request, Done done);
  // 3E 80 every `tester_present` on `via` (the functional link of a car), else on this link.
  void StartTesterPresent(Link* via = nullptr);
  void StopTesterPresent();

  bool busy() const { return current_.has_value(); }
  std::chrono::milliseconds p2() const { return p2_; }
  std::chrono::milliseconds p2_star() const { return p2_star_; }
  Link& link() { return link_; }

  struct Stats {
    uint64_t requests = 0, pending_seen = 0, busy_retries = 0, timeouts = 0;
  };
  const Stats& stats() const { return stats_; }

  // A functional request: sent once on `functional`, answered by every ECU that hears it on its
  // own physical link (`answers`). Collects until P2 passes (P2* after an ECU said 0x78).
  static void Functional(Link& functional, std::vector<Link*> answers, std::vector<uint8_t> request,
                         std::chrono::milliseconds p2, std::chrono::milliseconds p2_star,
                         std::function<void(std::vector<std::pair<Link*, Response>>)> done);

 private:
  struct Pending {
    std::vector<uint8_t> request;
    Done done;
    int busy_left = 0;
    bool suppress = false;
  };
  void StartNext();
  void Transmit();
  void OnMessage(const std::vector<uint8_t>& m);
  void Arm(std::chrono::milliseconds timeout, const char* which);
  void Finish(Result<Response> r);

  Link& link_;
  ClientConfig config_;
  std::chrono::milliseconds p2_, p2_star_;
  int listener_ = 0;
  std::deque<Pending> queue_;
  std::optional<Pending> current_;
  TimerId timer_ = 0;
  TimerId tester_present_ = 0;
  Link* tester_present_via_ = nullptr;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  Stats stats_;
};

}  // namespace aloft::uds
