import type { IncomingHttpHeaders } from 'node:http';
import { applyResponsePolicy, gatewayCookieMatcher, type ResponsePolicy } from './response-headers.js';

const isGatewayCookie = gatewayCookieMatcher('__Host-bff-session');
const dropCookies: ResponsePolicy = { passCookies: false, isGatewayCookie, varyCookie: false };
const passCookies: ResponsePolicy = { passCookies: true, isGatewayCookie, varyCookie: false };

const PLANTED = [
  '__Host-bff-session=planted; Path=/; Secure',
  'bff-session=planted',
  '__Secure-bff-session=planted; Secure',
  '__HOST-BFF-SESSION=planted; Secure',
  ' bff-session =planted',
  '__Host-bff-session; Secure',
  '=__Host-bff-session; Secure',
];

describe('gatewayCookieMatcher', () => {
  it.each(['__Host-bff-session', 'bff-session', '__Secure-bff-session', '__host-BFF-session'])('treats %s as the gateway\'s', (name) => {
    expect(isGatewayCookie(name)).toBe(true);
  });

  it.each(['theme', 'bff-session2', 'x-bff-session'])('leaves %s to the app', (name) => {
    expect(isGatewayCookie(name)).toBe(false);
  });

  it('matches the insecure (unprefixed) cookie name the same way', () => {
    expect(gatewayCookieMatcher('bff-session')('__Host-bff-session')).toBe(true);
  });
});

describe('applyResponsePolicy', () => {
  it('drops every Set-Cookie by default', () => {
    const headers: IncomingHttpHeaders = { 'set-cookie': ['theme=dark', ...PLANTED], 'content-type': 'text/plain' };
    const headersSent = applyResponsePolicy(headers, dropCookies, false);
    expect(headersSent).toEqual({ 'content-type': 'text/plain' });
  });

  it('passes a route\'s own cookies with passCookies, never the gateway\'s nor a nameless one', () => {
    const headers: IncomingHttpHeaders = { 'set-cookie': ['theme=dark; Path=/', ...PLANTED, 'lang=en'] };
    const headersSent = applyResponsePolicy(headers, passCookies, false);
    expect(headersSent['set-cookie']).toEqual(['theme=dark; Path=/', 'lang=en']);
  });

  it('removes Set-Cookie entirely when nothing is left to pass', () => {
    const headers: IncomingHttpHeaders = { 'set-cookie': PLANTED };
    const headersSent = applyResponsePolicy(headers, passCookies, false);
    expect('set-cookie' in headersSent).toBe(false);
  });

  it('drops hop-by-hop headers and the ones Connection names, and keeps Location unchanged', () => {
    const headers: IncomingHttpHeaders = {
      connection: 'close, x-hop',
      'x-hop': '1',
      'keep-alive': 'timeout=5',
      'proxy-authenticate': 'Basic',
      trailer: 'x-sum',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      te: 'trailers',
      location: 'https://elsewhere.example/a?b=%2F',
      'x-kept': 'yes',
    };
    const headersSent = applyResponsePolicy(headers, dropCookies, false);
    expect(headersSent).toEqual({ location: 'https://elsewhere.example/a?b=%2F', 'x-kept': 'yes' });
  });

  it('keeps Connection and Upgrade on a 101, and filters the rest as for any response', () => {
    const headers: IncomingHttpHeaders = { connection: 'Upgrade, x-hop', upgrade: 'websocket', 'x-hop': '1', 'set-cookie': ['__Host-bff-session=planted'], 'sec-websocket-accept': 'abc' };
    const headersSent = applyResponsePolicy(headers, passCookies, true);
    expect(headersSent).toEqual({ connection: 'Upgrade, x-hop', upgrade: 'websocket', 'sec-websocket-accept': 'abc' });
  });

  it('adds Cookie to Vary on a user-or-none route, keeping the upstream\'s own names', () => {
    const policy: ResponsePolicy = { ...dropCookies, varyCookie: true };
    const none: IncomingHttpHeaders = {};
    const noneSent = applyResponsePolicy(none, policy, false);
    expect(noneSent.vary).toBe('Cookie');
    const some: IncomingHttpHeaders = { vary: 'Accept-Encoding' };
    const someSent = applyResponsePolicy(some, policy, false);
    expect(someSent.vary).toBe('Accept-Encoding, Cookie');
    const already: IncomingHttpHeaders = { vary: 'cookie' };
    const alreadySent = applyResponsePolicy(already, policy, false);
    expect(alreadySent.vary).toBe('cookie');
    const plain: IncomingHttpHeaders = { vary: 'Accept' };
    const plainSent = applyResponsePolicy(plain, dropCookies, false);
    expect(plainSent.vary).toBe('Accept');
  });
});
