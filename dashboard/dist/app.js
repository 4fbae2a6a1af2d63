// The agent's dashboard: reads /api/v1/ with the token given once per tab, shows whether
// each source is protected, and runs a plan's backups or drills on request. Every value
// from the API is put in the page as text (never as HTML).
const TOKEN_KEY = 'lifeboat-agent-token';
const REFRESH_MS = 5000;
class Unauthorized extends Error {
}
function byId(id) {
    const element = document.getElementById(id);
    if (!element)
        throw new Error(`the page has no #${id}`);
    return element;
}
function el(tag, text, className) {
    const element = document.createElement(tag);
    if (text !== undefined)
        element.textContent = text;
    if (className)
        element.className = className;
    return element;
}
async function api(path, method = 'GET') {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = {};
    if (token)
        headers.Authorization = `Bearer ${token}`;
    const response = await fetch(path, { method, headers });
    if (response.status === 401)
        throw new Unauthorized('the agent asks for a token');
    const body = await response.json();
    if (!response.ok)
        throw new Error(body.error ?? `${method} ${path}: ${response.status}`);
    return body;
}
function age(seconds) {
    const s = Math.max(0, seconds);
    if (s < 120)
        return `${s.toFixed(s < 10 ? 1 : 0)} s`;
    if (s < 7200)
        return `${Math.round(s / 60)} min`;
    if (s < 172800)
        return `${Math.round(s / 3600)} h`;
    return `${Math.round(s / 86400)} d`;
}
function ago(time) {
    if (!time)
        return 'never';
    return `${age((Date.now() - Date.parse(time)) / 1000)} ago`;
}
function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let value = n;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
        value /= 1024;
        unit += 1;
    }
    return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
