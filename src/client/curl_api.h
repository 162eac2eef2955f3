// libcurl, loaded when first needed rather than linked.
//
// The `aloft` CLI is also a device-side tool: `aloft apply` must run in a few MiB, and merely
// linking libcurl (with its TLS, HTTP/2, SSH, LDAP and IDN libraries) costs about 6.7 MiB of
// resident memory at start, before any request. So the client resolves the few functions it calls
// from libcurl.so.4 with dlopen on the first request; commands that never talk to a server never
// map it. A program that links libcurl itself (the agent) gets the copy already loaded.
//
//   ALOFT_ASSIGN_OR_RETURN(const CurlApi* curl, LoadCurl());
//   CURL* h = curl->easy_init();
#pragma once

#include <curl/curl.h>

#include "core/error.h"

namespace aloft::client {

struct CurlApi {
  CURLcode (*global_init)(long flags);
  CURL* (*easy_init)();
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_perform)(CURL*);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  void (*easy_cleanup)(CURL*);
  const char* (*easy_strerror)(CURLcode);
  curl_slist* (*slist_append)(curl_slist*, const char*);
  void (*slist_free_all)(curl_slist*);
};

// Loads libcurl.so.4 and runs curl_global_init, once per process (thread-safe). The error
// (kUnavailable) names the library and what the dynamic loader said; it is remembered, so every
// later call fails the same way without trying again.
Result<const CurlApi*> LoadCurl();

}  // namespace aloft::client
