import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import type { Plan } from '../agent/plan.js';
import type { Planner } from '../agent/planner.js';
import { RulesPlanner } from '../agent/rules-planner.js';
import { systemPrincipal } from '../core/context.js';
import { silentLogger } from '../core/log.js';
import type { ToolRegistry } from '../tools/registry.js';
import { startEvalPlatform, type EvalPlatform } from './real-platform.js';
import { evalPlatform, loadScenarios, type Thresholds } from './scenarios.js';
import { runSafety, scorePlan } from './score.js';

export { evalPlatform, loadScenarios };

/** What one scenario scored. */
export interface ScenarioResult {
  id: string;
  family: string;
  planOk: boolean;
  argsMatched: number;
  argsExpected: number;
  safety?: boolean;
  detail: string;
}

/** Totals of one scenario file. */
export interface SetReport {
  /** `dev`, or the file's name without `.jsonl` (`seen-1`, `seen-2`, `seen-3`, `heldout-4`). */
  name: string;
  file: string;
  results: ScenarioResult[];
  planAccuracy: number;
  argAccuracy: number;
  safetyPassRate: number;
  safetyCount: number;
  thresholds: Thresholds;
  passed: boolean;
}

/** A run over the dev file and every held-out file, and whether all clear their thresholds. */
export interface EvalReport {
  planner: PlannerKind;
  dev: SetReport;
  /** One report per file that was held out once and has since been tuned on (scored like dev, failures printed). */
  seen: SetReport[];
  /** One report per held-out file, in the order given. */
  heldOut: SetReport[];
  passed: boolean;
}

/** Which planner an evaluation runs. */
export type PlannerKind = 'rules' | 'llm' | 'hybrid';

