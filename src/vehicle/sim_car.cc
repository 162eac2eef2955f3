#include "vehicle/sim_car.h"

#include <filesystem>

#include "net/stream.h"

namespace aloft::vehicle {

Result<std::unique_ptr<SimCar>> SimCar::Create(const ecusim::VehicleSpec& spec,
                                               const std::string& dir, std::set<std::string> direct,
                                               bool all_direct) {
  std::unique_ptr<SimCar> car(new SimCar());
  car->spec_ = spec;
  if (all_direct) {
    for (const auto& b : spec.buses) direct.insert(b.name);
  }
  car->direct_ = std::move(direct);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  ALOFT_ASSIGN_OR_RETURN(car->vehicle_, ecusim::Vehicle::Create(car->loop_, spec, dir));
  ALOFT_RETURN_IF_ERROR(car->RestartGateway());
  return car;
}

SimCar::~SimCar() {
  network_.reset();
  retired_.clear();
  doip_.reset();
  retired_doip_.clear();
  ports_.clear();
  vehicle_.reset();
}

Status SimCar::RestartGateway() {
  if (network_) retired_.push_back(std::move(network_));
  if (doip_) retired_doip_.push_back(std::move(doip_));
  std::map<std::string, can::CanBus*> buses;
  for (const std::string& name : direct_) {
    can::SimBus* bus = vehicle_->bus(name);
    if (!bus) return Error(Code::kInvalidArgument, "no bus '" + name + "' in the vehicle");
    auto& port = ports_[name];
    if (!port) port = bus->Attach("gateway");
    buses[name] = port.get();
  }
  if (vehicle_->entity()) {
    auto [tester_end, entity_end] = net::SimStream::Pair(loop_);
    vehicle_->entity()->Accept(std::move(entity_end));
    doip_ = std::make_unique<doip::Client>(std::move(tester_end));
    std::optional<Result<uint16_t>> activated;
    doip_->Activate([&](Result<uint16_t> r) { activated = std::move(r); });
    loop_.RunUntil([&] { return activated.has_value(); }, std::chrono::seconds(5));
    if (!activated) return Error(Code::kUnavailable, "DoIP routing activation: no answer");
    if (!activated->ok()) return activated->error();
  }
  ALOFT_ASSIGN_OR_RETURN(network_, Network::Create(spec_, buses, doip_.get()));
  return OkStatus();
}

std::function<Bytes(const std::string&, std::span<const uint8_t>)> SimCar::Keys() const {
  std::map<std::string, ecusim::EcuConfig> configs;
  for (const auto& e : spec_.ecus) configs[e.config.name] = e.config;
  return [configs](const std::string& ecu, std::span<const uint8_t> seed) {
    auto it = configs.find(ecu);
    return it == configs.end() ? Bytes{} : ecusim::SecurityKey(it->second, seed);
  };
}

}  // namespace aloft::vehicle
