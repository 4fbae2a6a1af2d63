// Runs the built client (dist/) against a live agent from Node 20, as an app would, and
// prints what it saw as JSON for Lifeboat's Rust test (crates/cli/tests/agent.rs):
//
//   node test/live.mjs URL OPERATOR_TOKEN READ_TOKEN PLAN SOURCE

import { AgentError, createAgentClient } from '../dist/index.js';

const [baseUrl, operatorToken, readToken, plan, source] = process.argv.slice(2);
const operator = createAgentClient({ baseUrl, token: operatorToken });
const reader = createAgentClient({ baseUrl, token: readToken });

async function refusal(promise) {
  try {
    await promise;
    return null;
  } catch (error) {
    if (!(error instanceof AgentError)) throw error;
    return { status: error.status, message: error.message };
  }
}

const access = await reader.access();
const status = await reader.status();
const readerBackup = await refusal(reader.backup(plan));
const unknownPlan = await refusal(operator.backup('no-such-plan'));
const queued = await operator.backup(plan);
const done = await operator.finished(queued, 200, 120_000);
const [newest] = await reader.jobs(1);
const timeline = await reader.timeline(source);
const oldest = timeline.restore_points[0];
const restored = await operator.finished(await operator.restore(source, oldest.time), 200, 120_000);
const badMoment = await refusal(operator.restore(source, 'tx:0'));
console.log(JSON.stringify({
  token_required: access.token_required,
  restore_points: status.restore_points.length,
  reader_backup: readerBackup,
  unknown_plan: unknownPlan,
  queued_state: queued.state,
  finished: { state: done.state, error: done.error },
  newest_job: { plan: newest.plan, ok: newest.ok, started: newest.started },
  action_started: done.started,
  timeline: { kind: timeline.kind, points: timeline.restore_points.length, oldest: oldest.time },
  restored: { state: restored.state, time: restored.restored?.restore_point.time, target: restored.restored?.target },
  bad_moment: badMoment,
}));
