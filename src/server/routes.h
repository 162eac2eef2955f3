// aloftd's HTTP surface, one function per resource or API surface (private to src/server). Each
// adds its routes to the table; the handlers reach the server's state through the Context.
// docs/server.md maps every route to its file.
#pragma once

#include "server/api.h"
#include "server/context.h"

namespace aloft::server {

// routes_status.cc: /healthz, /metrics, /api/v1/stats, /api/v1/audit.
void AddStatusRoutes(RouteTable& routes, Context& ctx);
// routes_device_types.cc: /api/v1/device-types and their modules.
void AddDeviceTypeRoutes(RouteTable& routes, Context& ctx);
// routes_releases.cc: /api/v1/releases (uploads, deltas, artifacts).
void AddReleaseRoutes(RouteTable& routes, Context& ctx);
// routes_devices.cc: /api/v1/devices, their actions and logs.
void AddDeviceRoutes(RouteTable& routes, Context& ctx);
// routes_actions.cc: /api/v1/deployments, /api/v1/actions, /api/v1/push.
void AddActionRoutes(RouteTable& routes, Context& ctx);
// routes_rollouts.cc: /api/v1/rollouts.
void AddRolloutRoutes(RouteTable& routes, Context& ctx);
// routes_tokens.cc: /api/v1/tokens and the device types' registration tokens.
void AddTokenRoutes(RouteTable& routes, Context& ctx);
// routes_session.cc: /api/v1/session (a browser's sign-in) and /api/v1/users.
void AddSessionRoutes(RouteTable& routes, Context& ctx);
// device_api.cc: the native device API, /device/v1/{device}/... (docs/device-api.md).
void AddDeviceApiRoutes(RouteTable& routes, Context& ctx);
// ddi_api.cc: the hawkBit DDI API, /{tenant}/controller/v1/{device}/... (docs/ddi.md).
void AddDdiRoutes(RouteTable& routes, Context& ctx);

// routes_tuf.cc: the TUF Image repository, /tuf/image/... and /api/v1/tuf/image.
void AddTufRoutes(RouteTable& routes, Context& ctx);

// routes_tokens.cc: on first start (no API token yet), creates the admin token and writes it to
// <data_dir>/admin.token (0600). Several servers starting at once on one database create one.
Status EnsureAdminToken(Context& ctx);

}  // namespace aloft::server
