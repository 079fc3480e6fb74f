// Byte sizes and byte rates: the one parser and the one formatter the CLI uses.
//
// Accepted forms (case of the unit letters as written here; spaces between number and unit allowed):
//
//   plain bytes        12345            12345B         (rates: 12345B/s, 12345/s)
//   SI, powers of 10   1.5k 1.5kB 20M 20MB 1.5G 1.5GB 2T 2TB        k=10^3 M=10^6 G=10^9 T=10^12
//   IEC, powers of 2   512Ki 512KiB 20Mi 20MiB 1.5Gi 1.5GiB 1Ti     Ki=2^10 Mi=2^20 Gi=2^30 Ti=2^40
//   rates              any of the above followed by "/s" (optional): 20MB/s, 512KiB/s
//   unlimited rate     off  (also 0)
//
// "K" is read as "k" (10^3) because everyone writes it; the prefix letter is case-insensitive,
// the "i" of IEC prefixes is lower case, and the unit must be "B" (bytes): "b" means bits and is
// refused with a hint. Fractions are allowed and rounded to the nearest whole byte.
// Refused: words ("fast"), signs ("-5MB/s", "+5M"), hex/exponent forms ("0x10", "1e6"),
// empty strings, values beyond 2^53 bytes, and "/s" on a size.

/** A rate or size that does not parse; the message lists the accepted forms. */
export class UnitError extends Error {
  constructor(public readonly input: string, reason: string, kind: 'rate' | 'size') {
    super(`${JSON.stringify(input)} is not a valid ${kind}: ${reason}. ${acceptedForms(kind)}`);
  }
}

export function acceptedForms(kind: 'rate' | 'size'): string {
  return kind === 'rate'
    ? 'Accepted: bytes per second as a number (1048576), SI units k/M/G/T = 10^3/10^6/10^9/10^12 ' +
        '(20MB/s, 1.5G), IEC units Ki/Mi/Gi/Ti = 2^10/2^20/2^30/2^40 (512KiB/s, 1GiB), ' +
        'an optional "/s", or "off" for unlimited.'
    : 'Accepted: a number of bytes (1048576), SI units k/M/G/T = 10^3/10^6/10^9/10^12 ' +
        '(20MB, 1.5G) or IEC units Ki/Mi/Gi/Ti = 2^10/2^20/2^30/2^40 (512KiB, 1GiB).';
}

const PREFIX: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 };
const IEC_PREFIX: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };
const GRAMMAR = /^(\d+(?:\.\d+)?|\.\d+)\s*(?:([kKmMgGtT])(i)?)?(B|b)?(\/s)?$/;

function parseQuantity(input: string, kind: 'rate' | 'size'): number {
  const text = input.trim();
  if (text === '') throw new UnitError(input, 'it is empty', kind);
  if (kind === 'rate' && /^(off|unlimited)$/i.test(text)) return 0;
  if (/^[-+−]/.test(text)) throw new UnitError(input, 'it must not have a sign (and cannot be negative)', kind);
  // "0B" is zero bytes, not the start of a binary literal.
  if (/^0(x[0-9a-f]|o[0-7]|b[01])/i.test(text)) throw new UnitError(input, 'hexadecimal, octal and binary forms are not accepted', kind);
  const m = GRAMMAR.exec(text);
  if (!m) throw new UnitError(input, 'it is not a number followed by an optional unit', kind);
  const [, num, prefix = '', iec, unit, perSecond] = m;
  if (unit === 'b') throw new UnitError(input, '"b" means bits; write "B" for bytes', kind);
  if (perSecond && kind === 'size') throw new UnitError(input, 'a size has no "/s"', kind);
  const factor = iec ? IEC_PREFIX[prefix.toLowerCase()] : PREFIX[prefix.toLowerCase()];
  const bytes = Math.round(Number(num) * factor);
  if (!Number.isSafeInteger(bytes)) throw new UnitError(input, 'it is too large', kind);
  return bytes;
}

/** Parses a copy rate; returns bytes per second, 0 meaning unlimited ("off"). Throws UnitError. */
export function parseRate(input: string): number {
  return parseQuantity(input, 'rate');
}

/** Parses a size; returns bytes. Throws UnitError. */
export function parseSize(input: string): number {
  return parseQuantity(input, 'size');
}

function trim(n: number): string {
  // Three significant digits at most, no trailing zeros: 1.50 -> 1.5, 20.0 -> 20.
  const s = n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/** Human form of a byte count, three significant digits; `system: 'si'` always uses SI units
 *  (progress figures, so that "112 kB of 5.06 MB" compare at a glance). IEC units when the value is a multiple
 *  of 1024 and not of 1000 (524288 -> "512 KiB", 1610612736 -> "1.5 GiB"), else SI (20000000 -> "20 MB"). */
export function formatBytes(bytes: number, system: 'auto' | 'si' = 'auto'): string {
  if (!Number.isFinite(bytes) || bytes < 1000) return `${bytes} B`;
  const iecShaped = system === 'auto' && bytes % 1024 === 0 && bytes % 1000 !== 0;
  const units: [number, string][] = iecShaped
    ? [[2 ** 40, 'TiB'], [2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB']]
    : [[1e12, 'TB'], [1e9, 'GB'], [1e6, 'MB'], [1e3, 'kB']];
  for (const [f, u] of units) if (bytes >= f) return `${trim(bytes / f)} ${u}`;
  return `${bytes} B`;
}

/** A rate shown unambiguously: exact bytes per second and the human form, "off" for 0. */
export function formatRate(bytesPerSec: number): string {
  if (bytesPerSec === 0) return 'off (unlimited)';
  return `${bytesPerSec} B/s (${formatBytes(bytesPerSec)}/s)`;
}

/** A duration in seconds as "1h02m03s" / "2m05s" / "7s". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds)) return '-';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h) return `${h}h${String(m).padStart(2, '0')}m${String(r).padStart(2, '0')}s`;
  if (m) return `${m}m${String(r).padStart(2, '0')}s`;
  return `${r}s`;
}
