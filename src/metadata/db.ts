/**
 * The metadata database: tags, images, layers, and which blobs each image holds.
 *
 * SQLite in WAL mode gives what a multi-process CLI needs: every change is one transaction,
 * so a process killed at any moment leaves the previous state or the next, never a mix; the
 * database's own locks (released by the kernel when a process dies) serialise concurrent
 * writers; readers never block writers.
 */
import { CairnError } from '../errors/index.js'
import { openSqliteFile, type SqliteDatabase } from '../util/sqlite.js'

export type DB = SqliteDatabase

/** Schema migrations; index i upgrades `user_version` i to i+1. Append only. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE images (
    id TEXT PRIMARY KEY,              -- config digest (the IMAGE ID)
    manifest_digest TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    config_digest TEXT NOT NULL,
    created INTEGER NOT NULL,         -- ms since epoch, from the config
    added INTEGER NOT NULL,           -- ms since epoch, when stored here
    size INTEGER NOT NULL,            -- unpacked size of all layers, as Docker counts it
    parent TEXT                       -- image this one was committed from, if known
  );
  CREATE INDEX images_parent ON images(parent);

  CREATE TABLE tags (
    name TEXT PRIMARY KEY,            -- normalised: docker.io/library/ubuntu:latest
    image_id TEXT NOT NULL REFERENCES images(id),
    updated INTEGER NOT NULL
  );
  CREATE INDEX tags_image ON tags(image_id);

  CREATE TABLE repo_digests (
    name TEXT PRIMARY KEY,            -- docker.io/huzd/test@sha256:…
    image_id TEXT NOT NULL REFERENCES images(id)
  );
  CREATE INDEX repo_digests_image ON repo_digests(image_id);

  -- every blob an image needs: manifest, config, layers
  CREATE TABLE image_blobs (
    image_id TEXT NOT NULL REFERENCES images(id),
    digest TEXT NOT NULL,
    PRIMARY KEY (image_id, digest)
  );
  CREATE INDEX image_blobs_digest ON image_blobs(digest);

  -- layers by diffID: which blob holds each, and its unpacked size
  CREATE TABLE layer_blobs (
    diff_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    compressed_size INTEGER NOT NULL,
    size INTEGER NOT NULL,            -- unpacked content (sum of regular file sizes)
    diff_size INTEGER NOT NULL,       -- bytes of the uncompressed tar
    PRIMARY KEY (diff_id, digest)
  );
  CREATE INDEX layer_blobs_digest ON layer_blobs(digest);

  -- layer stacks by chain ID
  CREATE TABLE chains (
    chain_id TEXT PRIMARY KEY,
    parent TEXT,
    diff_id TEXT NOT NULL,
    size INTEGER NOT NULL
  );

  CREATE TABLE image_chains (
    image_id TEXT NOT NULL REFERENCES images(id),
    idx INTEGER NOT NULL,
    chain_id TEXT NOT NULL,
    PRIMARY KEY (image_id, idx)
  );
  CREATE INDEX image_chains_chain ON image_chains(chain_id);

  -- containers reference images; the container engine fills this table
  CREATE TABLE containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL,
    created INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'created'
  );
  CREATE INDEX containers_image ON containers(image_id);

  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  `
  -- snapshots of the union filesystem drivers (src/snapshot)
  CREATE TABLE snapshots (
    driver TEXT NOT NULL,             -- overlay | native
    key TEXT NOT NULL,                -- active/view key, or committed name (a chain ID for layers)
    id INTEGER NOT NULL,              -- its folder: snapshots/<driver>/<id>
    parent TEXT,                      -- committed snapshot below it
    kind TEXT NOT NULL,               -- active | view | committed
    created INTEGER NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    link TEXT,                        -- overlay: short name under snapshots/overlay/l/
    PRIMARY KEY (driver, key),
    UNIQUE (driver, id)
  );
  CREATE INDEX snapshots_parent ON snapshots(driver, parent);
  `,
  `
  -- the registry client (src/remote): blobs known to be in a registry's repository (pushed there
  -- or pulled from there), for existence checks and cross-repository mounts; a layer's diffID
  -- lets a push reuse a blob the registry has for it
  CREATE TABLE remote_blobs (
    registry TEXT NOT NULL,           -- reference domain: docker.io, localhost:5000
    repository TEXT NOT NULL,         -- library/ubuntu
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    diff_id TEXT,                     -- for layers
    updated INTEGER NOT NULL,
    PRIMARY KEY (registry, repository, digest)
  );
  CREATE INDEX remote_blobs_digest ON remote_blobs(registry, digest);
  CREATE INDEX remote_blobs_diff ON remote_blobs(registry, diff_id);

  -- blob uploads in progress, so that an interrupted push resumes at the registry's offset
  CREATE TABLE remote_uploads (
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    digest TEXT NOT NULL,
    location TEXT NOT NULL,           -- the upload URL the registry gave last
    offset INTEGER NOT NULL,          -- bytes the registry had acknowledged with it
    updated INTEGER NOT NULL,
    PRIMARY KEY (registry, repository, digest)
  );
  `,
  `
  -- the container engine (src/container): what a container runs and where its lifecycle stands;
  -- its configuration, bundle and logs live in containers/<id>/
  ALTER TABLE containers ADD COLUMN image_ref TEXT NOT NULL DEFAULT '';   -- the image as the user named it
  ALTER TABLE containers ADD COLUMN command TEXT NOT NULL DEFAULT '[]';   -- JSON [path, ...args]
  ALTER TABLE containers ADD COLUMN driver TEXT NOT NULL DEFAULT '';      -- storage driver of its snapshot
  ALTER TABLE containers ADD COLUMN runtime TEXT NOT NULL DEFAULT '';     -- crun | runc (name)
  ALTER TABLE containers ADD COLUMN runtime_path TEXT NOT NULL DEFAULT '';
  ALTER TABLE containers ADD COLUMN owner_pid INTEGER;                    -- process creating, starting or removing it
  ALTER TABLE containers ADD COLUMN owner_start TEXT;                     -- its start time (/proc/PID/stat), against PID reuse
  ALTER TABLE containers ADD COLUMN shim_pid INTEGER;                     -- the monitor of a running container
  ALTER TABLE containers ADD COLUMN shim_start TEXT;
  ALTER TABLE containers ADD COLUMN pid INTEGER NOT NULL DEFAULT 0;       -- the container's first process
  ALTER TABLE containers ADD COLUMN started_at INTEGER;                   -- ms since epoch
  ALTER TABLE containers ADD COLUMN finished_at INTEGER;
  ALTER TABLE containers ADD COLUMN exit_code INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE containers ADD COLUMN error TEXT NOT NULL DEFAULT '';
  ALTER TABLE containers ADD COLUMN auto_remove INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX containers_state ON containers(state);
  `,
  `
  -- the build cache (src/build): a step's result (an image, usually an untagged intermediate
  -- one) by the key of its inputs: the image it ran on, the instruction with the args and env
  -- it sees, and for COPY/ADD the checksums of the files it copies
  CREATE TABLE build_cache (
    key TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    parent TEXT,                      -- the image the step ran on (NULL: from scratch)
    description TEXT NOT NULL,        -- the instruction, as the build printed it
    created INTEGER NOT NULL,         -- ms since epoch
    last_used INTEGER NOT NULL
  );
  CREATE INDEX build_cache_image ON build_cache(image_id);

  -- content checksums of context files, by path and stat (inode, size, mtime, ctime), so that an
  -- unchanged file is not read again by the next build; the cache keys hold the checksums
  CREATE TABLE build_file_hashes (
    key TEXT PRIMARY KEY,             -- host path NUL dev:ino:size:mtime:ctime
    digest TEXT NOT NULL,
    used INTEGER NOT NULL             -- ms since epoch
  );
  `,
  `
  -- volumes (src/volume): their data lives in volumes/<name>/_data
  CREATE TABLE volumes (
    name TEXT PRIMARY KEY,
    driver TEXT NOT NULL DEFAULT 'local',
    created INTEGER NOT NULL,                -- ms since epoch
    labels TEXT NOT NULL DEFAULT '{}',       -- JSON
    options TEXT NOT NULL DEFAULT '{}',      -- JSON: the local driver's type, device, o
    anonymous INTEGER NOT NULL DEFAULT 0     -- made for a container's unnamed mount
  );
  -- which container uses which volume: a volume named here is never removed
  CREATE TABLE container_volumes (
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    volume TEXT NOT NULL REFERENCES volumes(name),
    PRIMARY KEY (container_id, volume)
  );
  CREATE INDEX container_volumes_volume ON container_volumes(volume);
  -- restart policies, kept by each container's monitor
  ALTER TABLE containers ADD COLUMN restart_policy TEXT NOT NULL DEFAULT '';   -- no | always | unless-stopped | on-failure[:N]
  ALTER TABLE containers ADD COLUMN restart_count INTEGER NOT NULL DEFAULT 0;  -- restarts by the policy since its user last started it
  ALTER TABLE containers ADD COLUMN manual_stop INTEGER NOT NULL DEFAULT 0;    -- stopped (or killed) by its user: not restarted
  `,
]

export function openDatabase(path: string): DB {
  return openSqlite(path, MIGRATIONS, 'the metadata database')
}

/**
 * A SQLite database in WAL mode with its schema brought up to date by `migrations` (index i
 * upgrades `user_version` i to i+1). Also used for state outside a store (network leases).
 */
