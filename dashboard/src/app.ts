// The agent's dashboard: reads /api/v1/ with the token given once per tab, shows whether
// each source is protected, and runs a plan's backups or drills on request. Every value
// from the API is put in the page as text (never as HTML).

import { durations, restorePointAge, rtos, sizes } from './charts.js';
import {
  ago, age, api, byId, bytes, el, follow, TOKEN_KEY, Unauthorized,
  type Action, type AlertDelivery, type Drill, type DrillRecord, type RestorePoint, type Run,
  type Status,
} from './page.js';
import { load as loadTimeline, offerSources, wire } from './timeline.js';

const REFRESH_MS = 5000;

/** protected, at risk or failing, and the line that says why. */
function verdict(point: RestorePoint, status: Status): [string, string] {
  if (status.restore_points_error) return ['failing', `not measured: ${status.restore_points_error}`];
  if (point.error) return ['failing', point.error];
  if (point.rpo_met === false) {
    return ['at-risk', point.newest ? 'older than its RPO' : 'no restore point yet'];
  }
  if (point.rpo_met === true) return ['protected', 'within its RPO'];
  return ['no-rpo', 'no RPO set'];
}

const STATE_NAMES: Record<string, string> = {
  protected: 'Protected', 'at-risk': 'At risk', failing: 'Failing', 'no-rpo': 'No objective',
};

function renderCards(status: Status, drills: Drill[], jobs: Run[]): void {
  const cards = byId('cards');
  cards.replaceChildren();
  if (status.restore_points.length === 0) {
    cards.append(el('p', status.restore_points_checked ? 'No plan has a source yet.' : 'Measuring…', 'muted'));
  }
  for (const point of status.restore_points) {
    const [state, why] = verdict(point, status);
    const card = el('article', undefined, `card ${state}`);
    card.dataset.source = point.source;
    card.dataset.state = state;
    card.append(el('h3', `${point.source} → ${point.target}`));
    card.append(el('p', `${STATE_NAMES[state]}: ${why}`, 'state'));
    const newest = point.newest
      ? `Newest restore point ${age(point.age_seconds ?? 0)} ago`
      : 'No restore point yet';
    const rpo = point.rpo_seconds !== null ? ` (RPO ${age(point.rpo_seconds)})` : '';
    card.append(el('p', newest + rpo));
    const drill = drills.find((d) => d.plan === point.plan && d.source === point.source && d.target === point.target);
    if (drill) {
      const rto = drill.rto_seconds !== null ? `, RTO ${drill.rto_seconds.toFixed(1)} s` : '';
      const outcome = drill.passed ? 'passed' : `failed: ${drill.reason ?? 'no reason given'}`;
      card.append(el('p', `Last drill ${ago(drill.finished)} ${outcome}${rto}`, drill.passed ? 'good' : 'bad'));
    } else {
      card.append(el('p', 'Never drilled', 'muted'));
    }
    card.append(restorePointAge(jobs, point.plan, point.target, point.rpo_seconds));
    card.append(el('p', `Plan ${point.plan}`, 'muted'));
    cards.append(card);
  }
}

function renderPlans(status: Status): void {
  const plans = byId('plans');
  // Kept while an action runs: its line is the only place its outcome shows.
  const lines = new Map<string, HTMLElement>();
  for (const line of plans.querySelectorAll<HTMLElement>('.action')) {
    if (line.dataset.plan) lines.set(line.dataset.plan, line);
  }
  plans.replaceChildren();
  for (const plan of status.plans) {
    const box = el('div', undefined, 'plan');
    box.dataset.plan = plan.name;
    box.append(el('strong', plan.name));
    const when = plan.running ? 'running now' : plan.next_run ? `next ${new Date(plan.next_run).toLocaleString()}` : 'not scheduled';
    box.append(el('span', `${plan.schedule ?? 'continuous'}; ${when}`, 'muted'));
    for (const [kind, label] of [['backup', 'Back up now'], ['drill', 'Drill now']]) {
      const button = el('button', label) as HTMLButtonElement;
      button.type = 'button';
      button.dataset.action = kind;
      button.addEventListener('click', () => void run(plan.name, kind, button));
      box.append(button);
    }
    const line = lines.get(plan.name) ?? el('p', '', 'action');
    line.dataset.plan = plan.name;
    box.append(line);
    plans.append(box);
  }
}

async function run(plan: string, kind: string, button: HTMLButtonElement): Promise<void> {
  const line = document.querySelector<HTMLElement>(`.plan[data-plan="${CSS.escape(plan)}"] .action`);
  const say = (text: string, className: string) => {
    if (line) {
      line.textContent = text;
      line.className = `action ${className}`;
    }
  };
  button.disabled = true;
  try {
    const queued = await api<Action>(`/api/v1/plans/${encodeURIComponent(plan)}/${kind}`, 'POST');
    say(`${kind} of ${plan}: queued`, 'muted');
    const action = await follow(queued, (a) => say(`${kind} of ${plan}: ${a.state}`, 'muted'));
    const finished = action.finished as string;
    const took = action.started ? ` in ${age((Date.parse(finished) - Date.parse(action.started)) / 1000)}` : '';
    if (action.state === 'succeeded') say(`${kind} of ${plan} succeeded${took}`, 'good');
    else say(`${kind} of ${plan} failed: ${action.error ?? 'no reason given'}`, 'bad');
    // A backup adds a restore point the timeline shows.
    if (kind === 'backup') await loadTimeline();
    await refresh();
  } catch (error) {
    say(`${kind} of ${plan}: ${(error as Error).message}`, 'bad');
  } finally {
    button.disabled = false;
  }
}

