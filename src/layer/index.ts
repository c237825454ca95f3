/** Layers: the tar codec, compression, applying a layer to a directory and diffing a directory into one. */
export * from './tar.js'
export * from './compression.js'
export { applyLayer, type ApplyOptions, type ApplyResult, type ApplyWarning } from './apply.js'
export { tarDirectory, type TarDirectoryOptions } from './diff.js'
export { entryComponents, resolveInRoot, isInside, type ResolveOptions } from './path.js'
export * from './whiteout.js'
