/**
 * Cairn as a library: every CLI verb is a typed function that returns data and reports
 * progress through `onProgress`; nothing here prints.
 *
 *   const cairn = await Cairn.open({ root: '/var/lib/cairn' })
 *   const { id } = await cairn.import('rootfs.tar.gz', { reference: 'base:1.0' })
 *   console.log(cairn.images())
 *   cairn.close()
 */
import type { Readable, Writable } from 'node:stream'
import { ImageStore } from './image/store.js'
import { defaultRoot } from './api/root.js'
import {
  diskUsage, imageHistory, inspectImage, listImages, pruneImages, removeImages, tagImage,
  type DiskUsage, type HistoryRow, type ImageInspect, type ImageSummary, type ListImagesOptions, type PruneResult, type PruneImagesOptions,
  type RemoveOptions, type RemoveResult,
} from './api/images.js'
import { importImage, type ImportOptions, type ImportResult } from './api/import.js'
import { saveImages, type SaveOptions } from './api/save.js'
import { loadImages, type LoadResult } from './api/load.js'
import type { OperationOptions } from './api/events.js'
import type { ImageId } from './oci/digest.js'
import { openInputFile, writeOutputFile } from './util/userfiles.js'
import { commitContainer, commitSnapshot, type CommitContainerOptions, type CommitOptions, type CommitResult, type CommitSource } from './api/commit.js'
import {
  containerDiff, containerLogs, containerPorts, copyFromContainer, copyToContainer, createContainer, execInContainer, exportContainer, inspectContainer,
  killContainers, listContainers, pauseContainer, removeContainers, renameContainer, resumeContainer, runContainer, startContainer, stopContainers,
  type BatchResult, type Change, type ContainerInspect, type ContainerSummary, type CopyOptions, type CreateOptions, type CreateResult,
  type ExecOptions, type LogEntry, type RunOptions, type RunResult, type StartContainerOptions, type ListContainersOptions,
} from './api/containers.js'
import {
  connectNetwork, createNetwork, disconnectNetwork, inspectNetwork, listNetworks, pruneNetworks, removeNetwork,
  type CreateNetworkOptions, type NetworkResource,
} from './api/networks.js'
import type { FilterArgs } from './api/filters.js'
import {
  createVolume, inspectVolume, listVolumes, pruneVolumes, removeVolumes,
  type CreateVolumeOptions, type PruneVolumesOptions, type RemoveVolumesResult, type VolumeInspect, type VolumeSummary,
} from './api/volumes.js'
import { streamEvents, type EventMessage, type EventsOptions } from './api/system-events.js'
import {
  containerStats, streamStats, topContainer, updateContainers, type ContainerStats, type ResourceLimits, type StatsOptions, type TopResult,
} from './api/resources.js'
import type { PublishedPort } from './network/types.js'
import { pushImage, type PushOptions, type PushResult } from './api/push.js'
import { pullImage, type PullOptions, type PullResult } from './api/pull.js'
import { login, logout, type LoginOptions, type LoginResult } from './api/login.js'
import type { Credentials } from './remote/credentials.js'
import { buildImage, type BuildOptions, type BuildResult } from './build/builder.js'
import { buildCacheUsage, pruneBuildCache, type BuildCacheUsage, type BuilderPruneResult } from './build/cache.js'

export interface CairnOptions {
  /** The store folder (default: /var/lib/cairn as root, else $XDG_DATA_HOME/cairn). */
  root?: string
}

export class Cairn {
  private constructor(readonly store: ImageStore) {}

  static async open(opts: CairnOptions = {}): Promise<Cairn> {
    return new Cairn(await ImageStore.open(opts.root ?? process.env['CAIRN_ROOT'] ?? defaultRoot()))
  }

  get root(): string {
    return this.store.root
  }

  close(): void {
    this.store.close()
  }

  /** `cairn images` */
  images(opts: ListImagesOptions = {}): ImageSummary[] {
    return listImages(this.store, opts)
  }

