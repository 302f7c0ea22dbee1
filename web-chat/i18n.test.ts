import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const I18N_MODULE: string = './public/assets/i18n.js';
const { DICTIONARIES } = (await import(I18N_MODULE)) as {
  DICTIONARIES: { en: Record<string, string>; ko: Record<string, string> };
};
const PUBLIC = path.join(import.meta.dirname, 'public');
const html = readdirSync(PUBLIC).filter((f) => f.endsWith('.html'));
const scripts = readdirSync(path.join(PUBLIC, 'assets')).filter((f) => f.endsWith('.js'));

/** Text between tags whose nearest opening tag carries no data-i18n: visible text nobody translates. */
function untranslated(source: string): string[] {
  const body = source
    .replace(/<script[\s\S]*?<\/script>/g, '')
    .replace(/<style[\s\S]*?<\/style>/g, '')
    .replace(/<!--[\s\S]*?-->/g, '');
  const found: string[] = [];
  const re = /<([a-z0-9]+)([^>]*)>([^<]+)</gi;
  for (const m of body.matchAll(re)) {
    const text = m[3]!.trim();
    if (text === '' || /^[#·:\-–—]+$/.test(text)) continue;
    if (!/\bdata-i18n="[^"]+"/.test(m[2]!)) found.push(`<${m[1]}> ${text}`);
  }
  return found;
}

describe('i18n', () => {
  it('has the same keys in English and Korean, with no empty string', () => {
    const en = Object.keys(DICTIONARIES.en).sort();
    const ko = Object.keys(DICTIONARIES.ko).sort();
    expect(ko).toEqual(en);
    for (const lang of ['en', 'ko'] as const)
      for (const [k, v] of Object.entries(DICTIONARIES[lang])) expect(v, `${lang} ${k}`).not.toBe('');
  });

  it('keeps every placeholder of a string in both languages', () => {
    for (const [key, en] of Object.entries(DICTIONARIES.en)) {
      const names = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      expect(names(DICTIONARIES.ko[key] ?? ''), key).toEqual(names(en));
    }
  });

  it.each(html)('%s has no visible literal text without a data-i18n key, and every key exists', (file) => {
    const source = readFileSync(path.join(PUBLIC, file), 'utf8');
    expect(untranslated(source)).toEqual([]);
    for (const m of source.matchAll(/data-i18n(?:-placeholder|-aria)?="([^"]+)"/g))
      expect(DICTIONARIES.en, m[1]).toHaveProperty([m[1]!]);
  });

  it.each(scripts)('%s only uses keys that exist', (file) => {
    const source = readFileSync(path.join(PUBLIC, 'assets', file), 'utf8');
    for (const m of source.matchAll(/\bt\('([a-z_.A-Z]+)'/g))
      expect(DICTIONARIES.en, `${file}: ${m[1]}`).toHaveProperty([m[1]!]);
  });

  it('detects untranslated text (the check can fail)', () => {
    expect(untranslated('<p>Hello</p><p data-i18n="x">Hi</p>')).toEqual(['<p> Hello']);
  });
});
