import type { Endpoint } from '../deliver/endpoint';
import { isSecretHeader } from '../deliver/endpoint-url';
import type { EndpointCounters } from './endpoint-stats';

/** One endpoint in the shape of Distribution's `registry.notifications.endpoints` expvar. */
export interface EndpointVars {
  name: string;
  url: string;
  Headers: Record<string, string[]>;
  /** Nanoseconds, as Go's time.Duration marshals. */
  Timeout: number;
  Threshold: number;
  Backoff: number;
  IgnoredMediaTypes: string[];
  Ignore: { MediaTypes: string[]; Actions: string[] };
  Metrics: EndpointCounters;
}

/** An endpoint's configuration and counters as Distribution's `/debug/vars` shows them, credentials redacted. */
export function endpointVars(e: Endpoint): EndpointVars {
  return {
    name: e.name,
    url: e.shownUrl,
    Headers: redactHeaders(e.config.headers),
    Timeout: e.config.timeoutMs * 1e6,
    Threshold: e.config.threshold,
    Backoff: e.config.backoffMs * 1e6,
    IgnoredMediaTypes: e.config.ignoredMediaTypes,
    Ignore: { MediaTypes: e.config.ignore.mediaTypes, Actions: e.config.ignore.actions },
    Metrics: e.stats.snapshot(),
  };
}

/** Headers as a stats page shows them: credentials are not for it. */
export function redactHeaders(headers: Record<string, string[]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(headers)) {
    out[name] = isSecretHeader(name) ? values.map(() => '<redacted>') : values;
  }
  return out;
}
