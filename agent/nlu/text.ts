import { createRequire } from 'node:module';
import { distance } from 'fastest-levenshtein';
import { correctHangul, typoDistance } from './spelling.js';
import { escape, type Known } from './slots.js';

let english: Set<string> | undefined;
/** ~275,000 English words (an-array-of-english-words): a real word is never "corrected" into a command ("audit trail" is not "train"). */
function englishWords(): Set<string> {
  english ??= new Set(createRequire(import.meta.url)('an-array-of-english-words') as string[]);
  return english;
}

/** Words people use with the assistant that the corpus may not contain. */
const EXTRA_VOCABULARY = [
  'epochs',
  'batch',
  'image',
  'size',
  'canary',
  'production',
  'staging',
  'candidate',
  'rollback',
  'rollout',
  'deploy',
  'deployment',
  'dataset',
  'datasets',
  'model',
  'models',
  'line',
  'evaluate',
  'promote',
  'compare',
  'resume',
  'pause',
  'verify',
  'audit',
  'devices',
  'training',
  'export',
  'import',
  'split',
];

/** Model families, frameworks and file formats: never corrected towards a command word. */
const TECH_TERM =
  /^(?:yolo\w*|ultralytics|rtdetr|detr|onnx\w*|coco|voc|pascal|jetson\w*|tensorrt|pytorch|torch)$/;

/**
 * Corrects typos against the known vocabulary by edit distance: command words (unknown to English
 * and within 1 edit for 4 letters, 2 for longer) and catalog names (within 2 edits and a quarter
 * of their length, never differing in a digit: helmets-v9 is not helmets-v2). "lien 3" reads as
 * "line 3".
 */
export function correctTypos(text: string, known: Known, vocabulary: ReadonlySet<string>): string {
  const vocab = [...new Set([...vocabulary, ...EXTRA_VOCABULARY])].filter((w) => /^[a-z]{3,}$/.test(w));
  const names = [...known.datasets, ...known.tags, ...known.devices.map((d) => d.name)];
  const models = [...new Set(known.versions.map((v) => v.model))];
  const digits = (s: string) => s.replace(/\D/g, '');
  const closest = (token: string, candidates: string[]) => {
    if (candidates.some((n) => n.toLowerCase() === token.toLowerCase())) return token;
    let best: { name: string; d: number } | undefined;
    for (const n of candidates) {
      if (digits(n) !== digits(token)) continue;
      const d = typoDistance(n.toLowerCase(), token.toLowerCase());
      if (d <= 2 && d <= Math.max(1, Math.floor(n.length / 4)) && (best === undefined || d < best.d))
        best = { name: n, d };
    }
    return best?.name ?? token;
  };
  const corrected = text
    // a model name before @N ("hemlets@3" is helmets@3)
    .replace(/(?<![\w@./-])([A-Za-z][\w.-]*)(?=@\w)/g, (token: string) => closest(token, models))
    .replace(/(?<![\w@./-])([A-Za-z][\w.-]*[-_\d][\w.-]*\w)(?![\w@-])/g, (token: string) =>
      closest(token, names),
    )
    .replace(/\b([A-Za-z]{3,6})(?=[\s-]*\d)/g, (w: string) => {
      const lower = w.toLowerCase();
      if (lower === 'line' || /^(?:lines?|fine|nine|like|live|lane|link|lint)$/.test(lower)) return w;
      const anagram = [...lower].sort().join('') === 'eiln';
      return anagram || distance(lower, 'line') <= 1 ? 'line' : w;
    })
    .replace(/(?<![\w@.-])([A-Za-z]{4,})(?![\w@-])/g, (w: string) => {
      const lower = w.toLowerCase();
      if (vocabulary.has(lower) || EXTRA_VOCABULARY.includes(lower) || englishWords().has(lower)) return w;
      // Model families, frameworks and formats are names, not misspelt command words ("yolox" is not "yolo").
      if (TECH_TERM.test(lower)) return w;
      const limit = lower.length <= 4 ? 1 : 2;
      let best: { word: string; d: number } | undefined;
      for (const v of vocab) {
        if (Math.abs(v.length - lower.length) > limit) continue;
        const d = distance(v, lower);
        if (
          d <= limit &&
          (best === undefined ||
            d < best.d ||
            (d === best.d && v[0] === lower[0] && best.word[0] !== lower[0]))
        )
          best = { word: v, d };
      }
      return best?.word ?? w;
    });
  return correctHangul(corrected, vocabulary);
}

