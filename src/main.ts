// The gateway process: configuration, services, HTTP, background workers, graceful shutdown.
import { loadConfig } from './config.js';
import { runCli } from './cli/run.js';
import { createServices, startBackgroundWork, stopServices } from './app.js';
import { closeServer, createHttpServer, listen } from './http/server.js';
import { startTracing } from './observability/tracing.js';
import { startMemoryTrim } from './background/memory-trim.js';

await runCli('gateway', async () => {
  const config = loadConfig();
  // Before anything else runs: every span of the process goes to the provider (a no-op when tracing is off).
  const tracing = await startTracing(config.tracing);
  const services = await createServices(config);
  if (tracing) services.logger.info({ serviceName: config.tracing.serviceName, sampler: config.tracing.sampler }, 'tracing: spans exported over OTLP/HTTP');
  const server = createHttpServer(services);
  const port = await listen(server, config.port, config.host);
  startBackgroundWork(services);
  const memoryTrim = await startMemoryTrim(config.memoryTrimIntervalMs, services.logger, ({ freeBytes, released }) => {
    services.metrics.mallocFreeBytes.set(freeBytes);
    if (released !== null) services.metrics.memoryTrims.inc({ released: String(released) });
  });
  services.logger.info({ port, database: services.database.driver }, 'gateway listening');
  // Tests and supervisors read this line to learn the port when PORT=0.
  if (process.env.GATEWAY_PRINT_PORT === '1') process.stdout.write(`GATEWAY_PORT=${port}\n`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    services.logger.info({ signal }, 'shutting down: finishing in-flight requests');
    // Open subscriptions (SSE streams) end first, cleanly (`complete`): the server then closes once the rest is answered.
    services.live.close();
    await closeServer(server);
    await memoryTrim?.stop();
    await stopServices(services);
    // The last spans (this shutdown's requests included) are exported before the process ends.
    await tracing?.shutdown().catch((error: unknown) => services.logger.warn({ err: error }, 'tracing: the last spans could not be exported'));
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
});
