// A strict parser of the Prometheus text exposition format (version 0.0.4), for checking what /metrics serves:
// HELP and TYPE lines (at most one of each per family, TYPE before the family's first sample), metric and label
// names, quoted label values with their three escapes, float values as Go parses them (NaN, +Inf, -Inf in any case), optional integer timestamps,
// families kept together, no series twice, and histograms and summaries whole and consistent. It throws on the
// first violation, naming the line.

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: MetricType;
  help: string | null;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** What Go's strconv.ParseFloat (Prometheus' parser) takes: decimals, and inf, infinity and nan in any case. */
const FLOAT = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity)$|^nan$/i;
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseFloatStrict(text: string, where: string): number {
  if (!FLOAT.test(text)) throw new Error(`${where}: "${text}" is not a float`);
  if (/^nan$/i.test(text)) return Number.NaN;
  if (/^[+-]?inf(inity)?$/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  return Number(text);
}

/** The family a sample belongs to: histogram and summary series carry suffixes. */
function familyOf(sample: string, families: Map<string, Family>): Family | undefined {
  const direct = families.get(sample);
  if (direct) return direct;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sample.endsWith(suffix)) continue;
    const family = families.get(sample.slice(0, -suffix.length));
    if (family && (family.type === 'histogram' || (family.type === 'summary' && suffix !== '_bucket'))) return family;
  }
  return undefined;
}

function parseLabels(text: string, where: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1; // after '{'
  for (;;) {
    while (text[i] === ' ') i++;
    if (text[i] === '}') return { labels, rest: text.slice(i + 1) };
    const nameMatch = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(text.slice(i));
    if (!nameMatch) throw new Error(`${where}: bad label name at "${text.slice(i, i + 20)}"`);
    const name = nameMatch[0];
    if (name.startsWith('__')) throw new Error(`${where}: label name ${name} is reserved`);
    if (name in labels) throw new Error(`${where}: label ${name} given twice`);
    i += name.length;
    while (text[i] === ' ') i++;
    if (text[i] !== '=') throw new Error(`${where}: expected = after label ${name}`);
    i++;
    while (text[i] === ' ') i++;
    if (text[i] !== '"') throw new Error(`${where}: label ${name} value is not quoted`);
    i++;
    let value = '';
    for (;;) {
      const ch = text[i];
      if (ch === undefined) throw new Error(`${where}: unterminated value of label ${name}`);
      if (ch === '"') break;
      if (ch === '\\') {
        const next = text[i + 1];
        if (next === '\\') value += '\\';
        else if (next === '"') value += '"';
        else if (next === 'n') value += '\n';
        else throw new Error(`${where}: bad escape \\${next ?? ''} in label ${name}`);
        i += 2;
        continue;
      }
      if (ch === '\n') throw new Error(`${where}: raw newline in label ${name}`);
      value += ch;
      i++;
    }
    i++; // closing quote
    labels[name] = value;
    while (text[i] === ' ') i++;
    if (text[i] === ',') {
      i++;
      continue;
    }
    if (text[i] === '}') return { labels, rest: text.slice(i + 1) };
    throw new Error(`${where}: expected , or } after label ${name}`);
  }
}

