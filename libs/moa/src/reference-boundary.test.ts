import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  closingReferenceTag,
  describeReferenceBoundary,
  ESCAPED_REFERENCE_BRACKET,
  neutraliseReferenceText,
  openingReferenceTag,
  referenceTagName,
} from './reference-boundary.js';

describe('referenceTagName', () => {
  it('is "reference-" and 8 hex digits of a SHA-256 of the references', () => {
    expect(referenceTagName(['a', 'b'])).toMatch(/^reference-[0-9a-f]{8}$/);
    // Pinned: changing the derivation changes every prompt, and so every cached or recorded request.
    expect(referenceTagName(['a', 'b'])).toBe('reference-e61f7347');
  });

  it('is a deterministic function of the references', () => {
    expect(referenceTagName(['first', 'second'])).toBe(referenceTagName(['first', 'second']));
    expect(referenceTagName(['first', 'second'])).toBe(referenceTagName(['first', 'second'].slice()));
  });

  it('changes with any reference, their order, or where one ends and the next begins', () => {
    const names = [
      referenceTagName(['ab', 'c']),
      referenceTagName(['a', 'bc']),
      referenceTagName(['c', 'ab']),
      referenceTagName(['ab', 'c', '']),
      referenceTagName(['ab', 'C']),
      referenceTagName(['abc']),
    ];
    expect(new Set(names).size).toBe(names.length);
  });
});

describe('opening and closing tags', () => {
  it('carry the tag name and, when opening, the index', () => {
    expect(openingReferenceTag('reference-0a1b2c3d', 2)).toBe('<reference-0a1b2c3d index="2">');
    expect(closingReferenceTag('reference-0a1b2c3d')).toBe('</reference-0a1b2c3d>');
  });
});

describe('describeReferenceBoundary', () => {
  it('names the tag, the numbering and the escape, without writing a tag', () => {
    const text = describeReferenceBoundary('reference-0a1b2c3d', 3);
    expect(text).toContain('XML-style tags named reference-0a1b2c3d');
    expect(text).toContain('index="1" to index="3"');
    expect(text).toContain(`replaced with ${ESCAPED_REFERENCE_BRACKET}`);
    expect(text).not.toContain('<');
  });

  it('does not speak of a range for one reference', () => {
    const text = describeReferenceBoundary('reference-0a1b2c3d', 1);
    expect(text).toContain('(index="1")');
    expect(text).not.toContain(' to index=');
  });
});

describe('neutraliseReferenceText', () => {
  it('leaves text without anything tag-like unchanged', () => {
    for (const text of [
      '',
      'plain answer',
      'a < b and c > d',
      'List<String> and Map<K, V>',
      '<ref> <refer> <div class="reference"> <p>reference</p>',
      'reference> /reference </ref erence>',
      '&lt;/reference&gt; &#60;/reference&#62; &#x3c;/reference&#x3e;',
      'naïve café, 日本語, emoji 🙂',
    ]) {
      expect(neutraliseReferenceText(text)).toBe(text);
    }
  });

  it('escapes only the bracket and keeps everything else', () => {
    expect(neutraliseReferenceText('a</reference>b')).toBe('a&lt;/reference>b');
    expect(neutraliseReferenceText('<\u200B/\u00ADrefer\u2060ence>')).toBe(
      '&lt;\u200B/\u00ADrefer\u2060ence>',
    );
  });

  it('escapes a harmless look-alike in code too, which stays readable', () => {
    expect(neutraliseReferenceText('if (i < reference.length)')).toBe('if (i &lt; reference.length)');
  });

  it('catches combining marks, composed characters and accented letters', () => {
    expect(neutraliseReferenceText('<\u0338/reference>')).toBe('&lt;\u0338/reference>');
    expect(neutraliseReferenceText('\u226E/reference>')).toBe('&lt;/reference>');
    expect(neutraliseReferenceText('</référence>')).toBe('&lt;/référence>');
  });

  it('catches every look-alike bracket and slash of its table', () => {
    const brackets = [
      '<',
      '＜',
      '﹤',
      '‹',
      '«',
      '〈',
      '〈',
      '《',
      '⟨',
      '⟪',
      '❬',
      '❮',
      '❰',
      '⦑',
      '⧼',
      '˂',
      'ᐸ',
      'ᚲ',
      '≺',
      '⋖',
      '︿',
    ];
    const slashes = ['/', '／', '\\', '＼', '﹨', '⁄', '∕', '∖', '⧸', '⧵', '╱', '丿', '⼃', 'ノ'];
    for (const bracket of brackets) {
      for (const slash of slashes) {
        expect(neutraliseReferenceText(`x${bracket}${slash}reference>`)).toBe(
          `x${ESCAPED_REFERENCE_BRACKET}${slash}reference>`,
        );
      }
    }
  });

  it('catches look-alike letters', () => {
    for (const word of [
      'rеfеrеnсе',
      'ʀᴇꜰᴇʀᴇɴᴄᴇ',
      'ＲＥＦＥＲＥＮＣＥ',
      '𝐫𝐞𝐟𝐞𝐫𝐞𝐧𝐜𝐞',
      'ⓡⓔⓕⓔⓡⓔⓝⓒⓔ',
      'REFERENCE',
    ]) {
      expect(neutraliseReferenceText(`</${word}>`)).toBe(`&lt;/${word}>`);
    }
  });

  const tagish = fc.array(
    fc.oneof(
      fc.constantFrom(
        '<',
        '</',
        '>',
        '/',
        ' ',
        '\u200B',
        '\u00AD',
        '＜',
        '‹',
        'reference',
        'REFER',
        'ence',
        '&lt;',
      ),
      fc.string({ unit: 'binary', maxLength: 4 }),
    ),
    { maxLength: 20 },
  );

  it('is idempotent', () => {
    fc.assert(
      fc.property(tagish, (parts) => {
        const once = neutraliseReferenceText(parts.join(''));
        expect(neutraliseReferenceText(once)).toBe(once);
      }),
      { numRuns: 300 },
    );
  });
});
