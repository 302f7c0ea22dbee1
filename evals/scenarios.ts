import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { SimPlatform } from './sim-platform.js';

const thresholdsSchema = z.object({
  plan: z.number().min(0).max(1).describe('share of scenarios whose tool sequence must match'),
  args: z.number().min(0).max(1).describe('share of expected key arguments that must match'),
  safety: z.number().min(0).max(1).describe('share of safety scenarios that must pass'),
});

/** What a scenario expects of the plan. */
export const expectSchema = z.object({
  tools: z.array(z.string()).optional(),
  args: z.array(z.record(z.string(), z.unknown())).optional(),
  reply: z.string().optional(),
  clarify: z.boolean().optional(),
});

const scenarioSchema = z.object({
  id: z.string(),
  /** The paraphrase family (an intent, or a kind such as negation or question) results are grouped by. */
  family: z.string().optional(),
  lang: z.enum(['en', 'ko']),
  request: z.string(),
  expect: expectSchema,
  /** Safety scenarios run through the embedded agent and must hold completely. */
  safety: z
    .discriminatedUnion('kind', [
      z.object({ kind: z.literal('injection'), dataset: z.string(), text: z.string() }),
      z.object({ kind: z.literal('unknown_dataset') }),
      z.object({ kind: z.literal('ambiguous_target') }),
      z.object({
        kind: z.literal('reject_replan'),
        reason: z.string(),
        then: expectSchema.extend({ stopped: z.boolean().optional() }),
      }),
      z.object({ kind: z.literal('viewer_approve') }),
      z.object({ kind: z.literal('no_mutation') }),
      z.object({ kind: z.literal('negation'), forbid: z.array(z.string()) }),
    ])
    .optional(),
});
/** One scenario of a JSONL file. */
export type Scenario = z.infer<typeof scenarioSchema>;
/** The accuracy a file must reach. */
export type Thresholds = z.infer<typeof thresholdsSchema>;

/** Reads a JSONL scenario file: `//` comment lines, a `{"thresholds": …}` header line, then one scenario per line. */
export async function loadScenarios(
  file: string,
): Promise<{ thresholds: Thresholds; scenarios: Scenario[] }> {
  const lines = (await readFile(file, 'utf8'))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('//'));
  const [head, ...rest] = lines;
  if (head === undefined)
    throw new Error(
      `${file} is empty; the first line must be {"thresholds": {"plan": 0.9, "args": 0.9, "safety": 1}}`,
    );
  const thresholds = thresholdsSchema.parse((JSON.parse(head) as { thresholds: unknown }).thresholds);
  const scenarios = rest.map((line, i) => {
    const parsed = scenarioSchema.safeParse(JSON.parse(line));
    if (!parsed.success)
      throw new Error(
        `${file} line ${i + 2}: ${parsed.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`,
      );
    return parsed.data;
  });
  return { thresholds, scenarios };
}

/** A simulated platform with a finished job and two rollouts (one active on line-2), which status/rollback scenarios refer to. */
export function evalPlatform(): SimPlatform {
  const base = new SimPlatform();
  return new SimPlatform({
    // Names with intent words inside ("ship" in ship-hulls and ship-dock) must read as names, never as intents.
    datasets: [
      ...base.datasets,
      { name: 'ship-hulls', description: 'hull inspection photos', classes: ['dent', 'rust'], images: 300 },
    ],
    devices: [...base.devices, { id: 'dev_dock_a', name: 'cam-dock-a', tags: ['ship-dock'] }],
    jobs: [
      {
        id: 'job_7',
        dataset: 'helmets-v2@1',
        status: 'succeeded',
        createdAt: 7,
        epochs: 10,
        modelVersionId: 'mv_helmets_3',
        map50: 0.8,
      },
    ],
    rollouts: [
      {
        id: 'rol_9',
        target: 'line-3',
        status: 'completed',
        modelVersionId: 'mv_helmets_3',
        createdAt: 9,
        devicesUpdated: 2,
        devicesTotal: 2,
      },
      {
        id: 'rol_10',
        target: 'line-2',
        status: 'waves',
        modelVersionId: 'mv_helmets_3',
        createdAt: 8,
        devicesUpdated: 0,
        devicesTotal: 1,
      },
    ],
  });
}
