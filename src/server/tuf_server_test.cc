// aloftd's TUF Image repository and Uptane Director over real HTTP on loopback, SQLite and
// PostgreSQL: what `aloft repo` makes offline is pushed, checked as a client would check it,
// served with the server's snapshot and timestamp, followed by our client through root rotations,
// and signed again before it expires; a device's signed version manifest enrols its key, and its
// Director metadata names what it must install. (tuf-js, an independent client, reads the Image
// repository in tests/tuf-js.)
#include <thread>

#include "core/encoding.h"
#include "core/hash.h"
#include "crypto/key_wrap.h"
#include "crypto/keys.h"
#include "server/server_fixture.h"
#include "tuf/repository.h"
#include "tuf/updater.h"
#include "tuf/workspace.h"

namespace aloft::server {
namespace {

using ::testing::HasSubstr;
using tuf::Workspace;

crypto::PrivateKey NewKey() { return *crypto::PrivateKey::Generate(crypto::KeyType::kEd25519); }
tuf::Key KeyOf(const crypto::PrivateKey& k) { return *tuf::KeyFromPublic(k.public_key()); }
int64_t NowMs(const Clock& c) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(c.Wall().time_since_epoch()).count();
}

class TufImageTest : public ServerTest {
 protected:
  void SetUp() override {
    database_ = testing::FreshDatabase(GetParam(), dir_.path());
    if (database_.empty()) GTEST_SKIP() << "no PostgreSQL (set ALOFT_TEST_PG_URL)";
    ASSERT_THAT(WriteFileAtomic(dir_ / "release.pub", pkgs_.keys[0].public_key().ToPem()), IsOk());
    ASSERT_THAT(crypto::SaveKeyPair(snapshot_key_, dir_ / "snapshot"), IsOk());
    ASSERT_THAT(crypto::SaveKeyPair(timestamp_key_, dir_ / "timestamp"), IsOk());
    ASSERT_THAT(crypto::SaveKeyPair(director_key_, dir_ / "director"), IsOk());
    StartTuf();
  }
  void StartTuf(const Clock* clock = nullptr) {
    Start(
        [this](ServerConfig& c) {
          c.tuf_snapshot_key = dir_ / "snapshot.key";
          c.tuf_timestamp_key = dir_ / "timestamp.key";
          c.tuf_director_key = dir_ / "director.key";
          c.max_json_bytes = 1 << 20;
        },
        clock);
  }
  // An Image repository's offline half: root 1 (root keys 2 of 2) and an empty targets.json.
  Workspace NewWorkspace(int bins = 0) {
    Workspace::InitOptions o;
    o.roles["root"] = {{KeyOf(root_keys_[0]), KeyOf(root_keys_[1])}, 2};
    o.roles["targets"] = {{KeyOf(targets_key_)}, 1};
    o.roles["snapshot"] = {{KeyOf(snapshot_key_)}, 1};
    o.roles["timestamp"] = {{KeyOf(timestamp_key_)}, 1};
    o.bins = bins;
    auto w = Workspace::Init(dir_ / "repo", o, NowMs(SystemClock::Instance()));
    EXPECT_TRUE(w.ok());
    EXPECT_TRUE(w->Sign(root_keys_[0], Now()).ok());
    EXPECT_TRUE(w->Sign(root_keys_[1], Now()).ok());
    return std::move(w).value();
  }
  int64_t Now() { return NowMs(SystemClock::Instance()); }
  json PushBody(const Workspace& w) {
    json body = {{"roots", json::array()}};
    auto roots = w.RootFiles();  // kept: a range-for over *w.RootFiles() would dangle
    for (auto& r : *roots) body["roots"].push_back(r);
    body["targets"] = *w.TargetsFile();
    body["delegated"] = *w.DelegatedFiles();
    return body;
  }
  client::HttpResponse Push(const json& body) {
    return Call("POST", "/api/v1/tuf/image", admin_, body.dump(),
                {"Content-Type: application/json"});
  }
  std::string Get(const std::string& file, int expect = 200) {
    auto r = Call("GET", "/tuf/image/" + file, "");
    EXPECT_EQ(r.status, expect) << file << ": " << r.body;
    return r.body;
  }
  // A client's refresh over HTTP from the root it trusts (`trusted`: 1.root.json's text).
  Result<tuf::Updater> Refresh(const std::string& trusted) {
    ALOFT_ASSIGN_OR_RETURN(auto root, tuf::TrustedRoot::FromText(trusted, "1.root.json"));
    while (true) {
      auto r = Call("GET", "/tuf/image/" + std::to_string(root.version() + 1) + ".root.json", "");
      if (r.status == 404) break;
      ALOFT_RETURN_IF_ERROR(root.Update(r.body, "next root"));
    }
    tuf::Updater u(std::move(root));
    const int64_t now = Now();
    ALOFT_RETURN_IF_ERROR(u.root().CheckNotExpired(now));
    ALOFT_RETURN_IF_ERROR(u.UpdateTimestamp(Get("timestamp.json"), now));
    ALOFT_RETURN_IF_ERROR(
        u.UpdateSnapshot(Get(std::to_string(*u.timestamp_version()) + ".snapshot.json"), now));
    ALOFT_ASSIGN_OR_RETURN(
        auto meta,
        tuf::MetaOf(json::parse(Get(std::to_string(*u.snapshot_version()) + ".snapshot.json")),
                    "targets.json", "snapshot"));
    ALOFT_RETURN_IF_ERROR(
        u.UpdateTargets(Get(std::to_string(meta.version) + ".targets.json"), now));
    return u;
  }
  tuf::Updater::Fetch Fetcher() {
    return [this](const std::string& role, int64_t version, int64_t) -> Result<std::string> {
      auto r = Call("GET", "/tuf/image/" + std::to_string(version) + "." + role + ".json", "");
      if (r.status != 200) return Error(Code::kNotFound, role);
      return r.body;
    };
  }

