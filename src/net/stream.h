// The Stream seam: one byte-stream connection (what TCP gives) as protocol code sees it. Its
// callbacks run on the stream's EventLoop. SimStream joins two ends in memory on simulated time
// with a bit rate and a latency (an Ethernet link for DoIP on simulated time); SocketStream is a
// connected TCP socket whose reads a thread of its own posts to the loop.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/encoding.h"
#include "core/event_loop.h"
#include "net/socket.h"

namespace aloft::net {

class Stream {
 public:
  virtual ~Stream() = default;
  // Sends `data` after what was written before; nothing once closed.
  virtual void Write(Bytes data) = 0;
  virtual void OnData(std::function<void(ByteSpan data)> handler) = 0;
  // Called once, when either end closes (not for this end's own Close()).
  virtual void OnClose(std::function<void()> handler) = 0;
  virtual void Close() = 0;
  virtual bool open() const = 0;
  virtual EventLoop& loop() = 0;
  virtual std::string peer() const = 0;
};

class SimStream final : public Stream {
 public:
  // A connected pair: bytes take len * 8 / bit_rate to leave, plus `latency` to arrive.
  static std::pair<std::unique_ptr<SimStream>, std::unique_ptr<SimStream>> Pair(
      EventLoop& loop, uint64_t bit_rate = 100'000'000,
      std::chrono::nanoseconds latency = std::chrono::microseconds(50));
  ~SimStream() override;
  void Write(Bytes data) override;
  void OnData(std::function<void(ByteSpan)> handler) override { on_data_ = std::move(handler); }
  void OnClose(std::function<void()> handler) override { on_close_ = std::move(handler); }
  void Close() override;
  bool open() const override { return open_; }
  EventLoop& loop() override { return loop_; }
  std::string peer() const override { return name_; }

 private:
  SimStream(EventLoop& loop, uint64_t bit_rate, std::chrono::nanoseconds latency, std::string name)
      : loop_(loop), bit_rate_(bit_rate), latency_(latency), name_(std::move(name)) {}
  EventLoop& loop_;
  uint64_t bit_rate_;
  std::chrono::nanoseconds latency_;
  std::string name_;
  SimStream* peer_ = nullptr;
  bool open_ = true;
  EventLoop::TimePoint busy_until_{};
  std::function<void(ByteSpan)> on_data_;
  std::function<void()> on_close_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Destroy it on the loop's thread (its posted callbacks check that it still lives).
class SocketStream final : public Stream {
 public:
  SocketStream(EventLoop& loop, Fd fd);
  ~SocketStream() override;
  void Write(Bytes data) override;
  void OnData(std::function<void(ByteSpan)> handler) override { on_data_ = std::move(handler); }
  void OnClose(std::function<void()> handler) override { on_close_ = std::move(handler); }
  void Close() override;
  bool open() const override { return open_; }
  EventLoop& loop() override { return loop_; }
  std::string peer() const override { return peer_; }

 private:
  void ReadLoop();
  EventLoop& loop_;
  Fd fd_;
  std::string peer_;
  std::mutex write_mu_;
  std::atomic<bool> open_{true};
  std::function<void(ByteSpan)> on_data_;
  std::function<void()> on_close_;
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
  std::thread reader_;
};

}  // namespace aloft::net
