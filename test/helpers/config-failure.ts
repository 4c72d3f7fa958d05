import { ConfigError } from '../../lib';

/** The ConfigError that `parse` throws; fails the test when it throws none or another error. */
export function configFailure(parse: () => unknown): ConfigError {
  try {
    parse();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}
