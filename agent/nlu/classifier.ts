import { CORPUS } from './corpus.js';

/** Slot placeholders the normaliser writes in place of names; the corpus writes them as `{dataset}` etc. */
export const SLOTS = ['dataset', 'model', 'target', 'device', 'job', 'rollout', 'path', 'num'] as const;
export type Slot = (typeof SLOTS)[number];

/** The token a slot is written as in the text the classifier reads. */
export const slotToken = (slot: Slot) => `x${slot}x`;

// Korean particles and request endings that carry no intent ("배포는" reads as "배포").
const KO_SUFFIX =
  /(?:해\s*주세요|해\s*줘|해줄래|해라|해요|하고|해|주세요|줘|으로|에서|에게|이랑|랑|하고|으로|로|은|는|이|가|을|를|에|와|과|의|도|만|좀)$/;

/** Words of a text as the classifier sees them: lower case, Korean particles stripped, slot tokens kept. */
export function words(text: string): string[] {
  return (
    text
      .toLowerCase()
      .replace(/\{(\w+)\}/g, (_, s: string) => ` x${s}x `)
      .split(/[^\p{L}\p{N}@_'-]+/u)
      .map((w) => w.replace(/^['-]+|['-]+$/g, ''))
      .filter((w) => w !== '')
      .map((w) => (/^[\p{Script=Hangul}]+$/u.test(w) && w.length > 1 ? w.replace(KO_SUFFIX, '') : w))
      // a word that is only a particle or a request ending ("해줘", "으로") carries no intent
      .filter((w) => w !== '')
  );
}

function features(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const add = (f: string, w = 1) => out.set(f, (out.get(f) ?? 0) + w);
  for (const w of words(text)) {
    add(`w:${w}`);
    if (/^x[a-z]+x$/.test(w)) continue;
    if (/\p{Script=Hangul}/u.test(w)) {
      for (let i = 0; i + 2 <= w.length; i += 1) add(`k:${w.slice(i, i + 2)}`, 0.7);
    } else if (w.length >= 4) {
      const padded = `^${w}$`;
      for (let i = 0; i + 3 <= padded.length; i += 1) add(`t:${padded.slice(i, i + 3)}`, 0.25);
    }
  }
  return out;
}

/** One reading of a request: an intent and how close the nearest corpus phrasing is (cosine, 0–1). */
export interface IntentScore {
  intent: string;
  score: number;
  /** The corpus phrasing that matched best. */
  example: string;
}

type Vector = Map<string, number>;

/**
 * A nearest-neighbour intent classifier built from the paraphrase corpus at start: TF-IDF over
 * words, Korean character bigrams and English character trigrams (which tolerate inflection and
 * the typos left after correction), cosine similarity to every corpus phrasing, best per intent.
 */
export class IntentClassifier {
  private readonly idf = new Map<string, number>();
  private readonly docs: Array<{ intent: string; text: string; vector: Vector }> = [];
  /** Every word the corpus uses, for typo correction. */
  readonly vocabulary: Set<string>;
  /** The slots each intent's phrasings use: a request naming a rollout is not about a training job. */
  private readonly slotsOf = new Map<string, Set<string>>();

  constructor(corpus: Record<string, { en: string[]; ko: string[] }> = CORPUS) {
    const raw = Object.entries(corpus).flatMap(([intent, lines]) =>
      [...lines.en, ...lines.ko].map((text) => ({ intent, text, f: features(text) })),
    );
    const df = new Map<string, number>();
    for (const d of raw) for (const k of d.f.keys()) df.set(k, (df.get(k) ?? 0) + 1);
    for (const [k, n] of df) this.idf.set(k, Math.log((1 + raw.length) / (1 + n)) + 1);
    for (const d of raw) this.docs.push({ intent: d.intent, text: d.text, vector: this.weigh(d.f) });
    this.vocabulary = new Set(raw.flatMap((d) => words(d.text)).filter((w) => !/^x[a-z]+x$/.test(w)));
    for (const d of raw) {
      const set = this.slotsOf.get(d.intent) ?? new Set<string>();
      for (const w of words(d.text)) if (/^x[a-z]+x$/.test(w)) set.add(w);
      this.slotsOf.set(d.intent, set);
    }
  }

  /** Intents ranked by their nearest phrasing, best first. */
  rank(text: string): IntentScore[] {
    const v = this.weigh(features(text));
    const named = [...new Set(words(text).filter((w) => /^x[a-z]+x$/.test(w) && w !== slotToken('num')))];
    const best = new Map<string, IntentScore>();
    for (const d of this.docs) {
      const fits = named.every((w) => this.slotsOf.get(d.intent)?.has(w));
      const score = cosine(v, d.vector) * (fits ? 1 : 0.7);
      const prev = best.get(d.intent);
      if (prev === undefined || score > prev.score)
        best.set(d.intent, { intent: d.intent, score, example: d.text });
    }
    return [...best.values()].sort((a, b) => b.score - a.score);
  }

  private weigh(f: Map<string, number>): Vector {
    const v: Vector = new Map();
    let norm = 0;
    for (const [k, tf] of f) {
      const w = tf * (this.idf.get(k) ?? 0);
      if (w === 0) continue;
      v.set(k, w);
      norm += w * w;
    }
    norm = Math.sqrt(norm) || 1;
    for (const [k, w] of v) v.set(k, w / norm);
    return v;
  }
}

function cosine(a: Vector, b: Vector): number {
  const [small, large] = a.size < b.size ? [a, b] : [b, a];
  let dot = 0;
  for (const [k, w] of small) dot += w * (large.get(k) ?? 0);
  return dot;
}
