/**
 * `inspect [--type image|container] [-f TEMPLATE] NAME…`, as Docker's CLI does it: containers
 * first, then images; with a template, each object through it (first as Docker's typed structs,
 * then, if that fails, as raw JSON maps with `missingkey=error`), errors collected and printed
 * after the output, exit 1 when any name failed; a template that does not parse exits 64.
 */
import { CairnError, isCairnError } from '../errors/index.js'
import type { ImageStore } from '../image/store.js'
import { inspectImage } from '../api/images.js'
import { goStruct, parseFormat, TemplateExecError, type Template } from './template.js'
import { printError } from './errors.js'

export interface InspectFlags {
  type?: string | undefined
  format?: string | undefined
}

/** Go maps inside Docker's inspect structs (everything else is a struct): `{{.Config.Labels.x}}` is `<no value>`, not an error. */
const MAP_PATHS = new Set([
  'Config.Labels', 'Config.ExposedPorts', 'Config.Volumes', 'ContainerConfig.Labels', 'ContainerConfig.ExposedPorts',
  'ContainerConfig.Volumes', 'GraphDriver.Data', 'NetworkSettings.Networks', 'NetworkSettings.Ports', 'HostConfig.LogConfig.Config',
  'HostConfig.Tmpfs', 'HostConfig.Sysctls',
  // volumes and networks
  'Labels', 'Options',
])

/**
 * HostConfig's Go field names where they differ from its JSON names: `{{.HostConfig.NanoCPUs}}`
 * works on the typed struct, `{{.HostConfig.NanoCpus}}` only on the raw maps (as with Docker).
 */
const HOST_CONFIG_GO_NAMES: Record<string, string> = {
  NanoCpus: 'NanoCPUs', CpuShares: 'CPUShares', CpuPeriod: 'CPUPeriod', CpuQuota: 'CPUQuota', Dns: 'DNS', DnsOptions: 'DNSOptions', DnsSearch: 'DNSSearch',
}

/** The typed view of an inspect object: structs by default, Docker's map fields as maps. */
function typed(value: unknown, path: string): unknown {
  if (Array.isArray(value)) return value.map((v) => typed(v, `${path}[]`))
  if (value === null || typeof value !== 'object') return value
  const entries = Object.entries(value as Record<string, unknown>)
  if (MAP_PATHS.has(path)) return Object.fromEntries(entries.map(([k, v]) => [k, typed(v, `${path}.*`)]))
  // Go's field is `ID` where the JSON says `Id`: `{{.Id}}` works only on the raw maps, as with Docker
  const goName = (k: string): string => (path === '' && k === 'Id' ? 'ID' : path === 'HostConfig' ? HOST_CONFIG_GO_NAMES[k] ?? k : k)
  return goStruct('struct', Object.fromEntries(entries.map(([k, v]) => [goName(k), typed(v, path === '' ? k : `${path}.${k}`)])))
}

function render(tmpl: Template, obj: unknown): string {
  try {
    return tmpl.execute(typed(obj, ''))
  } catch (err) {
    if (!(err instanceof TemplateExecError)) throw err
  }
  try {
    return tmpl.execute(JSON.parse(JSON.stringify(obj)) as unknown, { missingKeyError: true })
  } catch (err) {
    if (err instanceof TemplateExecError) throw new CairnError('INVALID_ARGUMENT', `template parsing error: ${err.message}`)
    throw err
  }
}

export async function inspectCommand(store: ImageStore, names: readonly string[], flags: InspectFlags): Promise<void> {
  const type = flags.type
  if (type !== undefined && type !== 'container' && type !== 'image') {
    throw new CairnError('INVALID_ARGUMENT', `"${type}" is not a valid value for --type`)
  }
  const containers = type !== 'image' ? await import('../api/containers.js') : undefined
  await printInspect(names, type === 'image' ? 'image' : type === 'container' ? 'container' : 'object', flags.format, async (n) => {
    const ctr = containers ? await containers.tryInspectContainer(store, n) : undefined
    if (ctr !== undefined || type === 'container') return ctr
    return inspectImage(store, n).catch((err: unknown) => {
      if (isCairnError(err) && (err.code === 'IMAGE_UNKNOWN' || err.code === 'INVALID_REFERENCE' || err.code === 'NAME_UNKNOWN')) return undefined
      throw err
    })
  })
}

/**
 * Docker's inspect printing for any kind of object: each name looked up (undefined: `No such
 * <kind>`), then the JSON array, or each object through the template; errors after the output,
 * exit 1 when a name failed; a template that does not parse exits 64.
 */
export async function printInspect(names: readonly string[], kind: string, format: string | undefined, lookup: (name: string) => Promise<unknown>): Promise<void> {
  let tmpl: Template | undefined
  // a template that does not parse throws FormatError, which the command's caller prints (exit 64)
  if (format !== undefined && format !== '') tmpl = parseFormat(format === 'json' ? '{{json .}}' : format, undefined, '', 64)
  const found: unknown[] = []
  // what went wrong, printed after the output as Docker does: lookups by the error printer, template failures as they are
  const errors: (CairnError | string)[] = []
  let out = ''
  for (const n of names) {
    let obj: unknown
    try {
      obj = await lookup(n)
    } catch (err) {
      if (!isCairnError(err)) throw err
      errors.push(err)
      continue
    }
    if (obj === undefined) {
      errors.push(new CairnError(kind === 'image' ? 'IMAGE_UNKNOWN' : 'NAME_UNKNOWN', `No such ${kind}: ${n}`))
      continue
    }
    if (!tmpl) {
      found.push(obj)
      continue
    }
    try {
      out += `${render(tmpl, obj)}\n`
    } catch (err) {
      if (!isCairnError(err)) throw err
      errors.push(err.message)
    }
  }
  if (tmpl) process.stdout.write(out === '' ? '\n' : out)
  else process.stdout.write(`${JSON.stringify(found, null, 4)}\n`)
  if (errors.length > 0) {
    for (const e of errors) {
      if (typeof e === 'string') process.stderr.write(`${e}\n`)
      else printError(e)
    }
    process.exitCode = 1
  }
}
