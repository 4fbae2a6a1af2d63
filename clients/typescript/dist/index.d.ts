import type { components, paths } from './schema.js';
export type { components, paths };
type Schemas = components['schemas'];
export type AgentStatus = Schemas['AgentStatus'];
export type Run = Schemas['Run'];
export type DrillStatus = Schemas['DrillStatus'];
export type Incident = Schemas['Incident'];
export type Action = Schemas['Action'];
export type RestorePointStatus = Schemas['RestorePointStatus'];
export type DrillRecord = Schemas['DrillRecord'];
export type AlertDelivery = Schemas['AlertDelivery'];
export type SnapshotEntry = Schemas['SnapshotEntry'];
export type TimelineReport = Schemas['TimelineReport'];
export type RestoreReport = Schemas['RestoreReport'];
/** What the agent refused or failed, with its HTTP status (401, 403, 404, 409, ...). */
export declare class AgentError extends Error {
    readonly status: number;
    constructor(message: string, status: number);
}
export interface AgentClientOptions {
    /** Where the agent listens, e.g. `http://127.0.0.1:7070`. */
    baseUrl: string;
    /** `[agent] token` (reads and acts) or `read_token` (reads only). */
    token?: string;
}
export declare function createAgentClient(options: AgentClientOptions): {
    /** The openapi-fetch client, for anything the helpers below do not cover. */
    raw: import("openapi-fetch").Client<paths, `${string}/${string}`>;
    access: () => Promise<{
        token_required: boolean;
    }>;
    status: () => Promise<{
        alert_channels: components["schemas"]["ChannelStatus"][];
        drills: components["schemas"]["DrillStatus"][];
        open_incidents: components["schemas"]["Incident"][];
        plans: components["schemas"]["PlanStatus"][];
        ready: boolean;
        replicators: components["schemas"]["ReplicatorStatus"][];
        restore_points: components["schemas"]["RestorePointStatus"][];
        restore_points_checked: string | null;
        restore_points_error: string | null;
        started: string | null;
        version: string;
    }>;
    jobs: (limit?: number) => Promise<{
        bytes: number;
        duration_ms: number;
        error: string | null;
        finished: string | null;
        id: number;
        kind: string;
        ok: boolean | null;
        plan: string;
        scheduled_for: string;
        started: string;
        target: string;
    }[]>;
    drills: () => Promise<{
        finished: string;
        last_success: string | null;
        passed: boolean;
        plan: string;
        reason: string | null;
        rpo_seconds: number | null;
        rto_seconds: number | null;
        source: string;
        target: string;
    }[]>;
    /** Every drill recorded, newest first (RTO and RPO of each). */
    drillHistory: (limit?: number) => Promise<{
        finished: string;
        passed: boolean;
        plan: string;
        reason: string | null;
        rpo_seconds: number | null;
        rto_seconds: number | null;
        source: string;
        target: string;
    }[]>;
    incidents: () => Promise<{
        acknowledged: string | null;
        detail: string;
        key: string;
        opened: string;
    }[]>;
    /** The alerts sent to each channel, failed deliveries included, newest first. */
    alerts: () => Promise<{
        channel: string;
        delivered: boolean;
        error: string | null;
        key: string;
        severity: string;
        time: string;
        title: string;
    }[]>;
    actions: () => Promise<{
        at: string | null;
        error: string | null;
        finished: string | null;
        id: number;
        kind: components["schemas"]["ActionKind"];
        plan: string;
        requested: string;
        restored: components["schemas"]["RestoreReport"] | null;
        source: string | null;
        started: string | null;
        state: components["schemas"]["ActionState"];
        target: string | null;
    }[]>;
    action: (id: number) => Promise<{
        at: string | null;
        error: string | null;
        finished: string | null;
        id: number;
        kind: components["schemas"]["ActionKind"];
        plan: string;
        requested: string;
        restored: components["schemas"]["RestoreReport"] | null;
        source: string | null;
        started: string | null;
        state: components["schemas"]["ActionState"];
        target: string | null;
    }>;
    /** Queues a run of the plan's backups (operator token); poll it with `finished`. */
    backup: (plan: string) => Promise<{
        at: string | null;
        error: string | null;
        finished: string | null;
        id: number;
        kind: components["schemas"]["ActionKind"];
        plan: string;
        requested: string;
        restored: components["schemas"]["RestoreReport"] | null;
        source: string | null;
        started: string | null;
        state: components["schemas"]["ActionState"];
        target: string | null;
    }>;
    /** Queues the plan's restore drills (operator token). */
    drill: (plan: string) => Promise<{
        at: string | null;
        error: string | null;
        finished: string | null;
        id: number;
        kind: components["schemas"]["ActionKind"];
        plan: string;
        requested: string;
        restored: components["schemas"]["RestoreReport"] | null;
        source: string | null;
        started: string | null;
        state: components["schemas"]["ActionState"];
        target: string | null;
    }>;
    /** The snapshots in a target (default: the first), all or one source's, oldest first. */
    snapshots: (query?: {
        target?: string;
        source?: string;
    }) => Promise<{
        files: number;
        host: string;
        id: string;
        kind: components["schemas"]["SnapshotKind"];
        paths: string[];
        pinned: boolean;
        stored_bytes: number;
        tags: string[];
        time: string;
        total_bytes: number;
        warnings: number;
    }[]>;
    /** Every restore point of a source, read from its repository (`target`: which one). */
    timeline: (source: string, target?: string) => Promise<{
        binlog: components["schemas"]["BinlogArchive"] | null;
        clusters: components["schemas"]["Cluster"][];
        dumps: components["schemas"]["Dump"][];
        kind: components["schemas"]["TimelineKind"];
        restore_points: components["schemas"]["TimelinePoint"][];
        source: string;
        spans: components["schemas"]["Span"][];
        window: components["schemas"]["Window"] | null;
    }>;
    /**
     * Queues a restore of a source as it was `at` (`latest`, an RFC 3339 time, `-10m` or
     * `tx:N`) into the agent's scratch space (operator token); once finished, the action's
     * `restored` says where.
     */
    restore: (source: string, at: string, target?: string) => Promise<{
        at: string | null;
        error: string | null;
        finished: string | null;
        id: number;
        kind: components["schemas"]["ActionKind"];
        plan: string;
        requested: string;
        restored: components["schemas"]["RestoreReport"] | null;
        source: string | null;
        started: string | null;
        state: components["schemas"]["ActionState"];
        target: string | null;
    }>;
    finished: (started: Action, intervalMs?: number, timeoutMs?: number) => Promise<Action>;
};
export type AgentClient = ReturnType<typeof createAgentClient>;
