#include "http/router.h"

namespace aloft::http {
namespace {

std::vector<std::string> Split(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

void Router::Add(std::string method, std::string pattern, int id) {
  auto segments = Split(pattern);
  routes_.push_back({std::move(method), std::move(pattern), std::move(segments), id});
}

RouteMatch Router::Match(std::string_view method, std::string_view path) const {
  RouteMatch out;
  auto segments = Split(path);
  for (const auto& r : routes_) {
    // A last segment "{name...}" takes one or more segments, joined by '/'.
    const bool tail = !r.segments.empty() && r.segments.back().ends_with("...}");
    if (tail ? segments.size() < r.segments.size() : r.segments.size() != segments.size()) {
      continue;
    }
    std::map<std::string, std::string> params;
    bool ok = true;
    for (size_t i = 0; i < r.segments.size() && ok; ++i) {
      const auto& p = r.segments[i];
      if (tail && i + 1 == r.segments.size()) {
        std::string rest = segments[i];
        for (size_t j = i + 1; j < segments.size(); ++j) rest += "/" + segments[j];
        params[p.substr(1, p.size() - 5)] = std::move(rest);
      } else if (p.size() >= 2 && p.front() == '{' && p.back() == '}') {
        params[p.substr(1, p.size() - 2)] = segments[i];
      } else {
        ok = p == segments[i];
      }
    }
    if (!ok) continue;
    if (r.method == method || (method == "HEAD" && r.method == "GET")) {
      out.kind = RouteMatch::kFound;
      out.id = r.id;
      out.pattern = r.pattern;
      out.params = std::move(params);
      return out;
    }
    out.kind = RouteMatch::kWrongMethod;
    out.allowed += (out.allowed.empty() ? "" : ", ") + r.method;
  }
  return out;
}

std::optional<Response> Unrouted(const RouteMatch& m, const Request& head,
                                 const std::string& hint) {
  if (m.kind == RouteMatch::kNoPath) {
    return Response::Error(404, "not-found", "no " + head.path + (hint.empty() ? "" : hint));
  }
  if (m.kind == RouteMatch::kWrongMethod) {
    Response r = Response::Error(405, "method-not-allowed", head.path + " takes " + m.allowed);
    r.headers.Set("Allow", m.allowed);
    return r;
  }
  return std::nullopt;
}

}  // namespace aloft::http
