#include "vehicle/driver.h"

namespace aloft::vehicle {

DriverPrompt::~DriverPrompt() {
  if (timer_) loop_.Cancel(timer_);
}

void DriverPrompt::Ask(const std::string& bundle, UpdateMode mode, int max_deferrals,
                       std::chrono::seconds defer_interval, std::function<void()> go) {
  bundle_ = bundle;
  deferrals_ = 0;
  max_deferrals_ = max_deferrals;
  interval_ = defer_interval;
  switch (mode) {
    case UpdateMode::kSilent:
      text_.clear();
      loop_.Post(std::move(go));
      return;
    case UpdateMode::kNotify:
    case UpdateMode::kForced:
      text_ = "installing update " + bundle_ + (mode == UpdateMode::kForced ? " (required)" : "") +
              ": the vehicle must stay parked";
      loop_.Post(std::move(go));
      return;
    case UpdateMode::kConfirm:
      asking_ = true;
      go_ = std::move(go);
      text_.clear();
      return;
  }
}

Status DriverPrompt::Accept() {
  if (!asking_) return Error(Code::kUnavailable, "no update is waiting for an answer");
  asking_ = false;
  if (timer_) loop_.Cancel(timer_);
  timer_ = 0;
  text_ = "installing update " + bundle_ + ": the vehicle must stay parked";
  auto go = std::move(go_);
  go_ = nullptr;
  loop_.Post(std::move(go));
  return OkStatus();
}

Status DriverPrompt::Defer() {
  if (!asking_ || timer_) return Error(Code::kUnavailable, "no update is waiting for an answer");
  if (deferrals_ >= max_deferrals_) {
    return Error(Code::kOutOfRange, "update " + bundle_ + " cannot be deferred again (" +
                                        std::to_string(max_deferrals_) + " of " +
                                        std::to_string(max_deferrals_) + " deferrals used)");
  }
  ++deferrals_;
  text_.clear();
  timer_ = loop_.After(interval_, [this] { timer_ = 0; });  // asked again afterwards
  return OkStatus();
}

void DriverPrompt::Close(const std::string& message) {
  asking_ = false;
  go_ = nullptr;
  if (timer_) loop_.Cancel(timer_);
  timer_ = 0;
  text_ = message;
}

std::string DriverPrompt::Screen() const {
  if (asking_ && !timer_) {
    const int left = max_deferrals_ - deferrals_;
    return "update " + bundle_ + " ready: accept" +
           (left > 0 ? " or defer (" + std::to_string(left) + " of " +
                           std::to_string(max_deferrals_) + " deferrals left)"
                     : " (no deferrals left)");
  }
  if (asking_) return "";  // deferred: asked again later
  return text_;
}

}  // namespace aloft::vehicle
