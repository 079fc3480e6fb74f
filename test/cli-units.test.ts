// Rates and sizes (src/units.ts): every accepted form, every refused form, the formatter.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatBytes, formatDuration, formatRate, parseRate, parseSize, UnitError } from '../src/units.js';

describe('parseRate', () => {
  const good: [string, number][] = [
    ['20MB/s', 20_000_000],
    ['20 MB/s', 20_000_000],
    ['20M', 20_000_000],
    ['512KiB/s', 524_288],
    ['512Ki', 524_288],
    ['1.5G', 1_500_000_000],
    ['1.5GiB/s', 1_610_612_736],
    ['1.5GB', 1_500_000_000],
    ['2T', 2_000_000_000_000],
    ['1TiB', 2 ** 40],
    ['1k', 1000],
    ['1K', 1000],
    ['1kB/s', 1000],
    ['1KiB', 1024],
    ['4MiB/s', 4 * 2 ** 20],
    ['1048576', 1_048_576],
    ['1048576B', 1_048_576],
    ['1048576B/s', 1_048_576],
    ['100/s', 100],
    ['.5M', 500_000],
    ['0.5KiB', 512],
    ['off', 0],
    ['OFF', 0],
    ['unlimited', 0],
    ['0', 0],
    ['  7MB/s  ', 7_000_000],
  ];
  for (const [text, bytes] of good) {
    test(`${JSON.stringify(text)} = ${bytes} B/s`, () => assert.equal(parseRate(text), bytes));
  }

  const bad = ['fast', '-5MB/s', '+5MB/s', '0x', '0x10', '', '   ', '1e6', 'MB/s', '5 MB/h', '5Mb/s', '5mb', '5XB', '1.2.3',
    'Infinity', 'NaN', '5MB/s/s', '99999999999999999999', '5 MiB/ s'];
  for (const text of bad) {
    test(`refuses ${JSON.stringify(text)} with the accepted forms`, () => {
      assert.throws(() => parseRate(text), (e: unknown) => {
        assert.ok(e instanceof UnitError, `UnitError expected, got ${String(e)}`);
        assert.match(e.message, /Accepted: /);
        assert.match(e.message, /512KiB\/s/);
        assert.match(e.message, /"off"/);
        return true;
      });
    });
  }

  test('a lower-case b is refused as bits, with a hint', () => {
    assert.throws(() => parseRate('5Mb/s'), /"b" means bits/);
  });
  test('a negative rate says it cannot be negative', () => {
    assert.throws(() => parseRate('-5MB/s'), /negative/);
  });
});

describe('parseSize', () => {
  test('SI and IEC sizes', () => {
    assert.equal(parseSize('1.5G'), 1_500_000_000);
    assert.equal(parseSize('1.5GiB'), 1_610_612_736);
    assert.equal(parseSize('12345'), 12345);
  });
  test('refuses a rate, off, and bad forms', () => {
    for (const t of ['20MB/s', 'off', 'fast', '-1', '0x1', '']) {
      assert.throws(() => parseSize(t), (e: unknown) => e instanceof UnitError && /Accepted: /.test(e.message) && !/"off" for unlimited/.test(e.message), t);
    }
  });
});

describe('formatting', () => {
  test('formatRate shows exact bytes per second and a human form in the matching system', () => {
    assert.equal(formatRate(20_000_000), '20000000 B/s (20 MB/s)');
    assert.equal(formatRate(524_288), '524288 B/s (512 KiB/s)');
    assert.equal(formatRate(1_610_612_736), '1610612736 B/s (1.5 GiB/s)');
    assert.equal(formatRate(1_500_000_000), '1500000000 B/s (1.5 GB/s)');
    assert.equal(formatRate(0), 'off (unlimited)');
    assert.equal(formatRate(999), '999 B/s (999 B/s)');
  });
  test('formatBytes rounds odd values to three significant digits', () => {
    assert.equal(formatBytes(1_234_567), '1.23 MB');
    assert.equal(formatBytes(123_456_789), '123 MB');
    assert.equal(formatBytes(1024), '1 KiB');
    assert.equal(formatBytes(1000), '1 kB');
  });
  test("formatBytes(n, 'si') keeps progress figures in one system", () => {
    assert.equal(formatBytes(114688, 'si'), '115 kB');
    assert.equal(formatBytes(1024, 'si'), '1.02 kB');
    assert.equal(formatBytes(5_060_000, 'si'), '5.06 MB');
  });
  test('round trip: what the formatter shows parses back to the same bytes', () => {
    for (const n of [1000, 1024, 20_000_000, 524_288, 3 * 2 ** 30, 7_000_000_000]) {
      const human = formatBytes(n).replace(' ', '');
      assert.equal(parseSize(human), n, human);
    }
  });
  test('formatDuration', () => {
    assert.equal(formatDuration(7), '7s');
    assert.equal(formatDuration(125), '2m05s');
    assert.equal(formatDuration(3723), '1h02m03s');
    assert.equal(formatDuration(null), '-');
  });
});