/** protected, at risk or failing, and the line that says why. */
function verdict(point, status) {
    if (status.restore_points_error)
        return ['failing', `not measured: ${status.restore_points_error}`];
    if (point.error)
        return ['failing', point.error];
    if (point.rpo_met === false) {
        return ['at-risk', point.newest ? 'older than its RPO' : 'no restore point yet'];
    }
    if (point.rpo_met === true)
        return ['protected', 'within its RPO'];
    return ['no-rpo', 'no RPO set'];
}
const STATE_NAMES = {
    protected: 'Protected', 'at-risk': 'At risk', failing: 'Failing', 'no-rpo': 'No objective',
};
function renderCards(status, drills) {
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
        }
        else {
            card.append(el('p', 'Never drilled', 'muted'));
        }
        card.append(el('p', `Plan ${point.plan}`, 'muted'));
        cards.append(card);
    }
}
function renderPlans(status) {
    const plans = byId('plans');
    // Kept while an action runs: its line is the only place its outcome shows.
    const lines = new Map();
    for (const line of plans.querySelectorAll('.action')) {
        if (line.dataset.plan)
            lines.set(line.dataset.plan, line);
    }
    plans.replaceChildren();
    for (const plan of status.plans) {
        const box = el('div', undefined, 'plan');
        box.dataset.plan = plan.name;
        box.append(el('strong', plan.name));
        const when = plan.running ? 'running now' : plan.next_run ? `next ${new Date(plan.next_run).toLocaleString()}` : 'not scheduled';
        box.append(el('span', `${plan.schedule ?? 'continuous'}; ${when}`, 'muted'));
        for (const [kind, label] of [['backup', 'Back up now'], ['drill', 'Drill now']]) {
            const button = el('button', label);
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
async function run(plan, kind, button) {
    const line = document.querySelector(`.plan[data-plan="${CSS.escape(plan)}"] .action`);
    const say = (text, className) => {
        if (line) {
            line.textContent = text;
            line.className = `action ${className}`;
        }
    };
    button.disabled = true;
    try {
        let action = await api(`/api/v1/plans/${encodeURIComponent(plan)}/${kind}`, 'POST');
        say(`${kind} of ${plan}: queued`, 'muted');
        while (!action.finished) {
            await new Promise((resolve) => setTimeout(resolve, 500));
            action = await api(`/api/v1/actions/${action.id}`);
            say(`${kind} of ${plan}: ${action.state}`, 'muted');
        }
        const took = action.started ? ` in ${age((Date.parse(action.finished) - Date.parse(action.started)) / 1000)}` : '';
        if (action.state === 'succeeded')
            say(`${kind} of ${plan} succeeded${took}`, 'good');
        else
            say(`${kind} of ${plan} failed: ${action.error ?? 'no reason given'}`, 'bad');
        await refresh();
    }
    catch (error) {
        say(`${kind} of ${plan}: ${error.message}`, 'bad');
    }
    finally {
        button.disabled = false;
    }
}
function table(headings, rows) {
    const wrap = el('div', undefined, 'scroll');
    const t = el('table');
    const head = el('tr');
    for (const h of headings)
        head.append(el('th', h));
    t.append(head);
    for (const row of rows) {
        const tr = el('tr');
        for (const cell of row)
            tr.append(el('td', cell));
        t.append(tr);
    }
    wrap.append(t);
    return wrap;
}
/** Bars of each recent backup's duration, oldest on the left; failures in red. */
function chart(jobs) {
    const ns = 'http://www.w3.org/2000/svg';
    const width = 600;
    const height = 90;
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.setAttribute('role', 'img');
    const runs = jobs.filter((j) => j.finished).reverse();
    const longest = Math.max(1, ...runs.map((j) => j.duration_ms));
    const label = document.createElementNS(ns, 'title');
    label.textContent = `Duration of the last ${runs.length} backups; the longest took ${age(longest / 1000)}`;
    svg.append(label);
    // A slot per job of the last 20, so that one job is one thin bar, not the whole width.
    const slot = width / Math.max(runs.length, 20);
    runs.forEach((job, i) => {
        const bar = document.createElementNS(ns, 'rect');
        const h = Math.max(2, (job.duration_ms / longest) * (height - 10));
        bar.setAttribute('x', String(i * slot + 2));
        bar.setAttribute('y', String(height - h));
        bar.setAttribute('width', String(Math.max(1, slot - 4)));
        bar.setAttribute('height', String(h));
        bar.setAttribute('fill', job.ok ? '#3a7ca5' : '#c62828');
        svg.append(bar);
    });
    return svg;
}
async function refresh() {
    const [status, drills, jobs] = await Promise.all([
        api('/api/v1/status'),
        api('/api/v1/drills'),
        api('/api/v1/jobs?limit=20'),
    ]);
    const checked = status.restore_points_checked ? `; restore points measured ${ago(status.restore_points_checked)}` : '';
    byId('agent').textContent = `agent ${status.version}, up since ${status.started ? new Date(status.started).toLocaleString() : '?'}${checked}`;
    renderCards(status, drills);
    renderPlans(status);
    const incidents = byId('incidents');
    incidents.replaceChildren();
    if (status.open_incidents.length === 0)
        incidents.append(el('li', 'None', 'good'));
    for (const incident of status.open_incidents) {
        const seen = incident.acknowledged ? `; acknowledged ${ago(incident.acknowledged)}` : '';
        incidents.append(el('li', `${incident.detail} (since ${ago(incident.opened)}${seen})`, 'bad'));
    }
    byId('drills').replaceChildren(table(['Source', 'Target', 'When', 'Result', 'RTO'], drills.map((d) => [d.source, d.target, ago(d.finished), d.passed ? 'passed' : `failed: ${d.reason ?? ''}`,
        d.rto_seconds !== null ? `${d.rto_seconds.toFixed(1)} s` : ''])));
    byId('jobs-chart').replaceChildren(chart(jobs));
    byId('jobs').replaceChildren(table(['Started', 'Plan', 'Target', 'Result', 'Stored', 'Took'], jobs.map((j) => [ago(j.started), j.plan, j.target,
        j.ok === null ? 'running' : j.ok ? 'ok' : `failed: ${j.error ?? ''}`, bytes(j.bytes),
        `${(j.duration_ms / 1000).toFixed(1)} s`])));
}
async function start() {
    // Asked first, so that a page without a token asks its user instead of failing calls.
    const access = await api('/api/v1/access');
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
    }
    catch (error) {
        if (!(error instanceof Unauthorized))
            throw error;
        sessionStorage.removeItem(TOKEN_KEY);
        byId('agent').textContent = 'a token is needed';
        byId('login').hidden = false;
    }
}
byId('login').addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, byId('token').value);
    void start().then(() => {
        if (!byId('login').hidden)
            byId('login-error').textContent = 'The agent did not accept that token.';
    });
});
void start();
export {};