function seriesKey(name: string, labels: Record<string, string>): string {
  return `${name}{${Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(',')}}`;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  const seen = new Set<string>();
  let current: Family | null = null;
  const open = (family: Family, where: string) => {
    if (current !== family) {
      if (closed.has(family.name)) throw new Error(`${where}: family ${family.name} is not contiguous`);
      if (current) closed.add(current.name);
      current = family;
    }
  };
  const declared = (name: string, where: string): Family => {
    if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name "${name}"`);
    let family = families.get(name);
    if (!family) {
      family = { name, type: 'untyped', help: null, samples: [] };
      families.set(name, family);
    }
    open(family, where);
    return family;
  };
  const typed = new Set<string>();
  text.split('\n').forEach((line, index) => {
    const where = `line ${index + 1}`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const meta = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!meta) return; // a plain comment
      const [, kind, name, rest = ''] = meta;
      const family = declared(name!, where);
      if (kind === 'HELP') {
        if (family.help !== null) throw new Error(`${where}: second HELP for ${name}`);
        if (/\\(?![\\n])/.test(rest)) throw new Error(`${where}: bad escape in HELP of ${name}`);
        family.help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      } else {
        if (typed.has(name!)) throw new Error(`${where}: second TYPE for ${name}`);
        if (family.samples.length > 0) throw new Error(`${where}: TYPE of ${name} after its samples`);
        if (!TYPES.has(rest.trim() as MetricType)) throw new Error(`${where}: unknown type "${rest}"`);
        family.type = rest.trim() as MetricType;
        typed.add(name!);
      }
      return;
    }
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nameMatch) throw new Error(`${where}: bad sample line "${line.slice(0, 60)}"`);
    const name = nameMatch[0];
    let rest = line.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, where));
    const parts = rest.trim().split(/\s+/);
    if (!/^\s/.test(rest) || parts.length < 1 || parts.length > 2 || parts[0] === '') throw new Error(`${where}: expected value [timestamp] in "${line.slice(0, 80)}"`);
    const value = parseFloatStrict(parts[0]!, where);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new Error(`${where}: bad timestamp "${parts[1]}"`);
    const family = familyOf(name, families) ?? declared(name, where);
    open(family, where);
    const key = seriesKey(name, labels);
    if (seen.has(key)) throw new Error(`${where}: series ${key} given twice`);
    seen.add(key);
    for (const label of Object.keys(labels)) if (!LABEL_NAME.test(label)) throw new Error(`${where}: bad label name ${label}`);
    if (family.type === 'histogram' && name === family.name) throw new Error(`${where}: histogram ${family.name} sample without _bucket/_sum/_count`);
    if (family.type === 'counter' && (value < 0 || Number.isNaN(value))) throw new Error(`${where}: counter ${name} is ${value}`);
    family.samples.push({ name, labels, value });
  });
  for (const family of families.values()) {
    if (family.type === 'histogram') checkHistogram(family);
    if (family.type === 'summary') checkSummary(family);
  }
  return families;
}

/** Per label set (without `le`): buckets ascending in `le`, cumulative, an +Inf bucket equal to _count, and a _sum. */
function checkHistogram(family: Family): void {
  const groups = new Map<string, { buckets: { le: number; value: number }[]; sum?: number; count?: number }>();
  for (const s of family.samples) {
    const { le, ...rest } = s.labels;
    const key = seriesKey('', rest);
    const group = groups.get(key) ?? { buckets: [] };
    groups.set(key, group);
    if (s.name === `${family.name}_bucket`) {
      if (le === undefined) throw new Error(`${family.name}: bucket without le`);
      group.buckets.push({ le: parseFloatStrict(le, `${family.name} le`), value: s.value });
    } else if (s.name === `${family.name}_sum`) group.sum = s.value;
    else if (s.name === `${family.name}_count`) group.count = s.value;
    else throw new Error(`${family.name}: unexpected series ${s.name}`);
  }
  for (const [key, group] of groups) {
    const where = `${family.name}${key}`;
    if (group.count === undefined || group.sum === undefined) throw new Error(`${where}: _sum or _count missing`);
    if (group.buckets.length === 0) throw new Error(`${where}: no buckets`);
    for (let i = 1; i < group.buckets.length; i++) {
      if (!(group.buckets[i]!.le > group.buckets[i - 1]!.le)) throw new Error(`${where}: buckets not in ascending le`);
      if (group.buckets[i]!.value < group.buckets[i - 1]!.value) throw new Error(`${where}: buckets not cumulative`);
    }
    const last = group.buckets.at(-1)!;
    if (last.le !== Infinity) throw new Error(`${where}: no +Inf bucket`);
    if (last.value !== group.count) throw new Error(`${where}: +Inf bucket ${last.value} differs from _count ${group.count}`);
  }
}

function checkSummary(family: Family): void {
  for (const s of family.samples) {
    if (s.name === family.name && s.labels.quantile === undefined) throw new Error(`${family.name}: summary sample without quantile`);
  }
}
