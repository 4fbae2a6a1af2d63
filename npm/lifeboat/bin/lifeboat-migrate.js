#!/usr/bin/env node
'use strict';
// `lifeboat-migrate TOOL ARGS...`: a migration with a safety net. Takes a pinned restore
// point of the database TOOL is about to change, runs TOOL, and when it fails prints the
// one command per database that puts the data back as it was just before (nothing is
// rolled back by itself: a person decides). The database comes from --source, else from
// the tool's own configuration (Knex's knexfile, Sequelize's config/config.json), else
// DATABASE_URL (the environment, then .env, as Prisma, Drizzle and TypeORM setups read it).
//
//   lifeboat-migrate prisma migrate deploy
//   lifeboat-migrate drizzle-kit migrate
//   lifeboat-migrate knex migrate:latest [--knexfile FILE] [--env NAME]
//   lifeboat-migrate sequelize db:migrate [--env NAME]
//   lifeboat-migrate typeorm migration:run -d ./data-source.js
//   lifeboat-migrate --source ./data/app.db -- node scripts/migrate.js

const { spawn } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');
const { snapshotBefore, MigrationFailedError } = require('../lib/index.js');
const { databaseUrl, databaseUrlFromEnv } = require('../lib/sources.js');

function usage(message) {
  process.stderr.write(
    `error: ${message}\nusage: lifeboat-migrate [--source URL_OR_PATH]... [--] TOOL [ARGS...]\n`,
  );
  process.exit(2);
}

/** The value of `--name VALUE` or `--name=VALUE` among a tool's own arguments. */
function option(args, name) {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name) return args[i + 1];
    if (args[i].startsWith(`${name}=`)) return args[i].slice(name.length + 1);
  }
  return undefined;
}

/** A configuration module's export: per environment, or one configuration. */
function forEnvironment(exported, env) {
  const config = exported && exported.default ? exported.default : exported;
  if (config && (config.client || config.dialect || config.use_env_variable)) return config;
  if (config && config[env]) return config[env];
  throw new Error(`the configuration has no environment ${JSON.stringify(env)}`);
}

async function sourcesFor(tool, args) {
  const env = option(args, '--env') || process.env.NODE_ENV || 'development';
  const name = path.basename(tool);
  if (name === 'knex') {
    const given = option(args, '--knexfile');
    const candidates = given ? [given] : ['knexfile.js', 'knexfile.cjs', 'knexfile.mjs'];
    const file = candidates.map((f) => path.resolve(f)).find((f) => fs.existsSync(f));
    if (!file) throw new Error(`no knexfile (${candidates.join(', ')}) in ${process.cwd()}`);
    const exported = file.endsWith('.mjs') ? await import(file) : require(file);
    // The knex CLI runs from the knexfile's directory: relative SQLite paths are from there.
    return [databaseUrl(forEnvironment(exported, env), path.dirname(file))];
  }
  if (name === 'sequelize' || name === 'sequelize-cli') {
    const file = path.resolve(option(args, '--config') || 'config/config.json');
    if (fs.existsSync(file)) {
      return [databaseUrl(forEnvironment(require(file), env), process.cwd())];
    }
  }
  const url = databaseUrlFromEnv();
  if (!url) {
    throw new Error(
      'no database to protect: give --source, or set DATABASE_URL (in the environment or .env)',
    );
  }
  if (name === 'prisma') return [prismaSqlitePath(url, args) || url];
  return [url];
}

/**
 * Prisma reads a relative `file:` URL from the schema's directory (prisma/dev.db for
 * `file:./dev.db` beside prisma/schema.prisma), not from where it runs: the path of that
 * file, or undefined for any other URL.
 */
function prismaSqlitePath(url, args) {
  const match = /^file:(?!\/\/)([^?]*)/.exec(url);
  if (!match || path.isAbsolute(match[1])) return undefined;
  let schema = option(args, '--schema');
  if (!schema) {
    try {
      schema = JSON.parse(fs.readFileSync('package.json', 'utf8')).prisma?.schema;
    } catch {
      schema = undefined;
    }
  }
  schema = path.resolve(schema || 'prisma/schema.prisma');
  const dir = fs.existsSync(schema) && fs.statSync(schema).isDirectory() ? schema : path.dirname(schema);
  return path.resolve(dir, match[1]);
}

function runTool(tool, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { stdio: 'inherit', shell: process.platform === 'win32' });
    child.on('error', (error) => reject(new Error(`cannot run ${tool}: ${error.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else {
        const error = new Error(`${tool} failed (${signal ? `signal ${signal}` : `exit code ${code}`})`);
        error.exitCode = code ?? 1;
        reject(error);
      }
    });
  });
}

async function main(argv) {
  const sources = [];
  let i = 0;
  for (; i < argv.length; i++) {
    if (argv[i] === '--') {
      i++;
      break;
    }
    if (argv[i] === '--source') sources.push(argv[++i]);
    else if (argv[i].startsWith('--source=')) sources.push(argv[i].slice('--source='.length));
    else if (argv[i].startsWith('-')) usage(`unknown option ${argv[i]}`);
    else break;
  }
  const [tool, ...args] = argv.slice(i);
  if (!tool) usage('name the migration command to run');
  const protect = sources.length ? sources : await sourcesFor(tool, args);
  try {
    await snapshotBefore(() => runTool(tool, args), { sources: protect });
  } catch (error) {
    if (!(error instanceof MigrationFailedError)) throw error;
    process.stderr.write(
      `${error.cause.message}. To put the data back as it was just before it:\n` +
        error.rollback.map((command) => `  ${command}\n`).join(''),
    );
    process.exit(error.cause.exitCode || 1);
  }
  process.stderr.write(
    `${tool} succeeded; the restore point taken before it stays pinned (tag before-run)\n`,
  );
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`error: ${error.message}\n`);
  process.exit(1);
});
