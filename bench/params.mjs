// Settings of a full run and of the --quick smoke run. Every figure in the results is
// measured in the run; these only say how long and how large.
const MB = 1_000_000;

export const FULL = {
  mode: 'full',
  cache: 'cold', // 'cold': sync + drop_caches before each side of an idle copy; falls back to 'warm'
  bufferPool: '2G',
  base: { tables: 8, size: 80_000 }, // sysbench prepare: the datadir for load, idle cost, restore, size S1
  // Sizes S2/S3: S1 plus copies of the prepared sbtest tables (transportable tablespaces:
  // FLUSH TABLES FOR EXPORT, copy, IMPORT TABLESPACE), as many as reach ~4x and ~10x S1.
  growth: [3, 10],
  micro: { procs: 7, calls: 50_000, batches: 7, pairs: 201 },
  idle: { reps: 3, warmup: 2, seconds: 10, threads: 4, workloads: ['oltp_write_only', 'oltp_read_write'] },
  load: { reps: 2, captureReps: 1, seconds: 28, backupAt: 8, captureHold: 8, threads: 4, throttle: 50 * MB, script: 'oltp_write_only' },
  copy: { reps: 3 },
  scaling: { reps: 2 },
  throttle: { rates: [10 * MB, 50 * MB, 200 * MB], seconds: 8, change: [20 * MB, 100 * MB], changeSeconds: 5 },
  restore: { reps: 2 },
  files: { tables: [300, 1000, 2000], reps: 2 },
  verify: { reps: 2, benchArgs: ['--sizes=2GiB', '--runs=3'] },
};

export const QUICK = {
  mode: 'quick',
  cache: 'warm',
  bufferPool: '256M',
  base: { tables: 4, size: 5_000 },
  growth: [1.25, 1.6],
  micro: { procs: 2, calls: 20_000, batches: 3, pairs: 21 },
  idle: { reps: 1, warmup: 1, seconds: 3, threads: 4, workloads: ['oltp_write_only', 'oltp_read_write'] },
  load: { reps: 1, captureReps: 1, seconds: 8, backupAt: 2, captureHold: 2, threads: 4, throttle: 100 * MB, script: 'oltp_write_only' },
  copy: { reps: 1 },
  scaling: { reps: 1 },
  throttle: { rates: [20 * MB, 50 * MB, 100 * MB], seconds: 1.5, change: [20 * MB, 60 * MB], changeSeconds: 1.2 },
  restore: { reps: 1 },
  files: { tables: [10, 20, 40], reps: 1 },
  verify: { reps: 1, benchArgs: ['--sizes=48MiB', '--files=12', '--runs=1'] },
};

export { MB };
