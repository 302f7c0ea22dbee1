import type { CallContext } from '../../core/context.js';
import type {
  CatalogDevice,
  CatalogJob,
  CatalogModelVersion,
  CatalogRollout,
  PlatformCatalog,
} from '../planner.js';

/** What the platform holds, loaded once per plan. */
export interface Known {
  datasets: string[];
  versions: CatalogModelVersion[];
  devices: CatalogDevice[];
  tags: string[];
  jobs: CatalogJob[];
  rollouts: CatalogRollout[];
}

/** A slot value: found, named but unknown, ambiguous, or not mentioned. */
export type Found<T> = { ok: T } | { unknown: string } | { ambiguous: string[] } | { missing: true };
/** Which devices a rollout targets. */
export type Target = { tag: string } | { devices: string[] };

/** Loads the names a plan is checked against. */
export async function loadKnown(catalog: PlatformCatalog, ctx: CallContext): Promise<Known> {
  const [datasets, versions, devices, jobs, rollouts] = await Promise.all([
    catalog.datasets(ctx),
    catalog.modelVersions(ctx),
    catalog.devices(ctx),
    catalog.jobs(ctx),
    catalog.rollouts(ctx),
  ]);
  const tags = [...new Set(devices.flatMap((d) => d.tags))].sort();
  return { datasets: datasets.map((d) => d.name), versions, devices, tags, jobs, rollouts };
}

const ALL_LINES =
  /\ball (?:the )?lines\b|\bevery line\b|\ball devices\b|\beverywhere\b|모든\s*라인|전체\s*라인|모든\s*장비|전체\s*장비/i;
const DEVICE_WORDS = /\bdevices?\b|\bjetsons?\b|\bfleet\b|장비|디바이스|기기|젯슨/i;
const STOP = new Set([
  'the',
  'a',
  'an',
  'this',
  'that',
  'new',
  'my',
  'on',
  'of',
  'list',
  'all',
  'show',
  'for',
  'with',
  'to',
  'and',
  'in',
  'at',
  'using',
  'from',
  'into',
  'as',
  'is',
  'called',
  'named',
]);

