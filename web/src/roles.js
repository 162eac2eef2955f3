// The server's roles, in order: each may do what the ones before it may (docs/server.md). The
// pages offer only what the session's role allows; the server decides anyway.
export const roles = ['viewer', 'release', 'approver', 'admin'];

export function can(session, role) {
  return Boolean(session) && roles.indexOf(session.role) >= roles.indexOf(role);
}