  std::vector<crypto::PrivateKey> root_keys_{NewKey(), NewKey()};
  crypto::PrivateKey targets_key_ = NewKey(), snapshot_key_ = NewKey(), timestamp_key_ = NewKey(),
                     director_key_ = NewKey();
};

TEST_P(TufImageTest, APushedRepositoryIsServed_RefreshedByAClient_AndItsTargetDownloaded) {
  std::string package;
  SetUpFleet(&package);
  const std::string token = AddDevice("dev-1");
  Workspace w = NewWorkspace();
  auto bytes = *ReadFile(package);
  ASSERT_TRUE(w.AddTarget("fw/1.2.0.aloft", static_cast<int64_t>(bytes.size()),
                          Sha256Hex(AsBytes(bytes)), {{"version", "1.2.0"}})
                  .ok());
  ASSERT_TRUE(w.Stage(Now()).ok());
  ASSERT_TRUE(w.Sign(targets_key_, Now()).ok());
  auto r = Push(PushBody(w));
  ASSERT_EQ(r.status, 201) << r.body;
  json answer = json::parse(r.body);
  EXPECT_EQ(answer["root_version"], 1);
  EXPECT_EQ(answer["snapshot_version"], 1);
  EXPECT_EQ(answer["timestamp_version"], 1);
  EXPECT_EQ(answer["targets_without_file"], json::array());
  // The same push again changes nothing.
  r = Push(PushBody(w));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["timestamp_version"], 1);

