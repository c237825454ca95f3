// The folder layering of src/ (README "Architecture"), checked by dependency-cruiser on every run
// of the test command (scripts/test.sh): `npx depcruise src --config .dependency-cruiser.cjs`.
// Type-only imports count as imports: a layer that needs another's types depends on it too.

/** The folders of src/, from the foundation up; src/index.ts (the library facade) sits on top. */
const LAYERS = [
  'errors', 'oci', 'util', 'events', 'content', 'metadata', 'layer', 'image', 'snapshot', 'mount',
  'volume', 'remote', 'registry', 'runtime', 'network', 'container', 'api', 'build', 'engine-api', 'cli',
]

/** @type {import('dependency-cruiser').IForbiddenRuleType[]} */
const layering = LAYERS.slice(0, -1).map((folder, i) => ({
  name: `layer-${folder}`,
  comment: `src/${folder} imports only the folders listed above it in README's Architecture block (and itself)`,
  severity: 'error',
  from: { path: `^src/${folder}/` },
  to: { path: `^src/(${LAYERS.slice(i + 1).join('|')})/` },
}))

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...layering,
    {
      name: 'library-facade-on-top',
      comment: 'src/index.ts is the library facade: nothing in src/ imports it',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^src/index\\.ts$' },
    },
    {
      name: 'client-not-server',
      comment: 'the registry client (src/remote) never imports the registry server (src/registry)',
      severity: 'error',
      from: { path: '^src/remote/' },
      to: { path: '^src/registry/' },
    },
    {
      name: 'server-not-client',
      comment: 'the registry server (src/registry) never imports the registry client (src/remote)',
      severity: 'error',
      from: { path: '^src/registry/' },
      to: { path: '^src/remote/' },
    },
    {
      name: 'client-never-reaches-server',
      comment: 'client and server meet only in tests: nothing reachable from the registry client, ' +
        'the push/pull/login verbs or their CLI is registry server code',
      severity: 'error',
      from: { path: '^src/(remote/|api/(push|pull|login)\\.ts$|cli/remote\\.ts$)' },
      to: { path: '^src/registry/', reachable: true },
    },
    {
      name: 'server-stays-small',
      comment: 'the registry server needs only the foundation (errors, oci, util, content): not the ' +
        'metadata database, layers, images, snapshots nor mounts',
      severity: 'error',
      from: { path: '^src/registry/' },
      to: { path: '^src/(metadata|layer|image|snapshot|mount)/' },
    },
    {
      name: 'server-packages',
      comment: 'the only npm packages the registry server uses, itself or through what it imports, are bcryptjs and better-sqlite3',
      severity: 'error',
      from: { path: '^src/registry/' },
      to: { path: 'node_modules/', pathNot: 'node_modules/(bcryptjs|better-sqlite3)/', reachable: true },
    },
    {
      name: 'cli-only-imported-by-cli',
      comment: 'the library never imports src/cli (it prints; the library emits progress events)',
      severity: 'error',
      from: { pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'build-only-imported-by-cli-and-facade',
      comment: 'only src/cli, the Engine API server (`POST /build`) and the library facade (src/index.ts) import src/build',
      severity: 'error',
      from: { pathNot: '^src/(build/|cli/|engine-api/|index\\.ts$)' },
      to: { path: '^src/build/' },
    },
    {
      name: 'engine-api-only-imported-by-cli',
      comment: 'the Engine API server (src/engine-api) serves the library over HTTP: only src/cli (`system service`) starts it',
      severity: 'error',
      from: { pathNot: '^src/(engine-api|cli)/' },
      to: { path: '^src/engine-api/' },
    },
    {
      name: 'no-folder-cycles',
      comment: 'folders of src/ do not depend on each other in a circle',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'every import resolves (a typo in a path would otherwise go unchecked here)',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
    reporterOptions: {
      dot: { collapsePattern: '^src/[^/]+|^node_modules/(@[^/]+/)?[^/]+' },
    },
  },
}
