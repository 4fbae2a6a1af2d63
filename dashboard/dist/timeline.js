// A source's timeline, read from its repository: snapshots as ticks, continuous runs of
// replication segments as bars (a run after a missing segment in red: it cannot be
// reached), a database server's dumps and recovery windows. A click (or the slider)
// picks a moment; the button restores the source as it was then into the agent's
// scratch space, followed live until it is done.
import { shape } from './charts.js';
import { api, byId, el, follow, moment } from './page.js';
const NS = 'http://www.w3.org/2000/svg';
const WIDTH = 600;
const HEIGHT = 56;
let current = null;
let picked = null;
/** The sources the status lists, as `source → target` choices; keeps the one chosen. */
export function offerSources(pairs) {
    const select = byId('timeline-source');
    const keys = pairs.map((p) => `${p.source}\n${p.target}`);
    const shown = [...select.options].map((o) => o.value);
    if (keys.join('\t') === shown.join('\t'))
        return;
    const chosen = select.value;
    select.replaceChildren(...pairs.map((p, i) => {
        const option = el('option', `${p.source} → ${p.target}`);
        option.value = keys[i];
        return option;
    }));
    if (keys.includes(chosen))
        select.value = chosen;
    if (!current && pairs.length > 0)
        void load();
}
function moments(report) {
    if (report.kind === 'database_server') {
        return report.dumps.map((d) => ({ time: d.time, what: `dump ${d.snapshot.slice(0, 8)}` }));
    }
    return report.restore_points
        .filter((p) => p.restorable)
        .map((p) => ({
        time: p.time,
        what: p.segment !== null
            ? `segment ${p.segment} on snapshot ${p.snapshot.slice(0, 8)}`
            : `snapshot ${p.snapshot.slice(0, 8)}`,
    }));
}
export async function load() {
    const [source, target] = byId('timeline-source').value.split('\n');
    if (!source)
        return;
    const box = byId('timeline');
    box.replaceChildren(el('p', 'Reading the timeline from the repository…', 'muted'));
    try {
        const report = await api(`/api/v1/sources/${encodeURIComponent(source)}/timeline?target=${encodeURIComponent(target)}`);
        current = { source, target, report, moments: moments(report) };
        box.dataset.source = source;
        box.replaceChildren(draw(report));
        const range = byId('timeline-range');
        range.max = String(Math.max(0, current.moments.length - 1));
        range.disabled = current.moments.length === 0;
        pick(current.moments[current.moments.length - 1] ?? null);
    }
    catch (error) {
        current = null;
        box.replaceChildren(el('p', `Cannot read the timeline: ${error.message}`, 'bad'));
    }
}
function bounds(report) {
    const from = Date.parse(report.window?.from ?? new Date().toISOString());
    const to = Math.max(Date.now(), Date.parse(report.window?.to ?? new Date().toISOString()));
    const pad = Math.max(1000, (to - from) * 0.03);
    return [from - pad, to + pad];
}
function draw(report) {
    const root = document.createElementNS(NS, 'svg');
    root.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
    root.setAttribute('role', 'img');
    root.id = 'timeline-strip';
    const title = document.createElementNS(NS, 'title');
    title.textContent = `Restore points of ${report.source}; click to pick a moment`;
    root.append(title);
    const [from, to] = bounds(report);
    const x = (time) => ((Date.parse(time) - from) / (to - from)) * WIDTH;
    const add = (tag, attributes, tip) => {
        const element = shape(tag, attributes);
        if (tip) {
            const t = document.createElementNS(NS, 'title');
            t.textContent = tip;
            element.append(t);
        }
        root.append(element);
        return element;
    };
    add('line', { x1: 0, x2: WIDTH, y1: HEIGHT / 2, y2: HEIGHT / 2, stroke: '#c9d0d8' });
    for (const [time, anchor, at] of [[from, 'start', 2], [to, 'end', WIDTH - 2]]) {
        const label = add('text', { x: at, y: HEIGHT - 1, 'text-anchor': anchor, 'font-size': 9, fill: '#5b6572' });
        label.textContent = moment(new Date(time).toISOString());
    }
    for (const span of report.spans.filter((s) => s.kind === 'segment')) {
        const reachable = span.after_gap === null;
        add('rect', {
            x: x(span.from), y: HEIGHT / 2 - 6, width: Math.max(2, x(span.to) - x(span.from)), height: 12,
            fill: reachable ? '#2e9d5b' : '#c62828', class: reachable ? 'run' : 'run gap',
        }, reachable ? 'replicated: every moment restorable'
            : `after a gap (segment ${span.after_gap} is missing): not restorable`);
    }
    for (const cluster of report.clusters) {
        if (cluster.from) {
            const end = cluster.to ?? new Date().toISOString();
            add('rect', {
                x: x(cluster.from), y: HEIGHT / 2 - 6, width: Math.max(2, x(end) - x(cluster.from)), height: 12,
                fill: '#2e9d5b', class: 'run',
            }, `cluster ${cluster.cluster}: point-in-time recovery (lifeboat pg restore --at)`);
        }
    }
    const ticks = report.kind === 'database_server'
        ? report.dumps.map((d) => d.time)
        : report.restore_points.filter((p) => p.kind === 'snapshot').map((p) => p.time);
    for (const time of ticks) {
        const tick = add('rect', {
            x: x(time) - 3, y: 8, width: 6, height: HEIGHT - 16, fill: '#12324a', class: 'tick',
        }, `snapshot at ${moment(time)}`);
        tick.dataset.time = time;
        // A tick picks exactly its own restore point, whatever the pixel under the pointer.
        tick.addEventListener('click', (event) => {
            event.stopPropagation();
            const exact = current?.moments.find((m) => m.time === time);
            if (exact)
                pick(exact);
        });
    }
    add('line', { x1: 0, x2: 0, y1: 2, y2: HEIGHT - 2, stroke: '#c98a00', 'stroke-width': 2, id: 'timeline-marker' });
    root.addEventListener('click', (event) => {
        if (!current)
            return;
        const box = root.getBoundingClientRect();
        const at = from + ((event.clientX - box.left) / box.width) * (to - from);
        pick(newestAtOrBefore(current.moments, at) ?? current.moments[0] ?? null);
    });
    return root;
}
/** The newest moment at or before `at` (milliseconds), as a restore chooses it. */
function newestAtOrBefore(all, at) {
    let found = null;
    for (const m of all)
        if (Date.parse(m.time) <= at)
            found = m;
    return found;
}
function pick(moment_) {
    picked = moment_;
    const button = byId('restore');
    const server = current?.report.kind === 'database_server';
    button.disabled = !picked || server;
    const text = byId('picked');
    if (!current || !picked) {
        text.textContent = 'No restore point yet.';
        return;
    }
    text.textContent = `Picked ${moment(picked.time)}: ${picked.what}`
        + (server ? ' (restore a database server from the command line: lifeboat restore SNAPSHOT --into URL)' : '');
    text.dataset.time = picked.time;
    const index = current.moments.indexOf(picked);
    byId('timeline-range').value = String(index);
    const marker = document.getElementById('timeline-marker');
    const strip = document.getElementById('timeline-strip');
    if (marker && strip) {
        const [from, to] = bounds(current.report);
        const x = ((Date.parse(picked.time) - from) / (to - from)) * WIDTH;
        marker.setAttribute('x1', String(x));
        marker.setAttribute('x2', String(x));
    }
}
async function restore() {
    if (!current || !picked)
        return;
    const { source, target } = current;
    const at = picked.time;
    const line = byId('restore-result');
    const say = (text, className) => {
        line.textContent = text;
        line.className = `action ${className}`;
    };
    const button = byId('restore');
    button.disabled = true;
    try {
        const queued = await api(`/api/v1/sources/${encodeURIComponent(source)}/restore`, 'POST', { at, target });
        say(`restore of ${source}: queued`, 'muted');
        const done = await follow(queued, (a) => say(`restore of ${source}: ${a.state}`, 'muted'));
        const restored = done.restored;
        if (done.state === 'succeeded' && restored) {
            const checked = restored.checked ? ', integrity and foreign keys checked' : '';
            say(`Restored ${source} as of ${moment(restored.restore_point.time)} to ${restored.target}`
                + ` in ${restored.seconds.toFixed(1)} s${checked}`, 'good');
        }
        else {
            say(`restore of ${source} failed: ${done.error ?? 'no reason given'}`, 'bad');
        }
    }
    catch (error) {
        say(`restore of ${source}: ${error.message}`, 'bad');
    }
    finally {
        button.disabled = false;
    }
}
export function wire() {
    byId('timeline-source').addEventListener('change', () => void load());
    byId('timeline-range').addEventListener('input', (event) => {
        if (current)
            pick(current.moments[Number(event.target.value)] ?? null);
    });
    byId('restore').addEventListener('click', () => void restore());
}
