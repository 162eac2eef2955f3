#include "ecusim/vehicle.h"

#include <cmath>
#include <random>
#include <sstream>

#include "uds/link.h"

namespace aloft::ecusim {

// One ECU and its wiring (declared in the order they must be torn down in reverse).
struct Vehicle::Node {
  EcuSpec spec;
  std::unique_ptr<can::SimPort> port;
  std::unique_ptr<isotp::Channel> physical, functional;
  std::unique_ptr<uds::IsoTpLink> physical_link, functional_link;
  std::unique_ptr<uds::MemoryLink> entity_side, ecu_side;  // an ECU on Ethernet
  // The edge node's tester channel to a CAN ECU it routes DoIP to.
  std::unique_ptr<isotp::Channel> gateway_channel;
  std::unique_ptr<uds::IsoTpLink> gateway_link;
  std::unique_ptr<Ecu> ecu;
};

Vehicle::Vehicle(EventLoop& loop, VehicleSpec spec) : loop_(loop), spec_(std::move(spec)) {}

Result<std::unique_ptr<Vehicle>> Vehicle::Create(EventLoop& loop, VehicleSpec spec,
                                                 const std::string& state_dir) {
  std::unique_ptr<Vehicle> v(new Vehicle(loop, std::move(spec)));
  for (const BusSpec& b : v->spec_.buses) {
    auto bus = std::make_unique<can::SimBus>(
        loop, can::SimBusConfig{.name = b.name,
                                .rates = b.rates,
                                .fd = b.fd,
                                .seed = std::hash<std::string>()(b.name)});
    bus->SetErrorRate(b.error_rate);
    v->buses_[b.name] = std::move(bus);
  }
  if (v->spec_.doip) v->entity_ = std::make_unique<doip::Entity>(loop, *v->spec_.doip);
  for (const EcuSpec& e : v->spec_.ecus) {
    auto node = std::make_unique<Node>();
    node->spec = e;
    ALOFT_ASSIGN_OR_RETURN(node->ecu, Ecu::Create(loop, e.config, state_dir));
    if (!node->ecu->status().application && !node->ecu->status().boot.banks[0].valid &&
        !node->ecu->status().boot.banks[1].valid) {
      // A new flash: the factory image of its software version (a deterministic body).
      std::mt19937 rng(static_cast<uint32_t>(std::hash<std::string>()(e.config.name)));
      Bytes body(64 << 10);
      for (auto& x : body) x = static_cast<uint8_t>(rng());
      ALOFT_RETURN_IF_ERROR(
          node->ecu->Provision(MakeAppImage(e.software, e.config.part_number, body)));
    }
    if (e.bus == "doip") {
      auto [entity_side, ecu_side] = uds::MemoryLink::Pair(loop, std::chrono::microseconds(20));
      node->entity_side = std::move(entity_side);
      node->ecu_side = std::move(ecu_side);
      node->ecu->Attach(*node->ecu_side);
      v->entity_->Route(*e.doip_address, *node->entity_side);
    } else {
      can::SimBus& bus = *v->buses_[e.bus];
      const bool fd = bus.config().fd;
      isotp::Params p{.fd = fd, .tx_dl = fd ? 64 : 8, .max_message = 1 << 16};
      node->port = bus.Attach(e.config.name);
      node->port->SetReceiveDropRate(e.drop_rate);
      node->physical = std::make_unique<isotp::Channel>(
          *node->port,
          isotp::Address{
              .tx_id = e.response_id, .rx_id = e.request_id, .extended_ids = e.extended_ids},
          p);
      node->functional =
          std::make_unique<isotp::Channel>(*node->port,
                                           isotp::Address{.tx_id = e.response_id,
                                                          .rx_id = e.functional_id,
                                                          .extended_ids = e.extended_ids,
                                                          .functional = true},
                                           p);
      node->physical_link = std::make_unique<uds::IsoTpLink>(*node->physical, *node->port);
      node->functional_link = std::make_unique<uds::IsoTpLink>(*node->functional, *node->port);
      node->ecu->Attach(*node->physical_link, node->functional_link.get());
      if (e.doip_address && v->entity_) {
        auto& gw = v->gateway_ports_[e.bus];
        if (!gw) gw = bus.Attach("gateway");
        // It answers only what it asked: an external tester on the same bus (through the hub)
        // uses the same identifiers, and two flow controls for one first frame break transfers.
        isotp::Params gp = p;
        gp.rx_window = std::chrono::seconds(10);
        node->gateway_channel = std::make_unique<isotp::Channel>(
            *gw,
            isotp::Address{
                .tx_id = e.request_id, .rx_id = e.response_id, .extended_ids = e.extended_ids},
            gp);
        node->gateway_link = std::make_unique<uds::IsoTpLink>(*node->gateway_channel, *gw);
        v->entity_->Route(*e.doip_address, *node->gateway_link);
      }
    }
    v->nodes_.push_back(std::move(node));
  }
  v->PublishSignals();
  return v;
}

Vehicle::~Vehicle() {
  if (signal_timer_) loop_.Cancel(signal_timer_);
  entity_.reset();  // it holds the gateway's links
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
    Node& n = **it;
    n.ecu.reset();
    n.gateway_link.reset();
    n.gateway_channel.reset();
    n.physical_link.reset();
    n.functional_link.reset();
    n.physical.reset();
    n.functional.reset();
    n.port.reset();
  }
  nodes_.clear();
  state_port_.reset();
  gateway_ports_.clear();
}

