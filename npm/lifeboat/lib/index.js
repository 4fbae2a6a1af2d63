'use strict';
// Lifeboat from Node: each function runs the `lifeboat` binary with `--json` and resolves
// with the report it printed (the same report types as the agent's API). Secrets (the
// passphrase, the repository URL, which may hold credentials) go to the child through
// its environment, never its arguments, which every user of the host can read.

const { spawn } = require('node:child_process');
const { binaryPath } = require('./platform.js');
const { databaseUrl, databaseUrlFromEnv } = require('./sources.js');

/** Exit codes the binary documents (`lifeboat --help`). */
const EXIT = {
  FAILURE: 1,
  USAGE: 2,
  DAMAGE_FOUND: 3,
  WRONG_PASSPHRASE: 4,
  NO_REPOSITORY: 5,
  SAVED_WITH_WARNINGS: 6,
};

/** A `lifeboat` run that failed: `exitCode` and the one-line `message` it printed. */
class LifeboatError extends Error {
  constructor(message, { exitCode, command, stderr, report } = {}) {
    super(message);
    this.name = new.target.name;
    this.exitCode = exitCode;
    this.command = command;
    this.stderr = stderr;
    /** The report printed before the failure, when there was one (a failed drill's). */
    this.report = report;
  }
}
class UsageError extends LifeboatError {}
class DamageFoundError extends LifeboatError {}
class WrongPassphraseError extends LifeboatError {}
class NoRepositoryError extends LifeboatError {}
/** `snapshotBefore`'s function failed; `rollback` holds the commands that undo it. */
class MigrationFailedError extends LifeboatError {
  constructor(message, { cause, rollback, snapshots }) {
    super(message, {});
    this.cause = cause;
    this.rollback = rollback;
    this.snapshots = snapshots;
  }
}

const ERROR_FOR_CODE = {
  [EXIT.USAGE]: UsageError,
  [EXIT.DAMAGE_FOUND]: DamageFoundError,
  [EXIT.WRONG_PASSPHRASE]: WrongPassphraseError,
  [EXIT.NO_REPOSITORY]: NoRepositoryError,
};

/** The child's environment: the caller's, with the options that hold secrets added. */
function childEnv(options) {
  const env = { ...process.env, ...(options.env || {}) };
  if (options.repo !== undefined) env.LIFEBOAT_REPO = options.repo;
  if (options.password !== undefined) env.LIFEBOAT_PASSWORD = options.password;
  if (options.passwordFile !== undefined) env.LIFEBOAT_PASSWORD_FILE = options.passwordFile;
  if (options.config !== undefined) env.LIFEBOAT_CONFIG = options.config;
  return env;
}

/** The last line of `stderr` that says what went wrong ("error: ..."), else all of it. */
function errorLine(stderr) {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const said = lines.filter((l) => l.startsWith('error:'));
  const line = said.length ? said[said.length - 1] : lines[lines.length - 1];
  return (line || 'lifeboat failed without a message').replace(/^error:\s*/, '');
}

