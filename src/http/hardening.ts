// Limits on what one GraphQL request may ask for, and on how often one caller may ask.
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { GraphQLError, type ASTNode, type ASTVisitor, type FieldNode, type ValidationContext } from 'graphql';
import { findUnstorableValue, isWellFormedText } from '../validation.js';
import type { Plugin } from 'graphql-yoga';
import type { GraphQLLimits } from '../config.js';

/**
 * Depth, aliases, tokens, directives and cost are checked while the document is parsed and validated,
 * before any resolver runs; field suggestions are blocked so that a refused query does not map the schema.
 */
export function armorPlugins(limits: GraphQLLimits & { readonly maxJsonDepth: number }): Plugin[] {
  const plugins: Plugin[] = [
    EnvelopArmorPlugin({
      maxDepth: { n: limits.maxDepth, ignoreIntrospection: true, flattenFragments: true },
      maxAliases: { n: limits.maxAliases },
      maxTokens: { n: limits.maxTokens },
      maxDirectives: { n: limits.maxDirectives },
      costLimit: { maxCost: limits.maxCost, objectCost: 2, scalarCost: 1, depthCostFactor: 1.5, ignoreIntrospection: true },
      blockFieldSuggestion: { enabled: true },
    }) as Plugin,
  ];
  if (!limits.introspection) plugins.push(disableIntrospection());
  plugins.push(storableInput(limits.maxJsonDepth));
  return plugins;
}

function badInput(message: string, nodes?: readonly ASTNode[]): GraphQLError {
  return new GraphQLError(message, { nodes, extensions: { code: 'BAD_USER_INPUT' } });
}

/**
 * Input no field can take is refused as BAD_USER_INPUT before execution: strings (in the document or in variables,
 * keys included) with an unpaired UTF-16 surrogate (not text at all: it has no UTF-8 form), and values nested deeper
 * than MAX_JSON_DEPTH. NUL characters are refused field by field (typed ValidationErrors, src/validation.ts).
 */
function storableInput(maxDepth: number): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule((context: ValidationContext): ASTVisitor => {
        let depth = 0;
        let reported = false;
        const enter = (node: ASTNode) => {
          depth++;
          if (depth > maxDepth && !reported) {
            reported = true;
            context.reportError(badInput(`an input value is nested deeper than ${maxDepth} levels`, [node]));
          }
        };
        return {
          ObjectValue: { enter, leave: () => void depth-- },
          ListValue: { enter, leave: () => void depth-- },
          StringValue(node) {
            if (!isWellFormedText(node.value)) context.reportError(badInput('text must not contain unpaired UTF-16 surrogates', [node]));
          },
          ObjectField(node) {
            if (!isWellFormedText(node.name.value)) context.reportError(badInput('text must not contain unpaired UTF-16 surrogates', [node]));
          },
        };
      });
    },
    onExecute({ args, setResultAndStopExecution }) {
      const variables = args.variableValues;
      if (!variables) return;
      // Variables hold input objects (variables → input → field), so the JSON inside starts two levels down; one more level leaves the exact limit to the typed domain checks.
      const found = findUnstorableValue(variables, 'variables', maxDepth + 3, isWellFormedText);
      if (!found) return;
      setResultAndStopExecution({
        errors: [
          badInput(
            found.problem === 'depth'
              ? `a variable is nested deeper than ${maxDepth} levels`
              : `${found.path}: text must not contain unpaired UTF-16 surrogates`,
          ),
        ],
      });
    },
  };
}

function disableIntrospection(): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule((context: ValidationContext): ASTVisitor => ({
        Field(node: FieldNode) {
          if (node.name.value === '__schema' || node.name.value === '__type') {
            context.reportError(new GraphQLError('introspection is disabled', { nodes: [node], extensions: { code: 'INTROSPECTION_DISABLED' } }));
          }
        },
      }));
    },
  };
}

/**
 * A fixed-window request counter per caller, in this process. Several replicas each allow the limit, which
 * bounds abuse without a shared store on the request path.
 */
export class RequestRateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** Seconds to wait, or 0 when the request may go ahead. */
  take(caller: string, now = Date.now()): number {
    if (this.limit <= 0) return 0;
    let window = this.windows.get(caller);
    if (!window || now - window.start >= this.windowMs) {
      window = { start: now, count: 0 };
      this.windows.set(caller, window);
      if (this.windows.size > 10_000) this.evict(now);
    }
    window.count++;
    if (window.count <= this.limit) return 0;
    return Math.max(1, Math.ceil((window.start + this.windowMs - now) / 1000));
  }

  private evict(now: number): void {
    for (const [key, w] of this.windows) if (now - w.start >= this.windowMs) this.windows.delete(key);
  }
}
