// A DoIP entity on real sockets: TCP connections (each a net::SocketStream handed to the Entity)
// and UDP datagrams (vehicle identification, status, power mode) on one port, 13400 by default.
// The Entity runs on the RealLoop; this class's thread only accepts and reads datagrams.
#pragma once

#include <atomic>
#include <thread>

#include "core/event_loop.h"
#include "doip/entity.h"
#include "net/socket.h"
#include "net/tls.h"

namespace aloft::doip {

class SocketServer {
 public:
  SocketServer(RealLoop& loop, Entity& entity) : loop_(loop), entity_(entity) {}
  ~SocketServer() { Stop(); }
  SocketServer(const SocketServer&) = delete;
  SocketServer& operator=(const SocketServer&) = delete;

  // Listens on `at` for TCP and UDP (port 0: a free TCP port, UDP on the same number).
  Result<net::Endpoint> Start(const net::Endpoint& at);
  // Also DoIP over TLS on `at` (3496 by default) with this certificate and key (PEM files);
  // call before Start. Connections that come in this way may activate routing when the
  // entity requires TLS.
  Result<net::Endpoint> ListenTls(const net::Endpoint& at, const std::string& cert,
                                  const std::string& key);
  void Stop();
  // The vehicle announcement, A_DoIP_Announce_Num (3) times A_DoIP_Announce_Interval (500 ms)
  // apart, to `to` over UDP.
  void Announce(const net::Endpoint& to);

 private:
  void Serve();
  RealLoop& loop_;
  Entity& entity_;
  net::Fd tcp_, udp_, tls_listen_, wake_read_, wake_write_;
  std::unique_ptr<net::TlsEndpoint> tls_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

}  // namespace aloft::doip