const EN_UNITS: Record<string, number> = {
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  thirteen: 13,
  fourteen: 14,
  fifteen: 15,
  sixteen: 16,
  seventeen: 17,
  eighteen: 18,
  nineteen: 19,
};
const ORDINALS = ['first', 'second', 'third', 'fourth', 'fifth', 'sixth', 'seventh', 'eighth', 'ninth'];
const EN_TENS: Record<string, number> = {
  twenty: 20,
  thirty: 30,
  forty: 40,
  fifty: 50,
  sixty: 60,
  seventy: 70,
  eighty: 80,
  ninety: 90,
};
const KO_UNITS: Record<string, number> = {
  한: 1,
  하나: 1,
  두: 2,
  둘: 2,
  세: 3,
  셋: 3,
  네: 4,
  넷: 4,
  다섯: 5,
  여섯: 6,
  일곱: 7,
  여덟: 8,
  아홉: 9,
};
const KO_TENS: Record<string, number> = { 열: 10, 스물: 20, 스무: 20, 서른: 30, 마흔: 40, 쉰: 50 };
const alt = (words: Record<string, number>) =>
  Object.keys(words)
    .sort((a, b) => b.length - a.length)
    .join('|');
const EN_NUMBER = `(?:(?:${alt(EN_TENS)})(?:[\\s-](?:${alt(EN_UNITS)}))?|${alt(EN_UNITS)}|(?:a|one)\\s+hundred)`;
const EN_COUNTED = /\s+(?:canar(?:y|ies)|devices?|epochs?|images?|px|pixels?|cameras?|jetsons?)\b/i.source;
const EN_PARAM =
  /\b(?:batch(?:[\s-]size)?|epochs?|canary(?:\s+size)?|(?:image|img|input)[\s-]size|imgsz)(?:\s+(?:of|to|=|:))?\s+/i
    .source;
const SINO_DIGIT = '[일이삼사오육칠팔구]';
/** Sino-Korean numbers up to 999 ("삼십", "이십오", "백"): at least one character, digits with 백/십 places. */
const SINO_NUMBER = `(?=[일이삼사오육칠팔구십백])(?:[이삼사오육칠팔구]?백)?(?:[이삼사오육칠팔구]?십)?${SINO_DIGIT}?`;
const KO_NUMBER = `(?:(?:${alt(KO_TENS)})(?:${alt(KO_UNITS)})?|(?:${alt(KO_UNITS)})|${SINO_NUMBER})`;

function enValue(words: string): number {
  const parts = words.toLowerCase().split(/[\s-]+/);
  if (parts.includes('hundred')) return 100;
  return parts.reduce((n, w) => n + (EN_TENS[w] ?? EN_UNITS[w] ?? 0), 0);
}

const SINO_VALUE: Record<string, number> = { 일: 1, 이: 2, 삼: 3, 사: 4, 오: 5, 육: 6, 칠: 7, 팔: 8, 구: 9 };

/** The value of a Sino-Korean number ("이십오" = 25, "백" = 100), or undefined when it is not one. */
function sinoValue(words: string): number | undefined {
  const m = /^(?:([이삼사오육칠팔구])?(백))?(?:([이삼사오육칠팔구])?(십))?([일이삼사오육칠팔구])?$/.exec(
    words,
  );
  if (m === null || words === '') return undefined;
  const place = (digit: string | undefined, marker: string | undefined, size: number) =>
    marker === undefined ? 0 : (digit === undefined ? 1 : SINO_VALUE[digit]!) * size;
  return place(m[1], m[2], 100) + place(m[3], m[4], 10) + (m[5] === undefined ? 0 : SINO_VALUE[m[5]]!);
}

function koValue(words: string): number {
  const sino = sinoValue(words);
  if (sino !== undefined) return sino;
  const ten = Object.keys(KO_TENS)
    .sort((a, b) => b.length - a.length)
    .find((t) => words.startsWith(t));
  const rest = ten === undefined ? words : words.slice(ten.length);
  return (ten === undefined ? 0 : KO_TENS[ten]!) + (KO_UNITS[rest] ?? 0);
}

/**
 * Numbers said in words, where they count something the tools take ("fifteen epochs", "batch size
 * of eight", "two canary devices", "카나리 두 대", "배치 열여섯"), and lines said in words ("line
 * two", "the second line", "2번째 라인") become "line 2"; elsewhere a word such as "one" stays a
 * word ("the new one").
 */
