/**
 * A RUN step in a real container: the only place the builder calls the container engine. The
 * container is created on the step's parent image, started attached (its output goes to
 * `onOutput`), and, when its command succeeded, its snapshot is handed to `commit` before the
 * container is removed (unless `commit` made it a snapshot of its own, it goes with the
 * container); whatever happens, no container is left. A build killed outside (SIGKILL) cannot
 * remove its step's container: the next build's first RUN step does (the container is labelled
 * with its build's process).
 *
 * Its writable layer is mounted `volatile` (no syncs): what counts of it is the layer committed
 * into the content store, which is synced there; stopping it then does not wait for the host's
 * file system to be flushed.
 *
 * The container's monitor is this process (the engine's `monitorHere`): the container lives no
 * longer than the build, and a monitor process of its own would cost a Node.js start per step.
 *
 * Network: `default` is the default bridge, as with Docker; `host` and `none` as they say.
 */
import { Writable } from 'node:stream'
import { parseVolumeFlag } from '../api/flags.js'
import { containerEngine } from '../api/containers.js'
import { runMonitor } from '../container/monitor.js'
import type { ContainerEngine } from '../container/engine.js'
import { ContainerStates } from '../container/types.js'
import { processAlive } from '../util/fs.js'
import type { Snapshotter } from '../snapshot/types.js'
import type { ImageStore } from '../image/store.js'

export type BuildNetwork = 'default' | 'none' | 'host'

/** The container engine's network for a build's `--network`: `default` is the default bridge, as with Docker. */
function engineNetwork(n: BuildNetwork): 'default' | 'none' | 'host' {
  return n
}

export interface RunStepInput {
  /** The image the step runs on (the previous step's result). */
  image: string
  argv: string[]
  /** Added to the image's environment (build args the step sees). */
  env: string[]
  network: BuildNetwork
  /** `HOST:CTR[:ro]` binds (RUN --mount=type=cache|bind). */
  volumes?: string[]
  signal?: AbortSignal
  /** Called once the container exists, with its ID. */
  onContainer?: (id: string) => void
  onOutput?: (stream: 'stdout' | 'stderr', data: Buffer) => void
}

export interface RunStepResult<T> {
  exitCode: number
  /** What `commit` returned, when the command succeeded. */
  committed?: T
}

function sink(fn: ((d: Buffer) => void) | undefined): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      fn?.(chunk)
      done()
    },
  })
}

/** The stores whose left-over step containers this process has looked for. */
const swept = new WeakSet<ImageStore>()

/**
 * Removes the containers of RUN steps whose build was killed (their process is gone: it could
 * not remove them), once per process and store, before its first RUN step. The next command
 * after such a kill has already stopped and recorded them (as containers whose monitor died).
 */
async function sweepLeftovers(engine: ContainerEngine, store: ImageStore): Promise<void> {
  if (swept.has(store)) return
  swept.add(store)
  await engine.reconcile()
  for (const row of engine.rows.inStates([ContainerStates.created, ContainerStates.exited])) {
    const spec = await engine.readSpec(row.id).catch(() => undefined)
    const pid = Number(spec?.config.Labels[BUILD_PID_LABEL] ?? 0)
    if (pid <= 0 || processAlive(pid)) continue
    await engine.remove(row.id, { force: true, volumes: true }).catch(() => undefined)
  }
}

/** The label that marks a RUN step's container, with the process of its build. */
const BUILD_PID_LABEL = 'cairn.build.pid'

export async function runStep<T>(store: ImageStore, input: RunStepInput, commit: (snapshotter: Snapshotter, key: string) => Promise<T>): Promise<RunStepResult<T>> {
  const engine = containerEngine(store)
  await sweepLeftovers(engine, store)
  const spec = await engine.create({
    image: input.image, command: input.argv, entrypoint: [], env: input.env, network: engineNetwork(input.network), volatileRootfs: true,
    labels: { [BUILD_PID_LABEL]: String(process.pid) },
    ...(input.volumes && input.volumes.length > 0 ? { mounts: input.volumes.map(parseVolumeFlag) } : {}),
  })
  const onAbort = (): void => {
    void engine.kill(spec.id, 'KILL').catch(() => undefined)
  }
  try {
    input.onContainer?.(spec.id)
    const started = await engine.start(spec.id, {
      attach: [{ stdout: sink((d) => input.onOutput?.('stdout', d)), stderr: sink((d) => input.onOutput?.('stderr', d)) }],
      monitorHere: runMonitor,
    })
    input.signal?.addEventListener('abort', onAbort, { once: true })
    if (input.signal?.aborted) onAbort()
    const exitCode = (await started.wait()) ?? (await engine.waitExit(spec.id))
    input.signal?.throwIfAborted()
    if (exitCode !== 0) return { exitCode }
    // exited in the store means unmounted: `commit` may take the snapshot itself
    await engine.waitExit(spec.id)
    return { exitCode, committed: await commit(await engine.snapshotterOf(spec.driver), spec.snapshotKey) }
  } finally {
    input.signal?.removeEventListener('abort', onAbort)
    // with the anonymous volumes the image's VOLUMEs gave it
    await engine.remove(spec.id, { force: true, volumes: true }).catch(() => undefined)
  }
}
