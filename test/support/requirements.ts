/**
 * `describe` when what the suite needs is installed (`missing` is undefined). Otherwise the suite
 * fails with `missing` (the install command), in CI and on a developer's machine alike: a skipped
 * test against a real part proves nothing, and the README's test command installs every part.
 */
export function describeWhenInstalled(name: string, missing: string | undefined, body: () => void): void {
  if (missing === undefined) {
    describe(name, body);
    return;
  }
  describe(name, () => {
    it('has what it needs installed', () => {
      throw new Error(missing);
    });
  });
}
