/** An endpoint URL taken apart: where requests go, what people are shown, and its credentials. */
export interface EndpointUrl {
  /** The URL requests go to, without `user:password@`. */
  readonly href: string;
  /** The URL as stats, logs and error messages show it: credentials and secret-looking query values replaced. */
  readonly shown: string;
  /** `Basic …` from the URL's `user:password@`, sent as Distribution's HTTP client does; undefined without one. */
  readonly authorization?: string;
}

const REDACTED = 'redacted';
/** Query parameters whose values are credentials more often than not. */
const SECRET_PARAM = /key|token|secret|pass|auth|sig|session|credential|code/i;
/** Header names whose values are credentials: Authorization, cookies, and the vendor tokens. */
const SECRET_HEADER = /^(authorization|proxy-authorization|cookie)$|token|key|secret|pass|auth|session|signature|credential/i;

/** Whether a header's values are credentials, not for a stats page or a log. */
export function isSecretHeader(name: string): boolean {
  return SECRET_HEADER.test(name);
}

/** Takes an endpoint URL apart; the URL must parse (the config normaliser has checked it). */
export function parseEndpointUrl(url: string): EndpointUrl {
  const parsed = new URL(url);
  let authorization: string | undefined;
  if (parsed.username || parsed.password) {
    const user = decodeURIComponent(parsed.username);
    const password = decodeURIComponent(parsed.password);
    authorization = 'Basic ' + Buffer.from(`${user}:${password}`, 'utf8').toString('base64');
    parsed.username = '';
    parsed.password = '';
  }
  const href = parsed.href;
  let redacted = authorization !== undefined;
  if (redacted) {
    parsed.username = REDACTED;
    parsed.password = REDACTED;
  }
  for (const name of [...parsed.searchParams.keys()]) {
    if (!SECRET_PARAM.test(name)) continue;
    parsed.searchParams.set(name, REDACTED);
    redacted = true;
  }
  // Unredacted, the URL is shown as it was written.
  return { href, shown: redacted ? parsed.href : url, authorization };
}