export function numbersInWords(text: string): string {
  return text
    .replace(new RegExp(`\\bline\\s+(${alt(EN_UNITS)})\\b`, 'gi'), (_, w: string) => `line ${enValue(w)}`)
    .replace(
      /\b(?:the\s+)?(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)\s+line\b/gi,
      (_, w: string) => `line ${ORDINALS.indexOf(w.toLowerCase()) + 1}`,
    )
    .replace(/(\d+)\s*번째\s*(라인|line)/gi, '$1번 $2')
    .replace(new RegExp(`\\b(${EN_NUMBER})(?=${EN_COUNTED})`, 'gi'), (w: string) => String(enValue(w)))
    .replace(new RegExp(`(?<=${EN_PARAM})(${EN_NUMBER})\\b`, 'gi'), (w: string) => String(enValue(w)))
    .replace(
      new RegExp(`(?<![\\p{L}])(${KO_NUMBER})(?=\\s*(?:대|에폭|에포크|번\\s*(?:학습|반복)))`, 'gu'),
      (w: string) => String(koValue(w)),
    )
    .replace(
      new RegExp(
        `(?<=(?:배치|에폭|에포크|카나리)\\s*(?:크기|사이즈)?\\s*(?:는|은|를|을)?\\s*)(${KO_NUMBER})(?=(?:으로|로|번|개|대)?(?![\\p{L}]))`,
        'gu',
      ),
      (w: string) => String(koValue(w)),
    );
}

/**
 * The text with names replaced by slot tokens, which is what the intent classifier reads: paths,
 * ids, model references, datasets, device names and tags, lines, and numbers. Words inside names
 * ("ship" in ship-hulls) never read as intents.
 */
