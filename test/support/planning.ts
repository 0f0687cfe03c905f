// How many times PostgreSQL plans a statement for one session: each planning is one notice (log_planner_stats).
import pg from 'pg';

/**
 * Runs `step` `steps` times on a new session of `url` with planner statistics on, and returns how many plannings
 * each step cost. A statement sent as plain text (or a new prepared one) is planned itself; what it calls is planned
 * as PostgreSQL's plan cache decides, which is what the callers look at.
 */
export async function planningsPerStep(url: string, steps: number, step: (client: pg.Client, i: number) => Promise<void>): Promise<number[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let planned = 0;
  client.on('notice', (n) => {
    if (/PLANNER STATISTICS/.test(n.message ?? '')) planned += 1;
  });
  try {
    await client.query('set log_planner_stats = on');
    await client.query('set client_min_messages = log');
    const perStep: number[] = [];
    for (let i = 0; i < steps; i++) {
      planned = 0;
      await step(client, i);
      perStep.push(planned);
    }
    return perStep;
  } finally {
    await client.end();
  }
}
