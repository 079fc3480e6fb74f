// The programmatic API of hotbackup.
export * from './client.js';
export { shimPath, requireShimPath, packageRoot } from './lib-path.js';
export * from './units.js';
export { Catalog, openCatalog, defaultCatalogPath, ACTIVE_STATES } from './catalog.js';
export type { BackupRecord, CatalogState } from './catalog.js';
export { Journal, withJournal, registerUndo, undoActions, recoverDeadJournals, listJournals, journalSteps, getJournal } from './journal.js';
export type { Undo, UndoHandler, UndoContext, JournalRecord, StepRecord, JournalReport, StepReport } from './journal.js';
export { resolveSocket, listSockets, defaultSocketDir } from './discovery.js';
export type { SocketCandidate, Resolution } from './discovery.js';
export { main } from './cli/main.js';
export { EXIT, UserError } from './cli/command.js';
export { verifyBackup, isInnodbFile, MANIFEST_NAME } from './verify.js';
export type { VerifyReport, VerifyProblem, VerifyOptions, VerifyProgress, VerifyStatus, ProblemKind, Manifest, ManifestEntry } from './verify.js';
export { backup, inProcessBackup, ShimNotLoadedError } from './backup.js';
export type { InProcessStartOptions, WaitOptions } from './backup.js';
export { loadAddon, AddonLoadError } from './addon.js';
export type { Addon, ScanResult, ScanInput, ScanOptions, PageReport, BadPage, ShimInfo } from './addon.js';
