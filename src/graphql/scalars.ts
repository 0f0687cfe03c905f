// Amounts travel as decimal strings; JavaScript numbers never carry money.
import { GraphQLError, Kind } from 'graphql';
import { builder } from './builder.js';
import { formatCreditSeconds } from '../primitives/money.js';
import { isValidPeriod } from '../primitives/period.js';
import { isStorableInstant } from '../validation.js';

const DECIMAL = /^-?\d{1,15}(\.\d{1,6})?$/;

function stringLiteral(name: string, test: (v: string) => boolean, what: string) {
  return (value: unknown): string => {
    if (typeof value !== 'string' || !test(value.trim())) {
      throw new GraphQLError(`${name} must be ${what}`, { extensions: { code: 'BAD_USER_INPUT' } });
    }
    return value.trim();
  };
}

const parseCs = stringLiteral('CreditSeconds', (v) => DECIMAL.test(v), 'a decimal string with at most 6 decimals');
builder.scalarType('CreditSeconds', {
  description: 'An amount of credit-seconds (the metering unit of a HeyGen contract) as an exact decimal string, e.g. "600000" or "12.5".',
  serialize: (value) => formatCreditSeconds(value as bigint),
  parseValue: parseCs,
  parseLiteral: (ast) => parseCs(ast.kind === Kind.STRING ? ast.value : undefined),
});

const parseUsd = stringLiteral('Usd', (v) => /^-?\d{1,12}(\.\d{1,12})?$/.test(v), 'a decimal string of US dollars');
builder.scalarType('Usd', {
  description: 'US dollars as an exact decimal string, e.g. "5833.00".',
  serialize: (value) => value,
  parseValue: parseUsd,
  parseLiteral: (ast) => parseUsd(ast.kind === Kind.STRING ? ast.value : undefined),
});

const parsePeriod = stringLiteral('Period', (v) => isValidPeriod(v), 'a month as YYYY-MM');
builder.scalarType('Period', {
  description: "A billing period: a calendar month (YYYY-MM) in the account's time zone.",
  serialize: (value) => value,
  parseValue: parsePeriod,
  parseLiteral: (ast) => parsePeriod(ast.kind === Kind.STRING ? ast.value : undefined),
});

const parseDate = (value: unknown): Date => {
  const date = typeof value === 'string' ? new Date(value) : null;
  if (!date || !isStorableInstant(date)) {
    throw new GraphQLError('DateTime must be an ISO 8601 string for a year from 1 to 9999', { extensions: { code: 'BAD_USER_INPUT' } });
  }
  return date;
};
builder.scalarType('DateTime', {
  description: 'An instant as an ISO 8601 string in UTC.',
  serialize: (value) => (value as Date).toISOString(),
  parseValue: parseDate,
  parseLiteral: (ast) => parseDate(ast.kind === Kind.STRING ? ast.value : undefined),
});

function literalToJson(ast: import('graphql').ValueNode): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return ast.values.map(literalToJson);
    case Kind.OBJECT:
      return Object.fromEntries(ast.fields.map((f) => [f.name.value, literalToJson(f.value)]));
    default:
      throw new GraphQLError('JSON literals cannot contain variables', { extensions: { code: 'BAD_USER_INPUT' } });
  }
}
builder.scalarType('JSON', {
  description: 'Any JSON value (a HeyGen v3 request body is passed as-is).',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: literalToJson,
});
