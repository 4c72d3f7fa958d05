import type { Event, EventKind } from '../model/event';
import { eventKind } from '../model/event-kind';

/**
 * Where a broker message goes, written as a template: a NATS subject, an AMQP routing
 * key or an MQTT topic, e.g. `registry.events.{action}.{kind}`. Placeholders are
 * `{action}` (push, pull, mount, delete), `{kind}` (manifest, blob, tag, repository) and
 * `{repository}` (its path segments, each one token of the route).
 */
export const ROUTE_PLACEHOLDERS = ['action', 'kind', 'repository'] as const;
export type RoutePlaceholder = (typeof ROUTE_PLACEHOLDERS)[number];

/** How a broker's routes are spelt: the token separator and the characters a token may not hold. */
export interface RouteSyntax {
  /** NATS subjects and AMQP topic keys use `.`, MQTT topics `/`. */
  separator: '.' | '/';
  /** Characters that are wildcards or separators in this broker's routes. */
  reserved: RegExp;
}

export const NATS_ROUTES: RouteSyntax = { separator: '.', reserved: /[.*>\s]/g };
export const AMQP_ROUTES: RouteSyntax = { separator: '.', reserved: /[.*#\s]/g };
export const MQTT_ROUTES: RouteSyntax = { separator: '/', reserved: /[/+#\u0000]/g };

/** A route template that cannot be used: an unknown placeholder or a wildcard. */
export class RouteTemplateError extends Error {
  override readonly name = 'RouteTemplateError';
  constructor(
    readonly template: string,
    reason: string,
  ) {
    super(`route ${JSON.stringify(template)}: ${reason}`);
  }
}

/**
 * Checks a template and returns the function that fills it for an event. Throws
 * RouteTemplateError for an empty template, an unknown `{placeholder}`, or a wildcard
 * character of the broker (a message is published to one route, never a pattern).
 */
export function routeTemplate(template: string, syntax: RouteSyntax): (event: Event & { kind?: EventKind }) => string {
  if (template === '') throw new RouteTemplateError(template, 'must not be empty');
  const parts = template.split(/(\{[^{}]*\})/);
  for (const part of parts) {
    const m = /^\{(.*)\}$/.exec(part);
    if (m) {
      if (!(ROUTE_PLACEHOLDERS as readonly string[]).includes(m[1])) {
        throw new RouteTemplateError(template, `unknown placeholder {${m[1]}}; use ${ROUTE_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`);
      }
    } else if (/[{}]/.test(part)) {
      throw new RouteTemplateError(template, 'a brace that opens no placeholder');
    } else {
      const wildcard = part.split(syntax.separator).join('').match(syntax.reserved);
      if (wildcard) throw new RouteTemplateError(template, `${JSON.stringify(wildcard[0])} is a wildcard or reserved character here`);
    }
  }
  const token = (s: string) => s.replace(syntax.reserved, '_') || '_';
  return (event) => {
    const values: Record<RoutePlaceholder, string> = {
      action: token(event.action),
      kind: eventKind(event),
      repository: (event.target?.repository ?? '_').split('/').map(token).join(syntax.separator),
    };
    return parts.map((part) => (/^\{.*\}$/.test(part) ? values[part.slice(1, -1) as RoutePlaceholder] : part)).join('');
  };
}

/**
 * The pattern that matches every route the template makes: each token holding a
 * placeholder becomes the one-token wildcard, and a `{repository}` the many-token one
 * that ends the pattern. For NATS: `registry.events.{action}.{kind}` gives
 * `registry.events.*.*`, what a stream created for the endpoint captures.
 */
export function routePattern(template: string, one: string, many: string, separator: '.' | '/'): string {
  const out: string[] = [];
  for (const tok of template.split(separator)) {
    if (tok.includes('{repository}')) {
      out.push(many);
      break;
    }
    out.push(/\{[^{}]*\}/.test(tok) ? one : tok);
  }
  return out.join(separator);
}
