// Every environment variable the gateway reads is in .env.example, which the README names as the full list (its own
// table gives the important ones).
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../src/config.js';

it('every variable the gateway reads is in .env.example', () => {
  const example = readFileSync(new URL('../.env.example', import.meta.url), 'utf8');
  expect(CONFIG_VARIABLES.length).toBeGreaterThan(50);
  expect(CONFIG_VARIABLES.filter((name) => !new RegExp(`^(# ?)?${name}=`, 'm').test(example))).toEqual([]);
});
