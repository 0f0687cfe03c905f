// Limits on what one GraphQL request may ask for, and on how often one caller may ask.
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { GraphQLError, type ASTVisitor, type FieldNode, type ValidationContext } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { GraphQLLimits } from '../config.js';

/**
 * Depth, aliases, tokens, directives and cost are checked while the document is parsed and validated,
 * before any resolver runs; field suggestions are blocked so that a refused query does not map the schema.
 */
export function armorPlugins(limits: GraphQLLimits): Plugin[] {
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
  return plugins;
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
