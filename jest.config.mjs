// Native ESM Jest (run with --experimental-vm-modules): NestJS 12 is ESM-only.
// .mjs because a TypeScript config would need ts-node, which is fragile under "type": "module".
const swc = [
  '@swc/jest',
  {
    jsc: {
      target: 'es2023',
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
      keepClassNames: true,
    },
    module: { type: 'es6' },
    sourceMaps: 'inline',
  },
];

// content-disposition@3 (required by @fastify/static) is ESM-only, and Jest 30 can require() ESM only
// on Node 24.9+: compile that one package to CommonJS, as Node 20.19+ itself loads it without help.
const esmOnlyRequiredByCjs = ['content-disposition'];
const swcToCommonJs = ['@swc/jest', { jsc: { target: 'es2023', parser: { syntax: 'ecmascript' } }, module: { type: 'commonjs' } }];

const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': swc,
    [`/node_modules/(${esmOnlyRequiredByCjs.join('|')})/.+\\.js$`]: swcToCommonJs,
  },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnlyRequiredByCjs.join('|')})/)`],
  // Relative imports carry .js (nodenext); the sources are .ts.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testEnvironment: 'node',
  // .tools/ holds the Node runtime the test script installs: nothing to crawl there
  modulePathIgnorePatterns: ['<rootDir>/.tools/'],
};

export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/scripts/**/*.spec.ts'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'], slowTestThreshold: 30 },
  ],
  // a global option: Jest ignores it inside a project. Unit tests finish in milliseconds anyway;
  // e2e tests start real servers and wait on them with their own deadlines.
  testTimeout: 60_000,
  // Two cores: more workers only fight over CPU with the servers each e2e file starts.
  maxWorkers: 2,
};