export function maskSlots(text: string, known: Known): string {
  let out = ` ${text} `;
  const sub = (re: RegExp, slot: string) => {
    out = out.replace(re, ` {${slot}} `);
  };
  sub(/(?:^|\s)(?:\/|\.\/|~\/|storage:)[^\s"']+/g, 'path');
  // a relative folder under the import roots ("incoming/line4-helmets"), never a ratio such as 80/10/10
  sub(/(?<=\s)(?![\d/]+\s)[A-Za-z0-9_][\w.-]*\/[\w./-]*[\w-](?=\s)/g, 'path');
  const names = (list: string[], slot: string) => {
    for (const n of [...new Set(list)].filter((x) => x !== '').sort((a, b) => b.length - a.length)) {
      sub(new RegExp(`(?<![\\w@.-])${escape(n)}(?:@[\\w-]+)?(?![\\w-])`, 'gi'), slot);
    }
  };
  names(
    known.jobs.map((j) => j.id),
    'job',
  );
  names(
    known.rollouts.map((r) => r.id),
    'rollout',
  );
  names(
    known.versions.map((v) => v.id),
    'model',
  );
  sub(/(?<![\w@.-])[A-Za-z][\w.-]*@(?:\d+|latest|candidate|staging|production)(?![\w-])/gi, 'model');
  sub(/(?<![\w@.-])[A-Za-z][\w-]*\s+v(?:ersion)?\s*\d+\b/gi, 'model');
  sub(/(?<![\w@.-])v\d+\b/gi, 'model');
  sub(/[A-Za-z][\w-]*\s*\d+\s*버전/g, 'model');
  sub(/(?<![\d@])\d+\s*버전/g, 'model');
  names(known.datasets, 'dataset');
  names(
    known.devices.flatMap((d) => [d.id, d.name]),
    'device',
  );
  names(
    known.tags.filter((t) => /[\d-]/.test(t)),
    'target',
  );
  names([...new Set(known.versions.map((v) => v.model))], 'model');
  sub(/\bdata\s?sets?\s+(?:called\s+|named\s+)?["'“”]?[A-Za-z0-9][\w.@-]*[-_\d][\w.@-]*["'“”]?/gi, 'dataset');
  sub(/["'“”]?[A-Za-z0-9][\w.@-]*[-_\d][\w.@-]*["'“”]?\s*데이터\s*셋/g, 'dataset');
  sub(/\bline[\s-]?\d+\b(?![-_.]\w)|\d+\s*번\s*(?:라인|line)|라인\s*\d+|\d+\s*라인/gi, 'target');
  sub(/(?<![\w.-])\d+(?:\.\d+)?(?![\w.-])/g, 'num');
  return out.replace(/\s+/g, ' ').trim();
}

const EN_WH =
  /^\s*(?:what|which|who|whom|whose|when|where|why|how|is|are|was|were|do|does|did|has|have|had|am)\b/i;
const EN_REQUEST =
  /^\s*(?:(?:can|could|would|will)\s+you|please|pls|kindly|let'?s|i (?:want|need|would like))\b|\bplease\b/i;
const KO_WH =
  /뭐|무엇|무슨|어떤|어느|누가|누구|언제|어디|몇|왜|얼마|어때|있어\s*\?|됐어|났어|돼\s*있|되어\s*있|나요|니\s*\?|냐|까\s*\??$/;
const KO_REQUEST = /줘|주세요|줄래|줄\s*수|주실|해라|하자|할래|부탁|하세요|해요\s*$/;

/** True when the request asks something rather than asking for something to be done ("which model runs on line 2?"). */
export function isQuestion(text: string): boolean {
  const t = text.trim();
  if (/\p{Script=Hangul}/u.test(t)) return !KO_REQUEST.test(t) && (KO_WH.test(t) || /\?\s*$/.test(t));
  if (EN_REQUEST.test(t)) return false;
  return EN_WH.test(t) || /\?\s*$/.test(t);
}

const ACTION =
  /\b(?:deploy\w*|roll\s*(?:[\w@.-]+\s+){0,3}?out|rollouts?|ship\w*|push\w*|releas\w*|(?:re-?)?train\w*|fine-?tun\w*|promot\w*|roll\s*-?(?:[\w@.-]+\s+){0,3}?back|revert\w*|cancel\w*|delet\w*|remov\w*)\b|배포|학습|훈련|승격|롤백|취소|삭제/i;
/** Whether the text names an action that changes something (deploy, train, promote, roll back, cancel, delete…). */
export function asksForChange(text: string): boolean {
  return ACTION.test(text);
}

const NEGATION =
  /\b(?:no|not|don'?t|do not|never|without|skip|nor|instead of|hold (?:off|back)|no need to|leave out)\b|하지\s*(?:마|말)|말고|없이|빼고|제외|(?<!\p{L})안\s*(?:해|할|하)|금지|보류|나중에/iu;

/**
 * Splits a request into clauses and drops those that negate an action ("no deployment", "but
 * don't deploy it yet", "배포는 하지 말고"); returns the rest and what was dropped.
 */
export function dropNegated(text: string): { kept: string; dropped: string[] } {
  const clauses = text.split(
    /\s*(?:[,;.!]\s+|\s+(?:but|and then|then|and|except)\s+|\s+(?=(?:without|instead of)\s)|\s*(?:하고|하되|한\s*다음|한\s*뒤|고)\s+(?=\S*(?:배포|학습|승격|롤백))|(?<=말고)\s+)/i,
  );
  const kept: string[] = [];
  const dropped: string[] = [];
  for (const c of clauses) {
    if (c.trim() === '') continue;
    if (NEGATION.test(c) && ACTION.test(c)) dropped.push(c.trim());
    else kept.push(c);
  }
  return { kept: kept.join(' ').replace(/\s+/g, ' ').trim(), dropped };
}

const UNSUPPORTED =
  /\b(delete|remove|erase|wipe|purge|destroy|drop|rename|clear|truncate|reboot|shut\s*down|power\s*off|power-cycle|factory[\s-]reset)\b|(삭제|지워|지우|제거|없애|초기화|재부팅|리부팅|전원\s*(?:꺼|끄|off)|이름\S*\s*(?:\S+\s+){0,2}?\S*(?:바꿔|바꾸|변경))/i;
const APPROVE = /^\s*(?:please\s+)?(?:approve|reject|deny)\b|승인해\s*줘|승인\s*처리|반려해/i;
/** A feedback sample is accepted or rejected through a tool (review_feedback), unlike an approval. */
const FEEDBACK_SAMPLE = /\bfb_\w+|\bfeedback\b|피드백|샘플/i;

/** An action the assistant has no tool for and must refuse plainly, or undefined. */
export function unsupportedAction(text: string): { verb: string; kind: 'delete' | 'approve' } | undefined {
  const m = UNSUPPORTED.exec(text);
  if (m !== null) return { verb: (m[1] ?? m[2] ?? '').toLowerCase(), kind: 'delete' };
  const a = FEEDBACK_SAMPLE.test(text) ? null : APPROVE.exec(text);
  if (a !== null) return { verb: a[0].trim().toLowerCase(), kind: 'approve' };
  return undefined;
}
