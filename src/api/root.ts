import { homedir } from 'node:os'

/** Where the store lives when no `--root`/`CAIRN_ROOT` is given. */
export function defaultRoot(): string {
  if (process.getuid?.() === 0) return '/var/lib/cairn'
  const xdg = process.env['XDG_DATA_HOME']
  return `${xdg && xdg.startsWith('/') ? xdg : `${homedir()}/.local/share`}/cairn`
}
