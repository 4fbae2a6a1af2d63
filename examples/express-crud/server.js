'use strict';

// A small customers/orders REST API over one SQLite file: the kind of app
// Lifeboat is meant to protect. Configuration comes from the environment:
//   DATABASE_PATH (default ./data/app.db), PORT (default 3000), HOST (default 127.0.0.1)

const fs = require('node:fs');
const path = require('node:path');
const express = require('express');
const Database = require('better-sqlite3');

const DATABASE_PATH = process.env.DATABASE_PATH || './data/app.db';
const PORT = Number(process.env.PORT ?? 3000);
const HOST = process.env.HOST || '127.0.0.1';
const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 500;

fs.mkdirSync(path.dirname(path.resolve(DATABASE_PATH)), { recursive: true });
const db = new Database(DATABASE_PATH);

// WAL lets readers (including a backup tool) work while we write; NORMAL is
// durable across application crashes, which is what a WAL-shipping backup needs.
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
// SQLite leaves foreign keys off per connection unless asked, and without
// them ON DELETE CASCADE silently does nothing.
db.pragma('foreign_keys = ON');
// Wait instead of failing with SQLITE_BUSY while another process (a backup,
// a checkpoint) briefly holds the lock.
db.pragma('busy_timeout = 5000');

db.exec(`
  CREATE TABLE IF NOT EXISTS customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    item TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    total_cents INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS orders_customer_id ON orders(customer_id);
`);

// ---- validation helpers ---------------------------------------------------

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const badRequest = (message) => new HttpError(400, message);
const now = () => new Date().toISOString();

function nonEmptyString(value, name) {
  if (typeof value !== 'string' || value.trim() === '') throw badRequest(`${name} must be a non-empty string`);
  return value.trim();
}

function email(value) {
  const s = nonEmptyString(value, 'email');
  if (!/^[^@\s]+@[^@\s]+$/.test(s)) throw badRequest('email must look like name@domain');
  return s;
}

function integer(value, name, min) {
  if (!Number.isSafeInteger(value) || value < min) throw badRequest(`${name} must be an integer >= ${min}`);
  return value;
}

// Query strings and route params arrive as text; accept only plain decimal digits.
function integerParam(text, name, min) {
  if (typeof text !== 'string' || !/^\d+$/.test(text)) throw badRequest(`${name} must be an integer >= ${min}`);
  return integer(Number(text), name, min);
}

function paging(query) {
  const limit = query.limit === undefined ? DEFAULT_LIMIT : integerParam(query.limit, 'limit', 1);
  const offset = query.offset === undefined ? 0 : integerParam(query.offset, 'offset', 0);
  return { limit: Math.min(limit, MAX_LIMIT), offset };
}

// Validates a JSON body against a map of field -> validator. On create every
// field is required; on PATCH any non-empty subset is accepted. Unknown fields
// are rejected so a typo ("quantiy") is not silently ignored.
function readBody(body, fields, { partial }) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('body must be a JSON object');
  for (const key of Object.keys(body)) {
    if (!(key in fields)) throw badRequest(`unknown field: ${key}`);
  }
  const out = {};
  for (const [key, validate] of Object.entries(fields)) {
    if (body[key] !== undefined) out[key] = validate(body[key], key);
    else if (!partial) throw badRequest(`${key} is required`);
  }
  if (partial && Object.keys(out).length === 0) throw badRequest('nothing to update');
  return out;
}

const customerFields = { name: nonEmptyString, email };
const orderFields = {
  customer_id: (v, k) => integer(v, k, 1),
  item: nonEmptyString,
  quantity: (v, k) => integer(v, k, 1),
  total_cents: (v, k) => integer(v, k, 0),
};

// ---- data access ----------------------------------------------------------

// Column names in SET come only from the validated field maps above, never
// from the client, so building the statement text here is safe.
function updateRow(table, id, changes) {
  const set = Object.keys(changes).map((col) => `${col} = @${col}`).join(', ');
  return db.prepare(`UPDATE ${table} SET ${set} WHERE id = @id RETURNING *`).get({ ...changes, id });
}

function found(row) {
  if (!row) throw new HttpError(404, 'not found');
  return row;
}

