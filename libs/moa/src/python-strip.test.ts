import { describe, expect, it } from 'vitest';
import { pythonStrip } from './python-strip.js';

// Every code point for which Python 3's str.isspace() is true (computed with
// `[hex(c) for c in range(0x110000) if chr(c).isspace()]`).
const PYTHON_SPACES = [
  0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003,
  0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
];

describe('pythonStrip', () => {
  it('removes leading and trailing whitespace, keeping inner whitespace', () => {
    expect(pythonStrip('\n\n  An answer.\n\nSecond paragraph.  \t\n')).toBe(
      'An answer.\n\nSecond paragraph.',
    );
    expect(pythonStrip('no change')).toBe('no change');
    expect(pythonStrip(' \n\t ')).toBe('');
    expect(pythonStrip('')).toBe('');
  });

  it('strips exactly the characters Python strips', () => {
    for (let code = 0; code < 0x3100; code += 1) {
      const char = String.fromCodePoint(code);
      const stripped = pythonStrip(`${char}x${char}`);
      expect(stripped, `U+${code.toString(16)}`).toBe(PYTHON_SPACES.includes(code) ? 'x' : `${char}x${char}`);
    }
    // JavaScript's trim() removes the byte-order mark; Python keeps it.
    expect(pythonStrip('\ufeffx\ufeff')).toBe('\ufeffx\ufeff');
  });
});
