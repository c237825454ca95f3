/** Progress events live in src/util/progress.ts so that every layer can report; re-exported for the verbs. */
export * from '../util/progress.js'
