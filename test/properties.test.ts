// Property tests (fast-check) of what the control plane parses from outside (issue 14): the rate
// and size parser, and the manifest reader that verify and restore trust. Each property holds
// for every generated input; fast-check shrinks and prints a counterexample when one does not.
import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import { formatBytes, parseRate, parseSize, UnitError } from '../src/units.js';
import { parseManifest, type VerifyProblem } from '../src/verify.js';

const RUNS = { numRuns: 5000 };

test('units: any string parses to a safe non-negative whole number of bytes or throws UnitError, nothing else', () => {
  fc.assert(fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[-+ .0-9]{0,12}[kKmMgGtTi]{0,2}[bB]?(\/s)?$/)), (s) => {
    for (const parse of [parseRate, parseSize]) {
      try {
        const n = parse(s);
        assert.ok(Number.isSafeInteger(n) && n >= 0, `${JSON.stringify(s)} -> ${n}`);
      } catch (e) {
        assert.ok(e instanceof UnitError, `${JSON.stringify(s)} threw ${(e as Error).name}: ${(e as Error).message}`);
      }
    }
  }), RUNS);
});

test('units: found by the properties below: "0B" is zero bytes (it was refused as a binary literal)', () => {
  assert.equal(parseSize('0B'), 0);
  assert.equal(parseRate('0B/s'), 0);
  assert.throws(() => parseSize('0b101'), UnitError);
});

test('units: a number with any unit is that number times the unit, and plain byte counts round-trip', () => {
  const units: [string, number][] = [['', 1], ['k', 1e3], ['M', 1e6], ['G', 1e9], ['T', 1e12],
    ['Ki', 2 ** 10], ['Mi', 2 ** 20], ['Gi', 2 ** 30], ['Ti', 2 ** 40]];
  fc.assert(fc.property(fc.nat({ max: 999_999 }), fc.constantFrom(...units), fc.boolean(), (n, [u, f], perSecond) => {
    const rate = `${n}${u}B${perSecond ? '/s' : ''}`;
    if (!Number.isSafeInteger(n * f)) {  // beyond 2^53 bytes: refused, never rounded
      assert.throws(() => parseRate(rate), UnitError);
      assert.throws(() => parseSize(`${n}${u}B`), UnitError);
      return;
    }
    assert.equal(parseRate(rate), n * f);
    assert.equal(parseSize(`${n}${u}B`), n * f);
  }), RUNS);
  fc.assert(fc.property(fc.maxSafeNat(), (n) => {
    assert.equal(parseSize(String(n)), n);
    assert.equal(parseRate(`${n}B/s`), n);
    assert.match(formatBytes(n), /^\d+(\.\d+)? (B|kB|MB|GB|TB|KiB|MiB|GiB|TiB)$/);
  }), RUNS);
});

// Found by the property below: an entry under a directory that was itself refused (its parent
// missing) was kept, because parents were looked up among all entries, not the accepted ones.
test('manifest reader: an entry under a refused directory is refused too', () => {
  const problems: VerifyProblem[] = [];
  const m = parseManifest(Buffer.from(JSON.stringify({ format: 'hotbackup-manifest-1', entries: [
    { path: 'a/b', type: 'dir', mode: 0o755 }, { path: 'a/b/c', type: 'dir', mode: 0o755 }] })), problems)!;
  assert.deepEqual(m.entries, []);
  assert.equal(problems.length, 2);
});

// Manifests built from a small alphabet of path pieces, so that "..", ".", "", "/" and parents of
// every type come up often.
const piece = fc.constantFrom('a', 'b', 'c', '.', '..', '', 'a/b', '/a');
const entry = fc.record({
  path: fc.array(piece, { minLength: 1, maxLength: 3 }).map((p) => p.join('/')),
  type: fc.constantFrom('file', 'dir', 'symlink', 'fifo'),
  mode: fc.oneof(fc.constantFrom(0o644, 0o755, 0o666, 0o4755, 0o10644, -1), fc.integer()),
  size: fc.oneof(fc.nat(), fc.constant(-1)),
  crc32c: fc.constantFrom('0000abcd', 'xyz', 'DEADBEEF'),
  target: fc.constantFrom('/etc', '../x', 'y'),
}, { requiredKeys: ['path', 'type'] });

test('manifest reader: never throws, and every entry it returns is safe to restore', () => {
  fc.assert(fc.property(fc.array(entry, { maxLength: 12 }), fc.anything(), fc.boolean(), (entries, junk, useJunk) => {
    const doc = useJunk ? junk : { format: 'hotbackup-manifest-1', entries };
    const problems: VerifyProblem[] = [];
    let text: string;
    try { text = JSON.stringify(doc) ?? 'null'; } catch { return; }
    const m = parseManifest(Buffer.from(text), problems);
    if (!m) return;
    const types = new Map(m.entries.map((e) => [e.path, e.type]));
    for (const e of m.entries) {
      assert.ok(!e.path.startsWith('/') && !e.path.split('/').some((s) => s === '' || s === '.' || s === '..'), e.path);
      assert.ok(['file', 'dir', 'symlink'].includes(e.type), e.type);
      assert.ok(Number.isInteger(e.mode) && e.mode >= 0 && e.mode <= 0o7777, `${e.path} mode ${e.mode}`);
      if (e.type !== 'symlink') assert.equal(e.mode & 0o002, 0, `${e.path} is world-writable`);
      const slash = e.path.lastIndexOf('/');
      if (slash >= 0) assert.equal(types.get(e.path.slice(0, slash)), 'dir', `${e.path}: parent is not a listed directory`);
    }
    assert.equal(new Set(m.entries.map((e) => e.path)).size, m.entries.length, 'duplicate paths');
  }), RUNS);
});
