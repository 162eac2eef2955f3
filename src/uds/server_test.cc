// The UDS server framework and client over a link in memory, on simulated time: every built-in
// service and the NRCs it answers (table-driven), the standard's check order, security access
// with its attempt counter and delay, response pending, busy, S3, functional requests.
#include "uds/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/encoding.h"
#include "core/hash.h"
#include "support/matchers.h"
#include "uds/client.h"
#include "uds/memory_link.h"

namespace aloft::uds {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

std::vector<uint8_t> Hex(const std::string& text) {
  std::string compact;
  for (char c : text) {
    if (c != ' ') compact += c;
  }
  auto bytes = HexDecode(compact);
  EXPECT_TRUE(bytes.ok()) << text;
  return bytes.ok() ? *bytes : std::vector<uint8_t>{};
}

std::string ToHex(const std::vector<uint8_t>& b) {
  std::string s;
  for (size_t i = 0; i < b.size(); ++i) {
    char buf[4];
    std::snprintf(buf, sizeof buf, i ? " %02X" : "%02X", b[i]);
    s += buf;
  }
  return s;
}

const std::vector<uint8_t> kSecret = {1, 2, 3, 4, 5, 6, 7, 8};
std::vector<uint8_t> KeyFor(std::span<const uint8_t> seed) { return HmacSha256(kSecret, seed); }

class UdsServer : public ::testing::Test {
 protected:
  UdsServer() {
    std::tie(tester_, ecu_link_) = MemoryLink::Pair(loop_);
    std::tie(functional_tester_, functional_ecu_) = MemoryLink::Pair(loop_);
    server_.Attach(*ecu_link_);
    server_.Attach(*functional_ecu_, {.functional = true, .reply = ecu_link_.get()});
    server_.SetDid(0xF190, {.value = Hex("57 41 4C 4F 46 54 30 30 30 30 30 30 30 30 30 30 31")});
    server_.SetDid(0xF18C, {.value = Hex("53 4E 31")});
    server_.SetDid(
        0x0100, {.value = Hex("00 00 00 00"), .writable = true, .write_security = 1, .length = 4});
    server_.SetSecurityLevel(1, {.key = KeyFor});
    server_.SetDtcs({{0x012345, 0x09}, {0xC01234, 0x01}});
    server_.Handle(0x31, {.min_length = 4, .subfunction = true},
                   [this](const Request& r, Responder reply) {
                     // A routine that takes 200 ms: the framework answers 0x78 meanwhile.
                     loop_.After(milliseconds(200), [reply, r]() mutable {
                       reply.Positive({0x71, r.sub(), r.bytes[2], r.bytes[3], 0x00});
                     });
                   });
    tester_->AddListener([this](const std::vector<uint8_t>& m) { heard_.push_back(m); });
  }

  // Sends `request` (from the tester, or functionally) and returns what came back within 1 s.
  std::vector<std::string> Exchange(const std::string& request, bool functional = false) {
    heard_.clear();
    (functional ? functional_tester_ : tester_)->Send(Hex(request), nullptr);
    loop_.RunFor(milliseconds(1000));
    std::vector<std::string> out;
    for (const auto& m : heard_) out.push_back(ToHex(m));
    return out;
  }
  std::string Unlock() {
    auto seed = Exchange("27 01");
    std::vector<uint8_t> s = Hex(seed.at(0)).size() > 2 ? Hex(seed.at(0)) : std::vector<uint8_t>{};
    std::vector<uint8_t> key = KeyFor(std::span(s).subspan(2));
    std::vector<uint8_t> req{0x27, 0x02};
    req.insert(req.end(), key.begin(), key.end());
    return Exchange(ToHex(req)).at(0);
  }

