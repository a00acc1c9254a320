/**
 * `describe` when what the suite needs is installed (`missing` is undefined). Otherwise a developer's
 * run skips the suite and says why, while CI (CI=true) fails it with `missing` (the install command):
 * a silently skipped test against a real part proves nothing.
 */
export function describeWhenInstalled(name: string, missing: string | undefined, body: () => void): void {
  if (missing === undefined) {
    describe(name, body);
  } else if (process.env['CI'] === 'true') {
    describe(name, () => {
      it('has what it needs installed', () => {
        throw new Error(missing);
      });
    });
  } else {
    console.warn(`skipping "${name}": ${missing}`);
    describe.skip(name, body);
  }
}
