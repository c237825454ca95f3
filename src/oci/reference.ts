/**
 * Image references as Docker reads them: `[domain/]path[:tag][@digest]`.
 *
 * The grammar is the one of `github.com/distribution/reference` (the package Docker
 * and containerd use), re-implemented here from its published grammar:
 *
 *   reference        := name [ ":" tag ] [ "@" digest ]
 *   name             := [ domain "/" ] path
 *   domain           := host [ ":" port ]
 *   host             := domain-name | "[" ipv6 "]"
 *   domain-name      := label ( "." label )*
 *   label            := /[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]/
 *   path             := component ( "/" component )*
 *   component        := /[a-z0-9]+/ ( separator /[a-z0-9]+/ )*
 *   separator        := /[._]|__|-+/
 *   tag              := /[\w][\w.-]{0,127}/
 *   digest           := /[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}/
 *
 * `parseReference` normalises the way `docker pull` does (`ParseNormalizedNamed`):
 * `ubuntu` is `docker.io/library/ubuntu`, `index.docker.io` is `docker.io`.
 */
import { CairnError } from '../errors/index.js'
import { asDigest, DigestAlgorithms, type Digest } from './digest.js'

/**
 * A parsed, normalised reference. `tag` and `digest` are absent (not `undefined`) when
 * the reference has none; a reference may carry both, as Docker allows.
 *
 * `domain` is `docker.io` for Docker Hub. It is the empty string only in the corner case
 * Docker also produces: a first component that looks like a host (it holds a `.` or a `:`)
 * but is not a valid one, such as `foo_bar.com/x`, which Docker reads as a plain path.
 */
export interface Reference {
  domain: string
  path: string
  tag?: string
  digest?: Digest
}

export const DEFAULT_DOMAIN = 'docker.io'
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io'
const OFFICIAL_REPO_PREFIX = 'library/'
const DEFAULT_TAG = 'latest'
/** Longest repository path (without the domain) Docker accepts. */
const MAX_PATH_LENGTH = 255

// ---------------------------------------------------------------------------
// Grammar, built from its productions.

const ALNUM = '[a-z0-9]+'
const SEPARATOR = '(?:[._]|__|-+)'
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`
const PATH = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`
const LABEL = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const DOMAIN_NAME = `${LABEL}(?:\\.${LABEL})*`
const IPV6 = '\\[[a-fA-F0-9:]+\\]'
const DOMAIN = `(?:${DOMAIN_NAME}|${IPV6})(?::[0-9]+)?`
const TAG = '[\\w][\\w.-]{0,127}'
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}'

/** Groups: 1 name, 2 tag, 3 digest. */
const REFERENCE_RE = new RegExp(`^((?:${DOMAIN}/)?${PATH})(?::(${TAG}))?(?:@(${DIGEST}))?$`)
/** Groups: 1 domain, 2 path. */
const NAME_RE = new RegExp(`^(?:(${DOMAIN})/)?(${PATH})$`)
const TAG_RE = new RegExp(`^${TAG}$`)
const IDENTIFIER_RE = /^[a-f0-9]{64}$/
const ID_PREFIX_RE = /^[a-f0-9]{1,64}$/
/** The OCI distribution-spec `<name>` grammar (no domain). */
const OCI_NAME_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/

// Docker's messages (distribution/reference and go-digest wording).
const MSG_FORMAT = 'invalid reference format'
const MSG_UPPERCASE = 'repository name must be lowercase'
const MSG_TOO_LONG = `repository name must not be more than ${MAX_PATH_LENGTH} characters`

function invalid(input: string, message: string, cause?: unknown): CairnError {
  return new CairnError('INVALID_REFERENCE', message, cause === undefined
    ? { detail: { reference: input } }
    : { detail: { reference: input }, cause })
}

// ---------------------------------------------------------------------------
// Parsing

/**
 * Parses a reference the way `docker pull`/`docker run` do and returns it normalised.
 * Throws INVALID_REFERENCE with Docker's wording, e.g.
 * `invalid reference format: repository name (library/Ubuntu) must be lowercase`.
 */
export function parseReference(s: string): Reference {
  if (IDENTIFIER_RE.test(s)) {
    throw invalid(s, `invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`)
  }
  const [domain, remainder] = splitDockerDomain(s)
  // Docker checks case on everything before the first ':' (so an upper-case digest
  // algorithm is reported as an upper-case repository name, as Docker does).
  const colon = remainder.indexOf(':')
  const remote = colon === -1 ? remainder : remainder.slice(0, colon)
  if (remote.toLowerCase() !== remote) {
    throw invalid(s, `${MSG_FORMAT}: repository name (${remote}) must be lowercase`)
  }
  return parseCanonical(`${domain}/${remainder}`, s)
}

/** Splits off the registry host the way Docker guesses it; the domain defaults to docker.io. */
function splitDockerDomain(name: string): [domain: string, remainder: string] {
  const slash = name.indexOf('/')
  if (slash === -1) return [DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name]
  const first = name.slice(0, slash)
  let domain = DEFAULT_DOMAIN
  let remainder = name
  if (first === LEGACY_DEFAULT_DOMAIN) {
    remainder = name.slice(slash + 1)
  } else if (first === 'localhost' || /[.:]/.test(first) || first.toLowerCase() !== first) {
    // localhost, anything with a dot or a port, and an upper-case first component
    // (never a valid path) are taken as a host.
    domain = first
    remainder = name.slice(slash + 1)
  }
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder
  return [domain, remainder]
}

