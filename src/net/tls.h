// TLS for a connected TCP socket, done by a thread of its own so that the protocol code above it
// keeps reading and writing plain bytes (a SocketStream on the returned descriptor): the thread
// runs the handshake, then moves bytes between the TLS connection and one end of a socket pair
// whose other end it returns. All of OpenSSL's work on one connection stays on that thread.
//
//   auto tls = net::TlsServer::Create("entity.crt", "entity.key");
//   Result<net::Fd> plain = tls->Wrap(std::move(accepted_tcp_fd));   // DoIP on 3496
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "net/socket.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace aloft::net {

class TlsEndpoint {
 public:
  // A server with a certificate chain and its key (PEM files).
  static Result<std::unique_ptr<TlsEndpoint>> Server(const std::string& cert_pem,
                                                     const std::string& key_pem);
  // A client that trusts the CA certificates in `ca_pem` and checks the peer's name (`host`).
  static Result<std::unique_ptr<TlsEndpoint>> Client(const std::string& ca_pem,
                                                     const std::string& host);
  ~TlsEndpoint();  // ends every connection's thread

  // Runs the handshake on `tcp` (within 5 s) and returns the plaintext end; kUnavailable naming
  // the TLS failure.
  Result<Fd> Wrap(Fd tcp);

 private:
  TlsEndpoint(SSL_CTX* ctx, bool server, std::string host)
      : ctx_(ctx), server_(server), host_(std::move(host)) {}
  SSL_CTX* ctx_;
  bool server_;
  std::string host_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  struct PumpThread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> finished;
  };
  std::vector<PumpThread> pumps_;  // finished ones are joined at the next Wrap
};

}  // namespace aloft::net
