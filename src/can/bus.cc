#include "can/bus.h"

#include <algorithm>

namespace aloft::can {

const char* ToString(NodeState s) {
  switch (s) {
    case NodeState::kErrorActive:
      return "error-active";
    case NodeState::kErrorPassive:
      return "error-passive";
    case NodeState::kBusOff:
      return "bus-off";
  }
  return "?";
}

int Listeners::Add(CanBus::Listener listener) {
  list_.emplace_back(next_id_, std::move(listener));
  return next_id_++;
}

void Listeners::Remove(int id) {
  for (auto& [lid, fn] : list_) {
    if (lid == id) {
      fn = nullptr;
      removed_ = true;
    }
  }
  if (depth_ == 0 && removed_) {
    std::erase_if(list_, [](const auto& e) { return !e.second; });
    removed_ = false;
  }
}

void Listeners::Notify(const CanEvent& event) {
  ++depth_;
  // Listeners added meanwhile hear the next event, not this one.
  const size_t n = list_.size();
  for (size_t i = 0; i < n; ++i) {
    if (list_[i].second) {
      auto fn = list_[i].second;  // a copy: the listener may remove itself
      fn(event);
    }
  }
  if (--depth_ == 0 && removed_) {
    std::erase_if(list_, [](const auto& e) { return !e.second; });
    removed_ = false;
  }
}

bool Listeners::empty() const {
  return std::none_of(list_.begin(), list_.end(), [](const auto& e) { return bool(e.second); });
}

}  // namespace aloft::can