  auto u = Refresh(Get("1.root.json"));
  ASSERT_TRUE(u.ok()) << u.error().ToString();
  auto t = u->Target("fw/1.2.0.aloft");
  ASSERT_TRUE(t.ok());
  const std::string url = "/tuf/image/targets/fw/" + t->hashes["sha256"] + ".1.2.0.aloft";
  auto file = Call("GET", url, token);
  ASSERT_EQ(file.status, 200) << file.body;
  EXPECT_TRUE(tuf::Updater::CheckTarget(*t, static_cast<int64_t>(file.body.size()),
                                        Sha256Hex(AsBytes(file.body)))
                  .ok());
  // Targets are for devices unless tuf_public_targets; metadata is for anyone.
  EXPECT_EQ(Call("GET", url, "").status, 401);
  EXPECT_EQ(
      Call("GET", "/tuf/image/targets/fw/" + std::string(64, 'a') + ".1.2.0.aloft", token).status,
      404);
  EXPECT_EQ(Call("GET", "/tuf/image/1.timestamp.json", "").status, 404);
  EXPECT_EQ(Call("GET", "/tuf/image/../1.root.json", "").status, 404);
  auto status = CallJson("GET", "/api/v1/tuf/image", admin_, nullptr, 200);
  EXPECT_EQ(status["files"]["targets"]["version"], 1);
}

TEST_P(TufImageTest, PushesAreCheckedAsAClientWouldCheckThem_AndARefusedOneChangesNothing) {
  SetUpFleet();
  Workspace w = NewWorkspace();
  ASSERT_TRUE(w.Stage(Now()).ok());
  ASSERT_TRUE(w.Sign(targets_key_, Now()).ok());
  json good = PushBody(w);
  // Targets signed by a key the root does not name for them.
  json forged = json::parse(good["targets"].get<std::string>());
  forged["signatures"] = json::array();
  ASSERT_TRUE(tuf::Sign(forged, NewKey()).ok());
  json bad = good;
  bad["targets"] = forged.dump();
  auto r = Push(bad);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.body, HasSubstr("targets.json"));
  EXPECT_EQ(Call("GET", "/tuf/image/timestamp.json", "").status, 404);  // nothing was kept
  // A first root that is not version 1; a root that does not name this server's keys.
  bad = good;
  bad["roots"] = json::array();
  EXPECT_EQ(Push(bad).status, 400);
  {
    Workspace::InitOptions o;
    o.roles["root"] = {{KeyOf(root_keys_[0])}, 1};
    o.roles["targets"] = {{KeyOf(targets_key_)}, 1};
    o.roles["snapshot"] = {{KeyOf(NewKey())}, 1};
    o.roles["timestamp"] = {{KeyOf(timestamp_key_)}, 1};
    auto other = *Workspace::Init(dir_ / "other", o, Now());
    ASSERT_TRUE(other.Sign(root_keys_[0], Now()).ok());
    ASSERT_TRUE(other.Sign(targets_key_, Now()).ok());
    r = Push(PushBody(other));
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_THAT(r.body, HasSubstr("tuf_snapshot_key"));
  }
  ASSERT_EQ(Push(good).status, 201);
  // Version 1 of targets again but different: refused; an unsigned staged change: refused.
  ASSERT_TRUE(w.AddTarget("x.bin", 1, Sha256Hex(AsBytes("x")), json::object()).ok());
  ASSERT_TRUE(w.Stage(Now()).ok());
  json staged = good;
  auto staged_text = ReadFile(dir_ / "repo/staged/targets.json");
  ASSERT_TRUE(staged_text.ok());
  staged["targets"] = *staged_text;
  r = Push(staged);
  EXPECT_EQ(r.status, 400) << r.body;  // no signature
  json older = json::parse(*staged_text);
  older["signed"]["version"] = 1;
  ASSERT_TRUE(tuf::Sign(older, targets_key_).ok());
  staged["targets"] = older.dump();
  EXPECT_EQ(Push(staged).status, 409);
  // Signed: taken, and the listed file the server lacks is named.
  ASSERT_TRUE(w.Sign(targets_key_, Now()).ok());
  r = Push(PushBody(w));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(json::parse(r.body)["targets_without_file"], json({"x.bin"}));
  // Then going back to targets version 1 is a rollback.
  EXPECT_EQ(Push(good).status, 422);
  // A client's mistakes are 4xx, never 5xx.
  for (const char* body : {"[]", "{\"roots\": 5}", "{\"roots\": [7]}", "{\"roots\": [\"{\"]}",
                           "{\"delegated\": []}"}) {
    auto res = Call("POST", "/api/v1/tuf/image", admin_, body, {"Content-Type: application/json"});
    EXPECT_GE(res.status, 400) << body;
    EXPECT_LT(res.status, 500) << body << ": " << res.body;
  }
}

