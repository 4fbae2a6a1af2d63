// The Node API of the `lifeboat` package, run from a fresh project in which the package
// was installed from its tarballs (crates/cli/tests/npm.rs sets it up). Everything here
// goes through the installed launcher's platform package: no LIFEBOAT_BINARY.
//   node api.test.mjs   (cwd: the project; LIFEBOAT_REPO and LIFEBOAT_PASSWORD set)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.join(process.cwd(), 'package.json'));
const lifeboat = require('lifeboat');
const uploads = path.resolve('uploads');
const photo = path.join(uploads, 'photo.txt');

// backup: a typed report, the snapshot listed with its tags.
const first = await lifeboat.backup([uploads], { tags: ['from-node'] });
assert.match(first.id, /^[0-9a-f]{64}$/);
assert.equal(first.skipped, false);
assert.equal(first.summary.files, 1);
assert.deepEqual(first.warnings, []);
assert.match(first.rollback, /restore [0-9a-f]{8} --target .* --force$/);
const listed = await lifeboat.snapshots({ tags: ['from-node'] });
assert.deepEqual(listed.map((s) => s.id), [first.id]);
assert.deepEqual(listed[0].paths, [uploads]);

// restore: a snapshot into a new directory holds what was backed up.
const restored = path.resolve('restored');
const report = await lifeboat.restore({ snapshot: first.id, target: restored });
assert.equal(report.snapshot, first.id);
assert.equal(fs.readFileSync(path.join(restored, 'uploads', 'photo.txt'), 'utf8'), 'v1');

// A source at a moment: the directory as it was at the first backup.
fs.writeFileSync(photo, 'v2');
await lifeboat.backup([uploads]);
const atFirst = await lifeboat.restore({
  source: uploads,
  at: first.time,
  target: path.resolve('at-first'),
});
assert.equal(atFirst.restore_point.snapshot, first.id);

// status and drill: lifeboat.toml's plan, measured and drilled.
const status = await lifeboat.status({ config: 'lifeboat.toml' });
assert.deepEqual(status.restore_points.map((p) => p.source).sort(), ['db', 'uploads']);
assert.equal(status.ok, true, JSON.stringify(status));
const drilled = await lifeboat.drill('uploads', { config: 'lifeboat.toml' });
assert.equal(drilled.passed, true, JSON.stringify(drilled));
assert.ok(drilled.rto_seconds >= 0);

// snapshotBefore: the function's failure carries the rollback, which restores the data.
let failure;
try {
  await lifeboat.snapshotBefore(
    async () => {
      fs.writeFileSync(photo, 'ruined by a migration');
      throw new Error('migration 0042 failed');
    },
    { sources: [uploads] },
  );
} catch (error) {
  failure = error;
}
assert.ok(failure instanceof lifeboat.MigrationFailedError, String(failure));
assert.ok(failure instanceof lifeboat.LifeboatError);
assert.equal(failure.cause.message, 'migration 0042 failed');
assert.equal(failure.rollback.length, 1);
assert.match(failure.message, /migration 0042 failed; to put the data back/);
const [program, ...args] = failure.rollback[0].split(' ').map((w) => w.replace(/^'(.*)'$/, '$1'));
assert.equal(program, 'lifeboat');
execFileSync('npx', ['--offline', 'lifeboat', ...args], { stdio: 'inherit' });
assert.equal(fs.readFileSync(photo, 'utf8'), 'v2');
const pinned = await lifeboat.snapshots({ tags: ['before-run'] });
assert.equal(pinned.length, 1);
assert.equal(pinned[0].pinned, true);

// snapshotBefore passes the function's value through when it succeeds.
assert.equal(await lifeboat.snapshotBefore(() => 42, { sources: [uploads] }), 42);

// Errors are typed by exit code and say what went wrong in one line.
await assert.rejects(lifeboat.snapshots({ password: 'not the passphrase' }), (error) => {
  assert.ok(error instanceof lifeboat.WrongPassphraseError, String(error));
  assert.equal(error.exitCode, lifeboat.EXIT.WRONG_PASSPHRASE);
  assert.ok(!error.message.includes('\n'));
  return true;
});
await assert.rejects(lifeboat.snapshots({ repo: path.resolve('no-such-repo') }), (error) => {
  assert.ok(error instanceof lifeboat.NoRepositoryError, String(error));
  assert.match(error.message, /no-such-repo/);
  return true;
});
await assert.rejects(lifeboat.restore({ snapshot: 'ffffffff', target: path.resolve('x') }), (error) => {
  assert.ok(error instanceof lifeboat.LifeboatError);
  assert.ok(error.exitCode > 0);
  return true;
});
// The databases migration tools are configured with, as sources.
assert.equal(
  lifeboat.databaseUrl({ client: 'pg', connection: { host: 'db', port: 6543, user: 'app', password: 'p@ss', database: 'shop' } }),
  'postgres://app:p%40ss@db:6543/shop',
);
assert.equal(
  lifeboat.databaseUrl({ client: 'better-sqlite3', connection: { filename: './dev.sqlite3' } }, '/srv/app'),
  '/srv/app/dev.sqlite3',
);
assert.equal(
  lifeboat.databaseUrl({ dialect: 'mysql', username: 'root', host: '127.0.0.1', database: 'shop' }),
  'mysql://root@127.0.0.1/shop',
);
assert.equal(lifeboat.databaseUrl({ dialect: 'sqlite', storage: 'db.sqlite' }, '/srv'), '/srv/db.sqlite');
assert.equal(
  lifeboat.databaseUrl({ type: 'postgres', url: 'postgres://app@db/shop?sslmode=require' }),
  'postgres://app@db/shop?sslmode=require',
);
assert.throws(() => lifeboat.databaseUrl({ client: 'sqlite3', connection: { filename: ':memory:' } }), /in-memory/);
assert.throws(() => lifeboat.databaseUrl({ client: 'mssql', connection: {} }), /cannot back up/);
fs.mkdirSync('envtest');
fs.writeFileSync('envtest/.env', '# prisma\nDATABASE_URL="file:./dev.db" # local\n');
assert.equal(lifeboat.databaseUrlFromEnv('envtest', {}), 'file:./dev.db');
assert.equal(lifeboat.databaseUrlFromEnv('envtest', { DATABASE_URL: 'postgres://x/y' }), 'postgres://x/y');
console.log('api: ok');
