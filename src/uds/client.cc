#include "uds/client.h"

#include <memory>

namespace aloft::uds {

namespace {

// The services whose second byte is a sub-function, the only ones with a suppress bit
// (ISO 14229-1: 10 11 19 27 28 29 2C 31 3E 83 84 85 86 87).
bool HasSubFunction(uint8_t service) {
  for (uint8_t s :
       {0x10, 0x11, 0x19, 0x27, 0x28, 0x29, 0x2C, 0x31, 0x3E, 0x83, 0x84, 0x85, 0x86, 0x87}) {
    if (service == s) return true;
  }
  return false;
}

}  // namespace

Client::Client(Link& link, ClientConfig config)
    : link_(link), config_(config), p2_(config.p2), p2_star_(config.p2_star) {
  listener_ = link_.AddListener([this](const std::vector<uint8_t>& m) { OnMessage(m); });
}

Client::~Client() {
  *alive_ = false;
  link_.RemoveListener(listener_);
  if (timer_) link_.loop().Cancel(timer_);
  StopTesterPresent();
}

void Client::Request(std::vector<uint8_t> request, Done done) {
  if (request.empty()) {
    if (done) done(Error(Code::kInvalidArgument, "UDS: an empty request"));
    return;
  }
  Pending p;
  p.suppress = request.size() >= 2 && (request[1] & 0x80) && HasSubFunction(request[0]);
  p.request = std::move(request);
  p.done = std::move(done);
  p.busy_left = config_.busy_retries;
  queue_.push_back(std::move(p));
  StartNext();
}

void Client::StartNext() {
  if (current_ || queue_.empty()) return;
  current_ = std::move(queue_.front());
  queue_.pop_front();
  ++stats_.requests;
  Transmit();
}

void Client::Transmit() {
  std::weak_ptr<bool> alive = alive_;
  link_.Send(current_->request, [this, alive](const Status& sent) {
    if (alive.expired() || !current_) return;
    if (!sent.ok()) {
      Finish(Error(sent.error().code(),
                   "UDS " + Describe(current_->request) + ": " + sent.error().message()));
      return;
    }
    // P2 runs from the end of the request's transmission.
    Arm(p2_, "P2");
  });
}

void Client::Arm(std::chrono::milliseconds timeout, const char* which) {
  if (timer_) link_.loop().Cancel(timer_);
  timer_ = link_.loop().After(timeout, [this, timeout, which] {
    timer_ = 0;
    if (!current_) return;
    if (current_->suppress) {
      Finish(Response{});
      return;
    }
    ++stats_.timeouts;
    Finish(Error(Code::kUnavailable,
                 "UDS " + Describe(current_->request) + ": no response within " + which + " (" +
                     std::to_string(timeout.count()) + " ms) on " + link_.name()));
  });
}

void Client::OnMessage(const std::vector<uint8_t>& m) {
  if (!current_ || !Answers(current_->request, m)) return;  // late or unrelated
  if (m[0] == sid::kNegativeResponse && m[2] == nrc::kResponsePending) {
    ++stats_.pending_seen;
    Arm(p2_star_, "P2*");
    return;
  }
  if (m[0] == sid::kNegativeResponse && m[2] == nrc::kBusyRepeatRequest &&
      current_->busy_left-- > 0) {
    ++stats_.busy_retries;
    if (timer_) link_.loop().Cancel(timer_);
    std::weak_ptr<bool> alive = alive_;
    timer_ = link_.loop().After(config_.busy_delay, [this, alive] {
      if (alive.expired()) return;
      timer_ = 0;
      if (current_) Transmit();
    });
    return;
  }
  Response r{m};
  if (r.positive() && m[0] == 0x50 && m.size() >= 6) {
    // The server's timing: P2 in ms, P2* in units of 10 ms.
    p2_ = std::chrono::milliseconds((m[2] << 8) | m[3]) + config_.transport_margin;
    p2_star_ = std::chrono::milliseconds(((m[4] << 8) | m[5]) * 10) + config_.transport_margin;
  }
  Finish(std::move(r));
}

void Client::Finish(Result<Response> r) {
  if (timer_) link_.loop().Cancel(timer_);
  timer_ = 0;
  Pending p = std::move(*current_);
  current_.reset();
  if (p.done) p.done(std::move(r));
  StartNext();
}

void Client::StartTesterPresent(Link* via) {
  StopTesterPresent();
  tester_present_via_ = via;
  std::weak_ptr<bool> alive = alive_;
  tester_present_ = link_.loop().After(config_.tester_present, [this, alive] {
    if (alive.expired()) return;
    tester_present_ = 0;
    Link& l = tester_present_via_ ? *tester_present_via_ : link_;
    l.Send({sid::kTesterPresent, 0x80}, nullptr);
    StartTesterPresent(tester_present_via_);
  });
}

void Client::StopTesterPresent() {
  if (tester_present_) link_.loop().Cancel(tester_present_);
  tester_present_ = 0;
}

void Client::Functional(Link& functional, std::vector<Link*> answers, std::vector<uint8_t> request,
                        std::chrono::milliseconds p2, std::chrono::milliseconds p2_star,
                        std::function<void(std::vector<std::pair<Link*, Response>>)> done) {
  struct State {
    std::vector<uint8_t> request;
    std::vector<std::pair<Link*, int>> listeners;
    std::vector<std::pair<Link*, Response>> got;
    std::function<void(std::vector<std::pair<Link*, Response>>)> done;
    TimerId timer = 0;
  };
  auto st = std::make_shared<State>();
  st->request = std::move(request);
  st->done = std::move(done);
  EventLoop& loop = functional.loop();
  auto finish = [st] {
    for (auto& [l, id] : st->listeners) l->RemoveListener(id);
    st->listeners.clear();
    if (st->done) {
      auto d = std::move(st->done);
      d(std::move(st->got));
    }
  };
  auto arm = [st, &loop, finish](std::chrono::milliseconds t) {
    if (st->timer) loop.Cancel(st->timer);
    st->timer = loop.After(t, finish);
  };
  for (Link* l : answers) {
    const int id = l->AddListener([st, l, arm, p2_star](const std::vector<uint8_t>& m) {
      if (!Answers(st->request, m)) return;
      if (m[0] == sid::kNegativeResponse && m[2] == nrc::kResponsePending) {
        arm(p2_star);  // that ECU will answer later
        return;
      }
      st->got.emplace_back(l, Response{m});
    });
    st->listeners.emplace_back(l, id);
  }
  functional.Send(st->request, [st, arm, p2, finish](const Status& s) {
    if (!s.ok()) {
      finish();
      return;
    }
    arm(p2);
  });
}

}  // namespace aloft::uds
