#include "fleetsim/http_engine.h"

#include <curl/curl.h>

#include <chrono>
#include <mutex>

namespace aloft::fleetsim {

struct HttpEngine::Transfer {
  HttpCall call;
  Done done;
  std::function<void(const char*, size_t)> on_data;
  HttpResult result;
  curl_slist* headers = nullptr;
  CURL* easy = nullptr;
  std::chrono::steady_clock::time_point started;
  int body_ok = -1;  // its answer's status is 2xx (1) or not (0); -1: not asked yet
};

namespace {

size_t OnBody(char* data, size_t size, size_t n, void* p) {
  auto* t = static_cast<HttpEngine::Transfer*>(p);
  const size_t len = size * n;
  t->result.bytes += len;
  if (t->call.keep_body) {
    t->result.body.append(data, len);
  } else if (t->on_data) {
    // Only a successful answer's body is the resource: an error's (503 while the database
    // restarts, say) must not reach a download's hash.
    if (t->body_ok < 0) {  // once per answer, not per piece of it
      long status = 0;
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
      t->body_ok = status / 100 == 2;
    }
    if (t->body_ok) {
      t->on_data(data, len);
    } else {
      t->result.bytes -= len;
    }
  }
  return len;
}

}  // namespace

HttpEngine::HttpEngine(size_t max_in_flight) : max_in_flight_(max_in_flight) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURLM* m = curl_multi_init();
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, static_cast<long>(max_in_flight * 2));
  multi_ = m;
}

HttpEngine::~HttpEngine() {
  CURLM* m = static_cast<CURLM*>(multi_);
  queue_.clear();
  for (Transfer* t : active_) {
    curl_multi_remove_handle(m, t->easy);
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    delete t;
  }
  for (void* h : idle_handles_) curl_easy_cleanup(static_cast<CURL*>(h));
  curl_multi_cleanup(m);
}

void HttpEngine::Submit(HttpCall call, Done done,
                        std::function<void(const char*, size_t)> on_data) {
  auto t = std::make_unique<Transfer>();
  t->call = std::move(call);
  t->done = std::move(done);
  t->on_data = std::move(on_data);
  if (running_ < max_in_flight_) {
    Start(std::move(t));
  } else {
    queue_.push_back(std::move(t));
  }
}

void HttpEngine::Start(std::unique_ptr<Transfer> t) {
  CURL* e = nullptr;
  if (!idle_handles_.empty()) {
    e = static_cast<CURL*>(idle_handles_.back());
    idle_handles_.pop_back();
    curl_easy_reset(e);
  } else {
    e = curl_easy_init();
  }
  t->easy = e;
  const HttpCall& c = t->call;
  curl_easy_setopt(e, CURLOPT_URL, c.url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c.timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  if (!c.token.empty()) {
    t->headers = curl_slist_append(
        t->headers,
        ("Authorization: " + (c.scheme.empty() ? "Bearer" : c.scheme) + " " + c.token).c_str());
  }
  if (c.method == "POST") {
    t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(c.body.size()));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, c.body.c_str());
  } else if (c.method != "GET") {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c.method.c_str());
  }
  if (c.range_to > c.range_from) {
    const std::string range = std::to_string(c.range_from) + "-" + std::to_string(c.range_to - 1);
    curl_easy_setopt(e, CURLOPT_RANGE, range.c_str());
  }
  // "Expect: 100-continue" would cost a round trip per POST.
  t->headers = curl_slist_append(t->headers, "Expect:");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  t->started = std::chrono::steady_clock::now();
  ++running_;
  curl_multi_add_handle(static_cast<CURLM*>(multi_), e);
  active_.insert(t.release());  // owned here (and found through CURLOPT_PRIVATE) until it ends
}

void HttpEngine::StartQueued() {
  while (running_ < max_in_flight_ && !queue_.empty()) {
    auto t = std::move(queue_.front());
    queue_.pop_front();
    Start(std::move(t));
  }
}

size_t HttpEngine::Poll(int timeout_ms, std::vector<pollfd>* extra) {
  CURLM* m = static_cast<CURLM*>(multi_);
  int still = 0;
  curl_multi_perform(m, &still);
  std::vector<curl_waitfd> waits;
  if (extra) {
    waits.reserve(extra->size());
    for (const pollfd& p : *extra) {
      waits.push_back({p.fd,
                       static_cast<short>(((p.events & POLLIN) ? CURL_WAIT_POLLIN : 0) |
                                          ((p.events & POLLOUT) ? CURL_WAIT_POLLOUT : 0)),
                       0});
    }
  }
  // Waits even with nothing in flight (curl_multi_poll does, where curl_multi_wait would not):
  // an idle fleet must sleep until its next device is due, not spin on the clock.
  curl_multi_poll(m, waits.data(), static_cast<unsigned>(waits.size()), timeout_ms, nullptr);
  curl_multi_perform(m, &still);
  // curl_multi_poll wakes for them but does not say which (this libcurl sets no revents).
  if (extra && !extra->empty()) ::poll(extra->data(), extra->size(), 0);
  size_t ended = 0;
  int left = 0;
  std::vector<std::unique_ptr<Transfer>> finished;
  while (CURLMsg* msg = curl_multi_info_read(m, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* e = msg->easy_handle;
    Transfer* raw = nullptr;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, reinterpret_cast<char**>(&raw));
    active_.erase(raw);
    std::unique_ptr<Transfer> t(raw);
    if (msg->data.result == CURLE_OK) {
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &t->result.status);
    } else {
      t->result.error = curl_easy_strerror(msg->data.result);
    }
    t->result.latency_us = std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::steady_clock::now() - t->started)
                               .count();
    curl_multi_remove_handle(m, e);
    curl_slist_free_all(t->headers);
    t->headers = nullptr;
    idle_handles_.push_back(e);
    --running_;
    finished.push_back(std::move(t));
  }
  StartQueued();
  for (auto& t : finished) {
    ++ended;
    Done done = std::move(t->done);
    done(std::move(t->result));
  }
  return ended;
}

}  // namespace aloft::fleetsim
