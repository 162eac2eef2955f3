#include "vehicle/ota_mode.h"

#include <algorithm>

#include "uds/uds.h"

namespace aloft::vehicle {

namespace {

const std::vector<std::vector<uint8_t>> kEnter = {{0x10, 0x03}, {0x85, 0x02}, {0x28, 0x03, 0x01}};
const std::vector<std::vector<uint8_t>> kLeave = {
    {0x28, 0x00, 0x01}, {0x85, 0x01}, {0x10, 0x01}, {0x14, 0xFF, 0xFF, 0xFF}};

// Functional requests with the suppress bit where the service has a sub-function.
std::vector<uint8_t> Suppressed(std::vector<uint8_t> r) {
  if (r[0] != 0x14) r[1] |= 0x80;
  return r;
}

}  // namespace

OtaMode::OtaMode(Network& network, std::vector<std::string> ecus) : network_(network) {
  for (const std::string& e : ecus) {
    const std::string medium = network_.medium(e);
    if (!network_.functional(medium)) {
      ethernet_.push_back(e);  // reached through DoIP: addressed one by one
    } else if (std::find(buses_.begin(), buses_.end(), medium) == buses_.end()) {
      buses_.push_back(medium);
    }
  }
  for (const std::string& b : buses_) {
    if (uds::Link* link = network_.functional(b)) {
      functional_.push_back(std::make_unique<uds::Client>(*link));
    }
  }
}

OtaMode::~OtaMode() {
  *alive_ = false;
  for (auto& c : functional_) c->StopTesterPresent();
}

void OtaMode::Send(const std::vector<std::vector<uint8_t>>& requests, std::function<void()> done) {
  // Everything is queued at once: each client sends its requests in order; done when all are.
  auto left = std::make_shared<size_t>(1);
  auto one = [left, done, alive = std::weak_ptr<bool>(alive_)](Result<uds::Response>) {
    if (!alive.expired() && --*left == 0) done();
  };
  for (size_t b = 0; b < functional_.size(); ++b) {
    for (const auto& r : requests) {
      const std::vector<uint8_t> f = Suppressed(r);
      sent_.push_back(buses_[b] + ": " + uds::Describe(f, 8));
      ++*left;
      functional_[b]->Request(f, one);
    }
  }
  for (const std::string& e : ethernet_) {
    for (const auto& r : requests) {
      sent_.push_back(e + ": " + uds::Describe(r, 8));
      ++*left;
      network_.client(e)->Request(r, one);
    }
  }
  one(Error(Code::kInternal, ""));  // the initial count
}

void OtaMode::Enter(std::function<void()> done) {
  active_ = true;
  Send(kEnter, [this, done] {
    for (auto& c : functional_) c->StartTesterPresent();
    done();
  });
}

void OtaMode::Leave(std::function<void()> done) {
  for (auto& c : functional_) c->StopTesterPresent();
  Send(kLeave, [this, done] {
    active_ = false;
    done();
  });
}

}  // namespace aloft::vehicle