  /** `cairn import`: a root filesystem tarball (path, or a stream) becomes a one-layer image. */
  async import(source: string | Readable, opts: ImportOptions = {}): Promise<ImportResult> {
    const stream = typeof source === 'string' ? await openInputFile(source) : source
    const o: ImportOptions = { ...opts }
    if (typeof source === 'string' && o.sourceName === undefined) o.sourceName = source
    if ('size' in stream && typeof stream.size === 'number' && o.sourceSize === undefined) o.sourceSize = stream.size
    return importImage(this.store, stream, o)
  }

  /** `cairn tag` */
  tag(source: string, target: string): { id: ImageId; target: string } {
    return tagImage(this.store, source, target)
  }

  /** `cairn rmi` */
  async rmi(images: string | readonly string[], opts: RemoveOptions = {}): Promise<RemoveResult> {
    return removeImages(this.store, typeof images === 'string' ? [images] : images, opts)
  }

  /** `cairn inspect` */
  async inspect(image: string): Promise<ImageInspect> {
    return inspectImage(this.store, image)
  }

  /** `cairn history` */
  async history(image: string): Promise<HistoryRow[]> {
    return imageHistory(this.store, image)
  }

  /** `cairn save`: to a stream, or atomically to a file path. */
  async save(images: string | readonly string[], out: string | Writable, opts: SaveOptions = {}): Promise<void> {
    const names = typeof images === 'string' ? [images] : images
    if (typeof out !== 'string') return saveImages(this.store, names, out, opts)
    await writeOutputFile(out, (o) => saveImages(this.store, names, o, opts))
  }

  /** `cairn load`: from a file path or a stream. */
  async load(input: string | Readable, opts: OperationOptions = {}): Promise<LoadResult> {
    return loadImages(this.store, typeof input === 'string' ? await openInputFile(input) : input, opts)
  }

  /** `cairn system df` */
  async df(): Promise<DiskUsage> {
    return diskUsage(this.store)
  }

  /** `cairn image prune` */
  async prune(opts: PruneImagesOptions = {}): Promise<PruneResult> {
    return pruneImages(this.store, opts)
  }

  /** `cairn push`: an image (or with `allTags` a repository) to its registry. */
  async push(name: string, opts: PushOptions = {}): Promise<PushResult> {
    return pushImage(this.store, name, opts)
  }

  /** `cairn pull`: one result per tag pulled (several with `allTags`). */
  async pull(name: string, opts: PullOptions = {}): Promise<PullResult[]> {
    return pullImage(this.store, name, opts)
  }

  /** `cairn login`: checks the credentials against the registry, then stores them as Docker does. */
  async login(server: string | undefined, credentials: Credentials, opts: LoginOptions = {}): Promise<LoginResult> {
    return login(server, credentials, opts)
  }

  /** `cairn logout` */
  async logout(server?: string, opts: LoginOptions = {}): Promise<{ registry: string; serverKey: string; removed: boolean }> {
    return logout(server, opts)
  }

  // ---------------------------------------------------------------- containers

  /** `cairn create`: the container's snapshots, configuration and files; returns its ID and name. */
  async createContainer(opts: CreateOptions): Promise<CreateResult> {
    return createContainer(this.store, opts)
  }

  /** `cairn run`: create and start; attached (default) resolves with the exit code, `detach` once it runs. */
  async run(opts: RunOptions): Promise<RunResult> {
    return runContainer(this.store, opts)
  }

  /** `cairn start [-a] [-i]` */
  async start(container: string, opts: StartContainerOptions = {}): Promise<{ id: string; exitCode?: number }> {
    return startContainer(this.store, container, opts)
  }

  /** `cairn stop [-t]` */
  async stop(containers: string | readonly string[], opts: { timeout?: number } = {}): Promise<BatchResult> {
    return stopContainers(this.store, typeof containers === 'string' ? [containers] : containers, opts)
  }

  /** `cairn kill [-s]` */
  async kill(containers: string | readonly string[], opts: { signal?: string } = {}): Promise<BatchResult> {
    return killContainers(this.store, typeof containers === 'string' ? [containers] : containers, opts)
  }

  /** `cairn exec`: resolves with the command's exit code. */
  async exec(container: string, command: string[], opts: ExecOptions = {}): Promise<number> {
    return execInContainer(this.store, container, command, opts)
  }

  /** `cairn logs [-f]`: the json-file log's entries, stdout and stderr told apart. */
  logs(container: string, opts: { follow?: boolean; tail?: number; since?: number; signal?: AbortSignal } = {}): AsyncGenerator<LogEntry> {
    return containerLogs(this.store, container, opts)
  }

