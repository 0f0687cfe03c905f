// Rows passed to and from server-side functions as jsonb (one parameter, one result), keyed by column name.
// A table's own column definitions do the typing, so a new column needs no change here.
import { getTableColumns, type Table } from 'drizzle-orm';

/** Column-name keyed JSON of a row's values (given by their TypeScript keys): bigints as text, dates as ISO text. */
export function jsonRowOf<T extends Table>(table: T, values: Partial<T['$inferInsert']>): Record<string, unknown> {
  const columns = getTableColumns(table) as Record<string, { name: string }>;
  const row: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    const column = columns[key];
    if (!column) throw new Error(`${key} is not a column`);
    if (value === undefined) continue;
    row[column.name] = typeof value === 'bigint' ? value.toString() : value instanceof Date ? value.toISOString() : value;
  }
  return row;
}

/**
 * A row from column-name keyed JSON (as `gateway_json_row(to_jsonb(row))` answers: numbers as their exact text),
 * mapped through the columns as the driver's values would be.
 */
export function rowFromJson<T extends Table>(table: T, json: Record<string, unknown>): T['$inferSelect'] {
  const columns = columnsOf(table);
  const row: Record<string, unknown> = {};
  for (const [key, column] of columns) {
    const value = json[column.name];
    row[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
  }
  return row as T['$inferSelect'];
}

type Column = { name: string; mapFromDriverValue(value: unknown): unknown };
// A table's columns, listed once: reads map hundreds of rows a request (a page of units, their budgets).
const tableColumns = new WeakMap<Table, [string, Column][]>();
function columnsOf(table: Table): [string, Column][] {
  let columns = tableColumns.get(table);
  if (!columns) tableColumns.set(table, (columns = Object.entries(getTableColumns(table) as Record<string, Column>)));
  return columns;
}

/** A json / jsonb value as returned: parsed by node-pg, text from PGlite and drizzle's raw statements. */
export function jsonValue<T>(value: T | string): T {
  return typeof value === 'string' ? (JSON.parse(value) as T) : value;
}
