// The simulated ECU's bootloader driven by the tester's programming sequence over ISO-TP on the
// simulated bus, on simulated time: a whole 1 MiB flash over classic CAN and CAN FD that the ECU
// then starts; and each way a flash can go wrong, refused with the right NRC and never leaving a
// partial image to start.
#include "ecusim/ecu.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "can/sim_bus.h"
#include "core/crc32.h"
#include "core/hash.h"
#include "ecusim/rig.h"
#include "ecusim/vehicle_spec.h"
#include "support/matchers.h"
#include "support/temp_dir.h"
#include "uds/client.h"
#include "uds/flasher.h"

namespace aloft::ecusim {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

Bytes Body(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

// One ECU and a tester on one bus (the Rig), as the tests below use it.
class Bench {
 public:
  Bench(EcuConfig config, can::BitRates rates, bool fd) {
    auto rig = Rig::Create(std::move(config), {.rates = rates, .fd = fd}, dir_.path());
    EXPECT_THAT(rig, IsOk());
    rig_ = std::move(*rig);
    ecu_ = &rig_->ecu();
    client_ = &rig_->client();
  }
  uds::FlashPlan Plan(const Bytes& image) { return rig_->Plan(image); }
  Result<uds::FlashReport> Flash(uds::FlashPlan plan) { return rig_->Flash(std::move(plan)); }
  Result<uds::Response> Ask(std::vector<uint8_t> request) { return rig_->Ask(std::move(request)); }
  void Unlock() { ASSERT_THAT(rig_->Unlock(), IsOk()); }

  testing::TempDir dir_;
  std::unique_ptr<Rig> rig_;
  Ecu* ecu_;
  uds::Client* client_;
};

EcuConfig C55(BankLayout layout = BankLayout::kSingle) { return {.name = "ecm", .layout = layout}; }

// Must show 3: the full sequence flashes 1 MiB over classic CAN and over CAN FD; the ECU then
// starts the new image and reports its version.
TEST(EcuFlash, OneMiB_ClassicCan_ThenBootsTheNewImage) {
  Bench bench(C55(), {500'000}, false);
  ASSERT_THAT(bench.ecu_->Provision(MakeAppImage("1.0.0", "P1", Body(300'000, 1))), IsOk());
  const Bytes image = MakeAppImage("2.0.0", "P1", Body((1 << 20) - kAppHeader, 2));
  auto plan = bench.Plan(image);
  plan.expect_version = "2.0.0";
  auto report = bench.Flash(plan);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->vin, "WALOFT00000000001");
  EXPECT_EQ(report->version_before, "1.0.0");
  EXPECT_EQ(report->version_after, "2.0.0");
  EXPECT_EQ(report->max_block_length, 0x0802u);
  const EcuStatus s = bench.ecu_->status();
  EXPECT_TRUE(s.application);
  EXPECT_EQ(s.version, "2.0.0");
  EXPECT_EQ(s.boot.banks[0].crc32, Crc32(image));
  // What the bus time comes to (the benchmark prints it; here only that it is plausible).
  const double kbps = 1048.576 / std::chrono::duration<double>(report->total).count();
  EXPECT_GT(kbps, 15.0) << report->total.count();
}

TEST(EcuFlash, OneMiB_CanFd_AbBank_SwitchesBanks) {
  EcuConfig c = C55(BankLayout::kAb);
  c.max_block_length = 0x1002;
  Bench bench(c, {500'000, 2'000'000}, true);
  ASSERT_THAT(bench.ecu_->Provision(MakeAppImage("1.0.0", "P1", Body(1000, 1))), IsOk());
  const Bytes image = MakeAppImage("2.0.0", "P1", Body((1 << 20) - kAppHeader, 3));
  auto plan = bench.Plan(image);
  plan.expect_version = "2.0.0";
  auto report = bench.Flash(plan);
  ASSERT_THAT(report, IsOk());
  const EcuStatus s = bench.ecu_->status();
  EXPECT_EQ(s.bank, 1);
  EXPECT_EQ(s.version, "2.0.0");
  EXPECT_TRUE(s.boot.banks[0].valid) << "the old bank stays for a fallback";
  EXPECT_EQ(s.boot.banks[0].version, "1.0.0");
}

// Issue 22, must show 3: a transfer cut at 70 % (the gateway's power goes; the ECU's S3 runs out
// and it resets) resumes from the first erase block the ECU does not hold (31 01 FF 03 per block)
// and re-sends at most one erase block's worth; the whole image is checked (31 01 FF 04).
TEST(EcuFlash, TransferCutAt70Percent_ResumesFromTheLastErasedBlock) {
  for (BankLayout layout : {BankLayout::kSingle, BankLayout::kAb}) {
    EcuConfig c = C55(layout);
    c.erase_block = 64 << 10;
    Bench bench(c, {500'000}, false);
    ASSERT_THAT(bench.ecu_->Provision(MakeAppImage("1.0.0", "P1", Body(300'000, 1))), IsOk());
    const Bytes image = MakeAppImage("2.0.0", "P1", Body((1 << 20) - kAppHeader, 2));
    uds::FlashPlan plan = bench.Plan(image);
    uint64_t sent_at_cut = 0;
    plan.progress = [&](uint64_t sent, uint64_t total) {
      if (!sent_at_cut && sent * 10 >= total * 7) sent_at_cut = sent;
    };
    auto first = std::make_unique<uds::Flasher>(*bench.client_, plan);
    first->Run([](Result<uds::FlashReport>) {});
    bench.rig_->loop().RunUntil([&] { return sent_at_cut > 0; }, std::chrono::minutes(5));
    ASSERT_GT(sent_at_cut, 0u);
    first.reset();                                        // the gateway is gone
    bench.rig_->loop().RunFor(std::chrono::seconds(10));  // S3 runs out: the ECU resets
    EXPECT_NE(bench.ecu_->server().session(), uds::session::kProgramming);

    plan.progress = nullptr;
    plan.resume_block = c.erase_block;
    plan.expect_version = "2.0.0";
    auto report = bench.Flash(plan);
    ASSERT_THAT(report, IsOk());
    const uint64_t resent = sent_at_cut - report->resumed_from;
    std::printf(
        "resume (%s): cut at %llu of %zu bytes (70 %%); resumed at %llu; re-sent %llu "
        "bytes (erase block %u)\n",
        layout == BankLayout::kSingle ? "single bank" : "A/B",
        static_cast<unsigned long long>(sent_at_cut), image.size(),
        static_cast<unsigned long long>(report->resumed_from),
        static_cast<unsigned long long>(resent), c.erase_block);
    EXPECT_GT(report->resumed_from, 0u);
    EXPECT_LE(resent, c.erase_block);
    const EcuStatus s = bench.ecu_->status();
    EXPECT_TRUE(s.application);
    EXPECT_EQ(s.version, "2.0.0");
    EXPECT_EQ(s.boot.banks[s.bank].crc32, Crc32(image));
  }
}

// Must show 4: a wrong key, a wrong BSC, a write outside the memory map, an image that fails its
// check; each refused with the right NRC, and the ECU never starts a partial image.
TEST(EcuBootloader, WrongKey_Nrc35_ThenAttemptsExceeded36_DelayOverReset37) {
  Bench bench(C55(), {500'000}, false);
  ASSERT_TRUE(bench.Ask({0x10, 0x03})->positive());
  ASSERT_TRUE(bench.Ask({0x31, 0x01, 0x02, 0x03})->positive());
  ASSERT_TRUE(bench.Ask({0x10, 0x02})->positive());
  std::vector<uint8_t> wrong{0x27, 0x02};
  wrong.resize(2 + 32, 0xAB);
  for (uint8_t expected : {0x35, 0x35, 0x36}) {
    ASSERT_TRUE(bench.Ask({0x27, 0x01})->positive());
    EXPECT_EQ(bench.Ask(wrong)->nrc(), expected);
  }
  EXPECT_EQ(bench.Ask({0x27, 0x01})->nrc(), 0x37);
  ASSERT_TRUE(bench.Ask({0x11, 0x01})->positive());
  bench.rig_->loop().RunFor(milliseconds(500));
  ASSERT_TRUE(bench.Ask({0x10, 0x03})->positive());
  ASSERT_TRUE(bench.Ask({0x31, 0x01, 0x02, 0x03})->positive());
  ASSERT_TRUE(bench.Ask({0x10, 0x02})->positive());
  EXPECT_EQ(bench.Ask({0x27, 0x01})->nrc(), 0x37) << "the delay survives the reset";
}

TEST(EcuBootloader, SequenceRules_ProgrammingOnlyFromExtendedAfterPreconditions) {
  Bench bench(C55(), {500'000}, false);
  EXPECT_EQ(bench.Ask({0x10, 0x02})->nrc(), 0x7E) << "not from the default session";
  ASSERT_TRUE(bench.Ask({0x10, 0x03})->positive());
  EXPECT_EQ(bench.Ask({0x10, 0x02})->nrc(), 0x22) << "not before 31 01 02 03";
  bench.ecu_->preconditions = [] { return std::optional<uint8_t>(0x88); };  // speed too high
  EXPECT_EQ(bench.Ask({0x31, 0x01, 0x02, 0x03})->nrc(), 0x88);
  bench.ecu_->preconditions = nullptr;
  ASSERT_TRUE(bench.Ask({0x31, 0x01, 0x02, 0x03})->positive());
  ASSERT_TRUE(bench.Ask({0x10, 0x02})->positive());
  EXPECT_EQ(bench.Ask({0x31, 0x01, 0xFF, 0x00})->nrc(), 0x33) << "erase needs security";
  EXPECT_EQ(bench.Ask({0x34, 0x00, 0x44, 0, 8, 0, 0, 0, 0, 1, 0})->nrc(), 0x33);
}

TEST(EcuBootloader, DownloadRules_MemoryMap_EraseFirst_Bsc_Lengths) {
  Bench bench(C55(), {500'000}, false);
  bench.Unlock();
  const uint64_t a = bench.ecu_->config().app_address;
  auto req34 = [&](uint64_t addr, uint64_t size, uint8_t dfi = 0) {
    return uds::EncodeTransferRequest(0x34, {dfi, addr, size});
  };
  EXPECT_EQ(bench.Ask(req34(a, 4096))->nrc(), 0x70) << "nothing erased yet";
  std::vector<uint8_t> erase{0x31, 0x01, 0xFF, 0x00, 0x44, 0x00, 0x00, 0x00, 0x00, 0, 0, 0x10, 0};
  EXPECT_EQ(bench.Ask(erase)->nrc(), 0x31) << "outside the memory map";
  std::vector<uint8_t> erase_ok{0x31, 0x01, 0xFF, 0x00, 0x44};
  uds::PutBigEndian(erase_ok, a, 4);
  uds::PutBigEndian(erase_ok, 8192, 4);
  ASSERT_TRUE(bench.Ask(erase_ok)->positive());
  EXPECT_EQ(bench.Ask(req34(a + (4 << 20), 16))->nrc(), 0x31) << "outside the memory map";
  EXPECT_EQ(bench.Ask(req34(a, 16, 0x11))->nrc(), 0x31) << "compressed and encrypted: no";
  EXPECT_EQ(bench.Ask(req34(a + (512 << 10), 16))->nrc(), 0x70) << "not in the erased range";
  EXPECT_EQ(bench.Ask({0x34, 0x00, 0x09, 0, 0})->nrc(), 0x31) << "ALFID with a 0 size length";
  EXPECT_EQ(bench.Ask({0x34, 0x00, 0x44, 0, 8, 0})->nrc(), 0x13);
  EXPECT_EQ(bench.Ask({0x36, 0x01, 0xAA})->nrc(), 0x24) << "no download requested";
  ASSERT_TRUE(bench.Ask(req34(a, 4096))->positive());
  EXPECT_EQ(bench.Ask(req34(a, 4096))->nrc(), 0x22) << "one at a time";
  std::vector<uint8_t> block(2 + 2048, 0x11);
  block[0] = 0x36;
  block[1] = 0x02;
  EXPECT_EQ(bench.Ask(block)->nrc(), 0x73) << "BSC 2 where 1 is due";
  block[1] = 0x01;
  EXPECT_TRUE(bench.Ask(block)->positive());
  EXPECT_TRUE(bench.Ask(block)->positive()) << "a repeat of block 1 is answered, not written";
  std::vector<uint8_t> too_long(2 + 2049, 0x22);
  too_long[0] = 0x36;
  too_long[1] = 0x02;
  EXPECT_EQ(bench.Ask(too_long)->nrc(), 0x13);
  EXPECT_EQ(bench.Ask({0x37})->nrc(), 0x24) << "not all data yet";
  block[1] = 0x02;
  EXPECT_TRUE(bench.Ask(block)->positive());
  block[1] = 0x03;
  EXPECT_EQ(bench.Ask(block)->nrc(), 0x71) << "beyond the requested size";
  EXPECT_TRUE(bench.Ask({0x37})->positive());
}

TEST(EcuBootloader, ImageFailingItsCheck_IsNeverStarted) {
  Bench bench(C55(), {500'000}, false);
  ASSERT_THAT(bench.ecu_->Provision(MakeAppImage("1.0.0", "P1", Body(5000, 1))), IsOk());
  const Bytes image = MakeAppImage("2.0.0", "P1", Body(20000, 9));
  // The tester announces the CRC and SHA-256 of another image: 31 01 02 02 answers "incorrect",
  // 31 01 FF 01 refuses, and after the reset only the bootloader runs (the old image was erased).
  auto plan = bench.Plan(image);
  Bytes other = image;
  other[100] ^= 1;
  // Program `image` by hand, then check against `other`.
  bench.Unlock();
  std::vector<uint8_t> erase{0x31, 0x01, 0xFF, 0x00, 0x44};
  uds::PutBigEndian(erase, plan.address, 4);
  uds::PutBigEndian(erase, image.size(), 4);
  ASSERT_TRUE(bench.Ask(erase)->positive());
  ASSERT_TRUE(
      bench.Ask(uds::EncodeTransferRequest(0x34, {0, plan.address, image.size()}))->positive());
  uint8_t bsc = 1;
  for (size_t at = 0; at < image.size(); at += 2048, ++bsc) {
    std::vector<uint8_t> b{0x36, bsc};
    b.insert(b.end(), image.begin() + at, image.begin() + std::min(image.size(), at + 2048));
    ASSERT_TRUE(bench.Ask(b)->positive());
  }
  ASSERT_TRUE(bench.Ask({0x37})->positive());
  std::vector<uint8_t> check{0x31, 0x01, 0x02, 0x02};
  uds::PutBigEndian(check, Crc32(other), 4);
  const Bytes sha = Sha256(other);
  check.insert(check.end(), sha.begin(), sha.end());
  auto checked = bench.Ask(check);
  EXPECT_EQ(uds::Describe(checked->bytes, 8), "71 01 02 02 01") << "incorrect";
  auto deps = bench.Ask({0x31, 0x01, 0xFF, 0x01});
  EXPECT_EQ(uds::Describe(deps->bytes, 8), "71 01 FF 01 01");
  ASSERT_TRUE(bench.Ask({0x11, 0x01})->positive());
  bench.rig_->loop().RunFor(milliseconds(500));
  EXPECT_FALSE(bench.ecu_->status().application);
  EXPECT_TRUE(bench.Ask({0x22, 0xF1, 0x89})->bytes == std::vector<uint8_t>({0x62, 0xF1, 0x89}))
      << "no application version: the bootloader answers";
}

TEST(EcuBootloader, PowerLossMidProgram_SingleBank_BootloaderWaits_FlashAgainWorks) {
  Bench bench(C55(), {500'000}, false);
  ASSERT_THAT(bench.ecu_->Provision(MakeAppImage("1.0.0", "P1", Body(5000, 1))), IsOk());
  bench.ecu_->faults().power_loss_at_block = 40;
  const Bytes image = MakeAppImage("2.0.0", "P1", Body(200'000, 4));
  auto report = bench.Flash(bench.Plan(image));
  EXPECT_FALSE(report.ok()) << "the ECU went dark mid-download";
  bench.rig_->loop().RunFor(std::chrono::seconds(2));
  EXPECT_TRUE(bench.ecu_->online());
  EXPECT_FALSE(bench.ecu_->status().application) << "never the partial image";
  // The flash is left partial, and a second flash succeeds.
  auto plan = bench.Plan(image);
  plan.expect_version = "2.0.0";
  auto again = bench.Flash(plan);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(bench.ecu_->status().version, "2.0.0");
}

TEST(EcuBootloader, ResetAtABlock_AbBank_OldImageRunsOn) {
  Bench bench(C55(BankLayout::kAb), {500'000}, false);
  ASSERT_THAT(bench.ecu_->Provision(MakeAppImage("1.0.0", "P1", Body(5000, 1))), IsOk());
  bench.ecu_->faults().reset_at_block = 10;
  auto report = bench.Flash(bench.Plan(MakeAppImage("2.0.0", "P1", Body(100'000, 5))));
  EXPECT_FALSE(report.ok());
  bench.rig_->loop().RunFor(std::chrono::seconds(1));
  const EcuStatus s = bench.ecu_->status();
  EXPECT_TRUE(s.application);
  EXPECT_EQ(s.version, "1.0.0");
  EXPECT_EQ(s.bank, 0);
}

TEST(EcuBootloader, InjectedNrcAndSlowEcu) {
  EcuConfig c = C55();
  c.faults.nrc[0x22] = 0x22;
  c.faults.slow = milliseconds(300);
  Bench bench(c, {500'000}, false);
  EXPECT_EQ(bench.Ask({0x22, 0xF1, 0x90})->nrc(), 0x22) << "injected, once";
  auto vin = bench.Ask({0x22, 0xF1, 0x90});
  ASSERT_TRUE(vin.ok());
  EXPECT_TRUE(vin->positive());
  EXPECT_GE(bench.client_->stats().pending_seen, 1u) << "slow: 0x78 before the answer";
}

TEST(EcuStatusView, SaysWhatWouldStart) {
  Bench bench(C55(BankLayout::kAb), {500'000}, false);
  EXPECT_EQ(bench.ecu_->status().Describe(bench.ecu_->config()),
            "ecm: bootloader; bank A empty; bank B empty; starts A");
  ASSERT_THAT(bench.ecu_->Provision(MakeAppImage("1.0.0", "P1", Body(100, 1))), IsOk());
  EXPECT_EQ(bench.ecu_->status().Describe(bench.ecu_->config()),
            "ecm: application 1.0.0 (bank A); bank A 1.0.0 valid; bank B empty; starts A");
}

}  // namespace
}  // namespace aloft::ecusim

namespace aloft::ecusim {
namespace {

TEST(EcuBootloader, RequestUpload_ReadsBackTheApplication) {
  Bench bench(EcuConfig{.name = "ecm"}, {500'000}, false);
  const Bytes image = MakeAppImage("1.0.0", "P1", Body(3000, 8));
  ASSERT_THAT(bench.ecu_->Provision(image), IsOk());
  bench.Unlock();
  const uint64_t a = bench.ecu_->config().app_address;
  EXPECT_EQ(bench.Ask(uds::EncodeTransferRequest(0x35, {0, a + (8 << 20), 16}))->nrc(), 0x31);
  auto up = bench.Ask(uds::EncodeTransferRequest(0x35, {0, a, 2100}));
  ASSERT_TRUE(up->positive());
  EXPECT_EQ(uds::Describe(up->bytes, 4), "75 20 08 02");
  EXPECT_EQ(bench.Ask({0x36, 0x02})->nrc(), 0x73);
  auto b1 = bench.Ask({0x36, 0x01});
  ASSERT_TRUE(b1->positive());
  ASSERT_EQ(b1->bytes.size(), 2u + 2048);
  EXPECT_TRUE(std::equal(b1->bytes.begin() + 2, b1->bytes.end(), image.begin()));
  auto b2 = bench.Ask({0x36, 0x02});
  ASSERT_EQ(b2->bytes.size(), 2u + 52);
  EXPECT_TRUE(std::equal(b2->bytes.begin() + 2, b2->bytes.end(), image.begin() + 2048));
  EXPECT_EQ(bench.Ask({0x36, 0x03})->nrc(), 0x24) << "all of it was read";
  EXPECT_TRUE(bench.Ask({0x37})->positive());
  EXPECT_EQ(bench.Ask({0x36, 0x04})->nrc(), 0x24);
}

}  // namespace
}  // namespace aloft::ecusim

namespace aloft::ecusim {
namespace {

// An ECU with a trusted key starts only an image whose SHA-256 that key signed.
TEST(EcuBootloader, TrustedKey_SignedImageStarts_UnsignedOrWrongNever) {
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
  auto other = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
  ASSERT_THAT(key, IsOk());
  EcuConfig c{.name = "ecm", .layout = BankLayout::kAb};
  c.trusted_key = key->public_key();
  Bench bench(c, {500'000, 2'000'000}, true);
  const Bytes image = MakeAppImage("5.0.0", "P1", Body(50'000, 6));
  for (auto [signer, expect_ok] :
       {std::pair<crypto::PrivateKey*, bool>{nullptr, false}, {&*other, false}, {&*key, true}}) {
    auto plan = bench.Plan(image);
    if (signer) plan.signature = *signer->Sign(Sha256(image));
    auto report = bench.Flash(plan);
    EXPECT_EQ(report.ok(), expect_ok) << (report.ok() ? "" : report.error().message());
    if (!expect_ok) {
      EXPECT_THAT(report, IsError(Code::kIntegrity, HasSubstr("found the image wrong")))
          << "no signature is a wrong check too";
      (void)bench.Ask({0x11, 0x01});
      bench.rig_->loop().RunFor(milliseconds(500));
      EXPECT_NE(bench.ecu_->status().version, "5.0.0");
    }
  }
  EXPECT_EQ(bench.ecu_->status().version, "5.0.0");
}

}  // namespace
}  // namespace aloft::ecusim

namespace aloft::ecusim {
namespace {

TEST(EcuBootloader, XorKeyAlgorithm_TheSecretXoredKeyUnlocks) {
  EcuConfig c{.name = "ecm"};
  c.key_algorithm = KeyAlgorithm::kXor;
  c.secret = Bytes{0x11, 0x22, 0x33, 0x44};
  Bench bench(c, {500'000}, false);
  ASSERT_TRUE(bench.Ask({0x10, 0x03})->positive());
  ASSERT_TRUE(bench.Ask({0x31, 0x01, 0x02, 0x03})->positive());
  ASSERT_TRUE(bench.Ask({0x10, 0x02})->positive());
  auto seed = bench.Ask({0x27, 0x01});
  std::vector<uint8_t> key{0x27, 0x02};
  for (size_t i = 2; i < seed->bytes.size(); ++i) {
    key.push_back(seed->bytes[i] ^ c.secret[(i - 2) % 4]);
  }
  EXPECT_EQ(uds::Describe(bench.Ask(key)->bytes), "67 02");
}

// The keys the ECU file may hold beyond the basics: a trusted key file and the key algorithm.
TEST(EcuBootloader, VehicleFile_TrustedKeyAndKeyAlgorithm) {
  testing::TempDir dir;
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
  ASSERT_THAT(crypto::SaveKeyPair(*key, dir / "release"), IsOk());
  const std::string base = "[[bus]]\nname = \"a\"\n[[ecu]]\nname = \"x\"\nbus = \"a\"\n";
  auto spec = ParseVehicleSpec(
      base + "key_algorithm = \"xor\"\ntrusted_key = \"" + (dir / "release.pub") + "\"\n",
      "car.toml");
  ASSERT_THAT(spec, IsOk());
  EXPECT_EQ(spec->ecus[0].config.key_algorithm, KeyAlgorithm::kXor);
  ASSERT_TRUE(spec->ecus[0].config.trusted_key.has_value());
  EXPECT_EQ(spec->ecus[0].config.trusted_key->keyid(), key->public_key().keyid());
  EXPECT_THAT(ParseVehicleSpec(base + "key_algorithm = \"rot13\"\n", "car.toml"),
              IsError(Code::kInvalidArgument, HasSubstr("key_algorithm 'rot13'")));
  EXPECT_THAT(ParseVehicleSpec(base + "trusted_key = \"/nonexistent.pub\"\n", "car.toml"),
              IsError(Code::kInvalidArgument, HasSubstr("trusted_key")));
}

}  // namespace
}  // namespace aloft::ecusim

namespace aloft::ecusim {
namespace {

// 31 01 FF 02 on an A/B ECU: the previous image starts again after the reset (a rollback).
TEST(EcuBootloader, SwitchBank_RollsBackToThePreviousImage) {
  Bench bench(EcuConfig{.name = "ecm", .layout = BankLayout::kAb}, {500'000, 2'000'000}, true);
  ASSERT_THAT(bench.ecu_->Provision(MakeAppImage("1.0.0", "P1", Body(4000, 1))), IsOk());
  auto plan = bench.Plan(MakeAppImage("2.0.0", "P1", Body(40'000, 2)));
  plan.expect_version = "2.0.0";
  ASSERT_THAT(bench.Flash(plan), IsOk());
  bench.Unlock();
  EXPECT_EQ(uds::Describe(bench.Ask({0x31, 0x01, 0xFF, 0x02})->bytes, 8), "71 01 FF 02 00");
  ASSERT_TRUE(bench.Ask({0x11, 0x01})->positive());
  bench.rig_->loop().RunFor(milliseconds(500));
  EXPECT_EQ(bench.ecu_->status().version, "1.0.0");
  EXPECT_EQ(bench.ecu_->status().bank, 0);
  // Single bank: no other bank to go back to.
  Bench single(EcuConfig{.name = "bcm"}, {500'000}, false);
  single.Unlock();
  EXPECT_EQ(single.Ask({0x31, 0x01, 0xFF, 0x02})->nrc(), 0x31);
}

}  // namespace
}  // namespace aloft::ecusim

namespace aloft::ecusim {
namespace {

// The two halves of the sequence: after the transfer the new image is checked but not committed
// (a reset then starts the old one); the activation commits and starts it.
TEST(EcuFlash, TransferThenActivate_OrTransferThenAbandon) {
  for (bool activate : {false, true}) {
    Bench bench(EcuConfig{.name = "ecm", .layout = BankLayout::kAb}, {500'000, 2'000'000}, true);
    ASSERT_THAT(bench.ecu_->Provision(MakeAppImage("1.0.0", "P1", Body(4000, 1))), IsOk());
    const Bytes image = MakeAppImage("2.0.0", "P1", Body(60'000, 2));
    auto transfer = bench.Plan(image);
    transfer.phases = uds::FlashPhases::kTransfer;
    auto t = bench.Flash(transfer);
    ASSERT_THAT(t, IsOk());
    EXPECT_EQ(bench.ecu_->server().session(), uds::session::kProgramming);
    EXPECT_FALSE(bench.ecu_->status().boot.banks[1].valid) << "checked, not committed";
    if (activate) {
      auto second = bench.Plan(image);
      second.phases = uds::FlashPhases::kActivate;
      second.expect_version = "2.0.0";
      ASSERT_THAT(bench.Flash(second), IsOk());
      EXPECT_EQ(bench.ecu_->status().version, "2.0.0");
    } else {
      ASSERT_TRUE(bench.Ask({0x11, 0x01})->positive());
      bench.rig_->loop().RunFor(milliseconds(500));
      EXPECT_EQ(bench.ecu_->status().version, "1.0.0");
    }
  }
}

}  // namespace
}  // namespace aloft::ecusim