  SimLoop loop_;
  std::unique_ptr<MemoryLink> tester_, ecu_link_, functional_tester_, functional_ecu_;
  Server server_{loop_, {.name = "ecm"}};
  std::vector<std::vector<uint8_t>> heard_;
};

// Must show 3 (services and NRCs): each row is a request in a session and the answers.
TEST_F(UdsServer, EveryServiceAndNrc_TableDriven) {
  struct Row {
    uint8_t session;
    const char* request;
    std::vector<std::string> answers;  // prefixes
  };
  const std::vector<Row> rows = {
      {1, "10 01", {"50 01 00 32 01 F4"}},
      {1, "10 03", {"50 03 00 32 01 F4"}},
      {1, "10 04", {"7F 10 12"}},
      {1, "10", {"7F 10 13"}},
      {1, "10 01 00", {"7F 10 13"}},
      {1, "10 81", {}},  // suppress positive response
      {1, "22 F1 90", {"62 F1 90 57 41 4C 4F 46 54"}},
      {1, "22 F1 90 F1 8C", {"62 F1 90 57"}},
      {1, "22 F1 8C 12 34", {"62 F1 8C 53 4E 31"}},  // the unknown one is left out
      {1, "22 12 34", {"7F 22 31"}},
      {1, "22 F1", {"7F 22 13"}},
      {1, "2E 01 00 01 02 03 04", {"7F 2E 7F"}},
      {3, "2E 01 00 01 02 03 04", {"7F 2E 33"}},
      {3, "2E F1 90 01", {"7F 2E 31"}},
      {1, "27 01", {"7F 27 7F"}},
      {3, "27 01", {"67 01"}},
      {3, "27 02 00 01", {"7F 27 24"}},
      {3, "27 05", {"7F 27 12"}},
      {1, "28 03 01", {"7F 28 7F"}},
      {3, "28 03 01", {"68 03"}},
      {3, "28 83 01", {}},
      {3, "28 04 01", {"7F 28 12"}},
      {3, "28 03 00", {"7F 28 31"}},
      {3, "28 03", {"7F 28 13"}},
      {1, "85 02", {"7F 85 7F"}},
      {3, "85 02", {"C5 02"}},
      {3, "85 03", {"7F 85 12"}},
      {1, "3E 00", {"7E 00"}},
      {1, "3E 80", {}},
      {1, "3E 01", {"7F 3E 12"}},
      {1, "3E 00 00", {"7F 3E 13"}},
      {1, "19 02 08", {"59 02 FF 01 23 45 09"}},
      {1, "19 0A", {"59 0A FF 01 23 45 09 C0 12 34 01"}},
      {1, "19 01 FF", {"7F 19 12"}},
      {1, "19 02", {"7F 19 13"}},
      {1, "14 FF FF FF", {"54"}},
      {1, "14 00 00 01", {"7F 14 31"}},
      {1, "14 FF", {"7F 14 13"}},
      {1, "19 0A", {"59 0A FF 01 23 45 00 C0 12 34 00"}},  // cleared
      {1, "AA 00", {"7F AA 11"}},
      {1, "31 01 FF 00", {"7F 31 78", "71 01 FF 00 00"}},
      {1, "31 81 FF 00", {"7F 31 78", "71 01 FF 00 00"}},  // suppressed, but 0x78 was sent
      {1, "31 01", {"7F 31 13"}},
  };
  for (const Row& row : rows) {
    server_.Reset();
    if (row.session != 1) {
      ASSERT_THAT(Exchange("10 03"), ::testing::SizeIs(1));
    }
    const auto got = Exchange(row.request);
    ASSERT_EQ(got.size(), row.answers.size())
        << row.request << ": got " << ::testing::PrintToString(got);
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_THAT(got[i], ::testing::StartsWith(row.answers[i])) << row.request;
    }
  }
}

