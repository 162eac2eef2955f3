// The bus hub: serves buses of this process over TCP in socketcand's rawmode, so that other
// processes (another Aloft program, python-can and what is built on it) take part in them as
// nodes. Each connection that opens a bus becomes a node of its own on it: its frames arbitrate
// and take their bus time like any other node's, and it hears every other node's frames.
//
//   RealLoop loop;
//   SimBus powertrain(loop, {.name = "powertrain"});
//   SocketcandServer hub(loop, [&](const std::string& bus, const std::string& peer)
//       -> Result<std::unique_ptr<CanBus>> { ... return powertrain.Attach(peer); });
//   auto at = hub.Start({"127.0.0.1", 29536});
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "can/bus.h"
#include "core/event_loop.h"
#include "net/socket.h"

namespace aloft::can {

class SocketcandServer {
 public:
  // Makes a node on the bus named `bus` for the client at `peer`, on the loop's thread; an error
  // (an unknown bus) is sent back as "< error ... >".
  using Opener = std::function<Result<std::unique_ptr<CanBus>>(const std::string& bus,
                                                               const std::string& peer)>;

  SocketcandServer(RealLoop& loop, Opener open);
  ~SocketcandServer();
  SocketcandServer(const SocketcandServer&) = delete;
  SocketcandServer& operator=(const SocketcandServer&) = delete;

  // Listens on `at` (port 0: any free one) and serves until Stop(); returns where it listens.
  Result<net::Endpoint> Start(const net::Endpoint& at);
  void Stop();

  size_t clients() const { return client_count_.load(); }
  // Frames a client was too slow to take (its output passed kMaxBacklog and they were dropped).
  uint64_t dropped() const { return dropped_.load(); }

  // A client is sent its first frames this long after its "< rawmode >" was answered: python-can
  // reads the "< ok >" with one recv() and would take a frame in the same read for garbage.
  static constexpr std::chrono::milliseconds kRawmodeSettle{30};
  static constexpr size_t kMaxBacklog = 4 << 20;

 private:
  struct Client;
  void Serve();
  void Accept();
  void Read(const std::shared_ptr<Client>& c);
  void Handle(const std::shared_ptr<Client>& c, const std::string& element);
  void Queue(Client& c, const std::string& text);
  void QueueFrame(Client& c, const Frame& frame);
  bool Flush(Client& c);
  void Close(const std::shared_ptr<Client>& c);
  void Wake();

  RealLoop& loop_;
  Opener open_;
  net::Fd listen_;
  net::Fd wake_read_, wake_write_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::vector<std::shared_ptr<Client>> clients_;  // the server thread's
  std::atomic<size_t> client_count_{0};
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace aloft::can
