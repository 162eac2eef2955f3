// An asynchronous HTTP/1.1 server on Boost.Beast: keep-alive, optional TLS, a small fixed pool of
// threads, bodies read into memory or straight to a file (uploads), responses from memory or from
// file ranges (sendfile(2) on plain TCP), per-phase timeouts so that slow or idle clients hold
// only a socket and a few KiB, never a thread. Stop() shuts down gracefully.
//
//   HttpServer server(options, handler);
//   ALOFT_RETURN_IF_ERROR(server.Bind());       // then server.port() is known
//   server.Run();                               // returns after Stop()
//
// The Handler is called on the server's threads, concurrently; it must be thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "core/error.h"
#include "http/message.h"

namespace aloft::http {

// How to read a request's body, decided from its headers.
struct BodyPlan {
  uint64_t max_size = 1 << 20;  // larger bodies get 413 without being read
  std::string to_file_dir;      // non-empty: stream the body to a new file in this directory,
  std::string file_prefix = "upload-";  // named <prefix><pid>-<n>-<random>
};

class Handler {
 public:
  virtual ~Handler() = default;
  // After the header: a BodyPlan to read the body, or a Response that answers at once (the body
  // is not read, the connection closes if one was announced). E.g. 401 before a 1 GiB upload.
  // The handler may note what it decided in `head.route` and `head.params`; Handle gets the same
  // Request back.
  virtual std::variant<BodyPlan, Response> OnHeaders(Request& head) = 0;
  virtual Response Handle(Request& request) = 0;
};

struct ServerOptions {
  std::string listen = "127.0.0.1:8080";  // "host:port"; "[::1]:8080"; port 0 picks one
  int threads = 2;
  std::string tls_cert, tls_key;  // PEM files; both set -> HTTPS only
  // With TLS: the CAs (PEM) whose clients' certificates are asked for and verified; the result
  // is in Request::client_cert, a client without one still connects (docs/identity.md).
  std::string tls_client_ca;
  uint32_t max_header_bytes = 16 * 1024;
  std::chrono::seconds header_timeout{30};  // to receive a request header (slowloris)
  std::chrono::seconds idle_timeout{60};    // keep-alive wait for the next request
  std::chrono::seconds io_timeout{60};      // without progress while reading a body or writing
  std::chrono::seconds shutdown_grace{10};
  // Connections at once; at most the file descriptor limit less a fifth (at least 128 kept) for
  // the files, database and uploads the connections need. Beyond: closed on accept.
  int max_connections = 20000;
  // Connections at once from one client address (0: no limit). Behind a proxy or load balancer,
  // every client is its address: raise it there, or set 0.
  int max_connections_per_address = 512;
};

// Counters for /metrics.
struct ServerCounters {
  std::atomic<int64_t> connections{0};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> rejected_connections{0};  // closed on accept: a limit was reached
  std::atomic<int64_t> max_connections{0};        // the limit in force (after Bind)
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, Handler& handler);
  ~HttpServer();

  // Opens the listening socket (and loads TLS files). kInvalidArgument for a bad address or TLS
  // file, kIo when the port is taken.
  Status Bind();
  uint16_t port() const;
  // Serves on `threads` threads until Stop(); returns when all work ended.
  void Run();
  // Stops accepting, closes idle connections, lets running requests finish within the grace
  // period. Safe from any thread and from a signal handler's asio callback.
  void Stop();

  const ServerCounters& counters() const;

  struct Impl;  // opaque; public only so server.cc's sessions can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace aloft::http
