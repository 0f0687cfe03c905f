// uuid[] as the driver hands it (text): split at its commas when the elements are bare uuids, else the generic parser.
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { parseIntArray, parseUuidArray } from '../src/db/client.js';

const A = '0b0c5b7e-3f1a-4c7e-9a57-1c2d3e4f5a6b';
const B = 'ffffffff-0000-4000-8000-000000000001';

describe('uuid[] parsing', () => {
  it('splits bare uuids, and answers as the generic parser for every other shape', () => {
    expect(parseUuidArray('{}')).toEqual([]);
    expect(parseUuidArray(`{${A}}`)).toEqual([A]);
    expect(parseUuidArray(`{${A},${B}}`)).toEqual([A, B]);
    expect(parseUuidArray(`{${A},NULL}`)).toEqual([A, null]);
    expect(parseUuidArray(`{{${A}},{${B}}}`)).toEqual([[A], [B]]);
    expect(parseUuidArray(`{"${A}"}`)).toEqual([A]);
  });

  it('is the parser the driver uses for uuid[]', () => {
    expect(pg.types.getTypeParser(2951 as Parameters<typeof pg.types.getTypeParser>[0], 'text')).toBe(parseUuidArray);
  });
});

describe('integer[] parsing', () => {
  it('splits bare integers, and answers as the generic parser for every other shape', () => {
    expect(parseIntArray('{}')).toEqual([]);
    expect(parseIntArray('{50}')).toEqual([50]);
    expect(parseIntArray('{50,80,100}')).toEqual([50, 80, 100]);
    expect(parseIntArray('{-1,0,2147483647}')).toEqual([-1, 0, 2147483647]);
    expect(parseIntArray('{1,NULL}')).toEqual([1, null]);
    expect(parseIntArray('{{1,2},{3,4}}')).toEqual([[1, 2], [3, 4]]);
    expect(parseIntArray('{"1"}')).toEqual([1]);
  });

  it('is the parser the driver uses for integer[]', () => {
    expect(pg.types.getTypeParser(1007 as Parameters<typeof pg.types.getTypeParser>[0], 'text')).toBe(parseIntArray);
  });
});
