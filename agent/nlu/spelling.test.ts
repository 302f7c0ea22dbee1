import { describe, expect, it } from 'vitest';
import { correctHangul, jamo, typoDistance } from './spelling.js';
import { dropNegated, numbersInWords } from './text.js';

const VOCABULARY = new Set(['학습', '배포', '롤백', '하나', '이력', '데이터셋']);

describe('spelling', () => {
  it('splits Hangul syllables into their letters', () => {
    // 학 = ㅎ ㅏ ㄱ, 습 = ㅅ ㅡ ㅂ: five letters differ from 학슴 (ㅅ ㅡ ㅁ) in one
    expect([...jamo('학습')]).toHaveLength(6);
    expect([...jamo('배포')]).toHaveLength(4);
    expect(jamo('a학')).toBe(`a${String.fromCharCode(0x1112, 0x1161, 0x11a8)}`);
  });

  it('counts a swap of neighbouring letters as one edit', () => {
    expect(typoDistance('hemlets', 'helmets')).toBe(1);
    expect(typoDistance('trian', 'train')).toBe(1);
    expect(typoDistance('helmets', 'helmets')).toBe(0);
    expect(typoDistance('abcd', 'bacd')).toBe(1);
    expect(typoDistance('abcd', 'badc')).toBeGreaterThan(1);
    expect(typoDistance('deploy', 'delay')).toBeGreaterThan(1);
  });

  it('corrects Korean command words one letter off, keeping the ending', () => {
    expect(correctHangul('helmets-v2 로 학슴해줘', VOCABULARY)).toBe('helmets-v2 로 학습해줘');
    expect(correctHangul('line-3 에 배표', VOCABULARY)).toBe('line-3 에 배포');
  });

  it('leaves real words alone, also when a corpus word is one letter from them', () => {
    // 입력 is one letter from 이력 and 카나리 starts one letter from 하나: neither is a command word
    expect(correctHangul('입력 크기 640', VOCABULARY)).toBe('입력 크기 640');
    expect(correctHangul('카나리 2대', VOCABULARY)).toBe('카나리 2대');
    expect(correctHangul('학습해줘 배포해줘', VOCABULARY)).toBe('학습해줘 배포해줘');
  });

  it('reads Sino-Korean numbers where they count something', () => {
    expect(numbersInWords('삼십 에폭 학습')).toBe('30 에폭 학습');
    expect(numbersInWords('배치 십육')).toBe('배치 16');
    expect(numbersInWords('이십오 에폭')).toBe('25 에폭');
    expect(numbersInWords('백 에폭')).toBe('100 에폭');
    // a particle or a word that only looks like a digit stays
    expect(numbersInWords('모델이 좋아')).toBe('모델이 좋아');
  });

  it('does not read 제안해줘 (propose) as the negation 안 해', () => {
    expect(dropNegated('재학습 제안해줘').dropped).toEqual([]);
    expect(dropNegated('배포는 안 해도 돼, 학습만 해줘').dropped).toEqual(['배포는 안 해도 돼']);
  });
});
