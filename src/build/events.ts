/**
 * What a build reports while it runs. The library emits these; only the CLI renders them
 * (Docker's plain words, or a live view on a terminal).
 */
import type { ImageId } from '../oci/digest.js'
import type { ProgressEvent } from '../util/progress.js'

/** One step of one stage. */
export interface StepRef {
  /** A number unique in the build, for keying a live view. */
  vertex: number
  /** The stage's name, or its index as a string. */
  stage: string
  /** How a live view names the stage: '' for a one-stage build, else its name or `stage-N`. */
  label: string
  /** 1-based position in its stage (FROM is 1), and the stage's count. */
  index: number
  count: number
  /** 1-based position among all the steps built, and their total (Docker's `Step N/M`). */
  step: number
  total: number
  /** The instruction as written, on one line. */
  text: string
  /** The Dockerfile line. */
  line: number
}

export type BuildEvent =
  | { type: 'context'; dir?: string }
  | { type: 'step'; ref: StepRef }
  | { type: 'cached'; ref: StepRef; id: ImageId }
  | { type: 'running'; ref: StepRef; container: string }
  | { type: 'output'; ref: StepRef; stream: 'stdout' | 'stderr'; data: string }
  | { type: 'removed'; ref: StepRef; container: string }
  | { type: 'done'; ref: StepRef; /** `sha256:` alone for a stage from scratch */ id: ImageId | 'sha256:'; cached: boolean; seconds: number }
  | { type: 'failed'; ref: StepRef; message: string; seconds: number }
  | { type: 'pull'; ref: StepRef; event: ProgressEvent }
  | { type: 'warning'; message: string }
  | { type: 'exporting'; status: string; seconds?: number }
  | { type: 'built'; id: ImageId }
  | { type: 'tagged'; name: string }

export type BuildListener = (event: BuildEvent) => void
