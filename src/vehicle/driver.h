// The driver's screen, as the head unit's HMI would show it: what the manager tells the driver
// about a campaign (notify, forced) or asks (confirm), and the driver's answers. A deferred
// question comes back after an interval; deferrals are limited by the bundle's policy, and past
// the limit only accepting remains. `aloft-vehicle prompt | accept | defer` talk to it through
// the manager's local API.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "core/error.h"
#include "core/event_loop.h"
#include "vehicle/bundle.h"

namespace aloft::vehicle {

class DriverPrompt {
 public:
  explicit DriverPrompt(EventLoop& loop) : loop_(loop) {}
  ~DriverPrompt();

  // silent: `go` at once, nothing shown; notify, forced: shown, `go` at once; confirm: asked,
  // `go` once the driver accepts.
  void Ask(const std::string& bundle, UpdateMode mode, int max_deferrals,
           std::chrono::seconds defer_interval, std::function<void()> go);
  // kUnavailable when nothing is asked; kOutOfRange when no deferral is left.
  Status Accept();
  Status Defer();
  // Clears the screen (the campaign ended, or was given up).
  void Close(const std::string& message = "");

  // What the screen shows now, one line ("update demo-car 2026.12.0 ready: accept or defer
  // (2 of 3 deferrals left)"), or "" when nothing.
  std::string Screen() const;
  bool asking() const { return asking_; }
  int deferrals() const { return deferrals_; }

 private:
  EventLoop& loop_;
  std::string bundle_, text_;
  bool asking_ = false;
  int deferrals_ = 0, max_deferrals_ = 0;
  std::chrono::seconds interval_{0};
  std::function<void()> go_;
  TimerId timer_ = 0;
};

}  // namespace aloft::vehicle
