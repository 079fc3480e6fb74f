// The native addon (native/addon, built by node-gyp into build/Release/hotbackup_addon.node):
// parallel CRC32C of files, InnoDB page checks and in-process control of the shim. This is the
// only module that loads it (with node-gyp-build); a failed load says every place it looked and
// how to build it.
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from './lib-path.js';

const require = createRequire(import.meta.url);

export interface ScanInput {
  path: string;
  /** Check InnoDB pages too. */
  pages?: boolean;
  /** A system tablespace (ibdata*): pages in its doublewrite area may be copies in either format. */
  system?: boolean;
}

export interface BadPage {
  page: number;
  offset: number;
  reason: string;
}

export interface PageReport {
  /** Why the tablespace could not be checked at all (e.g. unknown FSP flags), or null. */
  error: string | null;
  /** 'full_crc32', 'crc32' (crc32/innodb/none checksums) or 'compressed' (ROW_FORMAT=COMPRESSED). */
  format: string | null;
  flags: number;
  pageSize: number;
  physicalPageSize: number;
  pages: number;
  zeroPages: number;
  skippedPages: number;
  skipReason: string | null;
  badCount: number;
  /** The first 1000 bad pages, in page order. */
  badPages: BadPage[];
  /** Bytes after the last full page. */
  trailingBytes: number;
}

export interface ScanResult {
  path: string;
  /** Bytes read. */
  size: number;
  /** Permission bits (st_mode & 0o7777) of the file read. */
  mode: number;
  /** CRC32C of the bytes read (unsigned). */
  crc32c: number;
  error: { code: string; message: string } | null;
  pages: PageReport | null;
}

export interface ScanOptions {
  /** Reader/checksum threads (default: one per CPU, at least 4). */
  threads?: number;
  /** One file is split into segments of this size, checksummed in parallel (default 32 MiB). */
  segmentBytes?: number;
  /** Read buffer per thread (default 256 KiB). */
  bufferBytes?: number;
  /** Checksum segments already in the page cache through a mapping instead of reading them
   *  (default true; segments with page checks are always read). */
  mapCached?: boolean;
}

export interface ShimInfo {
  /** hotbackup_request() is defined in this process (the shim is preloaded). */
  loaded: boolean;
  /** hotbackup_is_served() when loaded, else null. */
  served: boolean | null;
  /** The shared object that defines it. */
  path: string | null;
}

export interface Addon {
  crc32c(data: Uint8Array, crc?: number): number;
  crc32cCombine(crcA: number, crcB: number, lengthB: number): number;
  scanFiles(files: ScanInput[], options?: ScanOptions, onProgress?: (bytes: number, files: number) => void): Promise<ScanResult[]>;
  shimInfo(): ShimInfo;
  /** Throws (code 'shim_not_loaded') when the shim is not in this process. */
  shimRequest(json: string): Promise<string>;
}

export class AddonLoadError extends Error {
  readonly code = 'addon_missing';
  constructor(message: string, public readonly tried: string[]) {
    super(message);
  }
}

/** The places node-gyp-build looks in, in its order, as a reader can check them. */
export function addonCandidates(root: string): string[] {
  const tuple = `${platform()}-${arch()}`;
  const list = (dir: string, what: string) => {
    try {
      const files = readdirSync(dir).filter((f) => f.endsWith('.node'));
      return files.length ? files.map((f) => join(dir, f)) : [`${join(dir, what)} (no .node file there)`];
    } catch {
      return [`${join(dir, what)} (no such directory)`];
    }
  };
  const out: string[] = [];
  if (process.env.HOTBACKUP_PREBUILD) out.push(`$HOTBACKUP_PREBUILD=${process.env.HOTBACKUP_PREBUILD}`);
  out.push(...list(join(root, 'build', 'Release'), 'hotbackup_addon.node'));
  out.push(...list(join(root, 'build', 'Debug'), 'hotbackup_addon.node'));
  out.push(...list(join(root, 'prebuilds', tuple), `node.napi.node`));
  return out;
}

const cache = new Map<string, Addon>();

/** Loads the addon of the package at `root` (default: this package). */
export function loadAddon(root: string = packageRoot): Addon {
  const hit = cache.get(root);
  if (hit) return hit;
  let a: Addon;
  try {
    const load = require('node-gyp-build') as (dir: string) => Addon;
    a = load(root);
  } catch (e) {
    const tried = addonCandidates(root);
    const why = (e as Error).message.trim().split('\n')[0];
    const gyp = existsSync(join(root, 'binding.gyp'));
    throw new AddonLoadError(
      `the hotbackup native addon could not be loaded (${why}).\nLooked in:\n${tried.map((t) => `  - ${t}`).join('\n')}\n` +
        'Possible fixes:\n' +
        (gyp
          ? `  - build it: \`npm rebuild hotbackup\`, or \`node scripts/build.mjs\` in ${root} (needs g++, make and python3)\n`
          : `  - reinstall the package (${join(root, 'binding.gyp')} is missing)\n`) +
        '  - after a Node.js upgrade, rebuild it the same way\n' +
        '  - or point HOTBACKUP_PREBUILD at a directory holding build/Release/hotbackup_addon.node',
      tried,
    );
  }
  cache.set(root, a);
  return a;
}
