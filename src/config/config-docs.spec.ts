import { readFileSync } from 'node:fs';
import { loadConfig } from './config.js';
import { exampleConfigFile } from './config-docs.js';
import { variables } from './config.schema.js';

describe('gateway.example.yaml', () => {
  it('is what the schema generates (npm run docs:config)', () => {
    expect(readFileSync('gateway.example.yaml', 'utf8')).toBe(exampleConfigFile());
  });

  it('loads as a complete configuration, its routes included', () => {
    const config = loadConfig({ CONFIG_FILE: 'gateway.example.yaml' });
    expect(config.proxy.routes.map((r) => [r.prefix, r.token])).toEqual([
      ['/api/reports', 'client'],
      ['/api/content', 'none'],
      ['/api/orders', 'user'],
      ['/api', 'user'],
    ]);
  });

  it('documents every setting, and every default it shows is the schema\'s', () => {
    const text = exampleConfigFile();
    for (const [name, spec] of Object.entries(variables)) {
      if (name === 'CONFIG_FILE' || name === 'PROXY_ROUTES') continue;
      expect(text).toMatch(new RegExp(`^(# )?${name}:`, 'm'));
      if ('default' in spec && spec.default !== '') {
        const shown = new RegExp(`^# ${name}: (.*)$`, 'm').exec(text)?.[1];
        expect(shown?.replace(/^'(.*)'$/, '$1')).toBe(spec.default);
      }
    }
  });
});
