/** OCI runtime bundles (pure) and the crun/runc driver. */
export * from './spec.js'
export * from './user.js'
export * from './etc.js'
export * from './runtime.js'
