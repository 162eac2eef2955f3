#include "server/views.h"

#include "core/clock.h"

namespace aloft::server {

using json = nlohmann::json;

json ToJson(const DeviceType& t) {
  return {{"name", t.name},
          {"description", t.description},
          {"modules", t.modules},
          {"created", FormatRfc3339Ms(t.created_ms)}};
}

json ToJson(const Release& r) {
  json targets = json::array();
  for (const auto& t : r.targets)
    targets.push_back({{"device_type", t.device_type}, {"module", t.module}});
  json j = {{"id", r.Id()},
            {"name", r.name},
            {"version", r.version},
            {"kind", r.kind},
            {"filename", r.filename},
            {"size", r.artifact.size},
            {"sha256", r.artifact.sha256},
            {"sha1", r.artifact.sha1},
            {"md5", r.artifact.md5},
            {"enabled", r.enabled},
            {"device_types", r.DeviceTypes()},
            {"modules", r.Modules()},
            {"targets", targets},
            {"allowed_devices", r.allowed_devices ? json(*r.allowed_devices) : json(nullptr)},
            {"allowed_sources", r.allowed_sources ? json(*r.allowed_sources) : json(nullptr)},
            {"created", FormatRfc3339Ms(r.created_ms)},
            {"created_by", r.created_by}};
  return j;
}

json ToJson(const Device& d) {
  json attrs = json::parse(d.attributes, nullptr, false);
  if (attrs.is_discarded()) attrs = json::object();
  return {{"name", d.name},
          {"device_type", d.device_type},
          {"group", d.group ? json(*d.group) : json(nullptr)},
          {"tags", d.tags},
          {"attributes", attrs},
          {"versions", d.versions},
          {"created", FormatRfc3339Ms(d.created_ms)},
          {"last_seen", d.last_seen_ms ? json(FormatRfc3339Ms(*d.last_seen_ms)) : json(nullptr)},
          {"gateway", d.gateway ? json(*d.gateway) : json(nullptr)}};
}

json ToJson(const Action& a) {
  json j = {{"id", a.id},
            {"device", a.device},
            {"release", a.release + "@" + a.version},
            {"state", ActionStateName(a.state)},
            {"mode", a.mode},
            {"progress", a.progress},
            {"created", FormatRfc3339Ms(a.created_ms)},
            {"updated", FormatRfc3339Ms(a.updated_ms)},
            {"created_by", a.created_by}};
  if (!a.events.empty()) {
    json events = json::array();
    for (const auto& e : a.events) {
      json ev = {{"at", FormatRfc3339Ms(e.at_ms)}, {"status", e.status}, {"details", e.details}};
      if (e.progress) ev["progress"] = *e.progress;
      if (e.code) ev["code"] = *e.code;
      events.push_back(std::move(ev));
    }
    j["events"] = std::move(events);
  }
  return j;
}

}  // namespace aloft::server