/** The dataset a text names: explicitly ("dataset x", "x 데이터셋") or by a known name. */
export function findDataset(text: string, known: Known): Found<string> {
  const token = '["\'“”]?([A-Za-z0-9][\\w.@-]*)["\'“”]?';
  const explicit =
    new RegExp(`\\bdata\\s?sets?\\s+(?:called\\s+|named\\s+)?${token}`, 'i').exec(text)?.[1] ??
    new RegExp(`${token}\\s+data\\s?set\\b`, 'i').exec(text)?.[1] ??
    new RegExp(`${token}\\s*데이터\\s*셋`).exec(text)?.[1] ??
    new RegExp(`데이터\\s*셋\\s+${token}`).exec(text)?.[1];
  if (explicit !== undefined && !STOP.has(explicit.toLowerCase())) {
    const exact = known.datasets.find(
      (d) =>
        d.toLowerCase() === explicit.toLowerCase() ||
        explicit.toLowerCase().startsWith(`${d.toLowerCase()}@`),
    );
    return exact !== undefined ? { ok: explicit.includes('@') ? explicit : exact } : { unknown: explicit };
  }
  const loose =
    /\b(?:on|using|from|with)\s+(?:the\s+)?["'“”]?([A-Za-z][\w.@]*[-_\d][\w.@-]*)/i.exec(text)?.[1] ??
    /([A-Za-z][\w.@]*[-_\d][\w.@-]*)\s*(?:으로|로|에서)\s/.exec(`${text} `)?.[1];
  if (
    loose !== undefined &&
    !known.datasets.some((d) => mentions(text, d)) &&
    !/^line[-_]?\d/i.test(loose) &&
    !/^(?:job|rol|mv|dev)_/.test(loose) &&
    !/@/.test(loose) &&
    !/^yolo|^v\d/i.test(loose) &&
    !known.tags.includes(loose) &&
    !known.devices.some((d) => d.name === loose || d.id === loose)
  ) {
    return { unknown: loose };
  }
  const mentioned = known.datasets.filter((d) => mentions(text, d));
  if (mentioned.length === 1) return { ok: mentioned[0]! };
  if (mentioned.length > 1) {
    // "helmets-v2" also contains "helmets": the longest mention wins when it contains the others.
    const longest = mentioned.reduce((a, b) => (b.length > a.length ? b : a));
    if (mentioned.every((m) => longest.includes(m))) return { ok: longest };
    return { ambiguous: mentioned };
  }
  return { missing: true };
}

/** The line number a text names ("line 3", "line-3", "3번 라인", "라인 3"). */
export function findLine(text: string): string | undefined {
  return (
    /\bline[\s-]?(\d+)\b/i.exec(text)?.[1] ??
    /(\d+)\s*번\s*(?:라인|line)/i.exec(text)?.[1] ??
    /라인\s*(\d+)/.exec(text)?.[1] ??
    /(\d+)\s*라인/.exec(text)?.[1]
  );
}

/** The devices a text targets: a line, a tag, device names, or "all lines" (ambiguous). */
export function findTarget(text: string, known: Known): Found<Target> {
  if (ALL_LINES.test(text)) return { ambiguous: known.tags.filter((t) => /^line/i.test(t)) };
  const line = findLine(text);
  if (line !== undefined) {
    const exact = known.tags.find((t) => t.toLowerCase() === `line-${line}`);
    if (exact !== undefined) return { ok: { tag: exact } };
    const close = known.tags.filter((t) => new RegExp(`^line-?${line}(?:$|[^0-9])`, 'i').test(t));
    if (close.length === 1) return { ok: { tag: close[0]! } };
    if (close.length > 1) return { ambiguous: close };
    return { unknown: `line-${line}` };
  }
  const tag = known.tags.filter((t) => mentions(text, t));
  if (tag.length === 1) return { ok: { tag: tag[0]! } };
  if (tag.length > 1) return { ambiguous: tag };
  const devices = known.devices.filter((d) => mentions(text, d.id) || mentions(text, d.name));
  if (devices.length > 0) return { ok: { devices: devices.map((d) => d.id) } };
  if (DEVICE_WORDS.test(text)) return { ambiguous: known.tags };
  return { missing: true };
}

/** The first model version a text names. */
export function findModelVersion(text: string, known: Known): Found<CatalogModelVersion> {
  const r = findModelVersions(text, known);
  if ('unknown' in r) return r;
  return r.ok.length > 0 ? { ok: r.ok[0]! } : { missing: true };
}

const STAGE_ALIAS =
  /\b(?:the\s+)?(production|prod|staging|candidate)\s+(?:model|version|one)\b|\bthe\s+(candidate|production)\b|(운영|프로덕션|후보|스테이징)\s*(?:모델|버전)/i;
const LATEST =
  /\b(?:latest|newest|most recent|last)\b(?:\s+[\w-]+)?\s+(?:model|version)|최신\s*(?:모델|버전)?|가장\s*최근/i;
const STAGE_OF: Record<string, string> = {
  production: 'production',
  prod: 'production',
  staging: 'staging',
  candidate: 'candidate',
  운영: 'production',
  프로덕션: 'production',
  후보: 'candidate',
  스테이징: 'staging',
};

/**
 * Every model version the text names, in order: ids, `name@N`, `name vN`, `name version N`,
 * `name N버전`, a bare `vN` / `N버전` when there is one model name, stage aliases ("the production
 * model"), "latest", or a bare model name (its latest).
 */
export function findModelVersions(
  text: string,
  known: Known,
): { ok: CatalogModelVersion[] } | { unknown: string } {
  const found: Array<{ at: number; v: CatalogModelVersion }> = [];
  const push = (at: number, v: CatalogModelVersion) => {
    if (!found.some((f) => f.v.id === v.id)) found.push({ at, v });
  };
  for (const v of known.versions) {
    const at = text.indexOf(v.id);
    if (at >= 0) push(at, v);
  }
  const patterns = [
    /([A-Za-z][\w-]*?)@(\d+)/g,
    /([A-Za-z][\w-]*?)\s+v(?:ersion)?\s*(\d+)\b/gi,
    /([A-Za-z][\w-]*?)\s*(\d+)\s*버전/g,
  ];
  for (const re of patterns) {
    for (const m of text.matchAll(re)) {
      const name = m[1]!;
      const version = Number(m[2]);
      const v = known.versions.find(
        (x) => x.model.toLowerCase() === name.toLowerCase() && x.version === version,
      );
      if (v === undefined) {
        if (known.versions.some((x) => x.model.toLowerCase() === name.toLowerCase()) || /@/.test(m[0]))
          return { unknown: `${name}@${version}` };
        continue;
      }
      push(m.index ?? 0, v);
    }
  }
  const names = [...new Set(known.versions.map((v) => v.model))];
  if (names.length === 1) {
    // "is v3 better than v2", "3버전이랑 2버전": with one model name, a bare version number is a version of it.
    for (const m of text.matchAll(/(?<![\w@-])v(\d+)\b|(?<![\d@])(\d+)\s*버전/gi)) {
      const n = Number(m[1] ?? m[2]);
      const v = known.versions.find((x) => x.model === names[0] && x.version === n);
      if (v === undefined) return { unknown: `${names[0]}@${n}` };
      push(m.index ?? 0, v);
    }
  }
  {
    const alias = STAGE_ALIAS.exec(text);
    if (alias !== null) {
      const stage = STAGE_OF[(alias[1] ?? alias[2] ?? alias[3] ?? '').toLowerCase()]!;
      const v = latest(known.versions.filter((x) => x.stage === stage));
      if (v !== undefined) push(alias.index, v);
    }
  }
  if (found.length === 0) {
    // "the production helmets model", "helmets production model", "운영 중인 helmets": that name's version at that stage.
    for (const name of names) {
      const n = escape(name);
      const m =
        new RegExp(`\\b(production|prod|staging|candidate)\\s+${n}\\b`, 'i').exec(text) ??
        new RegExp(`\\b${n}\\s+(production|prod|staging|candidate)\\s+(?:model|version)`, 'i').exec(text) ??
        new RegExp(`(운영|프로덕션|후보|스테이징)\\s*(?:중인|중|단계)?\\s*${n}(?![\\w-])`, 'i').exec(text) ??
        new RegExp(`${n}\\s*(운영|프로덕션|후보|스테이징)\\s*(?:모델|버전)`, 'i').exec(text);
      if (m === null) continue;
      const stage = STAGE_OF[m[1]!.toLowerCase() === 'prod' ? 'production' : m[1]!.toLowerCase()]!;
      const v = latest(known.versions.filter((x) => x.model === name && x.stage === stage));
      if (v !== undefined) push(m.index, v);
    }
  }
  if (found.length === 0) {
    for (const name of names) {
      const at = text
        .toLowerCase()
        .search(new RegExp(`(?:^|[^\\w-])${escape(name.toLowerCase())}(?:$|[^\\w-])`));
      if (at >= 0) push(at, latest(known.versions.filter((v) => v.model === name))!);
    }
  }
  if (found.length === 0) {
    const m = LATEST.exec(text);
    const v = latest(known.versions);
    if (m !== null && v !== undefined) push(m.index, v);
  }
  return { ok: found.sort((a, b) => a.at - b.at).map((f) => f.v) };
}

/** The training job a text names by id. */
export function findJob(text: string, known: Known): CatalogJob | undefined {
  return known.jobs.find((j) => text.includes(j.id));
}

/** The rollout a text names by id. */
export function findRollout(text: string, known: Known): CatalogRollout | undefined {
  return known.rollouts.find((r) => text.includes(r.id));
}

/** A named device. */
export function findDevice(text: string, known: Known): CatalogDevice | undefined {
  return known.devices.find((d) => mentions(text, d.id) || mentions(text, d.name));
}

function int(m: RegExpExecArray | null, min: number, max: number): number | undefined {
  const n = m ? Number(m[1]) : undefined;
  return n !== undefined && Number.isInteger(n) && n >= min && n <= max ? n : undefined;
}

/** Epochs: "20 epochs", "epochs=20", "30 에폭". */
export function findEpochs(text: string): number | undefined {
  return int(
    /(\d{1,4})\s*(?:epochs?|에폭|에포크)/i.exec(text) ??
      /(?:epochs?|에폭|에포크)\s*(?:=|:|of|은|는|을|를)?\s*(\d{1,4})/i.exec(text),
    1,
    1000,
  );
}

/** Image size in pixels: "image size 640", "imgsz=640", "at 640 px", "640x640", "이미지 크기 416". */
export function findImageSize(text: string): number | undefined {
  return int(
    /\b(?:image|img|input)[\s-]*(?:size|resolution)\s*(?:of|=|:)?\s*(\d{2,4})/i.exec(text) ??
      /\bimgsz\s*(?:=|:)?\s*(\d{2,4})/i.exec(text) ??
      /(\d{2,4})\s*(?:px|pixels?|픽셀)\b/i.exec(text) ??
      /\b(\d{2,4})\s*x\s*\1\b/i.exec(text) ??
      /(?:이미지|입력)\s*(?:크기|사이즈|해상도)\s*(?:는|를|을)?\s*(\d{2,4})/.exec(text),
    32,
    2048,
  );
}

/** Batch size: "batch size 32", "batch of 16", "batch=8", "배치 16". */
export function findBatch(text: string): number | undefined {
  return int(
    /\bbatch(?:[\s-]*size)?\s*(?:of|=|:)?\s*(\d{1,4})/i.exec(text) ??
      /(\d{1,4})\s*(?:per batch|batch\b)/i.exec(text) ??
      /배치\s*(?:크기|사이즈)?\s*(?:는|를|을)?\s*(\d{1,4})/.exec(text),
    1,
    1024,
  );
}

/** Canary size: "a canary of 2 devices", "canary 2", "2 canary devices", "카나리 2대". */
export function findCanary(text: string): number | undefined {
  return int(
    /\bcanary\s*(?:of|=|:|with|size)?\s*(\d{1,4})/i.exec(text) ??
      /(\d{1,4})\s*(?:devices?\s+)?(?:as\s+(?:the\s+)?)?canar(?:y|ies)/i.exec(text) ??
      /카나리\s*(\d{1,4})/.exec(text),
    1,
    1000,
  );
}

/** A model stage named as a filter or a destination. */
export function findStage(text: string): 'production' | 'staging' | 'candidate' | undefined {
  if (/\bproduction\b|\bprod\b|운영|프로덕션/i.test(text)) return 'production';
  if (/\bstaging\b|스테이징/i.test(text)) return 'staging';
  if (/\bcandidates?\b|후보/i.test(text)) return 'candidate';
  return undefined;
}

/** A training job status named as a filter. */
export function findJobStatus(
  text: string,
): 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | undefined {
  if (/\bfail(?:ed|ing|ures?)?\b|실패/i.test(text)) return 'failed';
  if (
    /\brunning\b|\bin progress\b|\bright now\b|\bcurrently\b|\bat the moment\b|돌고|진행\s*중|지금/i.test(
      text,
    )
  )
    return 'running';
  if (/\bqueued\b|\bwaiting\b|대기/i.test(text)) return 'queued';
  if (/\bsucceeded\b|\bsuccessful\b|\bfinished\b|성공|완료/i.test(text)) return 'succeeded';
  if (/\bcancell?ed\b|취소된/i.test(text)) return 'cancelled';
  return undefined;
}

/** True when the text names `name` as a whole token. */
export function mentions(text: string, name: string): boolean {
  return new RegExp(`(?:^|[^\\w@-])${escape(name)}(?:$|[^\\w-])`, 'i').test(text);
}

/** `s` with regular-expression characters escaped. */
export function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The newest of a list (by creation time, else version). */
export function latest<T extends { createdAt?: number; version?: number }>(items: T[]): T | undefined {
  return [...items].sort((a, b) => (b.createdAt ?? b.version ?? 0) - (a.createdAt ?? a.version ?? 0))[0];
}

/** `name@N` of a version. */
export function label(v: CatalogModelVersion): string {
  return `${v.model}@${v.version}`;
}

/** A target as a person reads it. */
export function describeTarget(t: Target): string {
  return 'tag' in t ? `devices tagged ${t.tag}` : `devices ${t.devices.join(', ')}`;
}

export { findBackend, findStartingPoint } from './training-slots.js';
