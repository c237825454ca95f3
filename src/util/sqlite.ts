/**
 * Loads better-sqlite3 once, for the metadata database and for the registry's file locks.
 *
 * better-sqlite3 is CommonJS: require() loads it without the ES-module wrapper's export scan,
 * and naming its addon file skips the `bindings` package's search (both count in every
 * command's start-up time).
 */
import { createRequire } from 'node:module'
import type BetterSqlite3 from 'better-sqlite3'

export type SqliteDatabase = BetterSqlite3.Database

let loaded: { Database: typeof BetterSqlite3; nativeBinding: string | undefined } | undefined

function load(): { Database: typeof BetterSqlite3; nativeBinding: string | undefined } {
  if (loaded) return loaded
  const requireCjs = createRequire(import.meta.url)
  const Database = requireCjs('better-sqlite3') as typeof BetterSqlite3
  let nativeBinding: string | undefined
  try {
    nativeBinding = requireCjs.resolve('better-sqlite3/build/Release/better_sqlite3.node')
  } catch {
    nativeBinding = undefined // another layout: better-sqlite3 finds its addon itself
  }
  loaded = { Database, nativeBinding }
  return loaded
}

/** Opens (or creates) a SQLite database with better-sqlite3's options. */
export function openSqliteFile(path: string, options: BetterSqlite3.Options = {}): SqliteDatabase {
  const { Database, nativeBinding } = load()
  return new Database(path, nativeBinding === undefined ? options : { ...options, nativeBinding })
}
