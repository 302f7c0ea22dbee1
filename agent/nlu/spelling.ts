import { distance } from 'fastest-levenshtein';

/**
 * Edit distance for typo correction: Levenshtein (fastest-levenshtein), except that one swap of
 * two neighbouring letters counts as one edit, as people make it ("hemlets" is one slip from
 * "helmets", not two).
 */
export function typoDistance(a: string, b: string): number {
  const d = distance(a, b);
  if (d !== 2 || a.length !== b.length) return d;
  const diff = [...a].flatMap((c, i) => (c === b[i] ? [] : [i]));
  const [i, j] = diff;
  return diff.length === 2 && j === i! + 1 && a[i!] === b[j] && a[j] === b[i!] ? 1 : d;
}

const SYLLABLE_FIRST = 0xac00;
const SYLLABLE_LAST = 0xd7a3;

/**
 * A Hangul string as its letters (jamo): a syllable block is its initial consonant, vowel and
 * optional final consonant (Unicode 15, §3.12 "Conjoining Jamo Behavior"). "학슴" and "학습" then
 * differ by one vowel, one edit, as the typo is made on a keyboard.
 */
export function jamo(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (code < SYLLABLE_FIRST || code > SYLLABLE_LAST) {
      out += ch;
      continue;
    }
    const index = code - SYLLABLE_FIRST;
    const initial = Math.floor(index / 588);
    const vowel = Math.floor((index % 588) / 28);
    const final = index % 28;
    out += String.fromCharCode(0x1100 + initial, 0x1161 + vowel);
    if (final > 0) out += String.fromCharCode(0x11a7 + final);
  }
  return out;
}

/**
 * The Korean command words typos are corrected towards: the verbs and nouns that carry an intent.
 * A closed list on purpose: correcting towards every corpus word turned real words into others
 * ("입력" into "이력", "카나리" into "하나리").
 */
const KO_COMMANDS = [
  '학습',
  '훈련',
  '재학습',
  '파인튜닝',
  '배포',
  '롤백',
  '롤아웃',
  '복구',
  '되돌려',
  '원복',
  '중지',
  '중단',
  '취소',
  '재개',
  '일시정지',
  '보류',
  '승격',
  '평가',
  '비교',
  '분할',
  '내보내',
  '가져와',
  '임포트',
  '검색',
  '검증',
  '감사',
  '로그',
  '목록',
  '상태',
  '진행',
  '지표',
  '성능',
  '정확도',
  '피드백',
  '데이터셋',
  '모델',
  '장비',
  '디바이스',
  '젯슨',
  '승인',
  '설명',
  '무결성',
  '프로덕션',
  '운영',
];

/** The command words spelt as letters, once. */
const COMMAND_LETTERS = new Map(KO_COMMANDS.map((w) => [w, jamo(w)]));
const hangulOf = new WeakMap<ReadonlySet<string>, string[]>();

/** The Hangul words of two or more syllables of a vocabulary and the command words, once per vocabulary. */
function hangulWords(vocabulary: ReadonlySet<string>): string[] {
  let words = hangulOf.get(vocabulary);
  if (words === undefined) {
    words = [...vocabulary, ...KO_COMMANDS].filter((w) => /^\p{Script=Hangul}{2,}$/u.test(w));
    hangulOf.set(vocabulary, words);
  }
  return words;
}

/**
 * Corrects Korean command words mistyped by one letter ("학슴해줘" → "학습해줘", "배표" → "배포")
 * against `KO_COMMANDS`. A run of Hangul that starts with a word of the corpus (`vocabulary`) or a
 * command word is left alone; otherwise a start of two or more syllables within one letter of
 * exactly one command word is replaced by it.
 */
export function correctHangul(text: string, vocabulary: ReadonlySet<string>): string {
  if (!/\p{Script=Hangul}/u.test(text)) return text;
  const known = hangulWords(vocabulary);
  const letters = COMMAND_LETTERS;
  return text.replace(/\p{Script=Hangul}{2,}/gu, (run) => {
    if (known.some((w) => run.startsWith(w))) return run;
    const close = [...letters].filter(
      ([word, spelled]) =>
        word.length <= run.length && distance(jamo(run.slice(0, word.length)), spelled) === 1,
    );
    const longest = Math.max(0, ...close.map(([w]) => w.length));
    const best = close.filter(([w]) => w.length === longest);
    return best.length === 1 ? best[0]![0] + run.slice(longest) : run;
  });
}
