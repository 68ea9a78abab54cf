/**
 * The outbound URL check (src/webhooks/url-policy.ts), pure: what each policy accepts and refuses,
 * including the spellings of an address a URL parser normalizes (hex, decimal, IPv4-mapped IPv6).
 */
import { describe, expect, it } from "vitest";
import { checkWebhookUrl, urlPolicyOf } from "../../src/webhooks/url-policy";

const refusedEverywhere: [string, RegExp][] = [
  ["http://example.com/hook", /https/],
  ["ftp://example.com/hook", /https/],
  ["not a url", /absolute URL/],
  ["/relative/path", /absolute URL/],
  ["https://user:pass@example.com/", /user name or password/],
  ["https://user@example.com/", /user name or password/],
  ["https://10.1.2.3/", /private/],
  ["https://172.16.0.1/", /private/],
  ["https://172.31.255.255/", /private/],
  ["https://192.168.1.1/", /private/],
  ["https://127.0.0.1/", /loopback/],
  ["https://127.8.9.10/", /loopback/],
  ["https://0x7f.1/", /loopback/],
  ["https://2130706433/", /loopback/],
  ["https://0177.0.0.1/", /loopback/],
  ["https://169.254.169.254/latest/meta-data", /link-local/],
  ["https://100.64.0.1/", /CGNAT/],
  ["https://100.127.255.254/", /CGNAT/],
  ["https://224.0.0.1/", /multicast/],
  ["https://239.255.255.250/", /multicast/],
  ["https://0.0.0.0/", /unspecified/],
  ["https://255.255.255.255/", /reserved/],
  ["https://192.0.2.10/", /documentation/],
  ["https://[::1]/", /loopback/],
  ["https://[::]/", /unspecified/],
  ["https://[fe80::1]/", /link-local/],
  ["https://[fc00::1]/", /unique local/],
  ["https://[fd12:3456::1]/", /unique local/],
  ["https://[ff02::1]/", /multicast/],
  ["https://[::ffff:127.0.0.1]/", /IPv4-mapped loopback/],
  ["https://[::ffff:10.0.0.1]/", /IPv4-mapped private/],
  ["https://[::ffff:7f00:1]/", /IPv4-mapped loopback/],
  ["https://[64:ff9b::a9fe:a9fe]/", /NAT64 link-local/],
  ["https://[2002:c0a8:101::1]/", /6to4 private/],
  ["https://[2001:db8::1]/", /documentation/],
  ["https://localhost/", /local name/],
  ["https://LOCALHOST./", /local name/],
  ["https://api.localhost/", /local name/],
  ["https://printer.local/", /local name/],
  ["https://metadata.google.internal/", /local name/],
  ["https://intranet/", /single-label/],
  [`https://example.com/${"a".repeat(2100)}`, /longer than/],
];

const acceptedEverywhere: [string, string][] = [
  ["https://example.com/hook", "https://example.com/hook"],
  ["https://Example.COM", "https://example.com/"],
  ["https://hooks.example.com:8443/a?b=c", "https://hooks.example.com:8443/a?b=c"],
  ["https://8.8.8.8/", "https://8.8.8.8/"],
  ["https://100.128.0.1/", "https://100.128.0.1/"],
  ["https://172.32.0.1/", "https://172.32.0.1/"],
  ["https://[2606:4700:4700::1111]/", "https://[2606:4700:4700::1111]/"],
  ["https://[::ffff:8.8.8.8]/", "https://[::ffff:808:808]/"],
  ["https://localhost.example.com/", "https://localhost.example.com/"],
];

describe("checkWebhookUrl, public policy", () => {
  for (const [url, reason] of refusedEverywhere)
    it(`refuses ${url.slice(0, 60)}`, () => {
      const v = checkWebhookUrl(url, "public");
      expect(v.ok).toBe(false);
      if (!v.ok) expect(v.reason).toMatch(reason);
    });

  for (const [url, normalized] of acceptedEverywhere)
    it(`accepts ${url}`, () => {
      expect(checkWebhookUrl(url, "public")).toEqual({ ok: true, url: normalized });
    });

  it("refuses the hosts the local policy lets through", () => {
    for (const url of ["http://127.0.0.1:8787/hook", "http://localhost:3000/", "https://localhost:3000/"])
      expect(checkWebhookUrl(url, "public").ok, url).toBe(false);
  });
});

/** 127.0.0.1 or localhost once parsed (0x7f.1 and 2130706433 are 127.0.0.1 too). */
function isLocalHost(url: string): boolean {
  try {
    return ["127.0.0.1", "localhost", "localhost."].includes(new URL(url).hostname.toLowerCase());
  } catch {
    return false;
  }
}

describe("checkWebhookUrl, local policy", () => {
  it("also accepts http and https to 127.0.0.1 and localhost, on any port", () => {
    for (const url of [
      "http://127.0.0.1:8787/hook",
      "http://localhost:3000/",
      "https://localhost/",
      "http://127.0.0.1/x",
    ])
      expect(checkWebhookUrl(url, "local"), url).toEqual({ ok: true, url: new URL(url).href });
  });

  it("still refuses every other local or private address, and http to public hosts", () => {
    for (const url of [
      "http://127.0.0.2:8787/",
      "http://[::1]:8787/",
      "http://10.0.0.1/",
      "http://example.com/",
      "http://api.localhost:8787/",
      "http://user:pw@127.0.0.1:8787/",
    ])
      expect(checkWebhookUrl(url, "local").ok, url).toBe(false);
    for (const [url] of refusedEverywhere.filter(([u]) => !isLocalHost(u)))
      expect(checkWebhookUrl(url, "local").ok, url).toBe(false);
  });
});

describe("urlPolicyOf", () => {
  it('is "local" only when said exactly; anything else is the strict policy', () => {
    expect(urlPolicyOf("local")).toBe("local");
    for (const v of [undefined, "", "public", "LOCAL", "local ", "off"]) expect(urlPolicyOf(v)).toBe("public");
  });
});
