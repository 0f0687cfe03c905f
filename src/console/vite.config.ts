// The console's build: React + Vite into dist/console/, served by the gateway at /console (src/http/console.ts).
// The build writes each file gzipped next to it (.gz), prints its size and fails when the whole bundle exceeds BUDGET_GZIP_BYTES.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const OUT = fileURLToPath(new URL('../../dist/console', import.meta.url));
export const BUDGET_GZIP_BYTES = 500 * 1024;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

function bundleBudget(): Plugin {
  return {
    name: 'console-bundle-budget',
    apply: 'build',
    closeBundle() {
      let total = 0;
      const rows = files(OUT).map((file) => {
        const bytes = gzipSync(readFileSync(file), { level: 9 });
        // Served precompressed (serveStatic's `precompressed`) to clients that accept gzip.
        writeFileSync(`${file}.gz`, bytes);
        const gz = bytes.length;
        total += gz;
        return `  ${relative(OUT, file).padEnd(48)} ${(gz / 1024).toFixed(1).padStart(8)} KB gzip`;
      });
      console.log(`console bundle (dist/console):\n${rows.join('\n')}\n  total ${(total / 1024).toFixed(1)} KB gzipped (budget ${BUDGET_GZIP_BYTES / 1024} KB)`);
      if (total > BUDGET_GZIP_BYTES) throw new Error(`console bundle is ${(total / 1024).toFixed(1)} KB gzipped, over the ${BUDGET_GZIP_BYTES / 1024} KB budget`);
    },
  };
}

export default defineConfig({
  root: HERE,
  base: '/console/',
  plugins: [react(), bundleBudget()],
  logLevel: 'warn',
  mode: 'production',
  // Always React's production build, whatever NODE_ENV the calling process has (vitest sets "test").
  define: { 'process.env.NODE_ENV': JSON.stringify('production') },
  build: {
    outDir: OUT,
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
    reportCompressedSize: false,
    chunkSizeWarningLimit: 1024,
  },
});
