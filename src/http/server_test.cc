// The HTTP server's bytes on the wire, read over a real loopback socket: the status line and
// header it writes itself (Content-Length, Connection), HEAD, 204/304, and field values that try
// to split the header.
#include "http/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace aloft::http {
namespace {

class EchoHandler final : public Handler {
 public:
  std::variant<BodyPlan, Response> OnHeaders(Request&) override { return BodyPlan{}; }
  Response Handle(Request& req) override {
    if (req.path == "/empty") {
      Response r;
      r.status = 204;
      return r;
    }
    if (req.path == "/not-modified") {
      Response r;
      r.status = 304;
      r.headers.Add("ETag", "\"abc\"");
      return r;
    }
    if (req.path == "/split") {
      Response r = Response::Text(200, "ok");
      r.headers.Add("X-Name", "a\r\nSet-Cookie: evil=1");
      return r;
    }
    if (req.path == "/own-length") {
      Response r = Response::Text(200, "four");
      r.headers.Add("Content-Length", "999");
      r.headers.Add("Connection", "upgrade");
      return r;
    }
    if (req.path == "/stream") {
      Response r;
      r.headers.Add("Content-Type", "text/event-stream");
      r.stream = std::make_shared<Stream>();
      std::lock_guard lock(mu);
      streams.push_back(r.stream);
      return r;
    }
    return Response::Text(200, "body:" + req.body);
  }
  // The streams handed out, for the test to push to.
  std::shared_ptr<Stream> WaitForStream(size_t i) {
    for (int tries = 0; tries < 200; ++tries) {
      {
        std::lock_guard lock(mu);
        if (streams.size() > i) return streams[i];
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return nullptr;
  }
  std::mutex mu;
  std::vector<std::shared_ptr<Stream>> streams;
};

class RawServer : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.threads = 1;
    server_ = std::make_unique<HttpServer>(o, handler_);
    ASSERT_TRUE(server_->Bind().ok());
    thread_ = std::thread([this] { server_->Run(); });
  }
  void TearDown() override {
    if (!server_) return;
    server_->Stop();
    thread_.join();
  }

  // Sends `request` on a new connection and reads until the server closes it (or 2 s pass).
  std::string Exchange(const std::string& request) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(server_->port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    EXPECT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, n);
    ::close(fd);
    return out;
  }

  EchoHandler handler_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

TEST_F(RawServer, KeepAliveResponses_CarryTheLengthAndTwoAnswersShareAConnection) {
  std::string out = Exchange(
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz"
      "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "
            "8\r\n\r\nbody:xyz"
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n"
            "Connection: close\r\n\r\nbody:");
}

TEST_F(RawServer, Head_GivesTheLengthWithoutTheBody) {
  std::string out = Exchange("HEAD /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n"
            "Connection: close\r\n\r\n");
}

TEST_F(RawServer, NoContentAndNotModified_HaveNoContentLength) {
  EXPECT_EQ(Exchange("GET /empty HTTP/1.1\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(Exchange("GET /not-modified HTTP/1.1\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 304 Not Modified\r\nETag: \"abc\"\r\nConnection: close\r\n\r\n");
}

TEST_F(RawServer, FieldValues_CannotSplitTheHeader) {
  std::string out = Exchange("GET /split HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_NE(out.find("X-Name: a  Set-Cookie: evil=1\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("\r\nSet-Cookie"), std::string::npos) << out;
}

TEST_F(RawServer, TheTransportOwnsContentLengthAndConnection) {
  std::string out = Exchange("GET /own-length HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 4\r\n"
            "Connection: close\r\n\r\nfour");
}

TEST_F(RawServer, Http10_ClosesAfterTheAnswer) {
  std::string out = Exchange("GET /a HTTP/1.0\r\n\r\n");
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n"
            "Connection: close\r\n\r\nbody:");
}

TEST_F(RawServer, Stream_SendsEachPushAsAChunkUntilItEnds) {
  std::thread producer([this] {
    auto st = handler_.WaitForStream(0);
    ASSERT_NE(st, nullptr);
    EXPECT_TRUE(st->Push("data: 1\n\n"));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the server waits meanwhile
    EXPECT_TRUE(st->Push("data: 22\n\n"));
    st->End();
  });
  std::string out = Exchange("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  producer.join();
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: "
            "chunked\r\nConnection: close\r\n\r\n"
            "9\r\ndata: 1\n\n\r\n"
            "a\r\ndata: 22\n\n\r\n"
            "0\r\n\r\n");
}

// The stream waits without a time limit: the per-write timeout does not close it between pushes.
TEST(StreamTimeouts, AStreamIdleLongerThanTheWriteTimeoutStillDelivers) {
  EchoHandler handler;
  ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.threads = 1;
  o.io_timeout = std::chrono::seconds(1);
  o.idle_timeout = std::chrono::seconds(1);
  HttpServer server(o, handler);
  ASSERT_TRUE(server.Bind().ok());
  std::thread run([&] { server.Run(); });
  std::thread producer([&] {
    auto st = handler.WaitForStream(0);
    ASSERT_NE(st, nullptr);
    EXPECT_TRUE(st->Push("a"));
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    EXPECT_TRUE(st->Push("b"));
    st->End();
  });
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string req = "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, n);
  ::close(fd);
  producer.join();
  server.Stop();
  run.join();
  EXPECT_NE(out.find("1\r\na\r\n1\r\nb\r\n0\r\n\r\n"), std::string::npos) << out;
}

TEST_F(RawServer, Stream_IsGoneOnceTheClientLeft_AndStopEndsAWaitingOne) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string req = "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  auto st = handler_.WaitForStream(0);
  ASSERT_NE(st, nullptr);
  ::close(fd);
  // The server learns it from a failed write: pushes go on being accepted until then.
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = !st->Push(": ping\n\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(gone);

  // A second stream, waiting for text: Stop closes it at once (it is idle), not after the grace.
  std::thread client([this] { Exchange("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"); });
  auto second = handler_.WaitForStream(1);
  ASSERT_NE(second, nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  server_->Stop();
  thread_.join();
  client.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_TRUE(second->gone());
  server_ = nullptr;
}

}  // namespace
}  // namespace aloft::http
