// What every part of the dashboard shares: the API's types, calls with the tab's token,
// building elements (text only, never HTML) and reading durations and sizes.

// The API's types, generated from docs/openapi.json for the TypeScript client.
import type { components } from '../../clients/typescript/dist/schema.js';

type Schemas = components['schemas'];
export type RestorePoint = Schemas['RestorePointStatus'];
export type Run = Schemas['Run'];
export type Drill = Schemas['DrillStatus'];
export type DrillRecord = Schemas['DrillRecord'];
export type Status = Schemas['AgentStatus'];
export type Action = Schemas['Action'];
export type Timeline = Schemas['TimelineReport'];
export type AlertDelivery = Schemas['AlertDelivery'];

export const TOKEN_KEY = 'lifeboat-agent-token';

export class Unauthorized extends Error {}

export function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element as T;
}

export function el(tag: string, text?: string, className?: string): HTMLElement {
  const element = document.createElement(tag);
  if (text !== undefined) element.textContent = text;
  if (className) element.className = className;
  return element;
}

function authorization(): Record<string, string> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export async function api<T>(path: string, method = 'GET', body?: unknown): Promise<T> {
  const headers = authorization();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) throw new Unauthorized('the agent asks for a token');
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error ?? `${method} ${path}: ${response.status}`);
  return answer as T;
}

/**
 * Follows an action through its server-sent events until it has finished, calling
 * `seen` with each state. Read with fetch rather than EventSource, which cannot send the
 * token.
 */
export async function follow(action: Action, seen: (action: Action) => void): Promise<Action> {
  const response = await fetch(`/api/v1/actions/${action.id}/events`, { headers: authorization() });
  if (!response.ok || !response.body) throw new Error(`cannot follow action ${action.id}: ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let latest = action;
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    // Events end with a blank line; each carries the whole action as its data.
    let end = buffered.indexOf('\n\n');
    while (end >= 0) {
      const data = buffered.slice(0, end).split('\n').find((line) => line.startsWith('data: '));
      buffered = buffered.slice(end + 2);
      if (data) {
        latest = JSON.parse(data.slice(6)) as Action;
        seen(latest);
      }
      end = buffered.indexOf('\n\n');
    }
  }
  if (!latest.finished) throw new Error(`action ${action.id} stopped being reported before it finished`);
  return latest;
}

export function age(seconds: number): string {
  const s = Math.max(0, seconds);
  if (s < 120) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

export function ago(time: string | null): string {
  if (!time) return 'never';
  return `${age((Date.now() - Date.parse(time)) / 1000)} ago`;
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** A time to the second in the reader's zone, with the date when it is not today. */
export function moment(time: string): string {
  const date = new Date(time);
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString() : date.toLocaleString();
}
