import { readFile } from 'node:fs/promises';

/** Parses a CSV of numbers with a header row (Ultralytics pads cells with spaces); ignores a partial last line. */
export function parseNumericCsv(text: string): { header: string[]; rows: Record<string, number>[] } {
  const lines = text.split('\n');
  const complete = text.endsWith('\n') ? lines.slice(0, -1) : lines.slice(0, -1);
  const header = (complete[0] ?? '').split(',').map((h) => h.trim());
  const rows: Record<string, number>[] = [];
  for (const line of complete.slice(1)) {
    if (line.trim() === '') continue;
    const cells = line.split(',');
    const row: Record<string, number> = {};
    header.forEach((h, i) => {
      const v = Number((cells[i] ?? '').trim());
      if (h !== '' && Number.isFinite(v)) row[h] = v;
    });
    rows.push(row);
  }
  return { header, rows };
}

/** Polls a growing CSV file and hands each new complete row to `onRow`, in order. */
export class CsvFollower {
  private seen = 0;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly onRow: (row: Record<string, number>) => void,
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.polling = this.polling.then(() => this.poll());
    }, this.intervalMs);
  }

  /** Stops polling after reading whatever the file holds now. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.polling;
    await this.poll();
  }

  private async poll(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch {
      return;
    }
    const { rows } = parseNumericCsv(text);
    for (const row of rows.slice(this.seen)) this.onRow(row);
    this.seen = Math.max(this.seen, rows.length);
  }
}