export function openSqlite(path: string, migrations: readonly string[], what: string): DB {
  let db: DB
  try {
    db = openSqliteFile(path, { timeout: 60_000 })
  } catch (err) {
    throw new CairnError('STORE_CORRUPT', `cannot open ${what} ${path}: ${(err as Error).message}`, { cause: err })
  }
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.pragma('foreign_keys = ON')
  migrate(db, migrations)
  cacheStatements(db)
  return db
}

/** More distinct statements than this (SQL built per call) and the cache starts over. */
const STATEMENT_CACHE_SIZE = 512

/**
 * `prepare` compiles a statement once per SQL text: compiling is most of what a small query
 * costs (listing 20 containers over the Engine API prepared some 150 statements a request).
 * No statement of Cairn's changes its modes (pluck, raw, expand) nor is iterated, so one
 * compiled statement serves every caller; better-sqlite3's own transactions and pragmas do not
 * go through this method.
 */
function cacheStatements(db: DB): void {
  const prepare = db.prepare.bind(db)
  const cache = new Map<string, ReturnType<DB['prepare']>>()
  const cached = (sql: string): ReturnType<DB['prepare']> => {
    let stmt = cache.get(sql)
    if (stmt === undefined) {
      if (cache.size >= STATEMENT_CACHE_SIZE) cache.clear()
      stmt = prepare(sql)
      cache.set(sql, stmt)
    }
    return stmt
  }
  db.prepare = cached as DB['prepare']
}

function migrate(db: DB, migrations: readonly string[]): void {
  const current = db.pragma('user_version', { simple: true }) as number
  if (current > migrations.length) {
    throw new CairnError('NOT_SUPPORTED', `this store was written by a newer Cairn (schema ${current}, this one knows ${migrations.length})`)
  }
  if (current === migrations.length) return
  db.transaction(() => {
    // re-read inside the write lock: another process may have migrated meanwhile
    const v = db.pragma('user_version', { simple: true }) as number
    for (let i = v; i < migrations.length; i++) {
      db.exec(migrations[i] as string)
      db.pragma(`user_version = ${i + 1}`)
    }
  }).immediate()
}
