// npm run demo: the gateway on the embedded database, with the bundled HeyGen simulator and a seeded
// demo organisation. Everything HeyGen-side is SIMULATED: no real video is made and nothing is billed.
import { encodeGlobalID } from '@pothos/plugin-relay';
import { loadConfig } from '../config.js';
import { createServices, startBackgroundWork, stopServices } from '../app.js';
import { closeServer, createHttpServer, listen } from '../http/server.js';
import { startSimulator, DEMO_API_KEY } from '../heygen/simulator/server.js';
import { seedDemo } from './seed.js';
import { runCli } from '../cli/run.js';

await runCli('demo', async () => {
  const simPort = Number(process.env.SIMULATOR_PORT ?? 4100);
  const sim = await startSimulator({ port: simPort, config: { renderMs: 3000 }, accounts: [{ apiKey: DEMO_API_KEY, concurrencyLimit: 20 }] });
  // GraphiQL and introspection on unless told otherwise: the demo is for exploring the API (npm run demo runs with
  // npm start's NODE_ENV=production, where both default to off).
  const config = loadConfig({ GRAPHIQL: 'true', INTROSPECTION: 'true', ...process.env, DATABASE_URL: undefined, HEYGEN_BASE_URL: sim.url });
  const services = await createServices(config);
  const server = createHttpServer(services);
  const port = await listen(server, config.port, config.host);
  services.jobDeps.follow.publicUrl = `http://127.0.0.1:${port}`;
  startBackgroundWork(services);
  const seed = await seedDemo(services, sim.url, DEMO_API_KEY);
  const token = await services.tokens.issueAdminToken('demo', 12 * 3600);
  const projectId = encodeGlobalID('OrgUnit', seed.projects.onboarding.id);
  const url = `http://localhost:${port}/graphql`;
  const consoleUrl = `http://localhost:${port}/console/`;

  console.log(`
=====================================================================
 HeyGen usage gateway — DEMO (HeyGen is SIMULATED; nothing is billed)
=====================================================================
 Console:     ${consoleUrl}   (sign in with the ADMIN token below)
 GraphQL:     ${url}${config.graphiql ? '   (GraphiQL in a browser)' : ''}
 Simulator:   ${sim.url}   (fake HeyGen v3, key ${DEMO_API_KEY})
 Database:    embedded PGlite in ${config.dataDir} ${seed.created ? '(seeded now)' : '(seed found)'}
 Org:         Acme Corp (demo) → Marketing → Video / Social → projects
 Account:     $5,000 tier: 600,000 cs included, overage $0.00833/cs

 ADMIN token (12 h):
 ${token}

 Try:
 curl -s ${url} -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
   -d '{"query":"mutation { submitJob(input: {projectId: \\"${projectId}\\", kind: AVATAR_VIDEO, request: {type: \\"avatar\\", avatar_id: \\"demo\\", voice_id: \\"demo\\", script: \\"Welcome to Acme. This is a simulated video.\\"}}) { __typename ... on SubmitJobPayload { job { id status estimatedCreditSeconds } } ... on Error { code message } } }"}'

 curl -s ${url} -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
   -d '{"query":"{ accounts { name inFlightJobs period { usedCreditSeconds reservedCreditSeconds projectedInvoiceUsd } } orgUnits(first: 10) { edges { node { name kind budgets { limitCreditSeconds reservedCreditSeconds settledCreditSeconds } } } } }"}'

 The same gateway as a drop-in HeyGen v3 API (README: "Move an existing HeyGen app"):
 curl -s http://localhost:${port}/v3/users/me -H "X-Api-Key: $TOKEN" -H 'X-Gateway-Project: ${projectId}'
 (TOKEN=<the admin token above>)
=====================================================================
`);

  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await closeServer(server);
    await stopServices(services);
    await sim.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
});