  /** `cairn ps [-a]` */
  async ps(opts: ListContainersOptions = {}): Promise<ContainerSummary[]> {
    return listContainers(this.store, opts)
  }

  /** `cairn rm [-f] [-v]` (`volumes`: the anonymous volumes of the containers too) */
  async rm(containers: string | readonly string[], opts: { force?: boolean; volumes?: boolean } = {}): Promise<BatchResult> {
    return removeContainers(this.store, typeof containers === 'string' ? [containers] : containers, opts)
  }

  /** `cairn inspect CONTAINER` */
  async inspectContainer(container: string): Promise<ContainerInspect> {
    return inspectContainer(this.store, container)
  }

  /** `cairn rename` */
  async rename(container: string, newName: string): Promise<void> {
    return renameContainer(this.store, container, newName)
  }

  /** `cairn cp CONTAINER:SRC DEST` (a host path, or a Writable for a tar stream). */
  async copyFromContainer(container: string, srcPath: string, dest: string | Writable, opts: CopyOptions = {}): Promise<void> {
    return copyFromContainer(this.store, container, srcPath, dest, opts)
  }

  /** `cairn cp SRC CONTAINER:DEST` (a host path, or a Readable tar stream). */
  async copyToContainer(src: string | Readable, container: string, destPath: string, opts: CopyOptions = {}): Promise<void> {
    return copyToContainer(this.store, src, container, destPath, opts)
  }

  /** `cairn update`: new cgroup limits (memory, CPUs, pids…), applied at once to running containers and kept. */
  async update(containers: string | readonly string[], limits: ResourceLimits): Promise<BatchResult> {
    return updateContainers(this.store, typeof containers === 'string' ? [containers] : containers, limits)
  }

  /** `cairn stats --no-stream`: one reading per container (default: the running ones); CPU % over `intervalMs`. */
  async stats(containers: readonly string[] = [], opts: StatsOptions = {}): Promise<ContainerStats[]> {
    return containerStats(this.store, containers, opts)
  }

  /** `cairn stats`: a reading every `intervalMs` (default 1 s) until `signal` aborts. */
  statsStream(containers: readonly string[] = [], opts: StatsOptions = {}): AsyncGenerator<ContainerStats[]> {
    return streamStats(this.store, containers, opts)
  }

  /** `cairn top`: the container's processes as the host's `ps` shows them (default `-ef`). */
  async top(container: string, psArgs: readonly string[] = []): Promise<TopResult> {
    return topContainer(this.store, container, psArgs)
  }

  /** `cairn port`: the ports a running container publishes, as bound. */
  async ports(container: string): Promise<PublishedPort[]> {
    return containerPorts(this.store, container)
  }

  // ---------------------------------------------------------------- networks (the host's, shared by every store)

  /** `cairn network create`: a bridge network with NAT (unless `internal`) and name resolution between its containers. */
  createNetwork(opts: CreateNetworkOptions): NetworkResource {
    return createNetwork(opts, this.root)
  }

  /** `cairn network ls` */
  listNetworks(opts: { filters?: FilterArgs } = {}): NetworkResource[] {
    return listNetworks(opts)
  }

  /** `cairn network inspect`: with this store's running containers on it. */
  async inspectNetwork(network: string): Promise<NetworkResource> {
    return inspectNetwork(this.store, network)
  }

  /** `cairn network rm`: refused while a running container is on it. */
  async removeNetwork(network: string): Promise<void> {
    await removeNetwork(network, this.root)
  }

  /** `cairn network prune`: the user networks no running container is on; their names. */
  async pruneNetworks(opts: { filters?: FilterArgs } = {}): Promise<string[]> {
    return pruneNetworks(opts, this.root)
  }

  /** `cairn network connect`: now if the container runs, else from its next start. */
  async connect(network: string, container: string, opts: { aliases?: string[]; ipv4Address?: string } = {}): Promise<void> {
    return connectNetwork(this.store, network, container, opts)
  }

  /** `cairn network disconnect` */
  async disconnect(network: string, container: string): Promise<void> {
    return disconnectNetwork(this.store, network, container)
  }

