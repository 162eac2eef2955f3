// The native device API's rules for actions (private to src/server), shared by the other ways a
// device reaches aloftd: the hawkBit DDI API (ddi_api.cc) and MQTT (the bridge's hooks in
// app.cc). docs/device-api.md describes the API.
#pragma once

#include <cstdint>
#include <optional>

#include "server/api.h"
#include "server/context.h"
#include "server/store.h"

namespace aloft::server {

// The check-in's "action" for the device's open action: null, a cancel, or the offer (download
// links built from `req`'s Host, a delta when one is ready, the maintenance window).
Result<json> OpenActionJson(Context& ctx, const Request& req, const Device& d,
                            const std::optional<Action>& action, const Release& rel,
                            bool deltas = true);

// Moves action `a` to `next` with `event` (progress: the device's percentage, when it gave one);
// a success records the release's versions as the device's, and returns the device so changed.
Result<std::optional<Device>> RecordFeedback(Context& ctx, Tx& tx, const Caller& c, const Action& a,
                                             ActionState next, std::optional<int64_t> progress,
                                             const ActionEvent& event);

// kAlreadyExists (409) when the action's rollout has a maintenance window that is closed, unless
// the action is installing already (an install the window let start finishes).
Status CheckInstallAllowed(Context& ctx, int64_t action_id);

// Counts a device's contact in the metrics: a device seen, or one more check-in.
void CountContact(Context& ctx, const Caller& c, int64_t device_id);

}  // namespace aloft::server
