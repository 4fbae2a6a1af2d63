'use strict';

// Load driver for the example API, used by Lifeboat's end-to-end tests and
// benchmarks:
//
//   node load.js --url http://127.0.0.1:3000 --concurrency 8 --duration-ms 5000 \
//                --ack-log acks.jsonl [--rate N]
//
// Each worker creates customers and orders and updates and deletes orders it
// created itself (so workers never race on a row). Every write the server
// acknowledged with a 2xx is appended to the ack log as one JSON line before
// the next request goes out, so a test can check that a restored database
// contains every acknowledged write up to a point in time. The log is
// appended to, never truncated: use a fresh path per run.

const fs = require('node:fs');
const { parseArgs } = require('node:util');

const USAGE =
  'usage: node load.js --url URL [--concurrency 8] [--duration-ms 5000] [--ack-log acks.jsonl] [--rate N]';
const GONE_AFTER_MS = 1000; // stop once the server has been unreachable this long
const RETRY_PAUSE_MS = 50; // pause after a connection error instead of spinning
const REQUEST_TIMEOUT_MS = 10000;
const ITEMS = { widget: 250, gadget: 1299, sprocket: 75, gizmo: 4999, doohickey: 1850 };

function options() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        url: { type: 'string', default: 'http://127.0.0.1:3000' },
        concurrency: { type: 'string', default: '8' },
        'duration-ms': { type: 'string', default: '5000' },
        'ack-log': { type: 'string', default: 'acks.jsonl' },
        rate: { type: 'string' },
      },
    }));
  } catch (err) {
    fail(`${err.message}\n${USAGE}`);
  }
  const positive = (name) => {
    const n = Number(values[name]);
    if (!Number.isFinite(n) || n <= 0) fail(`--${name} must be a positive number\n${USAGE}`);
    return n;
  };
  return {
    url: values.url.replace(/\/+$/, ''),
    concurrency: Math.floor(positive('concurrency')),
    durationMs: positive('duration-ms'),
    ackLog: values['ack-log'],
    rate: values.rate === undefined ? null : positive('rate'),
  };
}

function fail(message) {
  console.error(message);
  process.exit(2);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = (list) => list[Math.floor(Math.random() * list.length)];
const randomInt = (min, max) => min + Math.floor(Math.random() * (max - min + 1));

const opts = options();
const runId = `${Date.now().toString(36)}-${process.pid}`;
const ackFd = fs.openSync(opts.ackLog, 'a');
const stats = { acked: 0, failed: 0 };
const startedAt = Date.now();
const deadline = startedAt + opts.durationMs;
let downSince = null; // when the current run of connection errors began
let stopReason = null;
let nextSlot = startedAt; // --rate: the earliest moment the next write may start

// A synchronous write: once it returns the line is in the kernel, so it
// survives this process being SIGKILLed right afterwards.
function ack(record) {
  fs.writeSync(ackFd, JSON.stringify(record) + '\n');
  stats.acked += 1;
}

function shouldStop() {
  if (stopReason) return true;
  if (Date.now() >= deadline) stopReason = 'duration';
  else if (downSince !== null && Date.now() - downSince >= GONE_AFTER_MS) stopReason = 'server unreachable';
  return stopReason !== null;
}

// Spreads writes evenly across all workers when --rate is given.
async function waitForSlot() {
  if (opts.rate === null) return;
  const slot = Math.max(Date.now(), nextSlot);
  nextSlot = slot + 1000 / opts.rate;
  if (slot > Date.now()) await sleep(slot - Date.now());
}

// Returns the parsed body on 2xx ({} for 204) and null on any failure.
// Connection-level errors also start (or continue) the "server gone" clock.
async function request(method, path, body) {
  let res;
  try {
    res = await fetch(opts.url + path, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch {
    stats.failed += 1;
    downSince ??= Date.now();
    await sleep(RETRY_PAUSE_MS);
    return null;
  }
  downSince = null;
  try {
    const text = await res.text();
    if (res.ok) return text ? JSON.parse(text) : {};
  } catch {
    // A body cut off mid-way counts as a failed request like any other.
  }
  stats.failed += 1;
  return null;
}

function worker(index) {
  const customers = []; // ids this worker created
  const orders = new Map(); // id -> order this worker created and has not deleted
  let seq = 0;

  async function createCustomer() {
    seq += 1;
    const fields = { name: `Load ${index}-${seq}`, email: `load-${runId}-${index}-${seq}@example.test` };
    const row = await request('POST', '/customers', fields);
    if (!row) return;
    ack({ op: 'create_customer', table: 'customers', id: row.id, acked_at_ms: Date.now(), ...fields });
    customers.push(row.id);
  }

  async function createOrder() {
    const item = pick(Object.keys(ITEMS));
    const quantity = randomInt(1, 10);
    const fields = { customer_id: pick(customers), item, quantity, total_cents: quantity * ITEMS[item] };
    const row = await request('POST', '/orders', fields);
    if (!row) return;
    ack({ op: 'create_order', table: 'orders', id: row.id, acked_at_ms: Date.now(), ...fields });
    orders.set(row.id, fields);
  }

  async function updateOrder() {
    const id = pick([...orders.keys()]);
    const quantity = randomInt(1, 10);
    const fields = { quantity, total_cents: quantity * ITEMS[orders.get(id).item] };
    const row = await request('PATCH', `/orders/${id}`, fields);
    if (!row) return;
    ack({ op: 'update_order', table: 'orders', id, acked_at_ms: Date.now(), ...fields });
    Object.assign(orders.get(id), fields);
  }

  async function deleteOrder() {
    const id = pick([...orders.keys()]);
    const ok = await request('DELETE', `/orders/${id}`);
    if (!ok) return;
    ack({ op: 'delete_order', table: 'orders', id, acked_at_ms: Date.now() });
    orders.delete(id);
  }

  // Mostly inserts, like a typical CRUD app, with enough updates and deletes
  // to exercise every kind of WAL change.
  function nextOp() {
    if (customers.length === 0) return createCustomer;
    const r = Math.random();
    if (r < 0.15) return createCustomer;
    if (r < 0.6 || orders.size === 0) return createOrder;
    if (r < 0.88) return updateOrder;
    return deleteOrder;
  }

  return (async () => {
    while (!shouldStop()) {
      await waitForSlot();
      if (shouldStop()) break;
      await nextOp()();
    }
  })();
}

async function main() {
  await Promise.all(Array.from({ length: opts.concurrency }, (_, i) => worker(i + 1)));
  fs.closeSync(ackFd);
  const elapsedMs = Date.now() - startedAt;
  console.error(`load.js: stopped (${stopReason})`);
  console.log(
    JSON.stringify({
      acked: stats.acked,
      failed: stats.failed,
      elapsed_ms: elapsedMs,
      writes_per_s: Math.round((stats.acked / (elapsedMs / 1000)) * 10) / 10,
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
