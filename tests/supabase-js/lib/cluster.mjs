// Cluster mode's test bed: a PostgreSQL of its own and a NATS, and craftbase nodes on both
// (each with its own ports and data directory, all with the same DATABASE_URL, NATS URL and
// whatever else the test gives every node, such as JWT_SECRET).

import { startCraftbase } from './craftbase.mjs';
import { startNats } from './nats.mjs';
import { startPgCluster } from './pgcluster.mjs';

/**
 * Starts PostgreSQL and NATS. `cluster.startNodes(ids)` then adds nodes to `cluster.nodes`
 * (kept there as they start, so an `after` hook stops those that did when a later one fails);
 * `cluster.stop()` stops NATS and PostgreSQL (the test stops its nodes first).
 */
export async function startCluster(env = {}) {
  const pg = await startPgCluster();
  let nats;
  try {
    nats = await startNats();
  } catch (e) {
    await pg.stop();
    throw e;
  }
  const shared = { DATABASE_URL: pg.url, CRAFTBASE_NATS_URL: nats.url, ...env };
  const cluster = {
    pg,
    nats,
    /** What every node's environment holds. */
    env: shared,
    /** @type {Awaited<ReturnType<typeof startCraftbase>>[]} */
    nodes: [],
    /** Starts one node named `id` (not added to `nodes`). */
    startNode(id, extra = {}) {
      return startCraftbase({ env: { ...shared, ...extra, CRAFTBASE_NODE_ID: id } });
    },
    /**
     * Starts nodes `ids`: the first alone (it applies the migrations, the others find them
     * applied), then the rest one after the other or, with `parallel`, together. `started(cb)`
     * runs after each.
     */
    async startNodes(ids, { parallel = false, started = async () => {} } = {}) {
      const one = async (id) => {
        const cb = await cluster.startNode(id);
        cluster.nodes.push(cb);
        await started(cb);
      };
      await one(ids[0]);
      if (parallel) await Promise.all(ids.slice(1).map(one));
      else for (const id of ids.slice(1)) await one(id);
    },
    async stop() {
      try {
        await nats.stop();
      } finally {
        await pg.stop();
      }
    },
  };
  return cluster;
}
