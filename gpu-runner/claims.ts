import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

const fileSchema = z.record(z.string(), z.object({ state: z.string(), at: z.number() }));

/** The jobs (jobId + attempt) a runner has taken, persisted in its work folder so a restart never runs one twice. */
export class ClaimStore {
  private readonly file: string;
  private readonly claims: z.infer<typeof fileSchema>;

  constructor(workDir: string) {
    mkdirSync(workDir, { recursive: true });
    this.file = path.join(workDir, 'claims.json');
    let loaded: z.infer<typeof fileSchema> = {};
    if (existsSync(this.file)) {
      const parsed = fileSchema.safeParse(JSON.parse(readFileSync(this.file, 'utf8') || '{}'));
      if (parsed.success) loaded = parsed.data;
    }
    this.claims = loaded;
  }

  static key(jobId: string, attempt: number): string {
    return `${jobId}#${attempt}`;
  }

  has(jobId: string, attempt: number): boolean {
    return this.claims[ClaimStore.key(jobId, attempt)] !== undefined;
  }

  state(jobId: string, attempt: number): string | undefined {
    return this.claims[ClaimStore.key(jobId, attempt)]?.state;
  }

  /** Records a state for the job and writes the file atomically before returning. */
  set(jobId: string, attempt: number, state: string): void {
    this.claims[ClaimStore.key(jobId, attempt)] = { state, at: Date.now() };
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.claims, null, 1));
    renameSync(tmp, this.file);
  }
}
