/**
 * Which URLs the service may send webhooks to (SSRF safety). Pure: a URL and a policy in, a
 * verdict with a reason a person can act on out. Checked when an endpoint is saved and again
 * before every delivery attempt, so a URL stored under another policy is still refused.
 *
 * - "public" (production; also any unknown value of OUTBOUND_URL_POLICY): `https:` to a public
 *   host only. Refused: userinfo, IP literals in private, loopback, link-local, CGNAT, multicast,
 *   unspecified, reserved and documentation ranges (IPv4 and IPv6, including IPv4 embedded in
 *   IPv6), `localhost`, `*.localhost`, `*.local`, `*.internal` and single-label names. Any port.
 * - "local" (`npm run dev`, the tests): the same, plus `http:` or `https:` to exactly `127.0.0.1`
 *   or `localhost`, on any port.
 *
 * Names are judged by their shape: what a name resolves to is not checked here (a Worker's fetch
 * runs on Cloudflare's network, which does not route to private address space).
 */
import { MAX_WEBHOOK_URL_LENGTH } from "../limits";

export type UrlPolicy = "public" | "local";

export type UrlVerdict = { ok: true; url: string } | { ok: false; reason: string };

/** The policy a binding names: "local" only when said exactly; anything else is the strict one. */
export function urlPolicyOf(value: string | undefined): UrlPolicy {
  return value === "local" ? "local" : "public";
}

const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost"]);
const BLOCKED_SUFFIXES = [".localhost", ".local", ".internal"];

