#include "vehicle/network.h"

#include <cstdio>

namespace aloft::vehicle {

namespace {

isotp::Params ParamsFor(const ecusim::BusSpec& b) {
  // The gateway's channels take only answers to what they asked (other testers may share a bus).
  return {.fd = b.fd,
          .tx_dl = b.fd ? 64 : 8,
          .max_message = 1 << 20,
          .rx_window = std::chrono::seconds(10)};
}

}  // namespace

Result<std::unique_ptr<Network>> Network::Create(const ecusim::VehicleSpec& spec,
                                                 std::map<std::string, can::CanBus*> buses,
                                                 doip::Client* doip, NetworkConfig config) {
  std::unique_ptr<Network> n(new Network(spec));
  std::map<std::string, const ecusim::BusSpec*> bus_specs;
  for (const auto& b : spec.buses) bus_specs[b.name] = &b;
  for (auto& [name, bus] : buses) {
    auto it = bus_specs.find(name);
    if (it == bus_specs.end()) {
      return Error(Code::kInvalidArgument, "bus '" + name + "' is not in the vehicle description");
    }
    if (!bus) continue;
    Bus& b = n->buses_[name];
    b.bus = bus;
    isotp::Params p = ParamsFor(*it->second);
    p.rx_window = {};
    b.functional_channel = std::make_unique<isotp::Channel>(
        *bus, isotp::Address{.tx_id = 0x7DF, .rx_id = 0x7E8, .functional = true}, p);
    b.functional = std::make_unique<uds::IsoTpLink>(*b.functional_channel, *bus);
  }
  for (const ecusim::EcuSpec& e : spec.ecus) {
    Node node;
    node.name = e.config.name;
    auto bus = n->buses_.find(e.bus);
    char route[96];
    if (bus != n->buses_.end()) {
      node.channel = std::make_unique<isotp::Channel>(
          *bus->second.bus,
          isotp::Address{
              .tx_id = e.request_id, .rx_id = e.response_id, .extended_ids = e.extended_ids},
          ParamsFor(*bus_specs[e.bus]));
      node.link = std::make_unique<uds::IsoTpLink>(*node.channel, *bus->second.bus);
      node.medium = e.bus;
      std::snprintf(route, sizeof route, "%s 0x%X/0x%X", e.bus.c_str(), e.request_id,
                    e.response_id);
    } else if (doip && e.doip_address) {
      node.link = doip->LinkTo(*e.doip_address);
      node.via_doip = true;
      // Its transfers occupy its CAN bus behind the edge node; on Ethernet, only its own flash.
      node.medium = e.bus == "doip" ? "ethernet:" + e.config.name : e.bus;
      std::snprintf(route, sizeof route, "DoIP 0x%04X", unsigned{*e.doip_address});
    } else {
      return Error(
          Code::kUnavailable,
          "ECU " + e.config.name + " is out of reach: the gateway has no bus '" + e.bus + "'" +
              (e.doip_address ? " and no DoIP connection" : " (and it has no DoIP address)"));
    }
    node.route = route;
    node.client = std::make_unique<uds::Client>(*node.link, config.client);
    n->nodes_.push_back(std::move(node));
  }
  if (doip) {
    n->doip_loop_ = &doip->loop();
    n->keepalive_interval_ = config.doip_keepalive;
    n->KeepAlive();
  }
  return n;
}

void Network::KeepAlive() {
  keepalive_ = doip_loop_->After(keepalive_interval_, [this] {
    keepalive_ = 0;
    for (Node& node : nodes_) {
      if (node.via_doip) node.client->Request({0x3E, 0x80}, nullptr);
    }
    KeepAlive();
  });
}

Network::~Network() {
  if (keepalive_) doip_loop_->Cancel(keepalive_);
  for (auto& node : nodes_) node.client.reset();
}

std::vector<std::string> Network::ecus() const {
  std::vector<std::string> out;
  for (const Node& node : nodes_) out.push_back(node.name);
  return out;
}

const ecusim::EcuSpec* Network::ecu(const std::string& name) const {
  for (const auto& e : spec_.ecus) {
    if (e.config.name == name) return &e;
  }
  return nullptr;
}

uds::Client* Network::client(const std::string& ecu) {
  for (Node& node : nodes_) {
    if (node.name == ecu) return node.client.get();
  }
  return nullptr;
}

std::string Network::route(const std::string& ecu) const {
  for (const Node& node : nodes_) {
    if (node.name == ecu) return node.route;
  }
  return "";
}

std::string Network::medium(const std::string& ecu) const {
  for (const Node& node : nodes_) {
    if (node.name == ecu) return node.medium;
  }
  return "";
}

uds::Link* Network::functional(const std::string& bus) {
  auto it = buses_.find(bus);
  return it == buses_.end() ? nullptr : it->second.functional.get();
}

std::vector<uds::Link*> Network::answers(const std::string& bus) {
  std::vector<uds::Link*> out;
  for (Node& node : nodes_) {
    if (node.medium == bus) out.push_back(node.link.get());
  }
  return out;
}

std::vector<std::string> Network::buses() const {
  std::vector<std::string> out;
  for (const auto& [name, b] : buses_) out.push_back(name);
  return out;
}

can::CanBus* Network::bus(const std::string& name) {
  auto it = buses_.find(name);
  return it == buses_.end() ? nullptr : it->second.bus;
}

can::CanBus* Network::signal_bus() {
  if (!spec_.signals.bus.empty()) return bus(spec_.signals.bus);
  for (const auto& e : spec_.ecus) {
    if (e.signals) return bus(e.bus);
  }
  return nullptr;
}

}  // namespace aloft::vehicle