TEST_F(UdsServer, SecurityAccess_KeyUnlocks_WrongKeysCountedAndDelayed_EvenOverAReset) {
  Exchange("10 03");
  EXPECT_EQ(Unlock(), "67 02");
  EXPECT_EQ(server_.security_level(), 1);
  EXPECT_THAT(Exchange("27 01"), ::testing::ElementsAre("67 01 00 00 00 00 00 00 00 00 00 00 00 00 "
                                                        "00 00 00 00"))
      << "unlocked already: a zero seed";
  EXPECT_THAT(Exchange("2E 01 00 0A 0B 0C 0D"), ::testing::ElementsAre("6E 01 00"));
  EXPECT_THAT(Exchange("22 01 00"), ::testing::ElementsAre("62 01 00 0A 0B 0C 0D"));
  // Two seeds are never the same (a CSPRNG).
  server_.Reset();
  Exchange("10 03");
  const auto s1 = Exchange("27 01"), s2 = Exchange("27 01");
  EXPECT_NE(s1, s2);
  // Wrong keys: 0x35, 0x35, then 0x36 and the delay (0x37), which a reset does not clear.
  const std::string wrong = "27 02 " + std::string(32 * 3 - 1, ' ');
  std::vector<uint8_t> bad_key(34, 0xEE);
  bad_key[0] = 0x27;
  bad_key[1] = 0x02;
  for (const char* expected : {"7F 27 35", "7F 27 35", "7F 27 36"}) {
    Exchange("27 01");
    EXPECT_THAT(Exchange(ToHex(bad_key)), ::testing::ElementsAre(expected));
  }
  EXPECT_THAT(Exchange("27 01"), ::testing::ElementsAre("7F 27 37"));
  server_.Reset();
  Exchange("10 03");
  EXPECT_THAT(Exchange("27 01"), ::testing::ElementsAre("7F 27 37")) << "the delay survives";
  loop_.RunFor(milliseconds(10000));
  Exchange("10 03");
  EXPECT_EQ(Unlock(), "67 02");
  // A key of the wrong length is a format error, and uses up the seed.
  server_.Reset();
  Exchange("10 03");
  Exchange("27 01");
  EXPECT_THAT(Exchange("27 02 01 02"), ::testing::ElementsAre("7F 27 13"));
}

TEST_F(UdsServer, SessionChange_LocksSecurity_DefaultEndsCommunicationAndDtcControl) {
  Exchange("10 03");
  Unlock();
  Exchange("28 03 01");
  Exchange("85 02");
  EXPECT_FALSE(server_.tx_enabled());
  EXPECT_FALSE(server_.dtc_setting_on());
  Exchange("10 02");
  EXPECT_EQ(server_.security_level(), 0);
  EXPECT_FALSE(server_.tx_enabled()) << "28 holds until the default session";
  Exchange("10 01");
  EXPECT_TRUE(server_.tx_enabled());
  EXPECT_TRUE(server_.dtc_setting_on());
}

TEST_F(UdsServer, SessionGuard_RefusesWithItsNrc) {
  server_.session_guard = [](uint8_t from, uint8_t to) -> std::optional<uint8_t> {
    if (to == session::kProgramming && from != session::kExtended)
      return nrc::kConditionsNotCorrect;
    return std::nullopt;
  };
  EXPECT_THAT(Exchange("10 02"), ::testing::ElementsAre("7F 10 22"));
  Exchange("10 03");
  EXPECT_THAT(Exchange("10 02"), ::testing::ElementsAre("50 02 00 32 01 F4"));
}

TEST_F(UdsServer, S3_NonDefaultSessionEndsAfterSilence_TesterPresentKeepsIt) {
  Exchange("10 03");
  loop_.RunFor(milliseconds(3000));
  EXPECT_EQ(server_.session(), session::kExtended);
  Exchange("3E 80", /*functional=*/true);  // at 4 s; the exchange waits 1 s
  loop_.RunFor(milliseconds(3500));
  EXPECT_EQ(server_.session(), session::kExtended) << "3E 80 restarted S3";
  loop_.RunFor(milliseconds(1000));
  EXPECT_EQ(server_.session(), session::kDefault);
}

TEST_F(UdsServer, RequestWhileBusy_Answered0x21_TesterPresentAccepted) {
  heard_.clear();
  tester_->Send(Hex("31 01 FF 00"), nullptr);
  loop_.RunFor(milliseconds(60));
  tester_->Send(Hex("22 F1 90"), nullptr);
  functional_tester_->Send(Hex("3E 80"), nullptr);
  loop_.RunFor(milliseconds(500));
  std::vector<std::string> got;
  for (const auto& m : heard_) got.push_back(ToHex(m));
  EXPECT_THAT(got, ::testing::ElementsAre("7F 31 78", "7F 22 21", "71 01 FF 00 00"));
}

