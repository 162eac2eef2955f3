// aloftd's App for tests: on a loopback port, run on a thread of its own, and called over real
// HTTP (server_test, rollout_test).
//
//   testing::TestServer srv;
//   ASSERT_THAT(srv.Start(config, clock, log), IsOk());
//   json j = srv.CallJson("GET", "/api/v1/rollouts", srv.admin(), nullptr, 200);
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "client/http_client.h"
#include "core/clock.h"
#include "server/app.h"
#include "server/config.h"

namespace aloft::testing {

// A client connection to a loopback port that sends bytes as they are and reads answers one by
// one (keep-alive), for tests of what an HTTP client library would not send.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port);  // connected() says whether it worked
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  bool connected() const { return fd_ >= 0; }
  bool Send(const std::string& bytes);
  // The next answer (head and Content-Length body), waiting at most `timeout`; "" on timeout or
  // when the server closed the connection first.
  std::string ReadResponse(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Everything the server sends until it closes the connection (at most `timeout`).
  std::string ReadUntilClosed(std::chrono::milliseconds timeout);
  // Whether the server closed the connection within `timeout` (without sending anything).
  bool ClosedByServer(std::chrono::milliseconds timeout = std::chrono::seconds(2));

 private:
  int fd_ = -1;
  std::string buffered_;
};

class TestServer {
 public:
  TestServer() = default;
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;
  ~TestServer() { Stop(); }

  // Creates the App on 127.0.0.1 (an ephemeral port; `config.listen` is replaced), runs it, and
  // reads the first admin token from the data directory.
  Status Start(server::ServerConfig config, const Clock& clock, std::ostream& log);
  // Stops and destroys the App (a no-op when none runs); Start may follow.
  void Stop();

  server::App& app() { return *app_; }
  const std::string& base() const { return base_; }    // "http://127.0.0.1:PORT"
  const std::string& admin() const { return admin_; }  // the first admin token

  // A request with `token` as bearer (none when empty); a transport failure is a test failure.
  client::HttpResponse Call(const std::string& method, const std::string& path,
                            const std::string& token, const std::string& body = "",
                            std::vector<std::string> headers = {});
  // Call with a JSON body (none when null), expecting status `expect`; the parsed answer.
  nlohmann::json CallJson(const std::string& method, const std::string& path,
                          const std::string& token, const nlohmann::json& body, int expect);
  // Sends `request` (bytes as they are: a request line, headers and maybe a body) on a new
  // connection and returns everything the server sent until it closed (at most 5 s); "" when the
  // connection failed.
  std::string Raw(const std::string& request);
  // The status code of a raw response ("HTTP/1.1 400 ..." -> 400), or 0.
  static int RawStatus(const std::string& response);
  // POSTs the file at `file` as the body of `path`.
  client::HttpResponse Upload(const std::string& path, const std::string& file,
                              const std::string& token);

 private:
  std::unique_ptr<server::App> app_;
  std::thread thread_;
  std::string base_, admin_;
};

}  // namespace aloft::testing
