import { readFileSync } from 'node:fs';
import { load, YAMLException } from 'js-yaml';
import type { VariableSpec } from './config.schema.js';

type Environment = Readonly<Record<string, string | undefined>>;

/** What CONFIG_FILE contributes: its values as environment strings, and its `routes:` list (unparsed). */
export interface ConfigFileValues {
  /** The environment with the file's values under it: a variable set in the environment wins. */
  readonly env: Environment;
  readonly routes: unknown;
}

const isMapping = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * CONFIG_FILE (YAML, or JSON, which YAML reads too): its keys are the environment variables' names,
 * plus `routes:` in place of PROXY_ROUTES. Values are validated afterwards by the same schema as
 * the environment's; here only the shape is checked, one line per problem.
 */
export function readConfigFile(env: Environment, names: readonly string[], variables: Readonly<Record<string, VariableSpec>>, problems: string[]): ConfigFileValues {
  const path = env['CONFIG_FILE'];
  if (path === undefined || path === '') return { env, routes: undefined };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    problems.push(`CONFIG_FILE: cannot read the file ${path}`);
    return { env, routes: undefined };
  }
  let document: unknown;
  try {
    document = load(text, { filename: path });
  } catch (error) {
    // the parser's own reason and position, never the text around it (it may hold a secret)
    const reason = error instanceof YAMLException ? `${error.reason}${error.mark === undefined ? '' : ` at line ${error.mark.line + 1}`}` : 'unreadable';
    problems.push(`CONFIG_FILE: ${path} is not valid YAML or JSON (${reason})`);
    return { env, routes: undefined };
  }
  if (document === undefined || document === null) return { env, routes: undefined };
  if (!isMapping(document)) {
    problems.push(`CONFIG_FILE: ${path} must be a mapping of variable names to values`);
    return { env, routes: undefined };
  }

  const known = new Set(names.filter((name) => name !== 'CONFIG_FILE'));
  const secretFiles = new Set(names.filter((name) => variables[name]?.secret === true).map((name) => `${name}_FILE`));
  const values: Record<string, string> = {};
  let routes: unknown;
  for (const [key, value] of Object.entries(document)) {
    if (key === 'routes') {
      routes = value;
      continue;
    }
    if (!known.has(key) && !secretFiles.has(key)) {
      problems.push(`${key}: unknown setting in CONFIG_FILE (its keys are the variable names and routes)`);
      continue;
    }
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') values[key] = String(value);
    else if (value !== null) problems.push(`${key}: expected a string, number or boolean`);
  }
  if (routes !== undefined && values['PROXY_ROUTES'] !== undefined) problems.push('routes: set either routes or PROXY_ROUTES in CONFIG_FILE, not both');

  const merged: Record<string, string | undefined> = { ...values };
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value === '') continue;
    merged[name] = value;
    // a secret set either way in the environment replaces both of the file's ways
    const secret = name.endsWith('_FILE') ? name.slice(0, -'_FILE'.length) : name;
    if (variables[secret]?.secret === true) {
      if (env[secret] === undefined || env[secret] === '') delete merged[secret];
      if (env[`${secret}_FILE`] === undefined || env[`${secret}_FILE`] === '') delete merged[`${secret}_FILE`];
    }
  }
  return { env: merged, routes };
}
