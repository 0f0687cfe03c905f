// Real gateway child processes on their own ports, sharing one database.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dist, startEnv, startFlags } from './build.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface GatewayProcess {
  url: string;
  child: ChildProcess;
  output: string[];
  stop(): Promise<void>;
}

/** `nodeFlags`: extra Node flags after those of `npm start` (e.g. `--trace-gc`, `--cpu-prof`), for measurements. */
export async function spawnGateway(env: Record<string, string>, nodeFlags: string[] = []): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [...startFlags(), ...nodeFlags, dist('main.js')], {
    cwd: ROOT,
    env: { ...process.env, ...startEnv(), PORT: '0', HOST: '127.0.0.1', GATEWAY_PRINT_PORT: '1', LOG_LEVEL: 'warn', NODE_ENV: 'test', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not left running unowned: nobody would stop it.
      child.kill('SIGKILL');
      reject(new Error(`gateway did not start:\n${output.join('')}`));
    }, 30_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      output.push(chunk.toString());
      const match = /GATEWAY_PORT=(\d+)/.exec(output.join(''));
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}:\n${output.join('')}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    output,
    stop: () =>
      new Promise<void>((resolve) => {
        // Already gone (exited, or killed by a signal: then exitCode stays null).
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
