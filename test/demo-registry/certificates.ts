import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export const OPENSSL = '/usr/bin/openssl';

/**
 * Makes, with the openssl command, a CA in `dir` and certificates it signed: one for the
 * server at 127.0.0.1 and one for a client. Returns the PEM files.
 */
export function makeCertificates(dir: string): { caCert: string; cert: string; key: string; clientCert: string; clientKey: string } {
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync(OPENSSL, args, { stdio: 'pipe' });
  writeFileSync(
    file('ca.cnf'),
    [
      '[req]', 'distinguished_name = dn', 'prompt = no',
      '[dn]', 'CN = demo-registry test CA',
      '[v3_ca]', 'basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign', 'subjectKeyIdentifier = hash',
    ].join('\n'),
  );
  openssl('req', '-x509', '-config', file('ca.cnf'), '-extensions', 'v3_ca', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-keyout', file('ca.key'), '-out', file('ca.pem'));
  const signed = (name: string, cn: string, extensions: string[]) => {
    openssl('req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`));
    writeFileSync(file(`${name}.ext`), ['basicConstraints = CA:FALSE', 'keyUsage = critical,digitalSignature,keyEncipherment', ...extensions].join('\n'));
    openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', file(`${name}.ext`), '-out', file(`${name}.crt`));
  };
  signed('server', '127.0.0.1', ['subjectAltName = IP:127.0.0.1', 'extendedKeyUsage = serverAuth']);
  signed('client', 'alice', ['extendedKeyUsage = clientAuth']);
  return { caCert: file('ca.pem'), cert: file('server.crt'), key: file('server.key'), clientCert: file('client.crt'), clientKey: file('client.key') };
}
