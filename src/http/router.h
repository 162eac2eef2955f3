// Maps (method, path) to a route: patterns with "{name}" segments, e.g.
// "/api/v1/devices/{name}/actions", and a last segment "{name...}" that takes the rest of the
// path (one or more segments, joined by '/'). A route carries an opaque id the caller uses for
// metrics and dispatch. Lookup distinguishes "no such path" (404) from "path exists, other method"
// (405).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "http/message.h"

namespace aloft::http {

struct RouteMatch {
  enum Kind { kFound, kNoPath, kWrongMethod } kind = kNoPath;
  int id = -1;
  std::string pattern;  // the matched pattern (for metrics labels)
  std::map<std::string, std::string> params;
  std::string allowed;  // "GET, POST" when kWrongMethod
};

class Router {
 public:
  void Add(std::string method, std::string pattern, int id);
  RouteMatch Match(std::string_view method, std::string_view path) const;

 private:
  struct Route {
    std::string method, pattern;
    std::vector<std::string> segments;
    int id;
  };
  std::vector<Route> routes_;
};

// A request that did not route, answered in the server's one error shape: 404 "no PATH" and
// `hint` when given, or 405 naming the methods the path takes (and an Allow field). nullopt
// when `m` found a route.
std::optional<Response> Unrouted(const RouteMatch& m, const Request& head,
                                 const std::string& hint = "");

}  // namespace aloft::http
