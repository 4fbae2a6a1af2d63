// Types of the reports `lifeboat --json` prints (crates/ops/src/report.rs and
// friends); `test/api.test.mjs` checks each against a real run.

export interface Options {
  /** The repository (LIFEBOAT_REPO); passed in the child's environment. */
  repo?: string;
  /** The passphrase (LIFEBOAT_PASSWORD); passed in the child's environment. */
  password?: string;
  /** A file holding the passphrase (LIFEBOAT_PASSWORD_FILE). */
  passwordFile?: string;
  /** lifeboat.toml (LIFEBOAT_CONFIG). */
  config?: string;
  cwd?: string;
  /** Added to the child's environment. */
  env?: Record<string, string>;
  /** A lifeboat binary other than the installed platform package's. */
  binary?: string;
}

export interface SnapshotSummary {
  files: number;
  dirs: number;
  total_bytes: number;
  new_bytes: number;
  stored_bytes: number;
  new_blobs: number;
  duration_ms: number;
  database_pages: number;
  changed_pages: number;
}

export interface SnapshotWarning {
  path: string;
  problem: string;
}

export interface BackupReport {
  id: string;
  short_id: string;
  time: string;
  /** Nothing changed since snapshot `id`; no snapshot was saved. */
  skipped: boolean;
  summary: SnapshotSummary;
  recovered_packs: number;
  /** Paths the snapshot lacks or holds as plain bytes. */
  warnings: SnapshotWarning[];
  /** The command that puts this snapshot back over the live data. */
  rollback: string | null;
}

export interface Snapshot {
  id: string;
  short_id: string;
  time: string;
  host: string;
  username: string;
  paths: string[];
  tags: string[];
  pinned: boolean;
  source: { kind: string; [key: string]: unknown };
  tree: string;
  parent: string | null;
  size: number;
  added_size: number;
  summary: SnapshotSummary;
  warnings: SnapshotWarning[];
}

/** `restore({snapshot, target | into})`. */
export interface SnapshotRestoreReport {
  snapshot: string;
  bytes: number;
  seconds: number;
  restored: string;
}

/** `restore({source, at, target})`. */
export interface SourceRestoreReport {
  source: string;
  at: string;
  restore_point: {
    time: string;
    kind: string;
    snapshot: string;
    segment: number | null;
    transaction: number | null;
  };
  target: string;
  bytes: number;
  checked: boolean;
  seconds: number;
  note: string | null;
}

export interface RestorePointStatus {
  plan: string;
  source: string;
  target: string;
  newest: string | null;
  age_seconds: number | null;
  rpo_seconds: number | null;
  rpo_met: boolean | null;
  error: string | null;
}

export interface StatusReport {
  time: string;
  /** No row misses its RPO. */
  ok: boolean;
  restore_points: RestorePointStatus[];
}

export interface CheckResult {
  check: string;
  passed: boolean;
  detail: string | null;
}

export interface DrillReport {
  time: string;
  host: string;
  source: string;
  passed: boolean;
  reason: string | null;
  restore_point: string | null;
  snapshot: string | null;
  rto_seconds: number;
  rpo_seconds: number | null;
  checks: CheckResult[];
}

export declare const EXIT: {
  readonly FAILURE: 1;
  readonly USAGE: 2;
  readonly DAMAGE_FOUND: 3;
  readonly WRONG_PASSPHRASE: 4;
  readonly NO_REPOSITORY: 5;
  readonly SAVED_WITH_WARNINGS: 6;
};

export declare class LifeboatError extends Error {
  /** The binary's exit code (see EXIT). */
  readonly exitCode: number | undefined;
  readonly command: string[] | undefined;
  readonly stderr: string | undefined;
  readonly report: unknown;
}
export declare class UsageError extends LifeboatError {}
export declare class DamageFoundError extends LifeboatError {}
export declare class WrongPassphraseError extends LifeboatError {}
export declare class NoRepositoryError extends LifeboatError {}
export declare class MigrationFailedError extends LifeboatError {
  readonly cause: unknown;
  /** Commands that put each source back as it was just before. */
  readonly rollback: string[];
  readonly snapshots: BackupReport[];
}

export declare function backup(
  paths?: string | string[],
  options?: Options & { tags?: string[]; pin?: boolean },
): Promise<BackupReport>;

export declare function snapshots(options?: Options & { tags?: string[] }): Promise<Snapshot[]>;

export declare function restore(
  options: Options &
    ({ snapshot?: string; source?: undefined } | { source: string; at?: string }) & {
      target?: string;
      into?: string;
      force?: boolean;
    },
): Promise<SnapshotRestoreReport | SourceRestoreReport>;

export declare function status(options?: Options & { sources?: string[] }): Promise<StatusReport>;

export declare function drill(
  source: string,
  options?: Options & { at?: string; target?: string },
): Promise<DrillReport>;

export declare function snapshotBefore<T>(
  fn: () => T | Promise<T>,
  options?: Options & { sources?: string | string[]; tags?: string[] },
): Promise<T>;

export declare function run(args: string[], options?: Options, okCodes?: number[]): Promise<unknown>;

/** A database configuration as JavaScript tools write it. */
export type DatabaseConfig =
  | string
  | {
      client?: string;
      dialect?: string;
      type?: string;
      connection?: string | Record<string, unknown> | (() => Record<string, unknown>);
      use_env_variable?: string;
      [key: string]: unknown;
    };

/**
 * The source a Knex, Sequelize or TypeORM configuration points at: a postgres:// or
 * mysql:// URL, or a SQLite file's absolute path (relative ones resolved from `dir`).
 */
export declare function databaseUrl(config: DatabaseConfig, dir?: string): string;

/** DATABASE_URL from the environment, else from `.env` in `dir`. */
export declare function databaseUrlFromEnv(
  dir?: string,
  env?: Record<string, string | undefined>,
): string | undefined;
