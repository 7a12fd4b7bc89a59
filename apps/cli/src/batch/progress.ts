/** Counts of a batch as the CLI shows them. */
export interface ProgressCounts {
  total: number;
  completed: number;
  failed: number;
  costUsd: number;
  status: string;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const whole = Math.max(0, Math.round(seconds));
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = String(whole % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${rest}` : `${minutes}:${rest}`;
}

/**
 * A progress bar on a terminal (redrawn in place), plain lines otherwise
 * (one whenever the counts change, at most one a second). Written to stderr,
 * so stdout stays clean. Rate and ETA are measured from what this process saw
 * over the last minute.
 */
export class ProgressReporter {
  /** Recent (time, done) samples: the rate is measured over the last minute, so a slow start fades out. */
  private samples: { at: number; done: number }[] = [];
  private lastLine = '';
  private lastPrintedAt = 0;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly tty = Boolean(process.stderr.isTTY),
    private readonly windowMs = 60_000,
  ) {}

  update(counts: ProgressCounts, final = false): void {
    const done = counts.completed + counts.failed;
    const now = Date.now();
    this.samples.push({ at: now, done });
    while (this.samples.length > 2 && now - this.samples[0]!.at > this.windowMs) this.samples.shift();
    const oldest = this.samples[0]!;
    const seconds = (now - oldest.at) / 1000;
    const rate = seconds > 0 ? (done - oldest.done) / seconds : 0;
    const remaining = Math.max(0, counts.total - done);
    const eta = remaining === 0 ? 0 : rate > 0 ? remaining / rate : Number.POSITIVE_INFINITY;
    const stats =
      `${done}/${counts.total} done (${counts.failed} failed) · ${rate.toFixed(1)}/s · ETA ${duration(eta)} · ` +
      `$${counts.costUsd.toFixed(4)} · ${counts.status}`;
    if (this.tty) {
      const width = 28;
      const filled = counts.total > 0 ? Math.round((done / counts.total) * width) : 0;
      const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
      this.stream.write(`\r\x1b[2K${bar} ${stats}${final ? '\n' : ''}`);
      return;
    }
    const line = `progress: ${stats}`;
    if (line === this.lastLine || (!final && now - this.lastPrintedAt < 1000)) return;
    this.lastLine = line;
    this.lastPrintedAt = now;
    this.stream.write(`${line}\n`);
  }
}