/** The verdict on `raw` under `policy`; `url` is the parsed, normalized form to send to. */
export function checkWebhookUrl(raw: string, policy: UrlPolicy): UrlVerdict {
  if (raw.length > MAX_WEBHOOK_URL_LENGTH) return refuse(`the URL is longer than ${MAX_WEBHOOK_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return refuse("not an absolute URL");
  }
  if (url.username !== "" || url.password !== "") return refuse("URLs with a user name or password are not accepted");
  if (url.protocol !== "https:" && url.protocol !== "http:") return refuse("the URL must use https");
  // The WHATWG parser has already turned 0x7f.1, 2130706433 and friends into dotted IPv4, and
  // IPv6 into its compressed lowercase form: the checks below see one spelling of each address.
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  if (policy === "local" && LOCAL_HOSTS.has(host)) return { ok: true, url: url.href };
  if (url.protocol !== "https:")
    return refuse(
      policy === "local"
        ? "the URL must use https (http is accepted only for 127.0.0.1 and localhost under the local policy)"
        : "the URL must use https",
    );
  const hostProblem = hostRefusal(host);
  return hostProblem === null ? { ok: true, url: url.href } : refuse(hostProblem);
}

function refuse(reason: string): UrlVerdict {
  return { ok: false, reason };
}

/** Why a (lowercased) host is not a public host, or null when it is. */
function hostRefusal(host: string): string | null {
  if (host === "") return "the URL has no host";
  if (host.startsWith("[")) {
    const groups = parseIpv6(host.slice(1, -1));
    if (groups === null) return "not a valid IPv6 address";
    const range = ipv6Range(groups);
    return range === null ? null : `${host} is a ${range} address, not a public one`;
  }
  const v4 = parseIpv4(host);
  if (v4 !== null) {
    const range = ipv4Range(v4);
    return range === null ? null : `${host} is a ${range} address, not a public one`;
  }
  if (host === "localhost" || BLOCKED_SUFFIXES.some((s) => host.endsWith(s)))
    return `${host} is a local name, not a public host`;
  if (!host.includes(".")) return `${host} is a single-label name, not a public host`;
  return null;
}

/** Dotted-quad IPv4 as four octets, or null when `text` is not one. */
function parseIpv4(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p))) return null;
  const octets = parts.map(Number);
  return octets.every((o) => o <= 255) ? octets : null;
}

/** The IPv4 ranges that are not public: a base address, its prefix length, and what the range is. */
const IPV4_RANGES: readonly { base: readonly number[]; bits: number; name: string }[] = [
  { base: [0, 0, 0, 0], bits: 8, name: "unspecified (0.0.0.0/8)" },
  { base: [10, 0, 0, 0], bits: 8, name: "private (10.0.0.0/8)" },
  { base: [100, 64, 0, 0], bits: 10, name: "CGNAT (100.64.0.0/10)" },
  { base: [127, 0, 0, 0], bits: 8, name: "loopback (127.0.0.0/8)" },
  { base: [169, 254, 0, 0], bits: 16, name: "link-local (169.254.0.0/16)" },
  { base: [172, 16, 0, 0], bits: 12, name: "private (172.16.0.0/12)" },
  { base: [192, 0, 0, 0], bits: 24, name: "reserved (192.0.0.0/24)" },
  { base: [192, 0, 2, 0], bits: 24, name: "documentation (192.0.2.0/24)" },
  { base: [192, 88, 99, 0], bits: 24, name: "reserved (192.88.99.0/24)" },
  { base: [192, 168, 0, 0], bits: 16, name: "private (192.168.0.0/16)" },
  { base: [198, 18, 0, 0], bits: 15, name: "benchmarking (198.18.0.0/15)" },
  { base: [198, 51, 100, 0], bits: 24, name: "documentation (198.51.100.0/24)" },
  { base: [203, 0, 113, 0], bits: 24, name: "documentation (203.0.113.0/24)" },
  { base: [224, 0, 0, 0], bits: 4, name: "multicast (224.0.0.0/4)" },
  { base: [240, 0, 0, 0], bits: 4, name: "reserved (240.0.0.0/4)" },
];

const toUint32 = (o: readonly number[]) =>
  (((o[0] ?? 0) << 24) | ((o[1] ?? 0) << 16) | ((o[2] ?? 0) << 8) | (o[3] ?? 0)) >>> 0;

/** The name of the non-public range an IPv4 address is in, or null when it is public. */
function ipv4Range(octets: readonly number[]): string | null {
  const addr = toUint32(octets);
  for (const r of IPV4_RANGES) {
    const mask = r.bits === 0 ? 0 : (0xffffffff << (32 - r.bits)) >>> 0;
    if ((addr & mask) >>> 0 === (toUint32(r.base) & mask) >>> 0) return r.name;
  }
  return null;
}

/** IPv6 text (without brackets) as eight 16-bit groups, or null when it is not IPv6. */
function parseIpv6(text: string): number[] | null {
  let body = text;
  const tail: number[] = [];
  // A trailing dotted quad (::ffff:1.2.3.4) is two groups; the URL parser never leaves one, but
  // this function does not rely on that.
  const lastColon = body.lastIndexOf(":");
  if (lastColon < 0) return null;
  const last = body.slice(lastColon + 1);
  if (last.includes(".")) {
    const v4 = parseIpv4(last);
    if (v4 === null) return null;
    tail.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
    // Keep a "::" the quad followed ("::1.2.3.4"); otherwise drop the colon before it.
    body = body.slice(0, lastColon + 1);
    if (!body.endsWith("::")) body = body.slice(0, -1);
  }
  const halves = body.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string) => (part === "" ? [] : part.split(":"));
  const head = parse(halves[0] ?? "");
  const rest = halves.length === 2 ? parse(halves[1] ?? "") : [];
  if (![...head, ...rest].every((g) => /^[0-9a-f]{1,4}$/.test(g))) return null;
  const known = head.length + rest.length + tail.length;
  if (halves.length === 1 ? known !== 8 : known > 7) return null;
  const zeros = new Array<number>(8 - known).fill(0);
  return [...head.map((g) => Number.parseInt(g, 16)), ...zeros, ...rest.map((g) => Number.parseInt(g, 16)), ...tail];
}

/** The name of the non-public range an IPv6 address is in (checking embedded IPv4), or null. */
function ipv6Range(g: readonly number[]): string | null {
  const at = (i: number) => g[i] ?? 0;
  const embedded = (hi: number, lo: number) => [at(hi) >> 8, at(hi) & 0xff, at(lo) >> 8, at(lo) & 0xff];
  const firstSixZero = [0, 1, 2, 3, 4, 5].every((i) => at(i) === 0);
  if (firstSixZero && at(6) === 0 && at(7) === 0) return "unspecified (::)";
  if (firstSixZero && at(6) === 0 && at(7) === 1) return "loopback (::1)";
  // IPv4-mapped ::ffff:a.b.c.d and the deprecated IPv4-compatible ::a.b.c.d: judged as the IPv4.
  if ([0, 1, 2, 3, 4].every((i) => at(i) === 0) && (at(5) === 0xffff || at(5) === 0)) {
    const range = ipv4Range(embedded(6, 7));
    return range === null ? null : `IPv4-mapped ${range}`;
  }
  // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits; 6to4 (2002::/16) in bits 16-47.
  if (at(0) === 0x64 && at(1) === 0xff9b) {
    const range = ipv4Range(embedded(6, 7));
    return range === null ? null : `NAT64 ${range}`;
  }
  if (at(0) === 0x2002) {
    const range = ipv4Range(embedded(1, 2));
    return range === null ? null : `6to4 ${range}`;
  }
  if ((at(0) & 0xffc0) === 0xfe80) return "link-local (fe80::/10)";
  if ((at(0) & 0xffc0) === 0xfec0) return "site-local (fec0::/10)";
  if ((at(0) & 0xfe00) === 0xfc00) return "unique local (fc00::/7)";
  if ((at(0) & 0xff00) === 0xff00) return "multicast (ff00::/8)";
  if (at(0) === 0x2001 && at(1) === 0x0db8) return "documentation (2001:db8::/32)";
  if (at(0) === 0x0100 && at(1) === 0 && at(2) === 0 && at(3) === 0) return "discard-only (100::/64)";
  return null;
}
