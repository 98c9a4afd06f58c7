/** IPv4 helpers for the site spec and preflight (no dependencies). */
export interface Cidr {
  network: number;
  prefix: number;
  mask: number;
  broadcast: number;
}

export function ipToInt(s: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Parse "a.b.c.d/p"; the address must be the network address and p in 8..30. */
export function parseCidr(s: string): Cidr | null {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(s);
  if (!m) return null;
  const ip = ipToInt(m[1]);
  const prefix = Number(m[2]);
  if (ip === null || prefix < 8 || prefix > 30) return null;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  if (((ip & mask) >>> 0) !== ip) return null;
  return { network: ip, prefix, mask, broadcast: (ip | (~mask >>> 0)) >>> 0 };
}

export function inSubnet(ip: number, net: Cidr): boolean {
  return ((ip & net.mask) >>> 0) === net.network;
}
