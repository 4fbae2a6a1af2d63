// A typed client of the Lifeboat agent's API. The types come from docs/openapi.json
// (`npm run generate` writes src/schema.ts with openapi-typescript); requests go through
// openapi-fetch, so a path, parameter or field the document does not have is a compile
// error. Errors are `AgentError`s that carry the HTTP status and the agent's one line.
import createClient from 'openapi-fetch';
/** What the agent refused or failed, with its HTTP status (401, 403, 404, 409, ...). */
export class AgentError extends Error {
    status;
    constructor(message, status) {
        super(message);
        this.status = status;
        this.name = 'AgentError';
    }
}
async function unwrap(request) {
    const { data, error, response } = await request;
    if (error !== undefined || data === undefined) {
        throw new AgentError(error?.error ?? `the agent answered ${response.status}`, response.status);
    }
    return data;
}
export function createAgentClient(options) {
    const headers = {};
    if (options.token)
        headers.Authorization = `Bearer ${options.token}`;
    const client = createClient({ baseUrl: options.baseUrl, headers });
    const action = (id) => unwrap(client.GET('/api/v1/actions/{id}', { params: { path: { id: String(id) } } }));
    /** Polls an action until it has finished; rejects after `timeoutMs`. */
    async function finished(started, intervalMs = 500, timeoutMs = 600_000) {
        const deadline = Date.now() + timeoutMs;
        let current = started;
        while (!current.finished) {
            if (Date.now() > deadline) {
                throw new AgentError(`action ${started.id} did not finish within ${timeoutMs} ms`, 0);
            }
            await new Promise((resolve) => setTimeout(resolve, intervalMs));
            current = await action(started.id);
        }
        return current;
    }
    return {
        /** The openapi-fetch client, for anything the helpers below do not cover. */
        raw: client,
        access: () => unwrap(client.GET('/api/v1/access')),
        status: () => unwrap(client.GET('/api/v1/status')),
        jobs: (limit) => unwrap(client.GET('/api/v1/jobs', { params: { query: { limit } } })),
        drills: () => unwrap(client.GET('/api/v1/drills')),
        /** Every drill recorded, newest first (RTO and RPO of each). */
        drillHistory: (limit) => unwrap(client.GET('/api/v1/drills/history', { params: { query: { limit } } })),
        incidents: () => unwrap(client.GET('/api/v1/incidents')),
        /** The alerts sent to each channel, failed deliveries included, newest first. */
        alerts: () => unwrap(client.GET('/api/v1/alerts')),
        actions: () => unwrap(client.GET('/api/v1/actions')),
        action,
        /** Queues a run of the plan's backups (operator token); poll it with `finished`. */
        backup: (plan) => unwrap(client.POST('/api/v1/plans/{plan}/backup', { params: { path: { plan } } })),
        /** Queues the plan's restore drills (operator token). */
        drill: (plan) => unwrap(client.POST('/api/v1/plans/{plan}/drill', { params: { path: { plan } } })),
        /** The snapshots in a target (default: the first), all or one source's, oldest first. */
        snapshots: (query = {}) => unwrap(client.GET('/api/v1/snapshots', { params: { query } })),
        /** Every restore point of a source, read from its repository (`target`: which one). */
        timeline: (source, target) => unwrap(client.GET('/api/v1/sources/{source}/timeline', {
            params: { path: { source }, query: { target } },
        })),
        /**
         * Queues a restore of a source as it was `at` (`latest`, an RFC 3339 time, `-10m` or
         * `tx:N`) into the agent's scratch space (operator token); once finished, the action's
         * `restored` says where.
         */
        restore: (source, at, target) => unwrap(client.POST('/api/v1/sources/{source}/restore', {
            params: { path: { source } },
            body: { at, target: target ?? null },
        })),
        finished,
    };
}
