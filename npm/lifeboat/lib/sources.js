'use strict';
// The database a JavaScript project's migration tool changes, as a source Lifeboat backs
// up: a URL (postgres://, mysql://) or a SQLite file. Read from DATABASE_URL (the
// environment, else the project's .env, as Prisma and Drizzle read it), or from a Knex or
// Sequelize configuration object.

const fs = require('node:fs');
const path = require('node:path');

/** KEY=VALUE lines of a .env file (quotes removed, `#` comments skipped). */
function readDotenv(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return {};
  }
  const vars = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) continue;
    let value = match[2].trim();
    const quote = value[0];
    const close = quote === '"' || quote === "'" ? value.indexOf(quote, 1) : -1;
    if (close > 0) {
      // A quoted value ends at its closing quote; a comment may follow.
      value = value.slice(1, close);
    } else {
      value = value.replace(/\s+#.*$/, '');
    }
    vars[match[1]] = value;
  }
  return vars;
}

/** DATABASE_URL from the environment, else from `.env` in `dir`. */
function databaseUrlFromEnv(dir = process.cwd(), env = process.env) {
  return env.DATABASE_URL || readDotenv(path.join(dir, '.env')).DATABASE_URL;
}

const SCHEMES = {
  pg: 'postgres',
  postgres: 'postgres',
  postgresql: 'postgres',
  mysql: 'mysql',
  mysql2: 'mysql',
  mariadb: 'mysql',
};
const SQLITE = new Set(['sqlite', 'sqlite3', 'better-sqlite3']);

/** `postgres://user:password@host:port/database` from parts, each escaped. */
function urlOf(scheme, { user, password, host, port, database }) {
  const auth = user
    ? encodeURIComponent(user) + (password ? `:${encodeURIComponent(password)}` : '') + '@'
    : '';
  return `${scheme}://${auth}${host || 'localhost'}${port ? `:${port}` : ''}/${encodeURIComponent(database || '')}`;
}

/**
 * The source a Knex configuration (`{client, connection}`), a Sequelize one
 * (`{dialect, host, username, password, database, storage}` or `use_env_variable`) or a
 * TypeORM one (`{type, url | host, ..., database}`) points at, relative paths resolved
 * from `dir`.
 */
function databaseUrl(config, dir = process.cwd()) {
  if (typeof config === 'string') return config;
  if (!config || typeof config !== 'object') {
    throw new TypeError('a database configuration is a URL string or an object');
  }
  if (config.use_env_variable) {
    const url = process.env[config.use_env_variable];
    if (!url) throw new Error(`${config.use_env_variable} is not set (the configuration's use_env_variable)`);
    return url;
  }
  const kind = String(config.client || config.dialect || config.type || '').toLowerCase();
  const connection =
    typeof config.connection === 'function' ? config.connection() : config.connection ?? config;
  if (typeof connection === 'string') {
    return SQLITE.has(kind) ? path.resolve(dir, connection) : connection;
  }
  if (connection.connectionString) return connection.connectionString;
  if (connection.url) return connection.url;
  if (SQLITE.has(kind)) {
    const file = connection.filename || connection.storage || connection.database;
    if (!file || file === ':memory:') throw new Error('an in-memory SQLite database cannot be backed up');
    return path.resolve(dir, file);
  }
  const scheme = SCHEMES[kind];
  if (!scheme) throw new Error(`a ${kind || 'database'} configuration Lifeboat cannot back up (PostgreSQL, MySQL/MariaDB and SQLite can)`);
  return urlOf(scheme, {
    user: connection.user || connection.username,
    password: connection.password,
    host: connection.host,
    port: connection.port,
    database: connection.database,
  });
}

module.exports = { databaseUrl, databaseUrlFromEnv, readDotenv };
