// The driver's screen as a small local HTTP API, standing in for the head unit's HMI (and what
// `aloft-vehicle prompt | accept | defer` talk to):
//
//   GET  /v1/screen  -> 200 {"screen": "update demo-car 2026.12.1 ready: accept or defer (2 of 3
//                            deferrals left)", "asking": true, "deferrals": 1,
//                            "activity": "waiting for the driver"}
//   POST /v1/accept  -> 200 {the screen afterwards}; 409 {"error": "not-asking", ...}
//   POST /v1/defer   -> 200; 409 "not-asking"; 409 "no-deferrals-left" (only accepting remains)
//
// Errors use the server's one shape: {"error": code, "message": what went wrong}. It listens on
// loopback by default; the head unit reaches it over the car's Ethernet in a real car.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "vehicle/driver.h"

namespace aloft::vehicle {

class HmiServer {
 public:
  // `driver` and `activity` (what the manager is doing, one line) are read on the thread of the
  // Manager's event loop: `on_loop(fn)` runs `fn` there and waits for it.
  HmiServer(DriverPrompt& driver, std::function<std::string()> activity,
            std::function<void(const std::function<void()>&)> on_loop);
  ~HmiServer();
  // Binds `listen` ("127.0.0.1:8469"; port 0 picks one) and serves on a thread of its own.
  // kInvalidArgument for a bad address, kIo when the port is taken.
  Status Start(const std::string& listen);
  uint16_t port() const;
  void Stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The client side: `verb` is "screen", "accept" or "defer"; the answer's JSON, or an error naming
// the endpoint (not reachable) or carrying the server's message (409: nothing to accept, no
// deferrals left).
Result<nlohmann::json> CallHmi(const std::string& endpoint, const std::string& verb);

}  // namespace aloft::vehicle
