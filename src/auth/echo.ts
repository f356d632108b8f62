/**
 * Caller-supplied text in answers and logs. Partners misplace credentials: an API key or a SigV4
 * secret sent as the whole Authorization value, a key pair swapped, a secret as the access key id.
 * What the relay echoes to help them must never hand such material back (or to whoever reads the
 * response on the way), and logs never hold it at all: a log gets a short fingerprint instead.
 *
 * Runs in workerd and in Node 22 (src/auth/sigv4.ts imports it): WebCrypto only, erasable TS only.
 */
import { toHex } from "./api-key.ts";

/** Runs that can be part of a key or secret (base64 / base62; "/" and "-" split them). */
const TOKEN_RUN = /[A-Za-z0-9+=]+/g;

/**
 * True when the text holds something shaped like credential material: a relay API key (`ebr_…`),
 * a long hex run (a signature, a hash), or a run of letters and digits of 12+ whose case flips as
 * random characters' does (a SigV4 or AWS secret access key, a session token, an API key's body):
 * lower-case stretches averaging under 2.5 letters, or 24+ characters mixing both cases and digits.
 * Identifiers do not match: AWS's access key ids (upper case and digits), dates, regions, header
 * names, CamelCase names such as `PutPartnerEvents` (long lower-case stretches).
 */
export function looksLikeCredential(s: string): boolean {
  if (/ebr_[0-9A-Za-z]{4,}/.test(s)) return true;
  if (/[0-9a-fA-F]{32,}/.test(s)) return true;
  for (const [run] of s.matchAll(TOKEN_RUN)) {
    if (run.length < 12 || !/[a-z]/.test(run) || !/[A-Z]/.test(run)) continue;
    const lowerStretches = run.match(/[a-z]+/g)!;
    const meanLower = lowerStretches.reduce((n, x) => n + x.length, 0) / lowerStretches.length;
    if (meanLower < 2.5 || (run.length >= 24 && /[0-9]/.test(run))) return true;
  }
  return false;
}

/**
 * Untrusted text for a message: printable ASCII, at most `max` characters (then "..."), and only
 * when it matches `allowed` (if given) and looks like no credential; otherwise a placeholder that
 * says how long it was.
 */
export function echo(s: string, max: number, allowed?: RegExp): string {
  if ((allowed && !allowed.test(s)) || looksLikeCredential(s)) return `[${s.length} characters, not echoed]`;
  const clean = s.replace(/[^\x20-\x7e]/g, "?");
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

/**
 * What a log may say about caller-supplied credential material: its length and the first 8 hex
 * characters of its SHA-256 (an operator holding a candidate can check it:
 * `printf %s "$value" | sha256sum | cut -c1-8`), never the material itself.
 */
export async function fingerprint(s: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
  return `sha256:${toHex(digest).slice(0, 8)}, ${s.length} characters`;
}
