import type { TestContext } from 'node:test'

/**
 * Tests that need root (mounts, mknod, chown, trusted.* xattrs, dockerd) call this first.
 * Outside CI they skip with a reason; in CI (CI=true) a missing privilege is a failure, never a silent skip.
 */
export function requireRoot(t: TestContext, why: string): boolean {
  if (process.getuid?.() === 0) return true
  if (process.env['CI']) throw new Error(`this test needs root (${why}) and CI runs as root`)
  t.skip(`needs root: ${why}`)
  return false
}
