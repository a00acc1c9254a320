import { BadRequestError } from './gateway-error.js';
import { StepUpRequiredError } from '../proxy/proxy.errors.js';
import { mapError, problemPage, rawProblemResponse, statusProblem, toProblem, type Problem } from './problem.js';

describe('statusProblem (the one status table)', () => {
  it.each([
    [400, 'bad_request'],
    [405, 'method_not_allowed'],
    [408, 'request_timeout'],
    [413, 'payload_too_large'],
    [431, 'request_header_fields_too_large'],
    [418, 'client_error'],
    [500, 'internal_error'],
    [503, 'service_unavailable'],
  ])('maps %i to %s', (status, code) => {
    expect(statusProblem(status)).toMatchObject({ status, code });
  });

  it('turns anything that is not an error status into a 500 internal_error', () => {
    expect(statusProblem(200)).toMatchObject({ status: 500, code: 'internal_error' });
    expect(statusProblem(599)).toMatchObject({ status: 500, code: 'internal_error' });
  });

  it('is what mapError uses for framework errors', () => {
    expect(mapError({ statusCode: 413 })).toEqual(statusProblem(413));
    expect(mapError(new Error('boom'))).toEqual(statusProblem(500));
  });
});

describe('rawProblemResponse', () => {
  it('renders a complete HTTP/1.1 response that closes the connection', () => {
    const raw = rawProblemResponse(statusProblem(405), 'req-1');
    const [head = '', body = ''] = raw.split('\r\n\r\n');
    const [statusLine, ...headerLines] = head.split('\r\n');
    expect(statusLine).toBe('HTTP/1.1 405 Method Not Allowed');
    const headers = Object.fromEntries(headerLines.map((line) => line.split(': ') as [string, string]));
    expect(headers).toMatchObject({ 'content-type': 'application/problem+json', connection: 'close', 'x-request-id': 'req-1', 'content-length': String(Buffer.byteLength(body)) });
    expect(JSON.parse(body)).toEqual({ type: '/problems/method_not_allowed', title: 'Method not allowed', status: 405, code: 'method_not_allowed', instance: 'req-1' });
  });

  it('keeps a GatewayError\'s own code, detail and Retry-After', () => {
    const raw = rawProblemResponse(mapError(new BadRequestError('No.')), 'req-2');
    expect(raw).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(raw).toContain('"detail":"No."');
  });
});

describe('problemPage', () => {
  const mismatch: Problem = { type: '/problems/login_state_mismatch', title: 'Sign-in could not be verified', status: 400, code: 'login_state_mismatch', detail: 'Start again.', instance: 'r1' };

  it('names PUBLIC_URL on a login_state_mismatch page: the address sign-in has to start on', () => {
    const page = problemPage(mismatch, 'http://localhost:3000');
    expect(page).toContain('Open <a href="http://localhost:3000/">http://localhost:3000/</a> in this browser');
  });

  it('adds nothing for other codes, or without a canonical URL', () => {
    expect(problemPage({ ...mismatch, code: 'login_denied' }, 'http://localhost:3000')).not.toContain('localhost');
    expect(problemPage(mismatch)).not.toContain('Open <a');
  });

  it('escapes the URL it names', () => {
    expect(problemPage(mismatch, 'https://a.example/"><script>')).not.toContain('<script>');
  });
});

describe('toProblem extension members (RFC 9457 §3.2)', () => {
  it('carries an error\'s extension members, never over a standard member', () => {
    expect(toProblem(mapError(new StepUpRequiredError('/auth/login?acr_values=mfa')), 'req-1')).toEqual({
      type: '/problems/step_up_required',
      title: 'Stronger authentication required',
      status: 401,
      code: 'step_up_required',
      detail: expect.any(String),
      instance: 'req-1',
      loginUrl: '/auth/login?acr_values=mfa',
    });
    const mapped = { ...statusProblem(400), extensions: { status: '200', code: 'ok', instance: 'forged' } };
    expect(toProblem(mapped, 'req-2')).toMatchObject({ status: 400, code: 'bad_request', instance: 'req-2' });
  });
});
