/**
 * A short, escaped excerpt of text read from a dataset file, for messages and reports: at most
 * `max` characters, control and non-ASCII characters escaped (`\n`, `\u001b`, …) so a report line
 * never carries raw file content, terminal escapes or markup-breaking bytes.
 */
export function excerpt(text: string, max = 20): string {
  const chars = [...text];
  const cut = chars.length > max ? chars.slice(0, max) : chars;
  return escapeText(cut.join('')) + (chars.length > max ? '…' : '');
}

/** Escapes control characters, quotes, backslashes and anything outside printable ASCII. */
export function escapeText(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === '"') out += '\\"';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || (code >= 0x7f && code < 0xa0) || code > 0x7e)
      out += code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out;
}
