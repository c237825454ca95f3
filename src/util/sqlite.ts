/**
 * One loader of better-sqlite3, for the metadata database and for the registry's file locks.
 *
 * better-sqlite3 is imported statically so that the command's bundle (scripts/bundle.ts) carries
 * its JavaScript, compiled from the bundle's code cache instead of resolved and compiled file by
 * file at every start; naming its addon file skips the `bindings` package's search. Both count in
 * every command's start-up time.
 */
import { createRequire } from 'node:module'
import Database from 'better-sqlite3'

export type SqliteDatabase = Database.Database

let nativeBinding: string | undefined | null = null

function addonPath(): string | undefined {
  if (nativeBinding !== null) return nativeBinding
  try {
    nativeBinding = createRequire(import.meta.url).resolve('better-sqlite3/build/Release/better_sqlite3.node')
  } catch {
    nativeBinding = undefined // another layout: better-sqlite3 finds its addon itself
  }
  return nativeBinding
}

/** Opens (or creates) a SQLite database with better-sqlite3's options. */
export function openSqliteFile(path: string, options: Database.Options = {}): SqliteDatabase {
  const binding = addonPath()
  return new Database(path, binding === undefined ? options : { ...options, nativeBinding: binding })
}
