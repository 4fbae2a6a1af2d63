// Compiled with `tsc --noEmit --strict` against the installed package's types: a
// readiness route as an Express or Fastify app would write it.
import { status, backup, snapshotBefore, MigrationFailedError, type StatusReport } from 'lifeboat';

export async function ready(): Promise<{ ok: boolean; stale: string[] }> {
  const report: StatusReport = await status({ config: 'lifeboat.toml' });
  return {
    ok: report.ok,
    stale: report.restore_points.filter((p) => p.rpo_met === false).map((p) => p.source),
  };
}

export async function migrate(run: () => Promise<void>): Promise<void> {
  const before = await backup(['./uploads'], { tags: ['manual'] });
  const id: string = before.short_id;
  try {
    await snapshotBefore(run, { sources: ['./app.db'] });
  } catch (error) {
    if (error instanceof MigrationFailedError) {
      const commands: string[] = error.rollback;
      console.error(id, commands.join('\n'));
    }
    throw error;
  }
}