TEST_P(TufImageTest, RootRotations_AClientOfflineThroughoutFollowsThreeGenerations) {
  SetUpFleet();
  Workspace w = NewWorkspace();
  ASSERT_TRUE(w.Stage(Now()).ok());
  ASSERT_TRUE(w.Sign(targets_key_, Now()).ok());
  ASSERT_EQ(Push(PushBody(w)).status, 201);
  const std::string first_root = Get("1.root.json");
  // Two rotations: new root keys each time, and new targets keys.
  std::vector<crypto::PrivateKey> keys = {root_keys_[0], root_keys_[1]};
  for (int gen = 0; gen < 2; ++gen) {
    auto a = NewKey(), b = NewKey(), t = NewKey();
    ASSERT_TRUE(
        w.StageRoot({{"root", {{KeyOf(a), KeyOf(b)}, 2}}, {"targets", {{KeyOf(t)}, 1}}}, Now())
            .ok());
    for (const auto* k : {&keys[0], &keys[1], &a, &b}) ASSERT_TRUE(w.Sign(*k, Now()).ok());
    ASSERT_TRUE(w.Sign(t, Now()).ok());
    keys = {a, b};
    auto r = Push(PushBody(w));
    ASSERT_EQ(r.status, 201) << r.body;
  }
  EXPECT_EQ(json::parse(Get("3.root.json"))["signed"]["version"], 3);
  auto u = Refresh(first_root);
  ASSERT_TRUE(u.ok()) << u.error().ToString();
  EXPECT_EQ(u->root().version(), 3);
  EXPECT_EQ(u->targets_version(), 3);
  // Root 2 again, but changed: a root version is never replaced.
  json two = json::parse(Get("2.root.json"));
  two["signed"]["expires"] = "2031-01-01T00:00:00Z";
  EXPECT_EQ(Push({{"roots", {first_root, two.dump()}}}).status, 409);
}

TEST_P(TufImageTest, HashedBins_AreServedAndFoundThroughTheirDelegation) {
  std::string package;
  SetUpFleet(&package);
  Workspace w = NewWorkspace(16);
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(w.AddTarget("fw/" + std::to_string(i) + ".bin", 1,
                            Sha256Hex(AsBytes(std::to_string(i))), json::object())
                    .ok());
  }
  ASSERT_TRUE(w.Stage(Now()).ok());
  ASSERT_TRUE(w.Sign(targets_key_, Now()).ok());
  auto r = Push(PushBody(w));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(json::parse(r.body)["targets"], 40);
  auto u = Refresh(Get("1.root.json"));
  ASSERT_TRUE(u.ok()) << u.error().ToString();
  auto t = u->FindTarget("fw/17.bin", Fetcher(), Now());
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  EXPECT_EQ(t->hashes["sha256"], Sha256Hex(AsBytes("17")));
  // A role targets.json does not delegate to, or a bin listing a target not handed to it.
  json body = PushBody(w);
  body["delegated"]["bins-x"] = body["delegated"].begin()->get<std::string>();
  auto res = Push(body);
  EXPECT_EQ(res.status, 400) << res.body;
  body = PushBody(w);
  const std::string bin = body["delegated"].begin().key();
  json wrong = json::parse(body["delegated"][bin].get<std::string>());
  wrong["signed"]["version"] = 2;
  wrong["signed"]["targets"]["not/mine"] = tuf::TargetEntry(1, std::string(64, '0'), {});
  wrong["signatures"] = json::array();
  ASSERT_TRUE(tuf::Sign(wrong, targets_key_).ok());
  body["delegated"][bin] = wrong.dump();
  res = Push(body);
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_THAT(res.body, HasSubstr("does not hand it"));
}

