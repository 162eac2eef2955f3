#include "ecusim/rig.h"

#include "core/hash.h"

namespace aloft::ecusim {

Result<std::unique_ptr<Rig>> Rig::Create(EcuConfig config, RigOptions options,
                                         const std::string& dir) {
  std::unique_ptr<Rig> rig(new Rig());
  rig->secret_ = config.secret;
  const std::string name = config.name;
  ALOFT_ASSIGN_OR_RETURN(rig->ecu_, Ecu::Create(rig->loop_, std::move(config), dir));
  if (options.doip) {
    // Tester -> Ethernet -> DoIP entity -> the ECU's UDS server (logical address 0x1001).
    auto [entity_side, ecu_side] = uds::MemoryLink::Pair(rig->loop_, std::chrono::microseconds(5));
    rig->entity_side_ = std::move(entity_side);
    rig->ecu_side_ = std::move(ecu_side);
    rig->entity_ = std::make_unique<doip::Entity>(rig->loop_, doip::EntityConfig{});
    rig->entity_->Route(0x1001, *rig->entity_side_);
    rig->ecu_->Attach(*rig->ecu_side_);
    auto [tester_end, entity_end] =
        net::SimStream::Pair(rig->loop_, options.ethernet_bit_rate, std::chrono::microseconds(50));
    rig->entity_->Accept(std::move(entity_end));
    rig->doip_ = std::make_unique<doip::Client>(std::move(tester_end));
    std::optional<Result<uint16_t>> activated;
    rig->doip_->Activate([&](Result<uint16_t> r) { activated = std::move(r); });
    rig->loop_.RunUntil([&] { return activated.has_value(); }, std::chrono::seconds(5));
    if (!activated) return Error(Code::kUnavailable, "DoIP routing activation: no answer");
    ALOFT_RETURN_IF_ERROR(activated->ok() ? OkStatus() : Status(activated->error()));
    rig->doip_link_ = rig->doip_->LinkTo(0x1001);
    rig->tester_link_ = rig->doip_link_.get();
  } else {
    rig->bus_ = std::make_unique<can::SimBus>(
        rig->loop_, can::SimBusConfig{.name = "diag", .rates = options.rates, .fd = options.fd});
    rig->tester_port_ = rig->bus_->Attach("tester");
    rig->ecu_port_ = rig->bus_->Attach(name);
    isotp::Params p{.fd = options.fd, .tx_dl = options.fd ? 64 : 8, .max_message = 1 << 16};
    rig->tester_channel_ = std::make_unique<isotp::Channel>(*rig->tester_port_, options.tester, p);
    rig->ecu_channel_ = std::make_unique<isotp::Channel>(*rig->ecu_port_, options.ecu, p);
    rig->tester_isotp_ =
        std::make_unique<uds::IsoTpLink>(*rig->tester_channel_, *rig->tester_port_);
    rig->ecu_isotp_ = std::make_unique<uds::IsoTpLink>(*rig->ecu_channel_, *rig->ecu_port_);
    rig->ecu_->Attach(*rig->ecu_isotp_);
    rig->tester_link_ = rig->tester_isotp_.get();
  }
  rig->client_ = std::make_unique<uds::Client>(*rig->tester_link_);
  return rig;
}

uds::FlashPlan Rig::Plan(const Bytes& image) const {
  const EcuConfig config = ecu_->config();
  return {.image = image,
          .address = config.app_address,
          .key = [config](std::span<const uint8_t> seed) { return SecurityKey(config, seed); }};
}

Result<uds::FlashReport> Rig::Flash(uds::FlashPlan plan) {
  uds::Flasher flasher(*client_, std::move(plan));
  std::optional<Result<uds::FlashReport>> result;
  flasher.Run([&](Result<uds::FlashReport> r) { result = std::move(r); });
  loop_.RunUntil([&] { return result.has_value(); }, std::chrono::hours(1));
  if (!result) return Error(Code::kUnavailable, "the flash did not end within an hour");
  return std::move(*result);
}

Result<uds::Response> Rig::Ask(std::vector<uint8_t> request) {
  std::optional<Result<uds::Response>> got;
  client_->Request(std::move(request), [&](Result<uds::Response> r) { got = std::move(r); });
  loop_.RunUntil([&] { return got.has_value(); }, std::chrono::minutes(1));
  if (!got) return Error(Code::kUnavailable, "no answer within a minute");
  return std::move(*got);
}

Status Rig::Unlock() {
  for (std::vector<uint8_t> step :
       {std::vector<uint8_t>{0x10, 0x03}, std::vector<uint8_t>{0x31, 0x01, 0x02, 0x03},
        std::vector<uint8_t>{0x10, 0x02}}) {
    ALOFT_ASSIGN_OR_RETURN(uds::Response r, Ask(step));
    ALOFT_RETURN_IF_ERROR(r.ToStatus(step));
  }
  ALOFT_ASSIGN_OR_RETURN(uds::Response seed, Ask({0x27, 0x01}));
  ALOFT_RETURN_IF_ERROR(seed.ToStatus(std::vector<uint8_t>{0x27, 0x01}));
  Bytes key = SecurityKey(ecu_->config(), std::span(seed.bytes).subspan(2));
  std::vector<uint8_t> req{0x27, 0x02};
  req.insert(req.end(), key.begin(), key.end());
  ALOFT_ASSIGN_OR_RETURN(uds::Response unlocked, Ask(req));
  return unlocked.ToStatus(req);
}

}  // namespace aloft::ecusim
