// An HttpServer serving on a thread of its own, for a small local API inside a program whose own
// threads do other work (the gateway's driver's screen and its in-car device API).
//
//   BackgroundServer api;
//   ALOFT_RETURN_IF_ERROR(api.Start(options, handler, "the driver's screen API"));
//   ... api.port() ...
//   api.Stop();  // or the destructor
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "http/server.h"

namespace aloft::http {

// Options for a small local API: one thread, at most 64 connections.
inline ServerOptions SmallApi(const std::string& listen) {
  ServerOptions o;
  o.listen = listen;
  o.threads = 1;
  o.max_connections = 64;
  return o;
}

class BackgroundServer {
 public:
  ~BackgroundServer() { Stop(); }
  // Binds (errors name `what` and the address) and serves until Stop.
  Status Start(const ServerOptions& options, Handler& handler, const std::string& what);
  uint16_t port() const { return server_ ? server_->port() : 0; }
  // Lets running requests finish, then returns; safe to call twice.
  void Stop();

 private:
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

}  // namespace aloft::http
