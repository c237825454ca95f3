import { accessSync, constants } from 'node:fs'
import type { TestContext } from 'node:test'

/**
 * The peer tools the interop tests and benchmarks drive, by absolute path, each from its Debian package.
 * Absolute paths on purpose: this machine has a different docker client in /usr/local/bin.
 */
export const Tools = {
  /** docker.io */
  docker: '/usr/bin/docker',
  /** docker.io */
  dockerd: '/usr/sbin/dockerd',
  /** containerd (a dependency of docker.io) */
  containerd: '/usr/bin/containerd',
  /** docker-compose (Compose v1, which speaks the Engine API) */
  'docker-compose': '/usr/bin/docker-compose',
  /** openssl (certificates for TLS tests) */
  openssl: '/usr/bin/openssl',
  /** skopeo */
  skopeo: '/usr/bin/skopeo',
  /** debootstrap */
  debootstrap: '/usr/sbin/debootstrap',
  /** busybox-static */
  busybox: '/bin/busybox',
  /** runc */
  runc: '/usr/sbin/runc',
  /** tar */
  tar: '/bin/tar',
  /** util-linux (essential) */
  setpriv: '/usr/bin/setpriv',
  /** netavark (container networks) */
  netavark: '/usr/lib/podman/netavark',
  /** aardvark-dns (names on user networks) */
  aardvark: '/usr/lib/podman/aardvark-dns',
} as const

export type ToolName = keyof typeof Tools

/** The named tools that are not installed (not executable at their path). */
export function missingTools(names: readonly ToolName[]): ToolName[] {
  return names.filter((n) => {
    try {
      accessSync(Tools[n], constants.X_OK)
      return false
    } catch {
      return true
    }
  })
}

/**
 * Tests that drive peer tools call this first. Outside CI a missing tool skips the test with a hint;
 * in CI (CI=true) it is a failure, since scripts/ensure-deps.sh must have installed it.
 */
export function requireTools(t: TestContext, names: readonly ToolName[]): boolean {
  const missing = missingTools(names)
  if (missing.length === 0) return true
  const what = missing.map((n) => Tools[n]).join(', ')
  if (process.env['CI']) throw new Error(`missing ${what}: scripts/ensure-deps.sh should have installed it`)
  t.skip(`missing ${what} (run scripts/ensure-deps.sh as root)`)
  return false
}