/** The un-normalised grammar check (`reference.Parse`), on an already qualified string. */
function parseCanonical(s: string, input: string): Reference {
  const m = REFERENCE_RE.exec(s)
  if (m === null) {
    const lower = s.toLowerCase()
    if (lower !== s && REFERENCE_RE.test(lower)) throw invalid(input, `${MSG_FORMAT}: ${MSG_UPPERCASE}`)
    throw invalid(input, MSG_FORMAT)
  }
  const name = m[1] as string
  const n = NAME_RE.exec(name)
  const domain = n?.[1] ?? ''
  const path = n?.[2] ?? name
  if (path.length > MAX_PATH_LENGTH) throw invalid(input, `${MSG_FORMAT}: ${MSG_TOO_LONG}`)
  const ref: Reference = { domain, path }
  const tag = m[2]
  if (tag !== undefined) ref.tag = tag
  const digest = m[3]
  if (digest !== undefined) ref.digest = checkDigest(digest, input)
  return ref
}

/** Validates a digest the way go-digest does and reports it in go-digest's words. */
function checkDigest(d: string, input: string): Digest {
  try {
    return asDigest(d)
  } catch (err) {
    const colon = d.indexOf(':')
    const algorithm = d.slice(0, colon)
    const hex = d.slice(colon + 1)
    let reason = 'invalid checksum digest format'
    if (!Object.hasOwn(DigestAlgorithms, algorithm)) reason = 'unsupported digest algorithm'
    else if (hex.length !== DigestAlgorithms[algorithm as keyof typeof DigestAlgorithms]) reason = 'invalid checksum digest length'
    throw invalid(input, `${MSG_FORMAT}: ${reason}`, err)
  }
}

/**
 * Parses a `REPOSITORY[:TAG]` argument (as `docker commit` and `docker import` take one)
 * and returns it with the default tag `latest` filled in. A digest is refused.
 */
export function parseRepositoryTag(s: string): Reference & { tag: string } {
  const ref = parseReference(s)
  if (ref.digest !== undefined) {
    throw invalid(s, 'refusing to create a tag with a digest reference')
  }
  return { domain: ref.domain, path: ref.path, tag: ref.tag ?? DEFAULT_TAG }
}

/** Adds the tag `latest` when the reference has neither a tag nor a digest (`TagNameOnly`). */
export function withDefaultTag(ref: Reference): Reference {
  if (ref.tag !== undefined || ref.digest !== undefined) return ref
  return { ...ref, tag: DEFAULT_TAG }
}

/** True for a valid tag (`[\w][\w.-]{0,127}`). */
export function isTagValid(tag: string): boolean {
  return TAG_RE.test(tag)
}

// ---------------------------------------------------------------------------
// Printing

/** `docker.io/library/ubuntu`: the fully qualified repository, without tag or digest. */
export function repositoryName(ref: Pick<Reference, 'domain' | 'path'>): string {
  return ref.domain === '' ? ref.path : `${ref.domain}/${ref.path}`
}

/** The full form: `docker.io/library/ubuntu:latest`, `…@sha256:…`, or both. */
export function formatReference(ref: Reference): string {
  return repositoryName(ref) + suffix(ref)
}

/**
 * The short name Docker shows: `ubuntu` for docker.io/library/ubuntu, `huzd/test` for
 * docker.io/huzd/test, and the full name for any other registry (`localhost:5000/a/b`).
 * `library/` is only dropped when nothing else follows it (`library/foo/bar` stays).
 */
export function familiarName(ref: Pick<Reference, 'domain' | 'path'>): string {
  if (ref.domain !== DEFAULT_DOMAIN) return repositoryName(ref)
  if (ref.path.startsWith(OFFICIAL_REPO_PREFIX)) {
    const rest = ref.path.slice(OFFICIAL_REPO_PREFIX.length)
    if (!rest.includes('/')) return rest
  }
  return ref.path
}

/** The familiar name with `:tag` and `@digest` when present: `ubuntu:latest`. */
export function familiarString(ref: Reference): string {
  return familiarName(ref) + suffix(ref)
}

function suffix(ref: Reference): string {
  return (ref.tag === undefined ? '' : `:${ref.tag}`) + (ref.digest === undefined ? '' : `@${ref.digest}`)
}

// ---------------------------------------------------------------------------
// Predicates

/**
 * True for a repository name a registry server should accept in `/v2/<name>/…`:
 * the OCI distribution-spec `<name>` grammar, at most 255 characters (the limit
 * distribution's registry enforces).
 */
export function isNameValid(path: string): boolean {
  return path.length <= MAX_PATH_LENGTH && OCI_NAME_RE.test(path)
}

/**
 * True for 1 to 64 lower-case hex characters: what may be an image ID prefix
 * (`docker rmi 753`). Docker tries such an argument as a name first and as an ID
 * prefix second; this is only the predicate.
 */
export function looksLikeIdPrefix(s: string): boolean {
  return ID_PREFIX_RE.test(s)
}