function table(headings: string[], rows: string[][]): HTMLElement {
  const wrap = el('div', undefined, 'scroll');
  const t = el('table');
  const head = el('tr');
  for (const h of headings) head.append(el('th', h));
  t.append(head);
  for (const row of rows) {
    const tr = el('tr');
    for (const cell of row) tr.append(el('td', cell));
    t.append(tr);
  }
  wrap.append(t);
  return wrap;
}

async function refresh(): Promise<void> {
  const [status, drills, history, jobs, alerts] = await Promise.all([
    api<Status>('/api/v1/status'),
    api<Drill[]>('/api/v1/drills'),
    api<DrillRecord[]>('/api/v1/drills/history?limit=50'),
    api<Run[]>('/api/v1/jobs?limit=200'),
    api<AlertDelivery[]>('/api/v1/alerts'),
  ]);
  const recent = jobs.slice(0, 20);
  const checked = status.restore_points_checked ? `; restore points measured ${ago(status.restore_points_checked)}` : '';
  byId('agent').textContent = `agent ${status.version}, up since ${status.started ? new Date(status.started).toLocaleString() : '?'}${checked}`;
  renderCards(status, drills, jobs);
  offerSources(status.restore_points.map((p) => ({ source: p.source, target: p.target })));
  renderPlans(status);
  const incidents = byId('incidents');
  incidents.replaceChildren();
  if (status.open_incidents.length === 0) incidents.append(el('li', 'None', 'good'));
  for (const incident of status.open_incidents) {
    const seen = incident.acknowledged ? `; acknowledged ${ago(incident.acknowledged)}` : '';
    incidents.append(el('li', `${incident.detail} (since ${ago(incident.opened)}${seen})`, 'bad'));
  }
  byId('alerts').replaceChildren(alerts.length === 0
    ? el('p', 'No alert sent since the agent started.', 'muted')
    : table(['When', 'Channel', 'Alert', 'Delivered'],
      alerts.slice(0, 10).map((a) => [ago(a.time), a.channel, a.title,
        a.delivered ? 'yes' : `no: ${a.error ?? ''}`])));
  // One objective line when every plan drilled has the same RTO; none otherwise.
  const objectives = new Set(history.map((d) => status.plans.find((p) => p.name === d.plan)?.rto_seconds ?? null));
  const objective = objectives.size === 1 ? [...objectives][0] : null;
  byId('drills-chart').replaceChildren(rtos(history, objective));
  byId('drills').replaceChildren(table(
    ['Source', 'Target', 'When', 'Result', 'RTO'],
    drills.map((d) => [d.source, d.target, ago(d.finished), d.passed ? 'passed' : `failed: ${d.reason ?? ''}`,
      d.rto_seconds !== null ? `${d.rto_seconds.toFixed(1)} s` : '']),
  ));
  byId('jobs-chart').replaceChildren(durations(recent));
  byId('sizes-chart').replaceChildren(sizes(recent));
  byId('jobs').replaceChildren(table(
    ['Started', 'Plan', 'Target', 'Result', 'Stored', 'Took'],
    recent.map((j) => [ago(j.started), j.plan, j.target,
      j.ok === null ? 'running' : j.ok ? 'ok' : `failed: ${j.error ?? ''}`, bytes(j.bytes),
      `${(j.duration_ms / 1000).toFixed(1)} s`]),
  ));
}

async function start(): Promise<void> {
  // Asked first, so that a page without a token asks its user instead of failing calls.
  const access = await api<{ token_required: boolean }>('/api/v1/access');
  if (access.token_required && !sessionStorage.getItem(TOKEN_KEY)) {
    byId('agent').textContent = 'a token is needed';
    byId('login').hidden = false;
    return;
  }
  try {
    await refresh();
    byId('login').hidden = true;
    byId('content').hidden = false;
    setInterval(() => void refresh().catch(() => undefined), REFRESH_MS);
  } catch (error) {
    if (!(error instanceof Unauthorized)) throw error;
    sessionStorage.removeItem(TOKEN_KEY);
    byId('agent').textContent = 'a token is needed';
    byId('login').hidden = false;
  }
}

byId<HTMLFormElement>('login').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, byId<HTMLInputElement>('token').value);
  void start().then(() => {
    if (!byId('login').hidden) byId('login-error').textContent = 'The agent did not accept that token.';
  });
});

wire();
void start();
