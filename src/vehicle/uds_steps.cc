#include "vehicle/uds_steps.h"

#include <algorithm>
#include <memory>

namespace aloft::vehicle {

void RunSequence(uds::Client& client, std::vector<std::vector<uint8_t>> requests, Unlock unlock,
                 std::function<void(Status)> done) {
  if (requests.empty()) return done(OkStatus());
  std::vector<uint8_t> first = requests.front();
  if (first.size() == 2 && first[0] == 0x27 && first[1] % 2 == 1) {
    if (unlock.credentials) {
      // Authentication first; then the rest, the 27 with it (the credentials used up).
      auto credentials = std::move(unlock.credentials);
      unlock.credentials = nullptr;
      const uds::TesterCredentials& c = *credentials;
      return uds::Authenticate(
          client, c,
          [&client, credentials, requests = std::move(requests), unlock = std::move(unlock),
           done = std::move(done)](Status s) mutable {
            if (!s.ok()) return done(s);
            RunSequence(client, std::move(requests), std::move(unlock), std::move(done));
          });
    }
    if (!unlock.key) {  // the ECU takes no security access
      requests.erase(requests.begin());
      return RunSequence(client, std::move(requests), std::move(unlock), std::move(done));
    }
  }
  requests.erase(requests.begin());
  client.Request(first, [&client, first, requests = std::move(requests), unlock = std::move(unlock),
                         done = std::move(done)](Result<uds::Response> r) mutable {
    if (!r.ok()) return done(std::move(r).error());
    if (!r->positive()) return done(r->ToStatus(first));
    if (first[0] == 0x27 && first[1] % 2 == 1) {
      std::span<const uint8_t> seed = std::span(r->bytes).subspan(2);
      const bool zero = std::all_of(seed.begin(), seed.end(), [](uint8_t b) { return b == 0; });
      if (!zero) {
        std::vector<uint8_t> answer{0x27, static_cast<uint8_t>(first[1] + 1)};
        const Bytes k = unlock.key ? unlock.key(seed) : Bytes{};
        answer.insert(answer.end(), k.begin(), k.end());
        requests.insert(requests.begin(), std::move(answer));
      }
    }
    RunSequence(client, std::move(requests), std::move(unlock), std::move(done));
  });
}

namespace {

struct Upload {
  uds::Client& client;
  uint64_t size;
  size_t unit;
  Bytes data{};
  uint8_t bsc = 1;
  std::function<void(Result<Bytes>)> done;
};

void Finish(std::shared_ptr<Upload> u, Status s) {
  // Out of the programming session in every case: the ECU starts its application again.
  u->client.Request({0x11, 0x01}, [u, s](Result<uds::Response>) {
    if (!s.ok()) return u->done(s.error());
    size_t n = u->data.size();
    while (n > 0 && u->data[n - 1] == 0xFF) --n;
    n = (n + u->unit - 1) / u->unit * u->unit;
    u->data.resize(std::min(n, u->data.size()));
    u->done(std::move(u->data));
  });
}

void NextBlock(std::shared_ptr<Upload> u) {
  if (u->data.size() >= u->size) {
    return u->client.Request({0x37}, [u](Result<uds::Response> r) {
      if (!r.ok()) return Finish(u, std::move(r).error());
      Finish(u, r->positive() ? OkStatus() : r->ToStatus(std::vector<uint8_t>{0x37}));
    });
  }
  const uint8_t bsc = u->bsc;
  u->client.Request({0x36, bsc}, [u, bsc](Result<uds::Response> r) {
    if (!r.ok()) return Finish(u, std::move(r).error());
    if (!r->positive()) return Finish(u, r->ToStatus(std::vector<uint8_t>{0x36, bsc}));
    if (r->bytes.size() <= 2 || r->bytes[1] != bsc) {
      return Finish(u, Error(Code::kMalformed, "UDS 76: an empty block or the wrong counter"));
    }
    u->data.insert(u->data.end(), r->bytes.begin() + 2, r->bytes.end());
    ++u->bsc;
    NextBlock(u);
  });
}

}  // namespace

void ReadBack(uds::Client& client, uint64_t address, uint64_t size, Unlock unlock, size_t unit,
              std::function<void(Result<Bytes>)> done) {
  auto u = std::make_shared<Upload>(Upload{
      .client = client, .size = size, .unit = std::max<size_t>(unit, 1), .done = std::move(done)});
  RunSequence(client, {{0x10, 0x03}, {0x31, 0x01, 0x02, 0x03}, {0x10, 0x02}, {0x27, 0x01}},
              std::move(unlock), [u, address](Status s) {
                if (!s.ok()) return Finish(u, s);
                u->client.Request(uds::EncodeTransferRequest(0x35, {0x00, address, u->size}),
                                  [u](Result<uds::Response> r) {
                                    if (!r.ok()) return Finish(u, std::move(r).error());
                                    if (!r->positive())
                                      return Finish(u, r->ToStatus(std::vector<uint8_t>{0x35}));
                                    u->data.reserve(u->size);
                                    NextBlock(u);
                                  });
              });
}

}  // namespace aloft::vehicle
