/**
 * What a bench scenario is and what it hands back: rows for the one table run.ts prints.
 * A scenario file exports one Scenario; run.ts runs them in order, each with its own servers.
 */
import type { Spread } from './stats.ts';

export interface Row {
  /** What was measured, with the unit: "publish, 1 event/request (events/s)". */
  label: string;
  /** Higher is better (throughput) or lower is better (latency): decides how the ratio reads. */
  better: 'higher' | 'lower';
  pollgate: Spread | null;
  /** null: no in-run baseline for this row (the table shows "—"). */
  baseline: Spread | null;
  /** What the baseline/peer column is: "bare Hono", "nchan", "empty log"… (shown in the cell). */
  peer?: string;
  /** The baseline cell when there is no baseline figure ("nchan not available: …"). */
  baselineText?: string;
  /** The target from the issue, in words ("≥ 0.8× bare Hono", "≤ nchan", "≥ 150k/s"). */
  target?: string;
  /** An absolute target: with no baseline, the ratio column is pollgate ÷ this. */
  targetValue?: number;
  /** Whether the target is met (medians); null: could not be judged. */
  met?: boolean | null;
  /** Per interleaved pair pollgate÷baseline, when both were measured in pairs. */
  pairRatios?: number[];
  /** Anything a reader needs to trust the row: checks passed, what was skipped and why. */
  notes: string[];
  /** Why the row was not measured (shown in the table instead of numbers). */
  skipped?: string;
  /** The row is wrong or incomplete (lost writes, a failed run): run.ts exits non-zero. */
  failed?: boolean;
}

export interface ScenarioContext {
  /** Seconds per measured wrk run. */
  durationS: number;
  /** Measured runs per side (≥3). */
  runs: number;
  /** Write a --cpu-prof profile of the pollgate child into this directory. */
  profileDir: string | undefined;
  /** Progress lines (stderr). */
  log(message: string): void;
}

export interface ScenarioResult {
  rows: Row[];
  /** Anything else worth keeping in the JSON (raw runs, profile summary). */
  details?: Record<string, unknown>;
}

export interface Scenario {
  name: string;
  /** One sentence: what it measures. */
  title: string;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}