  // ---------------------------------------------------------------- volumes

  /** `cairn volume create`: a volume (an existing one of that name is returned as it is). */
  createVolume(opts: CreateVolumeOptions = {}): VolumeInspect {
    return createVolume(this.store, opts)
  }

  /** `cairn volume ls` (filters `dangling`, `driver`, `label`, `name`). */
  listVolumes(opts: { filters?: FilterArgs } = {}): VolumeSummary[] {
    return listVolumes(this.store, opts)
  }

  /** `cairn volume inspect` */
  inspectVolume(name: string): VolumeInspect {
    return inspectVolume(this.store, name)
  }

  /** `cairn volume rm`: refused (CONFLICT) for a volume any container uses. */
  async removeVolumes(names: string | readonly string[], opts: { force?: boolean } = {}): Promise<RemoveVolumesResult> {
    return removeVolumes(this.store, typeof names === 'string' ? [names] : names, opts)
  }

  /** `cairn volume prune [-a]`: unused anonymous volumes (all unused ones with `all`). */
  async pruneVolumes(opts: PruneVolumesOptions = {}): Promise<{ removed: string[]; reclaimed: number }> {
    return pruneVolumes(this.store, opts)
  }

  // ---------------------------------------------------------------- events

  /**
   * `cairn events`: the store's events (Docker's messages) that pass `filters`; with `since`,
   * the recorded ones from then first; it ends at `until`, or when `signal` aborts.
   */
  events(opts: EventsOptions = {}): AsyncGenerator<EventMessage> {
    return streamEvents(this.root, opts)
  }

  /** `cairn diff` */
  async diff(container: string): Promise<Change[]> {
    return containerDiff(this.store, container)
  }

  /** `cairn export`: to a stream, or atomically to a file path. */
  async export(container: string, out: string | Writable): Promise<void> {
    if (typeof out !== 'string') return exportContainer(this.store, container, out)
    await writeOutputFile(out, (o) => exportContainer(this.store, container, o))
  }

  /** `cairn pause` (cgroup freezer, through the runtime) */
  async pause(container: string): Promise<void> {
    return pauseContainer(this.store, container)
  }

  /** `cairn unpause` */
  async unpause(container: string): Promise<void> {
    return resumeContainer(this.store, container)
  }

  // ---------------------------------------------------------------- builds

  /** `cairn build`: a Dockerfile's target stage as an image, step by step, through the build cache. */
  async build(opts: BuildOptions): Promise<BuildResult> {
    return buildImage(this.store, opts)
  }

  /** `cairn builder prune` */
  async pruneBuildCache(opts: { all?: boolean } = {}): Promise<BuilderPruneResult> {
    return pruneBuildCache(this.store, opts)
  }

  /** The build cache's entries and bytes (for `system df`). */
  buildCacheUsage(): BuildCacheUsage {
    return buildCacheUsage(this.store)
  }

  /** `cairn commit`: the container's changes as a new image (paused while read unless `pause: false`). */
  async commit(container: string, opts: CommitContainerOptions = {}): Promise<CommitResult> {
    return commitContainer(this.store, container, opts)
  }
}