function parseReport(stdout) {
  const text = stdout.trim();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Runs `lifeboat --json --quiet ARGS` and resolves with its parsed report; rejects with
 * a LifeboatError subclass chosen by the exit code. `okCodes` are exit codes whose report
 * is still the answer (a backup saved with warnings).
 */
function run(args, options = {}, okCodes = [0]) {
  const command = ['lifeboat', '--json', '--quiet', ...args];
  return new Promise((resolve, reject) => {
    let binary;
    try {
      binary = options.binary || binaryPath();
    } catch (error) {
      reject(new LifeboatError(error.message, { command }));
      return;
    }
    const child = spawn(binary, command.slice(1), {
      cwd: options.cwd,
      env: childEnv(options),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', (error) =>
      reject(new LifeboatError(`cannot run ${binary}: ${error.message}`, { command })),
    );
    child.on('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      const report = parseReport(stdout);
      if (okCodes.includes(code) && report !== undefined) {
        resolve(report);
        return;
      }
      const exitCode = code ?? 128;
      const Kind = ERROR_FOR_CODE[exitCode] || LifeboatError;
      const message = signal ? `lifeboat was ended by ${signal}` : errorLine(stderr);
      reject(new Kind(message, { exitCode, command, stderr, report }));
    });
  });
}

const list = (value) => (value === undefined ? [] : Array.isArray(value) ? value : [value]);
const flags = (name, values) => list(values).map((v) => `${name}=${v}`);

/**
 * Backs up files, directories, SQLite databases (paths or `file:`/`sqlite:` URLs) or the
 * databases of one PostgreSQL/MySQL server (URLs); with no paths, DATABASE_URL. Resolves
 * with the BackupReport (its `warnings` name paths that were skipped).
 */
function backup(paths, options = {}) {
  const args = ['backup', ...flags('--tag', options.tags)];
  if (options.pin) args.push('--pin');
  const given = list(paths);
  let childOptions = options;
  if (given.length === 1 && hasCredentials(given[0])) {
    // A URL with a password goes to the child as DATABASE_URL, out of the process list.
    childOptions = { ...options, env: { ...options.env, DATABASE_URL: given[0] } };
  } else {
    args.push('--', ...given);
  }
  return run(args, childOptions, [0, EXIT.SAVED_WITH_WARNINGS]);
}

/** Whether `text` is a URL carrying a password (`postgres://user:secret@host/db`). */
function hasCredentials(text) {
  try {
    return new URL(text).password !== '';
  } catch {
    return false;
  }
}

/** The repository's snapshots, oldest first (with `tags`, only those carrying them). */
function snapshots(options = {}) {
  return run(['snapshots', ...flags('--tag', options.tags)], options);
}

/**
 * Restores a snapshot (`snapshot`: an id, `latest`) into `target` (a directory, or a
 * file for a command's output), or into a new database (`into`: a URL); or a source of
 * lifeboat.toml or a path as it was at `at` (`source`, `at`: latest, a time, -10m, tx:N).
 */
function restore(options) {
  const args = ['restore'];
  if (options.source !== undefined) {
    args.push(`--source=${options.source}`, `--at=${options.at || 'latest'}`);
  } else {
    args.push(options.snapshot || 'latest');
  }
  if (options.target !== undefined) args.push(`--target=${options.target}`);
  if (options.into !== undefined) args.push(`--into=${options.into}`);
  if (options.force) args.push('--force');
  return run(args, options);
}

/** Every plan's sources of lifeboat.toml against their RPO on each target. */
function status(options = {}) {
  return run(['status', ...list(options.sources)], options, [0, EXIT.FAILURE]);
}

/**
 * A restore drill of `source`: restored into scratch space, checked, timed. Resolves
 * with the DrillReport whether it passed or not (`passed` says); rejects only when no
 * drill could run.
 */
function drill(source, options = {}) {
  const args = ['drill'];
  if (options.at !== undefined) args.push(`--at=${options.at}`);
  if (options.target !== undefined) args.push(`--target=${options.target}`);
  args.push('--', source);
  return run(args, options, [0, EXIT.FAILURE]);
}

/**
 * Takes a pinned snapshot of each source (paths or database URLs; DATABASE_URL when none
 * are given), then runs `fn`. When `fn` throws, rejects with a MigrationFailedError whose
 * `rollback` lists the commands that put the data back as it was just before, and
 * whose `cause` is what `fn` threw. Nothing is rolled back by itself: a person decides.
 */
async function snapshotBefore(fn, options = {}) {
  const sources = list(options.sources);
  const taken = [];
  for (const source of sources.length ? sources : [undefined]) {
    const report = await backup(source === undefined ? [] : [source], {
      ...options,
      tags: ['before-run', ...list(options.tags)],
      pin: true,
    });
    taken.push(report);
  }
  try {
    return await fn();
  } catch (cause) {
    const rollback = taken.map((r) => r.rollback).filter(Boolean);
    throw new MigrationFailedError(
      `${cause && cause.message ? cause.message : cause}; to put the data back as it was just before:\n` +
        rollback.map((c) => `  ${c}`).join('\n'),
      { cause, rollback, snapshots: taken },
    );
  }
}

module.exports = {
  backup,
  snapshots,
  restore,
  status,
  drill,
  snapshotBefore,
  databaseUrl,
  databaseUrlFromEnv,
  run,
  EXIT,
  LifeboatError,
  UsageError,
  DamageFoundError,
  WrongPassphraseError,
  NoRepositoryError,
  MigrationFailedError,
};