/** Options of an evaluation run; `chatModel` replaces the configured LLM (tests pass one on a scripted server). */
export interface RunEvalsOptions {
  planner: PlannerKind;
  /** The dev scenarios (default evals/scenarios.jsonl): what the planner was tuned on. */
  scenariosFile?: string;
  /** Former held-out files now tuned on (default SEEN_FILES); their failures are printed like dev's. */
  seenFiles?: string[];
  /** The held-out files (default HELD_OUT_FILES): each written before tuning, never tuned against. */
  heldOutFiles?: string[];
  chatModel?: BaseChatModel;
  print?: (line: string) => void;
  /** Print a line per dev scenario (default: only dev failures). */
  verbose?: boolean;
  /** Print held-out scenario lines too (default: totals and families only, so nobody tunes against them). */
  showHeldOut?: boolean;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The dev scenarios: what the planner is tuned on. */
export const DEV_FILE = path.join(HERE, 'scenarios.jsonl');
/** Files that were held out once and were tuned on afterwards: scored and printed like dev (evals/README.md). */
export const SEEN_FILES = ['seen-1.jsonl', 'seen-2.jsonl', 'seen-3.jsonl'].map((f) => path.join(HERE, f));
/** The held-out files, oldest first (see evals/README.md for how each was written). */
export const HELD_OUT_FILES = [path.join(HERE, 'heldout-4.jsonl')];

async function makePlanner(opts: RunEvalsOptions, registry: ToolRegistry): Promise<Planner> {
  if (opts.planner === 'rules') return new RulesPlanner();
  const { LlmPlanner, chatModelFromEnv } = await import('../agent/llm-planner.js');
  const model = opts.chatModel ?? (await chatModelFromEnv(process.env));
  if (model === undefined)
    throw new Error(
      `the ${opts.planner} planner needs OPENAI_API_KEY (and OPENAI_BASE_URL for a local server, LLM_MODEL)`,
    );
  // The LLM reads the real tools' schemas (promote, pause, resume… exist there); plans are scored by tool and arguments.
  const llm = new LlmPlanner({ model, registry });
  if (opts.planner === 'llm') return llm;
  const { HybridPlanner } = await import('../agent/hybrid-planner.js');
  return new HybridPlanner({ rules: new RulesPlanner(), llm });
}

async function runSet(
  name: string,
  file: string,
  planner: Planner,
  env: () => Promise<EvalPlatform>,
  print: ((line: string) => void) | undefined,
  verbose: boolean,
): Promise<SetReport> {
  const { thresholds, scenarios } = await loadScenarios(file);
  const sim = evalPlatform();
  const ctx = { user: systemPrincipal(), projectId: sim.projectId, requestId: 'eval', log: silentLogger() };
  const results: ScenarioResult[] = [];
  for (const s of scenarios) {
    const plan = await planner
      .plan({ message: s.request, ctx, catalog: sim.catalog(), history: [] })
      .catch((err: unknown): Plan => ({ steps: [], reply: `planner failed: ${(err as Error).message}` }));
    const scored = scorePlan(plan, s.expect);
    const result: ScenarioResult = {
      id: s.id,
      family: s.family ?? s.id.replace(/-(?:en|ko)(?:-\d+)?$/, '').replace(/-\d+$/, ''),
      ...scored,
    };
    if (s.safety !== undefined) {
      const safety = await runSafety(s, await env()).catch((err: unknown) => ({
        ok: false,
        detail: `error: ${(err as Error).message}`,
      }));
      // A question, injection or negation is safe when nothing mutates; which read it planned is plan accuracy's business.
      result.safety = ['no_mutation', 'negation', 'injection'].includes(s.safety.kind)
        ? safety.ok
        : safety.ok && scored.planOk;
      if (!safety.ok) result.detail = `${result.detail}; safety: ${safety.detail}`;
    }
    results.push(result);
    const pass = result.planOk && result.argsMatched === result.argsExpected && result.safety !== false;
    if (print !== undefined && (verbose || !pass)) {
      print(
        `${pass ? 'PASS' : 'FAIL'}  ${name.padEnd(9)} ${s.id.padEnd(30)} [${s.lang}] plan=${result.planOk ? 'ok' : 'x'} args=${result.argsMatched}/${result.argsExpected}` +
          `${result.safety === undefined ? '' : ` safety=${result.safety ? 'ok' : 'x'}`}  ${result.detail === 'ok' ? '' : result.detail}`,
      );
    }
  }
  const planAccuracy = results.filter((r) => r.planOk).length / Math.max(1, results.length);
  const argsExpected = results.reduce((n, r) => n + r.argsExpected, 0);
  const argAccuracy = argsExpected === 0 ? 1 : results.reduce((n, r) => n + r.argsMatched, 0) / argsExpected;
  const safetyResults = results.filter((r) => r.safety !== undefined);
  const safetyPassRate =
    safetyResults.length === 0 ? 1 : safetyResults.filter((r) => r.safety).length / safetyResults.length;
  const passed =
    planAccuracy >= thresholds.plan && argAccuracy >= thresholds.args && safetyPassRate >= thresholds.safety;
  return {
    name,
    file,
    results,
    planAccuracy,
    argAccuracy,
    safetyPassRate,
    safetyCount: safetyResults.length,
    thresholds,
    passed,
  };
}

const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;

function familyCell(results: ScenarioResult[]): string {
  if (results.length === 0) return '—';
  const plan = results.filter((r) => r.planOk).length;
  const expected = results.reduce((n, r) => n + r.argsExpected, 0);
  const args =
    expected === 0 ? '' : ` args ${pct(results.reduce((n, r) => n + r.argsMatched, 0) / expected)}`;
  return `${plan}/${results.length}${args}`;
}

/** Scores a planner on the dev file and every held-out file and prints them side by side, per family and in total. */
export async function runEvals(opts: RunEvalsOptions): Promise<EvalReport> {
  const print = opts.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const devFile = opts.scenariosFile ?? DEV_FILE;
  const seenFiles = opts.seenFiles ?? SEEN_FILES;
  const heldFiles = opts.heldOutFiles ?? HELD_OUT_FILES;
  const all = await Promise.all([devFile, ...seenFiles, ...heldFiles].map((f) => loadScenarios(f)));
  // Injection text lives in dataset descriptions on the real platform: seed them before it starts.
  const descriptions: Record<string, string> = {};
  for (const s of all.flatMap((x) => x.scenarios)) {
    if (s.safety?.kind === 'injection')
      descriptions[s.safety.dataset] = [descriptions[s.safety.dataset], s.safety.text]
        .filter(Boolean)
        .join(' ');
  }
  const env = await startEvalPlatform((registry) => makePlanner(opts, registry), descriptions);
  const realPlatform = async () => env;
  try {
    const verbose = opts.verbose ?? false;
    const dev = await runSet('dev', devFile, env.planner, realPlatform, print, verbose);
    const seen: SetReport[] = [];
    for (const file of seenFiles)
      seen.push(await runSet(path.basename(file, '.jsonl'), file, env.planner, realPlatform, print, verbose));
    const heldOut: SetReport[] = [];
    for (const file of heldFiles)
      heldOut.push(
        await runSet(
          path.basename(file, '.jsonl'),
          file,
          env.planner,
          realPlatform,
          opts.showHeldOut === true ? print : undefined,
          verbose,
        ),
      );
    const sets = [dev, ...seen, ...heldOut];
    const families = [...new Set(sets.flatMap((r) => r.results.map((x) => x.family)))].sort();
    const width = Math.max(16, ...families.map((f) => f.length));
    print('');
    print(
      `${'family'.padEnd(width)}  ${sets
        .map((r) => `${r.name} (plan ok, args)`.padEnd(24))
        .join('  ')
        .trimEnd()}`,
    );
    for (const f of families) {
      print(
        `${f.padEnd(width)}  ${sets
          .map((r) => familyCell(r.results.filter((x) => x.family === f)).padEnd(24))
          .join('  ')
          .trimEnd()}`,
      );
    }
    print('');
    for (const r of sets) {
      print(
        `${r.name.padEnd(9)} ${String(r.results.length).padStart(3)} scenarios: plan ${pct(r.planAccuracy)} (≥ ${pct(r.thresholds.plan)}), ` +
          `arguments ${pct(r.argAccuracy)} (≥ ${pct(r.thresholds.args)}), safety ${pct(r.safetyPassRate)} of ${r.safetyCount} on the embedded platform (≥ ${pct(r.thresholds.safety)}): ${r.passed ? 'passed' : 'FAILED'}`,
      );
    }
    const passed = sets.every((r) => r.passed);
    print(`${opts.planner} planner: ${passed ? 'PASSED' : 'FAILED'}`);
    return { planner: opts.planner, dev, seen, heldOut, passed };
  } finally {
    await env.close();
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const planner = (
    ['llm', 'hybrid'].includes(flag('--planner') ?? '') ? flag('--planner') : 'rules'
  ) as PlannerKind;
  const held = args.flatMap((a, i) => (a === '--held-out' && args[i + 1] ? [args[i + 1]!] : []));
  runEvals({
    planner,
    scenariosFile: flag('--scenarios'),
    ...(held.length > 0 ? { heldOutFiles: held } : {}),
    verbose: args.includes('--verbose'),
    showHeldOut: args.includes('--show-held-out'),
  })
    .then((r) => process.exit(r.passed ? 0 : 1))
    .catch((err: unknown) => {
      process.stderr.write(`${(err as Error).message}\n`);
      process.exit(2);
    });
}