// One CRUD router per table; the differences are the fields, which
// timestamp columns each write sets, and the optional list filter.
function crudRouter(table, fields, { createStamps, updateStamps = [], filterColumn }) {
  const router = express.Router();
  const columns = [...Object.keys(fields), ...createStamps];
  const insert = db.prepare(
    `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((c) => '@' + c).join(', ')}) RETURNING *`,
  );
  const getOne = db.prepare(`SELECT * FROM ${table} WHERE id = ?`);
  const remove = db.prepare(`DELETE FROM ${table} WHERE id = ? RETURNING id`);
  const page = 'ORDER BY id LIMIT @limit OFFSET @offset';
  const list = db.prepare(`SELECT * FROM ${table} ${page}`);
  const listBy = filterColumn && db.prepare(`SELECT * FROM ${table} WHERE ${filterColumn} = @value ${page}`);

  const id = (req) => integerParam(req.params.id, 'id', 1);
  // One clock reading per write, so created_at === updated_at on a new order.
  const stamps = (cols) => {
    const t = now();
    return Object.fromEntries(cols.map((c) => [c, t]));
  };

  router.post('/', (req, res) => {
    const row = insert.get({ ...readBody(req.body, fields, { partial: false }), ...stamps(createStamps) });
    res.status(201).json(row);
  });

  router.get('/', (req, res) => {
    const { limit, offset } = paging(req.query);
    const filter = filterColumn ? req.query[filterColumn] : undefined;
    const items =
      filter === undefined
        ? list.all({ limit, offset })
        : listBy.all({ limit, offset, value: integerParam(filter, filterColumn, 1) });
    res.json({ items, limit, offset });
  });

  router.get('/:id', (req, res) => res.json(found(getOne.get(id(req)))));

  router.patch('/:id', (req, res) => {
    const changes = { ...readBody(req.body, fields, { partial: true }), ...stamps(updateStamps) };
    res.json(found(updateRow(table, id(req), changes)));
  });

  router.delete('/:id', (req, res) => {
    found(remove.get(id(req)));
    res.status(204).end();
  });

  return router;
}

// ---- HTTP -----------------------------------------------------------------

const app = express();
app.use(express.json({ limit: '100kb' }));

app.get('/health', (req, res) => {
  db.prepare('SELECT 1').get(); // proves the database is open, not just the process
  res.json({ status: 'ok' });
});

// Are the backups within their RPO? For a load balancer or an uptime check: 200 when
// every source of lifeboat.toml's plans has a restore point younger than its RPO, 503
// naming the ones that do not. Served when LIFEBOAT_CONFIG names the file.
if (process.env.LIFEBOAT_CONFIG) {
  const lifeboat = require('lifeboat');
  app.get('/ready/backups', async (req, res, next) => {
    try {
      const status = await lifeboat.status({ config: process.env.LIFEBOAT_CONFIG });
      const stale = status.restore_points
        .filter((point) => point.rpo_met === false)
        .map(({ source, target, age_seconds, error }) => ({ source, target, age_seconds, error }));
      res.status(status.ok ? 200 : 503).json({ ok: status.ok, stale });
    } catch (error) {
      next(error);
    }
  });
}

app.use('/customers', crudRouter('customers', customerFields, { createStamps: ['created_at'] }));
app.use(
  '/orders',
  crudRouter('orders', orderFields, {
    createStamps: ['created_at', 'updated_at'],
    updateStamps: ['updated_at'],
    filterColumn: 'customer_id',
  }),
);

app.use((req, res) => res.status(404).json({ error: 'not found' }));

// Turns validation errors, malformed JSON and constraint violations into
// JSON answers; anything else is a bug and is logged.
app.use((err, req, res, next) => {
  if (err instanceof HttpError || (err.status >= 400 && err.status < 500)) {
    return res.status(err.status).json({ error: err.message });
  }
  if (err.code === 'SQLITE_CONSTRAINT_UNIQUE') return res.status(409).json({ error: 'email already exists' });
  if (err.code === 'SQLITE_CONSTRAINT_FOREIGNKEY') return res.status(400).json({ error: 'customer_id does not exist' });
  console.error(err);
  res.status(500).json({ error: 'internal error' });
});

const server = app.listen(PORT, HOST, (err) => {
  if (err) throw err;
  const { address, port } = server.address();
  console.log(`listening on http://${address}:${port} (database ${path.resolve(DATABASE_PATH)})`);
});

function shutdown(signal) {
  console.log(`${signal}: shutting down`);
  // Let in-flight requests finish, but do not wait forever on slow clients.
  const force = setTimeout(() => server.closeAllConnections(), 5000).unref();
  server.close(() => {
    clearTimeout(force);
    db.close();
    process.exit(0);
  });
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