export { ImageStore, type ImageRecord, type DeleteRecord } from './image/store.js'
export { ContentStore, type BlobInfo, type StagedBlob } from './content/store.js'
export { CairnError, ErrorCodes, hasCode, isCairnError, type ErrorCode } from './errors/index.js'
export {
  parseDigest, isDigest, digestOf, chainId, chainIds, asDigest, asDiffId, asChainId, asImageId,
  type Digest, type DiffId, type ChainId, type ImageId, type AnyDigest,
} from './oci/digest.js'
export { MediaTypes, type Compression } from './oci/mediatype.js'
export type { Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform, HistoryEntry, ContainerConfig } from './oci/types.js'
export { parseReference, familiarString, formatReference, type Reference } from './oci/reference.js'
export { readTar, writeTar } from './layer/tar.js'
export { applyLayer } from './layer/apply.js'
export { tarDirectory } from './layer/diff.js'
export { defaultRoot } from './api/root.js'
export type { ProgressEvent, ProgressListener, OperationOptions } from './api/events.js'
export type { DiskUsage, HistoryRow, ImageInspect, ImageSummary, ListImagesOptions, PruneResult, PruneImagesOptions, ListContainersOptions, RemoveOptions, RemoveResult, ImportOptions, ImportResult, SaveOptions, LoadResult }
export type { PushOptions, PushResult, PushedTag, PushedLayer, RemoteOptions } from './api/push.js'
export type { PullOptions, PullResult, PulledLayer } from './api/pull.js'
export type { LoginOptions, LoginResult } from './api/login.js'
export { Registry, Repository, type RegistryOptions, type Manifest } from './remote/client.js'
export { DockerCredentials, type Credentials } from './remote/credentials.js'
export { loadRemoteConfig, defaultRemoteConfig, type RemoteConfig } from './remote/config.js'
export { parseFilterArgs, type FilterArgs } from './api/filters.js'
export {
  parsePublish, parseVolumeFlag, parseMountFlag, parseAddHost, resolveEnv, parseLabels, parseRestartPolicy, parseHealthFlags, parseVolumesFrom, parseRamBytes,
  parseBytes, parseMemorySwap, parseCpus, parseUlimit, parseDeviceFlag, parseTmpfsFlag, parseSysctlFlag, parseSecurityOpts,
  type HealthFlags,
} from './api/flags.js'
export type { CreateVolumeOptions, PruneVolumesOptions, RemoveVolumesResult, VolumeInspect, VolumeSummary }
export { VolumeStore, type VolumeRecord } from './volume/store.js'
export { checkEventsOptions, eventMatches, recordEvent, EventTypes, type EventMessage, type EventsOptions, type EventType } from './api/system-events.js'
export { readEvents, type ReadEventsOptions } from './events/journal.js'
export type { ContainerStats, ResourceLimits, StatsOptions, TopResult }
export type { NetworkResource, CreateNetworkOptions } from './api/networks.js'
export type { PortSpec, PublishedPort, ExtraHost, Endpoint, Attachment } from './network/types.js'
export type {
  MountSpec, BindMountSpec, VolumeMountSpec, TmpfsMountSpec, RestartPolicyOptions, HealthcheckOptions, DeviceMapping, SecurityOptions, Ulimit,
} from './container/config.js'
export { systemDiskUsage, systemInfo, versionInfo, volumesDiskUsage, buildCacheDiskUsage, type SystemDiskUsage, type SystemInfo, type VersionInfo } from './api/system.js'
export { pauseContainer, resumeContainer, containerSnapshot, containerCommitSource, withContainerPaused, containerEngine, type ContainerCommitSource } from './api/containers.js'
export type { BatchResult, Change, ContainerInspect, ContainerSummary, CopyOptions, CreateOptions, CreateResult, ExecOptions, LogEntry, RunOptions, RunResult, StartContainerOptions }
export type { ContainerSpec, ContainerRow, ContainerState, ContainerMount, TmpfsMount, HealthState, HealthResult, RestartPolicy, HealthConfig } from './container/types.js'
export { ContainerEngine } from './container/engine.js'
export { MonitorStandby } from './container/standby.js'
export { generateSpec, type RuntimeSpec, type SpecInput, type SecurityInput, type HostFacts, type ResourcesInput } from './runtime/spec.js'
export { defaultSeccompProfile, parseSeccompProfile, seccompForSpec, type SeccompProfile, type LinuxSeccomp } from './runtime/seccomp.js'
export { tweakCapabilities, hostCapabilities, DEFAULT_CAPABILITIES, ALL_CAPABILITIES } from './runtime/capabilities.js'
export { detectRuntime, OciRuntime } from './runtime/runtime.js'
export { commitSnapshot, type CommitContainerOptions, type CommitOptions, type CommitResult, type CommitSource }
export { openSnapshotter, unpackImage, snapshotChanges, snapshotLayer, type Snapshotter, type StorageDriver, type Mount } from './snapshot/index.js'
export { mountAll, unmount } from './mount/index.js'
export { commitImage, scratchConfig, type CommitImageInput } from './api/commit.js'
export type { BuildOptions, BuildResult, BuildCacheUsage, BuilderPruneResult }
export type { BuildEvent, BuildListener, StepRef } from './build/events.js'
export { parseDockerfile, type Dockerfile, type Instruction, type Stage } from './build/dockerfile.js'