can::SimBus* Vehicle::bus(const std::string& name) {
  auto it = buses_.find(name);
  return it == buses_.end() ? nullptr : it->second.get();
}

Ecu* Vehicle::ecu(const std::string& name) {
  for (auto& n : nodes_) {
    if (n->spec.config.name == name) return n->ecu.get();
  }
  return nullptr;
}

// Two frames every period from the ECU that publishes them, while its application runs and its
// transmission is not disabled (28 03 01 silences it, as it silences a real ECU):
//   id:     speed (0.01 km/h, 2 bytes) | gear (int8) | power mode (0 OFF, 1 ACC, 2 ON, 3 START)
//           | low-voltage battery (0.01 V, 2 bytes)
//   id + 1: state of charge (0.1 %, 2 bytes) | charging (0/1)
void Vehicle::PublishSignals() {
  Node* publisher = nullptr;
  for (auto& n : nodes_) {
    if (n->spec.signals && n->port) publisher = n.get();
  }
  if (!spec_.signals.bus.empty() && !state_port_) {
    state_port_ = buses_.at(spec_.signals.bus)->Attach("vehicle-state");
  }
  can::SimPort* port = state_port_ ? state_port_.get()
                       : publisher ? publisher->port.get()
                                   : nullptr;
  if (!port) return;
  signal_timer_ = loop_.After(spec_.signals.period, [this, publisher, port] {
    signal_timer_ = 0;
    Ecu* e = state_port_ ? nullptr : publisher->ecu.get();
    if (!e || (e->online() && e->status().application && e->server().tx_enabled())) {
      const Signals& s = spec_.signals;
      auto u16 = [](double v) {
        return static_cast<uint16_t>(std::clamp(std::lround(v), 0L, 65535L));
      };
      const uint16_t speed = u16(s.speed_kph * 100), lv = u16(s.low_voltage * 100),
                     soc = u16(s.soc * 10);
      uint8_t mode = 2;
      if (s.power_mode == "OFF") mode = 0;
      if (s.power_mode == "ACC") mode = 1;
      if (s.power_mode == "START") mode = 3;
      (void)port->Send(
          can::Frame::Classic(s.id, false,
                              {static_cast<uint8_t>(speed >> 8), static_cast<uint8_t>(speed),
                               static_cast<uint8_t>(static_cast<int8_t>(s.gear)), mode,
                               static_cast<uint8_t>(lv >> 8), static_cast<uint8_t>(lv)}));
      (void)port->Send(
          can::Frame::Classic(s.id + 1, false,
                              {static_cast<uint8_t>(soc >> 8), static_cast<uint8_t>(soc),
                               static_cast<uint8_t>(s.charging ? 1 : 0)}));
    }
    PublishSignals();
  });
}

std::vector<std::string> Vehicle::Status() {
  std::vector<std::string> out;
  for (auto& n : nodes_) {
    std::string line = n->ecu->status().Describe(n->ecu->config());
    line += n->ecu->online() ? "" : " [offline]";
    line += " (" + n->spec.bus + ")";
    out.push_back(line);
  }
  return out;
}

