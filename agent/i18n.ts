import i18next, { type TFunction } from 'i18next';
import { en } from './locales/en.js';
import { ko } from './locales/ko.js';

/** The languages the agent answers in. */
export type ReplyLanguage = 'en' | 'ko';

const HANGUL = /[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]/;

/** The language to answer a request in: Korean when the request is written in Hangul, else English. */
export function languageOf(text: string | null | undefined): ReplyLanguage {
  return text && HANGUL.test(text) ? 'ko' : 'en';
}

const agentI18n = i18next.createInstance();
void agentI18n.init({
  initAsync: false,
  lng: 'en',
  fallbackLng: 'en',
  supportedLngs: ['en', 'ko'],
  resources: { en: { agent: en }, ko: { agent: ko } },
  defaultNS: 'agent',
  ns: ['agent'],
  interpolation: { escapeValue: false },
});

/** The agent's message function for one language (plurals and numbers through i18next and Intl). */
export function agentT(lng: ReplyLanguage): TFunction {
  return agentI18n.getFixedT(lng, 'agent');
}

/** A number as people read it in `lng`: whole numbers with separators, fractions to 3 places. */
export function readableNumber(n: number, lng: ReplyLanguage = 'en'): string {
  return Number.isInteger(n) ? n.toLocaleString(lng === 'ko' ? 'ko-KR' : 'en-US') : n.toFixed(3);
}
