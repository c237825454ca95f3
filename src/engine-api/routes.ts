/**
 * Every endpoint of the Engine API, with how fully Cairn serves it. The README's endpoint table
 * is generated from this list (scripts/endpoint-table.ts), so the two never disagree.
 */
import { CairnError } from '../errors/index.js'
import * as build from './build.js'
import * as containers from './containers.js'
import * as exec from './exec.js'
import * as images from './images.js'
import * as networks from './networks.js'
import * as resources from './resources.js'
import * as system from './system.js'
import * as volumes from './volumes.js'
import type { Route } from './router.js'

const notYet = (what: string) => (): never => {
  throw new CairnError('NOT_SUPPORTED', `${what} is not supported by the API of Cairn yet`)
}

export const ROUTES: readonly Route[] = [
  // system
  { method: 'GET', path: '/_ping', support: 'supported', handler: system.ping },
  { method: 'HEAD', path: '/_ping', support: 'supported', handler: system.ping },
  { method: 'GET', path: '/version', support: 'supported', handler: system.version },
  { method: 'GET', path: '/info', support: 'supported', handler: system.info },
  { method: 'GET', path: '/events', support: 'supported', handler: system.events },
  { method: 'GET', path: '/system/df', support: 'supported', handler: system.systemDf },
  { method: 'POST', path: '/auth', support: 'supported', handler: system.auth },
  // images
  { method: 'GET', path: '/images/json', support: 'supported', handler: images.list },
  { method: 'POST', path: '/images/create', support: 'partial', note: 'fromSrc from the body (-) only, not from a URL', handler: images.create },
  { method: 'POST', path: '/images/load', support: 'supported', handler: images.load },
  { method: 'GET', path: '/images/get', support: 'supported', handler: images.get },
  { method: 'POST', path: '/images/prune', support: 'supported', handler: images.prune },
  { method: 'GET', path: '/images/search', support: 'not yet', note: 'registries have no search API; a clear error', handler: images.search },
  { method: 'GET', path: '/images/{name*}/json', support: 'supported', handler: images.inspect },
  { method: 'GET', path: '/images/{name*}/history', support: 'supported', handler: images.history },
  { method: 'GET', path: '/images/{name*}/get', support: 'supported', handler: images.getOne },
  { method: 'POST', path: '/images/{name*}/push', support: 'supported', handler: images.push },
  { method: 'POST', path: '/images/{name*}/tag', support: 'supported', handler: images.tag },
  { method: 'DELETE', path: '/images/{name*}', support: 'supported', handler: images.remove },
  { method: 'POST', path: '/commit', support: 'supported', handler: images.commit },
  { method: 'POST', path: '/build', support: 'partial', note: 'the classic builder (BuildKit sessions are refused); no remote contexts, no resource limits', handler: build.build },
  { method: 'POST', path: '/build/prune', support: 'partial', note: '`all`; no filters or keep-storage', handler: build.prune },
  { method: 'POST', path: '/session', support: 'not yet', note: 'BuildKit: refused, use DOCKER_BUILDKIT=0', handler: build.session },
  // containers
  { method: 'GET', path: '/containers/json', support: 'supported', handler: containers.list },
  { method: 'POST', path: '/containers/create', support: 'partial', note: 'fields Cairn cannot honour are refused with 501', handler: containers.create },
  { method: 'POST', path: '/containers/prune', support: 'supported', handler: containers.prune },
  { method: 'GET', path: '/containers/{id}/json', support: 'supported', handler: containers.inspect },
  { method: 'GET', path: '/containers/{id}/top', support: 'supported', handler: resources.top },
  { method: 'GET', path: '/containers/{id}/logs', support: 'supported', handler: containers.logs },
  { method: 'GET', path: '/containers/{id}/changes', support: 'supported', handler: containers.changes },
  { method: 'GET', path: '/containers/{id}/export', support: 'supported', handler: containers.exportTar },
  { method: 'GET', path: '/containers/{id}/stats', support: 'partial', note: 'per-CPU, kernel/user CPU, throttling and packet counts are zeros', handler: resources.stats },
  { method: 'POST', path: '/containers/{id}/resize', support: 'supported', handler: containers.resize },
  { method: 'POST', path: '/containers/{id}/start', support: 'supported', handler: containers.start },
  { method: 'POST', path: '/containers/{id}/stop', support: 'supported', handler: containers.stop },
  { method: 'POST', path: '/containers/{id}/restart', support: 'supported', handler: containers.restart },
  { method: 'POST', path: '/containers/{id}/kill', support: 'supported', handler: containers.kill },
  { method: 'POST', path: '/containers/{id}/update', support: 'partial', note: 'the limits `cairn update` sets; RestartPolicy not yet', handler: resources.update },
  { method: 'POST', path: '/containers/{id}/rename', support: 'supported', handler: containers.rename },
  { method: 'POST', path: '/containers/{id}/pause', support: 'supported', handler: containers.pause },
  { method: 'POST', path: '/containers/{id}/unpause', support: 'supported', handler: containers.unpause },
  { method: 'POST', path: '/containers/{id}/attach', support: 'supported', handler: containers.attach },
  { method: 'GET', path: '/containers/{id}/attach/ws', support: 'not yet', handler: notYet('attach over websocket') },
  { method: 'POST', path: '/containers/{id}/wait', support: 'supported', handler: containers.wait },
  { method: 'DELETE', path: '/containers/{id}', support: 'supported', handler: containers.remove },
  { method: 'HEAD', path: '/containers/{id}/archive', support: 'supported', handler: containers.archiveHead },
  { method: 'GET', path: '/containers/{id}/archive', support: 'supported', handler: containers.archiveGet },
  { method: 'PUT', path: '/containers/{id}/archive', support: 'supported', handler: containers.archivePut },
  // exec
  { method: 'POST', path: '/containers/{id}/exec', support: 'partial', note: 'Privileged not yet', handler: exec.create },
  { method: 'POST', path: '/exec/{id}/start', support: 'supported', handler: exec.start },
  { method: 'POST', path: '/exec/{id}/resize', support: 'supported', handler: exec.resize },
  { method: 'GET', path: '/exec/{id}/json', support: 'supported', handler: exec.inspect },
  // networks
  { method: 'GET', path: '/networks', support: 'supported', handler: networks.list },
  { method: 'POST', path: '/networks/create', support: 'partial', note: 'the bridge driver; IPv4 only', handler: networks.create },
  { method: 'POST', path: '/networks/prune', support: 'supported', handler: networks.prune },
  { method: 'GET', path: '/networks/{id}', support: 'supported', handler: networks.inspect },
  { method: 'DELETE', path: '/networks/{id}', support: 'supported', handler: networks.remove },
  { method: 'POST', path: '/networks/{id}/connect', support: 'supported', handler: networks.connect },
  { method: 'POST', path: '/networks/{id}/disconnect', support: 'supported', handler: networks.disconnect },
  // volumes
  { method: 'GET', path: '/volumes', support: 'supported', handler: volumes.list },
  { method: 'POST', path: '/volumes/create', support: 'partial', note: 'the local driver; no cluster volumes', handler: volumes.create },
  { method: 'POST', path: '/volumes/prune', support: 'supported', handler: volumes.prune },
  { method: 'GET', path: '/volumes/{name}', support: 'supported', handler: volumes.inspect },
  { method: 'DELETE', path: '/volumes/{name}', support: 'supported', handler: volumes.remove },
]
