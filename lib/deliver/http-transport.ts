import http from 'node:http';
import https from 'node:https';
import { AxiosError, type AxiosAdapter, type AxiosResponse, type InternalAxiosRequestConfig } from 'axios';

/** A request config key whose headers the adapter adds as they are, past axios. */
export const TRANSPORT_HEADERS = 'transportHeaders';

export interface KeepAliveAdapterOptions {
  httpAgent: http.Agent;
  httpsAgent: https.Agent;
}

/**
 * A lean axios adapter for webhook POSTs: one request over a keep-alive agent, the body
 * sent as given, the answer's status and headers read and its body discarded. axios's
 * own Node adapter does much more per request (redirects, proxies, decompression,
 * streams) and costs about twice the CPU, which caps one-event-per-POST delivery.
 */
export function keepAliveAdapter(options: KeepAliveAdapterOptions): AxiosAdapter {
  // A sink posts to one URL: parse it once, not per request.
  let lastUrl: string | undefined;
  let target: { url: URL; hostname: string; path: string } | undefined;
  const parse = (href: string, base?: string) => {
    const key = base ? `${base} ${href}` : href;
    if (key !== lastUrl || !target) {
      const url = new URL(href, base);
      target = { url, hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'), path: url.pathname + url.search };
      lastUrl = key;
    }
    return target;
  };
  return (config: InternalAxiosRequestConfig) =>
    new Promise<AxiosResponse>((resolve, reject) => {
      const { url, hostname, path } = parse(config.url!, config.baseURL);
      const secure = url.protocol === 'https:';
      const body = typeof config.data === 'string' || Buffer.isBuffer(config.data) ? config.data : JSON.stringify(config.data ?? '');
      const headers: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(config.headers.toJSON())) {
        if (value !== undefined && value !== null) headers[name] = Array.isArray(value) ? value : String(value);
      }
      // Node sets each header by its name in any case: these replace configured ones.
      Object.assign(headers, (config as { [TRANSPORT_HEADERS]?: Record<string, string | string[]> })[TRANSPORT_HEADERS]);
      headers['Content-Length'] = String(Buffer.byteLength(body));
      const transport = secure ? https : http;
      const req = transport.request(
        {
          protocol: url.protocol,
          hostname,
          port: url.port || (secure ? 443 : 80),
          path,
          method: (config.method ?? 'post').toUpperCase(),
          headers,
          agent: secure ? options.httpsAgent : options.httpAgent,
        },
        (res) => {
          res.resume();
          res.once('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              statusText: res.statusMessage ?? '',
              // Raw headers: normalizing them costs more than the few we read.
              headers: res.headers as Record<string, string>,
              config,
              data: '',
              request: req,
            }),
          );
          res.once('error', (err) => reject(AxiosError.from(err, AxiosError.ERR_NETWORK, config, req)));
        },
      );
      if (config.timeout) {
        req.setTimeout(config.timeout, () => {
          req.destroy(new AxiosError(`timeout of ${config.timeout}ms exceeded`, AxiosError.ETIMEDOUT, config, req));
        });
      }
      req.once('error', (err) => reject(err instanceof AxiosError ? err : AxiosError.from(err, (err as NodeJS.ErrnoException).code, config, req)));
      req.end(body);
    });
}