Result<std::string> Vehicle::Control(const std::string& command) {
  std::istringstream in(command);
  std::vector<std::string> w;
  for (std::string word; in >> word;) w.push_back(word);
  auto bad = [&](const std::string& why) {
    return Error(Code::kInvalidArgument, "control '" + command + "': " + why);
  };
  if (w.empty()) return bad("empty");
  auto number = [&](const std::string& s, double* out) {
    char* end = nullptr;
    *out = std::strtod(s.c_str(), &end);
    return end && *end == '\0' && std::isfinite(*out);
  };
  if (w[0] == "status") {
    std::string s;
    for (const std::string& line : Status()) s += line + "\n";
    return s;
  }
  if (w[0] == "fault" && w.size() >= 4) {
    Ecu* e = ecu(w[1]);
    if (!e) return bad("no ECU '" + w[1] + "'");
    double v = 0;
    if (w[2] == "nrc" && w.size() == 5) {
      auto b = HexDecode(w[3] + w[4]);
      if (!b.ok() || b->size() != 2) return bad("nrc SERVICE NRC, both hex bytes");
      e->faults().nrc[(*b)[0]] = (*b)[1];
      return std::string("ok");
    }
    if (!number(w[3], &v) || v < 0) return bad("'" + w[3] + "' is not a non-negative number");
    if (w[2] == "reset_at_block") {
      e->faults().reset_at_block = static_cast<int>(v);
    } else if (w[2] == "power_loss_at_block") {
      e->faults().power_loss_at_block = static_cast<int>(v);
    } else if (w[2] == "hang_at_block") {
      e->faults().hang_at_block = static_cast<int>(v);
    } else if (w[2] == "corrupt_at_block") {
      e->faults().corrupt_at_block = static_cast<int>(v);
    } else if (w[2] == "slow_ms") {
      e->server().mutable_config().response_delay =
          std::chrono::milliseconds(static_cast<int64_t>(v));
    } else if (w[2] == "drop_rate") {
      for (auto& n : nodes_) {
        if (n->ecu.get() == e && n->port) n->port->SetReceiveDropRate(v);
      }
    } else {
      return bad("unknown fault '" + w[2] + "'");
    }
    return std::string("ok");
  }
  if (w[0] == "bus" && w.size() == 4 && w[2] == "error_rate") {
    can::SimBus* b = bus(w[1]);
    double v = 0;
    if (!b) return bad("no bus '" + w[1] + "'");
    if (!number(w[3], &v) || v < 0 || v > 1) return bad("error_rate is 0..1");
    b->SetErrorRate(v);
    return std::string("ok");
  }
  if (w[0] == "busoff" && w.size() == 2) {
    for (auto& n : nodes_) {
      if (n->spec.config.name == w[1] && n->port) {
        n->port->ForceBusOff();
        return std::string("ok");
      }
    }
    return bad("no ECU on CAN named '" + w[1] + "'");
  }
  if (w[0] == "power" && w.size() == 3) {
    Ecu* e = ecu(w[1]);
    double ms = 0;
    if (!e) return bad("no ECU '" + w[1] + "'");
    if (!number(w[2], &ms) || ms < 0) return bad("power ECU OFF_MS");
    e->PowerCycle(std::chrono::milliseconds(static_cast<int64_t>(ms)));
    return std::string("ok");
  }
  if (w[0] == "signal" && w.size() == 3) {
    Signals& s = spec_.signals;
    double v = 0;
    if (w[1] == "gear") {
      auto g = ParseGear(w[2]);
      if (!g) return bad("gear P, R, N, D or 1-9");
      s.gear = *g;
    } else if (w[1] == "power_mode") {
      if (w[2] != "OFF" && w[2] != "ACC" && w[2] != "ON" && w[2] != "START") {
        return bad("power_mode OFF, ACC, ON or START");
      }
      s.power_mode = w[2];
    } else if (w[1] == "charging") {
      if (w[2] != "true" && w[2] != "false") return bad("charging true or false");
      s.charging = w[2] == "true";
    } else if (number(w[2], &v)) {
      if (w[1] == "speed") {
        s.speed_kph = v;
      } else if (w[1] == "low_voltage") {
        s.low_voltage = v;
      } else if (w[1] == "soc") {
        s.soc = v;
      } else {
        return bad("unknown signal '" + w[1] + "'");
      }
    } else {
      return bad("'" + w[2] + "' is not a number");
    }
    return std::string("ok");
  }
  return bad("unknown command (status, fault, bus, busoff, power, signal)");
}

}  // namespace aloft::ecusim
