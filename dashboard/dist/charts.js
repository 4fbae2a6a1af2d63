// Plots where people would rather look than read, drawn as SVG with no library: how old
// the newest restore point was over time (against the RPO), what each backup stored and
// took, and each drill's measured RTO (against the RTO).
import { age, bytes } from './page.js';
const NS = 'http://www.w3.org/2000/svg';
const WIDTH = 600;
const HEIGHT = 90;
const BLUE = '#3a7ca5';
const RED = '#c62828';
function svg(title, height = HEIGHT) {
    const root = document.createElementNS(NS, 'svg');
    root.setAttribute('viewBox', `0 0 ${WIDTH} ${height}`);
    root.setAttribute('role', 'img');
    const label = document.createElementNS(NS, 'title');
    label.textContent = title;
    root.append(label);
    return root;
}
export function shape(tag, attributes) {
    const element = document.createElementNS(NS, tag);
    for (const [name, value] of Object.entries(attributes))
        element.setAttribute(name, String(value));
    return element;
}
/** A dashed line across the plot at `y`, for an objective. */
function objective(root, y, text) {
    root.append(shape('line', { x1: 0, x2: WIDTH, y1: y, y2: y, stroke: RED, 'stroke-dasharray': '4 3' }));
    const label = shape('text', { x: WIDTH - 4, y: Math.max(10, y - 3), 'text-anchor': 'end', 'font-size': 10, fill: RED });
    label.textContent = text;
    root.append(label);
}
/** One bar per value, oldest on the left, a slot per value of at least 20 slots. */
function bars(root, values, colors, top, tips) {
    const slot = WIDTH / Math.max(values.length, 20);
    values.forEach((value, i) => {
        const h = Math.max(2, (value / top) * (HEIGHT - 10));
        const bar = shape('rect', {
            x: i * slot + 2, y: HEIGHT - h, width: Math.max(1, slot - 4), height: h, fill: colors[i],
        });
        const tip = document.createElementNS(NS, 'title');
        tip.textContent = tips[i];
        bar.append(tip);
        root.append(bar);
    });
}
/** How long each recent backup took; failures in red. */
export function durations(jobs) {
    const runs = jobs.filter((j) => j.finished).reverse();
    const longest = Math.max(1, ...runs.map((j) => j.duration_ms));
    const root = svg(`Duration of the last ${runs.length} backups; the longest took ${age(longest / 1000)}`);
    bars(root, runs.map((j) => j.duration_ms), runs.map((j) => (j.ok ? BLUE : RED)), longest, runs.map((j) => `${j.plan} → ${j.target}: ${age(j.duration_ms / 1000)}`));
    return root;
}
/** What each recent backup stored (new data after deduplication and compression). */
export function sizes(jobs) {
    const runs = jobs.filter((j) => j.finished && j.ok).reverse();
    const largest = Math.max(1, ...runs.map((j) => j.bytes));
    const root = svg(`Stored by each of the last ${runs.length} backups; the most was ${bytes(largest)}`);
    bars(root, runs.map((j) => j.bytes), runs.map(() => BLUE), largest, runs.map((j) => `${j.plan} → ${j.target}: ${bytes(j.bytes)}`));
    return root;
}
/** Each drill's measured RTO, oldest on the left; failed drills in red. */
export function rtos(drills, objectiveSeconds) {
    const measured = drills.filter((d) => d.rto_seconds !== null).reverse();
    const longest = Math.max(0.001, ...measured.map((d) => d.rto_seconds ?? 0));
    const top = Math.max(longest, objectiveSeconds ?? 0) * 1.1;
    const root = svg(`Measured RTO of the last ${measured.length} drills; the longest was ${age(longest)}`);
    bars(root, measured.map((d) => d.rto_seconds ?? 0), measured.map((d) => (d.passed ? BLUE : RED)), top, measured.map((d) => `${d.source} from ${d.target}: ${age(d.rto_seconds ?? 0)}${d.passed ? '' : ' (failed)'}`));
    if (objectiveSeconds !== null) {
        objective(root, HEIGHT - (objectiveSeconds / top) * (HEIGHT - 10), `RTO ${age(objectiveSeconds)}`);
    }
    return root;
}
/**
 * The age of the newest restore point over time, from the plan's successful backups to
 * `target`: it grows until a backup finishes, then drops to how long that backup took.
 * A sawtooth that crosses the RPO line is a window of exposure.
 */
export function restorePointAge(jobs, plan, target, rpoSeconds) {
    const done = jobs
        .filter((j) => j.plan === plan && j.target === target && j.ok && j.finished)
        .map((j) => ({ started: Date.parse(j.started), finished: Date.parse(j.finished) }))
        .sort((a, b) => a.finished - b.finished);
    const now = Date.now();
    const root = svg(`Age of the newest restore point of plan ${plan} on ${target} over time`, 60);
    root.classList.add('spark');
    if (done.length === 0)
        return root;
    // [time, age in seconds] at each change, ending now.
    const corners = [];
    done.forEach((run, i) => {
        if (i > 0)
            corners.push([run.finished, (run.finished - done[i - 1].started) / 1000]);
        corners.push([run.finished, (run.finished - run.started) / 1000]);
    });
    const last = done[done.length - 1];
    corners.push([now, (now - last.started) / 1000]);
    const from = done[0].finished;
    const span = Math.max(1, now - from);
    const highest = Math.max(...corners.map(([, a]) => a), rpoSeconds ?? 0) * 1.15;
    const height = 60;
    const x = (t) => ((t - from) / span) * (WIDTH - 4) + 2;
    const y = (a) => height - 2 - (a / highest) * (height - 12);
    root.append(shape('polyline', {
        points: corners.map(([t, a]) => `${x(t).toFixed(1)},${y(a).toFixed(1)}`).join(' '),
        fill: 'none', stroke: BLUE, 'stroke-width': 2,
    }));
    if (rpoSeconds !== null)
        objective(root, y(rpoSeconds), `RPO ${age(rpoSeconds)}`);
    return root;
}