TEST_P(TufImageTest, TheTimestampIsSignedAgainBeforeItExpires) {
  SetUpFleet();
  Workspace w = NewWorkspace();
  ASSERT_TRUE(w.Stage(Now()).ok());
  ASSERT_TRUE(w.Sign(targets_key_, Now()).ok());
  ASSERT_EQ(Push(PushBody(w)).status, 201);
  Stop();
  // Sixteen hours on: the one-day timestamp is within half its life of expiring.
  ManualClock clock(SystemClock::Instance().Wall() + std::chrono::hours(16));
  StartTuf(&clock);
  // The refresh runs on the server's own task, first when it starts: wait for it.
  json ts;
  for (int i = 0; i < 200; ++i) {
    ts = json::parse(Get("timestamp.json"));
    if (ts["signed"]["version"] != 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_EQ(ts["signed"]["version"], 2);
  EXPECT_EQ(ts["signed"]["meta"]["snapshot.json"]["version"], 1);
  auto expires = ParseRfc3339(ts["signed"]["expires"].get<std::string>());
  ASSERT_TRUE(expires);
  EXPECT_GT(*expires, clock.Wall() + std::chrono::hours(23));
}

// ---- the Director ----

class TufDirectorTest : public TufImageTest {
 protected:
  // The Image repository listing the fleet's package, and the Director's root pushed.
  void SetUpRepositories() {
    std::string package;
    SetUpFleet(&package);
    Workspace w = NewWorkspace();
    auto bytes = *ReadFile(package);
    ASSERT_TRUE(w.AddTarget("fw/1.2.0.aloft", static_cast<int64_t>(bytes.size()),
                            Sha256Hex(AsBytes(bytes)), json::object())
                    .ok());
    ASSERT_TRUE(w.Stage(Now()).ok());
    ASSERT_TRUE(w.Sign(targets_key_, Now()).ok());
    ASSERT_EQ(Push(PushBody(w)).status, 201);
    Workspace::InitOptions o;
    o.kind = Workspace::Kind::kDirector;
    o.roles["root"] = {{KeyOf(director_root_)}, 1};
    for (const char* role : {"targets", "snapshot", "timestamp"}) {
      o.roles[role] = {{KeyOf(director_key_)}, 1};
    }
    auto d = Workspace::Init(dir_ / "director", o, Now());
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(d->Sign(director_root_, Now()).ok());
    auto roots = d->RootFiles();
    auto r = Call("POST", "/api/v1/tuf/director", admin_, json({{"roots", *roots}}).dump(),
                  {"Content-Type: application/json"});
    ASSERT_EQ(r.status, 201) << r.body;
    director_root_text_ = (*roots)[0];
    token_ = AddDevice("dev-1");
  }
  // The device's signed version manifest.
  json Manifest(int64_t counter, const crypto::PrivateKey& key, bool with_key = true,
                const std::string& device = "dev-1") {
    json ecus = {{"dev-1", {{"hardware_id", "board-a"}, {"installed", {{"main", "1.0.0"}}}}}};
    json m = {{"signed",
               {{"_type", "aloft-version-manifest"},
                {"device", device},
                {"counter", counter},
                {"ecus", ecus}}},
              {"signatures", json::array()}};
    if (with_key) m["signed"]["public_key"] = KeyOf(key).object;
    EXPECT_TRUE(tuf::Sign(m, key).ok());
    return m;
  }
  // A check-in with `manifest` (none when null) and the versions the device holds.
  client::HttpResponse CheckIn(const json& manifest, int64_t have_timestamp = 0,
                               const json& extra = json::object()) {
    json body = {
        {"versions", {{"main", "1.0.0"}}},
        {"uptane", {{"have", {{"root", have_timestamp ? 1 : 0}, {"timestamp", have_timestamp}}}}}};
    body.update(extra);
    if (!manifest.is_null()) body["uptane"]["manifest"] = manifest;
    return Call("POST", "/device/v1/dev-1/check-in", token_, body.dump(),
                {"Content-Type: application/json"});
  }
  // The device's view: its Director metadata checked from the Director's root.
  Result<tuf::Updater> Verify(const json& director) {
    ALOFT_ASSIGN_OR_RETURN(auto root, tuf::TrustedRoot::FromText(director_root_text_, "root"));
    tuf::Updater u(std::move(root));
    ALOFT_RETURN_IF_ERROR(u.UpdateTimestamp(director["timestamp"].get<std::string>(), Now()));
    ALOFT_RETURN_IF_ERROR(u.UpdateSnapshot(director["snapshot"].get<std::string>(), Now()));
    ALOFT_RETURN_IF_ERROR(u.UpdateTargets(director["targets"].get<std::string>(), Now()));
    return u;
  }
  crypto::PrivateKey director_root_ = NewKey(), device_key_ = NewKey();
  std::string director_root_text_, token_;
};

TEST_P(TufDirectorTest, ADeviceEnrolsItsKey_AndItsDirectorTargetsNameWhatItMustInstall) {
  SetUpRepositories();
  auto r = CheckIn(Manifest(1, device_key_));
  ASSERT_EQ(r.status, 200) << r.body;
  json director = json::parse(r.body)["director"];
  ASSERT_EQ(director["roots"].size(), 1u);
  auto u = Verify(director);
  ASSERT_TRUE(u.ok()) << u.error().ToString();
  EXPECT_EQ(u->Target("fw/1.2.0.aloft").error().code(), Code::kNotFound);  // nothing to install
  // Nothing new, and nothing changed on the device (no manifest): the answer carries no
  // metadata, from memory or from the database alike.
  for (int i = 0; i < 2; ++i) {
    r = CheckIn(json(), *u->timestamp_version());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["director"], json::object()) << r.body;
  }
  r = CheckIn(Manifest(2, device_key_, false), *u->timestamp_version());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(json::parse(r.body)["director"].contains("timestamp")) << r.body;

  CallJson("POST", "/api/v1/deployments", admin_, {{"release", "fw@1.2.0"}, {"devices", {"dev-1"}}},
           201);
  r = CheckIn(Manifest(3, device_key_, false), *u->timestamp_version());
  ASSERT_EQ(r.status, 200) << r.body;
  json answer = json::parse(r.body);
  ASSERT_TRUE(answer["director"].contains("targets")) << r.body;
  u = Verify(answer["director"]);
  ASSERT_TRUE(u.ok()) << u.error().ToString();
  auto t = u->Target("fw/1.2.0.aloft");
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  EXPECT_EQ(t->custom["action"], answer["action"]["id"]);
  EXPECT_EQ(t->custom["ecus"]["dev-1"]["hardware_id"], "board-a");
  EXPECT_EQ(t->hashes["sha256"], answer["action"]["download"]["sha256"]);
  EXPECT_EQ(t->length, answer["action"]["download"]["size"]);
  EXPECT_FALSE(answer["action"]["download"].contains("delta"));
}

TEST_P(TufDirectorTest, ReplayedForeignAndForgedManifestsAreRefused) {
  SetUpRepositories();
  ASSERT_EQ(CheckIn(Manifest(5, device_key_)).status, 200);
  // The same counter again (a replay), a lower one.
  auto r = CheckIn(Manifest(5, device_key_, false));
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_THAT(r.body, HasSubstr("replayed"));
  EXPECT_EQ(CheckIn(Manifest(4, device_key_, false)).status, 409);
  // Signed by another key (its own public_key does not replace the enrolled one).
  r = CheckIn(Manifest(6, NewKey()));
  EXPECT_EQ(r.status, 422) << r.body;
  // Another device's name; a manifest that is no envelope; not an object.
  EXPECT_EQ(CheckIn(Manifest(7, device_key_, false, "dev-2")).status, 400);
  for (const char* uptane : {"{\"manifest\": 5}", "[]", "{\"manifest\": {}}"}) {
    auto res =
        Call("POST", "/device/v1/dev-1/check-in", token_,
             std::string("{\"uptane\": ") + uptane + "}", {"Content-Type: application/json"});
    EXPECT_EQ(res.status, 400) << uptane << ": " << res.body;
  }
  // A device that never enrolled must send its manifest.
  const std::string other = AddDevice("dev-2");
  auto res = Call("POST", "/device/v1/dev-2/check-in", other, R"({"uptane": {}})",
                  {"Content-Type: application/json"});
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_THAT(res.body, HasSubstr("no key enrolled"));
  // The next honest one is taken.
  EXPECT_EQ(CheckIn(Manifest(6, device_key_, false)).status, 200);
}

TEST_P(TufDirectorTest, AReleaseTheImageRepositoryDoesNotListIsNotListedByTheDirector) {
  SetUpRepositories();
  // Another package, uploaded but never signed into the Image repository.
  Bytes other =
      pkgs_.Pack({{"main", testing::RandomBytes(1000, 9)}}, pkg::Compression::kNone, {0}, "1.3.0");
  ASSERT_EQ(
      Upload("?filename=fw-1.3.0.aloft", WritePackage("fw-1.3.0.aloft", other), admin_).status,
      201);
  CallJson("POST", "/api/v1/deployments", admin_, {{"release", "fw@1.3.0"}, {"devices", {"dev-1"}}},
           201);
  auto r = CheckIn(Manifest(1, device_key_));
  ASSERT_EQ(r.status, 200) << r.body;
  json director = json::parse(r.body)["director"];
  EXPECT_THAT(director.value("unlisted", ""), HasSubstr("fw@1.3.0"));
  auto u = Verify(director);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(json::parse(director["targets"].get<std::string>())["signed"]["targets"],
            json::object());
}

// A vehicle's manifest names every ECU with its module: the Director names for the update only
// the ECUs whose module the release updates (the gateway then checks the bundle's ECUs are
// exactly those: Uptane's partial bundle check).
TEST_P(TufDirectorTest, TheDirectorNamesOnlyTheEcusTheReleaseUpdates) {
  SetUpRepositories();
  CallJson("POST", "/api/v1/deployments", admin_, {{"release", "fw@1.2.0"}, {"devices", {"dev-1"}}},
           201);
  json m = {{"signed",
             {{"_type", "aloft-version-manifest"},
              {"device", "dev-1"},
              {"counter", 1},
              {"public_key", KeyOf(device_key_).object},
              {"ecus",
               {{"S-main", {{"hardware_id", "board-a"}, {"module", "main"}}},
                {"S-bms", {{"hardware_id", "bms-7"}, {"module", "bms"}}},
                {"S-gps", {{"hardware_id", "gps-2"}, {"module", "gps"}}}}}}},
            {"signatures", json::array()}};
  ASSERT_TRUE(tuf::Sign(m, device_key_).ok());
  auto r = CheckIn(m);
  ASSERT_EQ(r.status, 200) << r.body;
  auto u = Verify(json::parse(r.body)["director"]);
  ASSERT_TRUE(u.ok()) << u.error().ToString();
  auto t = u->Target("fw/1.2.0.aloft");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->custom["ecus"], json({{"S-main", {{"hardware_id", "board-a"}}},
                                     {"S-bms", {{"hardware_id", "bms-7"}}}}));
}