TEST_F(UdsServer, FunctionalRequests_NoNrcsTheStandardSuppresses) {
  EXPECT_THAT(Exchange("AA 00", true), ::testing::IsEmpty());
  EXPECT_THAT(Exchange("22 12 34", true), ::testing::IsEmpty());
  EXPECT_THAT(Exchange("10 04", true), ::testing::IsEmpty());
  EXPECT_THAT(Exchange("10 03", true), ::testing::ElementsAre("50 03 00 32 01 F4"));
  EXPECT_THAT(Exchange("28 03 01 00", true), ::testing::ElementsAre("7F 28 13"))
      << "a length error is still told";
}

// The client: P2 and P2* timing, 0x78, 0x21 repeats, the session's announced timing, suppress.
TEST_F(UdsServer, Client_WaitsThroughPending_RepeatsBusy_TimesOut) {
  Client client(*tester_);
  std::optional<Result<Response>> got;
  auto done = [&](Result<Response> r) { got = std::move(r); };
  client.Request(Hex("31 01 FF 00"), done);
  loop_.RunFor(milliseconds(1000));
  ASSERT_TRUE(got && got->ok());
  EXPECT_EQ(ToHex((*got)->bytes), "71 01 FF 00 00");
  EXPECT_EQ(client.stats().pending_seen, 1u);

  client.Request(Hex("10 03"), done);
  loop_.RunFor(milliseconds(100));
  EXPECT_EQ(client.p2(), milliseconds(150)) << "50 + the 100 ms transport margin";
  EXPECT_EQ(client.p2_star(), milliseconds(5100));

  client.Request(Hex("27 05"), done);
  loop_.RunFor(milliseconds(100));
  ASSERT_TRUE(got->ok());
  EXPECT_EQ((*got)->nrc(), 0x12);
  EXPECT_THAT((*got)->ToStatus(Hex("27 05")),
              IsError(Code::kUnavailable, HasSubstr("UDS 27 05: negative response 0x12 "
                                                    "(subFunctionNotSupported)")));

  // Busy: a second client's request overlaps a slow one and is repeated until it goes.
  auto [t2, e2] = MemoryLink::Pair(loop_);
  server_.Attach(*e2);
  Client other(*t2, {.busy_delay = milliseconds(100)});
  client.Request(Hex("31 01 FF 00"), nullptr);
  std::optional<Result<Response>> other_got;
  loop_.RunFor(milliseconds(10));
  other.Request(Hex("22 F1 8C"), [&](Result<Response> r) { other_got = std::move(r); });
  loop_.RunFor(milliseconds(1000));
  ASSERT_TRUE(other_got && other_got->ok());
  EXPECT_EQ(ToHex((*other_got)->bytes), "62 F1 8C 53 4E 31");
  EXPECT_GE(other.stats().busy_retries, 1u);

  // Nobody answers: P2 expires.
  server_.Detach(*ecu_link_);
  server_.Detach(*e2);
  client.Request(Hex("22 F1 90"), done);
  loop_.RunFor(milliseconds(1000));
  EXPECT_THAT(*got, IsError(Code::kUnavailable, HasSubstr("no response within P2 (150 ms)")));
  // With the suppress bit, silence is success.
  client.Request(Hex("3E 80"), done);
  loop_.RunFor(milliseconds(1000));
  EXPECT_THAT(*got, IsOk());
}

TEST_F(UdsServer, Client_FunctionalRequest_CollectsEveryEcu) {
  // A second ECU behind the same functional link.
  auto [tester2, ecu2_link] = MemoryLink::Pair(loop_);
  auto [f_tester2, f_ecu2] = MemoryLink::Pair(loop_);
  Server second(loop_, {.name = "bcm"});
  second.Attach(*ecu2_link);
  second.Attach(*f_ecu2, {.functional = true, .reply = ecu2_link.get()});
  // One functional send reaches both ECUs: forward the tester's functional link to the second.
  std::vector<std::pair<Link*, Response>> got;
  bool done = false;
  Client::Functional(*functional_tester_, {tester_.get(), tester2.get()}, Hex("10 03"),
                     milliseconds(150), milliseconds(5100), [&](auto answers) {
                       got = std::move(answers);
                       done = true;
                     });
  f_tester2->Send(Hex("10 03"), nullptr);  // the same request on the second ECU's functional link
  loop_.RunFor(milliseconds(500));
  ASSERT_TRUE(done);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0].second.positive());
  EXPECT_TRUE(got[1].second.positive());
}

}  // namespace
}  // namespace aloft::uds
