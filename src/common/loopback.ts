/**
 * Loopback hosts are "potentially trustworthy" origins (W3C Secure Contexts): browsers accept
 * Secure and `__Host-` cookies on them over plain http, and sending secrets there stays on the machine.
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return host === 'localhost' || host.endsWith('.localhost') || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}