// An encrypted release (docs/encryption.md): the content key wrapped for the device's own key is
// in its Director target, signed with the rest. A wrap is new each time (a new ephemeral key), so
// the one signed is kept while the content key and the device key stay: check-ins do not
// re-sign the metadata. A device whose key changed gets a wrap for its new key.
TEST_P(TufDirectorTest, TheWrappedContentKeyIsSignedIntoTheTarget_AndKeptAcrossCheckIns) {
  const crypto::ContentKey content = crypto::NewContentKey();
  pkgs_.content_key = content;
  SetUpRepositories();
  pkgs_.content_key.reset();
  CallJson("PUT", "/api/v1/releases/fw/1.2.0/content-key", admin_,
           {{"content_key", Base64Encode(content)}}, 200);
  auto k1 = crypto::RecipientKey::Generate(), k2 = crypto::RecipientKey::Generate();
  ASSERT_THAT(k1, IsOk());
  ASSERT_THAT(k2, IsOk());
  auto enrol = [](const crypto::RecipientKey& k) {
    return json{{"encryption_key", Base64Encode(k.PublicRaw())}};
  };
  ASSERT_EQ(CheckIn(Manifest(1, device_key_), 0, enrol(*k1)).status, 200);
  CallJson("POST", "/api/v1/deployments", admin_, {{"release", "fw@1.2.0"}, {"devices", {"dev-1"}}},
           201);
  // The target's wrap, verified from the Director's root.
  auto signed_wrap = [&](const json& director) -> json {
    auto u = Verify(director);
    EXPECT_TRUE(u.ok()) << u.error().ToString();
    if (!u.ok()) return json();
    auto t = u->Target("fw/1.2.0.aloft");
    EXPECT_TRUE(t.ok());
    return t.ok() ? t->custom.value("encryption", json()) : json();
  };
  auto r = CheckIn(Manifest(2, device_key_, false));
  ASSERT_EQ(r.status, 200) << r.body;
  json answer = json::parse(r.body);
  const json enc = signed_wrap(answer["director"]);
  ASSERT_TRUE(enc.is_object()) << r.body;
  EXPECT_EQ(enc["key_id"], crypto::ContentKeyId(content));
  EXPECT_EQ(enc["recipient"], Sha256Hex(k1->PublicRaw()).substr(0, 16));
  auto wrapped = Base64Decode(enc.value("wrapped_key", ""));
  ASSERT_THAT(wrapped, IsOk());
  EXPECT_THAT(k1->Unwrap(*wrapped), IsOkAndHolds(content));
  EXPECT_THAT(k2->Unwrap(*wrapped), IsError(Code::kUntrusted, ::testing::_));
  const int64_t timestamp = *Verify(answer["director"])->timestamp_version();

  // Again, with a manifest (so not answered from memory): the action's wrap is a new one, the
  // Director's metadata is unchanged.
  r = CheckIn(Manifest(3, device_key_, false), timestamp);
  ASSERT_EQ(r.status, 200) << r.body;
  answer = json::parse(r.body);
  EXPECT_FALSE(answer["director"].contains("timestamp")) << r.body;
  EXPECT_NE(answer["action"]["encryption"].value("wrapped_key", ""), enc["wrapped_key"]);

  // The device's key changed (its state was lost): a wrap for the new key, signed anew.
  r = CheckIn(Manifest(4, device_key_, false), timestamp, enrol(*k2));
  ASSERT_EQ(r.status, 200) << r.body;
  r = CheckIn(Manifest(5, device_key_, false), timestamp);
  ASSERT_EQ(r.status, 200) << r.body;
  const json again = signed_wrap(json::parse(r.body)["director"]);
  ASSERT_TRUE(again.is_object()) << r.body;
  wrapped = Base64Decode(again.value("wrapped_key", ""));
  ASSERT_THAT(wrapped, IsOk());
  EXPECT_THAT(k2->Unwrap(*wrapped), IsOkAndHolds(content));
}

INSTANTIATE_TEST_SUITE_P(Backends, TufDirectorTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const auto& p) { return testing::BackendName(p.param); });

INSTANTIATE_TEST_SUITE_P(Backends, TufImageTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const auto& p) { return testing::BackendName(p.param); });

}  // namespace
}  // namespace aloft::server
