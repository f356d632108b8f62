/**
 * Inbound AWS Signature Version 4: lets the unmodified AWS CLI (v1, v2), boto3 and the JS SDK v3
 * call the relay's `POST /` with a relay-issued key pair (access key id + secret, one tenant).
 *
 * Pure and I/O-free: the caller looks the access key id up, unseals the secret and passes it in.
 * Verification rebuilds the canonical request from exactly the headers named in SignedHeaders and
 * the raw body bytes, re-signs with the client's X-Amz-Date and compares in constant time
 * (AWS SigV4 spec for non-S3 services; facts in ../shared/reference/putpartnerevents.md).
 *
 * Every refusal is a RelayError whose `aws` shape and `detail` follow what AWS answers, so the CLI
 * prints e.g. `An error occurred (InvalidSignatureException) when calling the PutPartnerEvents
 * operation: Signature expired: ...`. No error or log ever carries the secret, the expected
 * signature or the string to sign.
 *
 * Runs in workerd and in Node 22 (the admin CLI imports it under type stripping): WebCrypto only,
 * erasable TypeScript only.
 */
import { errors, type RelayError } from "../errors.ts";
import { SIGV4_MAX_SKEW_MS } from "../limits.ts";
import { timingSafeEqual, toHex } from "./api-key.ts";
import { echo } from "./echo.ts";

// ---- Public API --------------------------------------------------------------------------------

export interface ParsedSigV4 {
  accessKeyId: string;
  /** yyyymmdd from the credential scope (equal to the first 8 characters of amzDate). */
  scopeDate: string;
  region: string;
  service: string;
  /** Lower-case header names, as listed in SignedHeaders (sorted, unique). */
  signedHeaders: string[];
  /** 64 lower-case hex characters. */
  signature: string;
  /** The X-Amz-Date value, yyyymmddThhmmssZ. */
  amzDate: string;
  /** X-Amz-Security-Token when sent (temporary credentials; verifySigV4 refuses them). */
  securityToken: string | null;
}

/** Relay-issued access key ids: "RLY" + 17 base32 characters, 20 in all like AWS's own ids. */
export const SIGV4_ACCESS_KEY_PATTERN = /^RLY[A-Z2-7]{17}$/;
/** Relay-issued secrets: 40 characters of the base64 alphabet, like AWS secret access keys. */
export const SIGV4_SECRET_PATTERN = /^[A-Za-z0-9+/]{40}$/;

/** The only service a credential scope may name (PutPartnerEvents signs as `events`). */
export const SIGV4_SERVICE = "events";
/** The only algorithm accepted in the Authorization header. */
export const SIGV4_ALGORITHM = "AWS4-HMAC-SHA256";

/**
 * Derived signing keys (kSigning) kept per secret + date + region + service in one isolate. A key
 * is good for a whole UTC day, so a tenant's steady traffic costs one HMAC instead of five. Small:
 * an isolate serves few tenants at once, and an entry is ~100 bytes (isolate: 128 MB). The map key
 * holds the secret itself: it lives only in this isolate's memory, like the unsealed secret the
 * caller already holds, and keying on it means a cached key can never verify another secret.
 */
export const SIGV4_SIGNING_KEY_CACHE_MAX_ENTRIES = 256;

// ---- Errors ------------------------------------------------------------------------------------

/** Refusals the front door makes around this module (built in src/errors.ts, like every other). */
export const SigV4Errors = {
  /** No Authorization header (AWS's answer, e.g. to `aws --no-sign-request`). */
  missing(): RelayError {
    return errors.missingSignature();
  },
  /**
   * The access key id is not one the relay issued (or it was revoked). The log names a relay-format
   * id (RLY…, an identifier the relay issued); anything else may be a misplaced secret or API key,
   * so the log gets only `fingerprintOf` (src/auth/echo.ts `fingerprint`) or its length.
   */
  unknownAccessKey(accessKeyId: string, fingerprintOf?: string): RelayError {
    const relayFormat = SIGV4_ACCESS_KEY_PATTERN.test(accessKeyId);
    return errors.unknownAccessKey(
      relayFormat,
      relayFormat
        ? `access key id ${accessKeyId}`
        : `access key id not in the relay's format (${fingerprintOf ?? `${accessKeyId.length} characters`})`,
    );
  },
  /** The signature does not verify. `logReason` must never hold the secret or what was expected. */
  mismatch(logReason?: string): RelayError {
    return errors.signatureMismatch(logReason);
  },
} as const;

// ---- Parsing -----------------------------------------------------------------------------------

const AMZ_DATE_PATTERN = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const SIGNATURE_PATTERN = /^[0-9a-fA-F]{64}$/;
/** Lower-case HTTP token (RFC 9110), the only header names SignedHeaders may hold. */
const HEADER_NAME_PATTERN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
/**
 * A region name as botocore and the JS SDK accept one (an RFC 1123 host label). The relay
 * forwards to the tenant's own region whatever the client signed with, so a client configured
 * for another region is not refused; the scope only has to be well formed.
 */
const REGION_LABEL_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const TERMINATOR = "aws4_request";

// What a refusal may echo of the caller's text (src/auth/echo.ts): only values of the shape the
// field should have, and shorter than a 40-character secret or a 50-character API key, so a key
// or secret a caller put in the wrong place is never echoed whatever src/auth/echo.ts guesses.
/** An authorization scheme or parameter name. */
const SCHEME_TOKEN = /^[A-Za-z][A-Za-z0-9-]{0,31}$/;
/** A header name in the wrong case. */
const HEADER_NAME_ANY_CASE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}$/;
/** A date in some format (ISO 8601, RFC 1123). */
const DATE_TEXT = /^[0-9A-Za-z ,:.+-]{1,32}$/;

/**
 * A credential that is not 5 elements, echoed (AWS does) only when each element has the form of
 * an access key id, a date, a region, a service or the terminator: a swapped key pair puts the
 * secret here, and a secret may hold "/".
 */
function echoCredential(credential: string): string {
  const plain = credential
    .split("/")
    .every((e) => /^[A-Z0-9]{1,128}$/.test(e) || /^[a-z0-9-]{1,63}$/.test(e) || e === TERMINATOR);
  return plain ? echo(credential, 128) : `[${credential.length} characters, not echoed]`;
}
const PARAMS = ["Credential", "SignedHeaders", "Signature"] as const;
type ParamName = (typeof PARAMS)[number];

/** Milliseconds since the epoch for a valid yyyymmddThhmmssZ, else NaN. */
function amzDateToMs(amzDate: string): number {
  const m = AMZ_DATE_PATTERN.exec(amzDate);
  if (!m) return NaN;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  // Date.UTC rolls 20240231 over to March: a round trip catches impossible dates.
  return msToAmzDate(ms) === amzDate ? ms : NaN;
}

function msToAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, "");
}

/**
 * True when the URL carries query-string (presigned) SigV4, which the relay does not accept.
 * Exported so a front door can refuse it before anything else.
 */
export function hasPresignedQuery(url: string | URL): boolean {
  const u = typeof url === "string" ? new URL(url) : url;
  for (const name of u.searchParams.keys()) {
    const n = name.toLowerCase();
    if (n === "x-amz-algorithm" || n === "x-amz-credential" || n === "x-amz-signature") return true;
  }
  return false;
}

function presignedRefusal(): RelayError {
  return errors.presignedNotSupported();
}

/**
 * Reads Authorization + X-Amz-Date. Throws RelayError (src/errors.ts) with the AWS shape set.
 * Checks everything that needs no secret: syntax, credential scope (date, service `events`,
 * terminator, region syntax) and that `host` and `x-amz-date` are signed. Pass `url` too and a
 * presigned (query-string) request is refused as such rather than as "Missing Authentication Token".
 */
export function parseSigV4(headers: Headers, url?: string | URL): ParsedSigV4 {
  if (url !== undefined && hasPresignedQuery(url)) throw presignedRefusal();
  const authorization = (headers.get("authorization") ?? "").trim();
  if (authorization === "") throw SigV4Errors.missing();

  const space = authorization.search(/\s/);
  const scheme = space === -1 ? authorization : authorization.slice(0, space);
  if (scheme !== SIGV4_ALGORITHM) {
    throw errors.malformedSignature(
      `Authorization header must use ${SIGV4_ALGORITHM} (Signature Version 4); got '${echo(scheme, 32, SCHEME_TOKEN)}'.`,
    );
  }

  // "Credential=..., SignedHeaders=..., Signature=..." in any order, spaces after commas optional.
  const params: Partial<Record<ParamName, string>> = {};
  const rest = space === -1 ? "" : authorization.slice(space + 1);
  for (const raw of rest.split(",")) {
    const part = raw.trim();
    if (part === "") continue;
    const eq = part.indexOf("=");
    const name = eq === -1 ? part : part.slice(0, eq);
    if (!(PARAMS as readonly string[]).includes(name)) {
      throw errors.malformedSignature(
        `Authorization header has an unknown or malformed parameter '${echo(name, 32, SCHEME_TOKEN)}'; expected Credential=..., SignedHeaders=..., Signature=....`,
      );
    }
    if (/\s/.test(part)) {
      throw errors.malformedSignature(
        "Authorization header parameters must be separated by commas: Credential=..., SignedHeaders=..., Signature=....",
      );
    }
    if (params[name as ParamName] !== undefined) {
      throw errors.malformedSignature(`Authorization header has the '${name}' parameter more than once.`);
    }
    params[name as ParamName] = part.slice(eq + 1);
  }

  const amzDate = headers.get("x-amz-date");
  const problems: string[] = [];
  for (const name of PARAMS) {
    if (!params[name]) problems.push(`Authorization header requires '${name}' parameter.`);
  }
  if (amzDate === null || amzDate === "") {
    problems.push(
      "Authorization header requires existence of an 'X-Amz-Date' header (the relay does not accept 'Date' in its place).",
    );
  }
  if (problems.length > 0) throw errors.malformedSignature(problems.join(" "));

  const credential = params.Credential!;
  const scope = credential.split("/");
  if (scope.length !== 5 || scope.some((s) => s === "")) {
    throw errors.malformedSignature(
      `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '${echoCredential(credential)}'`,
    );
  }
  const [accessKeyId, scopeDate, region, service, terminator] = scope as [string, string, string, string, string];

  const signedHeaders = params.SignedHeaders!.split(";");
  for (let i = 0; i < signedHeaders.length; i++) {
    const h = signedHeaders[i]!;
    if (!HEADER_NAME_PATTERN.test(h)) {
      throw errors.malformedSignature(
        `SignedHeaders must be lower-case header names separated by ';'; got '${echo(h, 32, HEADER_NAME_ANY_CASE)}'.`,
      );
    }
    if (i > 0 && h <= signedHeaders[i - 1]!) {
      throw errors.malformedSignature(
        "SignedHeaders must be sorted and must not repeat a header (Signature Version 4).",
      );
    }
  }

  const signature = params.Signature!;
  if (!SIGNATURE_PATTERN.test(signature)) {
    throw errors.malformedSignature("Signature must be 64 hexadecimal characters (the hex HMAC-SHA256).");
  }

  if (Number.isNaN(amzDateToMs(amzDate!))) {
    throw errors.malformedSignature(
      `Date must be in ISO-8601 'basic format'. Got '${echo(amzDate!, 40, DATE_TEXT)}'. See http://en.wikipedia.org/wiki/ISO_8601`,
    );
  }

  if (!signedHeaders.includes("host")) {
    throw errors.malformedSignature("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
  }
  if (!signedHeaders.includes("x-amz-date")) {
    throw errors.malformedSignature("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.");
  }

  if (scopeDate !== amzDate!.slice(0, 8)) {
    throw errors.invalidCredentialScope(
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${echo(scopeDate, 16, /^[0-9]{1,16}$/)}' != '${amzDate!.slice(0, 8)}', from '${amzDate}'.`,
    );
  }
  if (!REGION_LABEL_PATTERN.test(region)) {
    throw errors.invalidCredentialScope("Credential should be scoped to a valid region. ");
  }
  if (service !== SIGV4_SERVICE) {
    throw errors.invalidCredentialScope(`Credential should be scoped to correct service: '${SIGV4_SERVICE}'. `);
  }
  if (terminator !== TERMINATOR) {
    throw errors.invalidCredentialScope(
      `Credential should be scoped with a valid terminator: '${TERMINATOR}', not '${echo(terminator, 32, /^[a-z0-9_]{1,32}$/)}'. `,
    );
  }

  return {
    accessKeyId,
    scopeDate,
    region,
    service,
    signedHeaders,
    signature: signature.toLowerCase(),
    amzDate: amzDate!,
    securityToken: headers.get("x-amz-security-token"),
  };
}

// ---- Verification ------------------------------------------------------------------------------

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Rebuilds the canonical request from exactly the signed headers and the raw body bytes, re-signs
 * with the client's X-Amz-Date, compares in constant time. Throws RelayError on any failure.
 *
 * Checks, in order (cheap and precise first): no presigned query; no session token; X-Amz-Date
 * within ±SIGV4_MAX_SKEW_MS of `now`; every signed header present; x-amz-content-sha256 (when
 * sent) is the body's real hash; the signature.
 */
export async function verifySigV4(input: {
  method: string;
  url: string;
  headers: Headers;
  body: Uint8Array;
  parsed: ParsedSigV4;
  secretAccessKey: string;
  now: number /* ms */;
  bodySha256Hex?: string /* if the caller already hashed the body, reuse it */;
}): Promise<void> {
  const { method, headers, body, parsed, secretAccessKey, now } = input;
  const url = new URL(input.url);
  if (hasPresignedQuery(url)) throw presignedRefusal();

  if (parsed.securityToken !== null) {
    throw errors.temporaryCredentialsNotSupported();
  }

  checkClock(parsed.amzDate, now);

  // The canonical headers, from exactly the signed names. Host falls back to the URL (fetch-built
  // Requests carry no Host header); URL.host keeps a non-default port, drops a default one.
  const lines: string[] = [];
  for (const name of parsed.signedHeaders) {
    let value = headers.get(name);
    if (value === null && name === "host") value = url.host;
    if (value === null) {
      throw errors.malformedSignature(
        `The request has no '${name}' header, but SignedHeaders lists it: every signed header must be sent.`,
      );
    }
    // Headers.get() already trims; SigV4 collapses inner runs of spaces. A header sent more than
    // once reads here as "a, b": SigV4 wants "a,b", so a repeated signed header does not verify.
    lines.push(`${name}:${value.replace(/[ \t]+/g, " ")}`);
  }

  // THE TRAP: the client's signature covers x-amz-content-sha256's value, not the body. The
  // canonical request below always uses the body's real hash, and the header is checked against
  // it, so a swapped body never verifies and the client is told why.
  const contentSha = headers.get("x-amz-content-sha256");
  if (contentSha !== null && (contentSha === "UNSIGNED-PAYLOAD" || contentSha.startsWith("STREAMING-"))) {
    throw errors.unsignedPayloadNotSupported(
      `The relay requires a signed payload: x-amz-content-sha256 must be the hex SHA-256 of the body, not ${echo(contentSha, 48, /^[A-Z0-9-]{1,48}$/)} (unsigned and streaming payloads are not accepted).`,
    );
  }
  const bodyHash = await payloadHash(body, input.bodySha256Hex);
  if (contentSha !== null) {
    if (contentSha.toLowerCase() !== bodyHash) {
      throw errors.contentSha256Mismatch();
    }
  }

  const canonicalRequest = [
    method.toUpperCase(),
    canonicalUri(url.pathname),
    canonicalQuery(url.search),
    lines.join("\n") + "\n",
    parsed.signedHeaders.join(";"),
    bodyHash,
  ].join("\n");
  const scope = `${parsed.scopeDate}/${parsed.region}/${parsed.service}/${TERMINATOR}`;
  const stringToSign = [SIGV4_ALGORITHM, parsed.amzDate, scope, toHex(await sha256(latin1(canonicalRequest)))].join(
    "\n",
  );

  const key = await signingKey(secretAccessKey, parsed.scopeDate, parsed.region, parsed.service);
  const expected = toHex(new Uint8Array(await crypto.subtle.sign("HMAC", key, latin1(stringToSign))));
  if (!timingSafeEqual(expected, parsed.signature.toLowerCase())) {
    throw SigV4Errors.mismatch(
      `accessKeyId=${parsed.accessKeyId} scope=${scope} signedHeaders=${parsed.signedHeaders.join(";")}`,
    );
  }
}

function checkClock(amzDate: string, nowMs: number): void {
  const signedAt = amzDateToMs(amzDate);
  // X-Amz-Date has whole seconds: compare at that resolution so the message's times add up.
  const now = Math.floor(nowMs / 1000) * 1000;
  if (Number.isNaN(signedAt)) {
    throw errors.malformedSignature(
      `Date must be in ISO-8601 'basic format'. Got '${echo(amzDate, 40, DATE_TEXT)}'. See http://en.wikipedia.org/wiki/ISO_8601`,
    );
  }
  // The Date header lets the JS SDK v3 correct its clock offset and retry (awsAuthMiddleware).
  const date = new Date(now).toUTCString();
  if (signedAt < now - SIGV4_MAX_SKEW_MS) {
    throw errors.signatureExpired(
      `Signature expired: ${amzDate} is now earlier than ${msToAmzDate(now - SIGV4_MAX_SKEW_MS)} (${msToAmzDate(now)} - 5 min.)`,
      date,
    );
  }
  if (signedAt > now + SIGV4_MAX_SKEW_MS) {
    throw errors.signatureNotYetCurrent(
      `Signature not yet current: ${amzDate} is still later than ${msToAmzDate(now + SIGV4_MAX_SKEW_MS)} (${msToAmzDate(now)} + 5 min.)`,
      date,
    );
  }
}

async function payloadHash(body: Uint8Array, given: string | undefined): Promise<string> {
  if (given !== undefined) {
    const h = given.toLowerCase();
    if (!HEX64.test(h)) throw new TypeError("bodySha256Hex must be 64 hex characters");
    return h;
  }
  return toHex(await sha256(body));
}

async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

/**
 * Header values are byte strings (each character one byte, ISO-8859-1); the rest of the
 * canonical request is ASCII. Encoding each character as its byte hashes what was on the wire.
 */
function latin1(s: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** RFC 3986 encoding: everything but A-Z a-z 0-9 - _ . ~ becomes %XX (upper-case hex). */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Non-S3 canonical URI: the path as sent (already percent-encoded), "." and ".." segments
 * resolved and empty segments dropped, then each segment URI-encoded again ("encoded twice"),
 * exactly as @smithy/signature-v4 and botocore do it.
 */
function canonicalUri(pathname: string): string {
  const segments: string[] = [];
  for (const seg of pathname.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") segments.pop();
    else segments.push(seg);
  }
  const trailing = segments.length > 0 && pathname.endsWith("/") ? "/" : "";
  return "/" + segments.map(uriEncode).join("/") + trailing;
}

/** Canonical query: each name and value decoded then RFC 3986-encoded, sorted by name then value. */
function canonicalQuery(search: string): string {
  const q = search.startsWith("?") ? search.slice(1) : search;
  if (q === "") return "";
  const pairs: [string, string][] = [];
  for (const part of q.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const k = eq === -1 ? part : part.slice(0, eq);
    const v = eq === -1 ? "" : part.slice(eq + 1);
    pairs.push([uriEncode(safeDecode(k)), uriEncode(safeDecode(v))]);
  }
  pairs.sort(([k1, v1], [k2, v2]) => (k1 < k2 ? -1 : k1 > k2 ? 1 : v1 < v2 ? -1 : v1 > v2 ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

// ---- Signing keys ------------------------------------------------------------------------------

const signingKeys = new Map<string, Promise<CryptoKey>>();

/** UTF-8 bytes (TextEncoder always allocates a plain ArrayBuffer). */
function utf8(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s) as Uint8Array<ArrayBuffer>;
}

async function hmac(key: Uint8Array<ArrayBuffer>, data: string): Promise<Uint8Array<ArrayBuffer>> {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, utf8(data)));
}

async function deriveSigningKey(secret: string, date: string, region: string, service: string): Promise<CryptoKey> {
  const kDate = await hmac(utf8("AWS4" + secret), date);
  const kRegion = await hmac(kDate, region);
  const kService = await hmac(kRegion, service);
  const kSigning = await hmac(kService, TERMINATOR);
  return crypto.subtle.importKey("raw", kSigning, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

/** kSigning as a non-extractable HMAC key, from a bounded in-isolate LRU map. */
function signingKey(secret: string, date: string, region: string, service: string): Promise<CryptoKey> {
  const id = JSON.stringify([secret, date, region, service]);
  const hit = signingKeys.get(id);
  if (hit !== undefined) {
    signingKeys.delete(id); // re-insert: Map order is the LRU order
    signingKeys.set(id, hit);
    return hit;
  }
  const p = deriveSigningKey(secret, date, region, service);
  p.catch(() => signingKeys.delete(id));
  signingKeys.set(id, p);
  while (signingKeys.size > SIGV4_SIGNING_KEY_CACHE_MAX_ENTRIES) {
    signingKeys.delete(signingKeys.keys().next().value!);
  }
  return p;
}

// ---- Key pairs ---------------------------------------------------------------------------------

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Uniform characters from an alphabet whose size divides 256 (no modulo bias). */
function randomChars(alphabet: string, length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let out = "";
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

/**
 * New relay-issued key pair: accessKeyId is "RLY" + 17 base32 characters (85 random bits; looks
 * like an AWS key id, recognisably the relay's); the secret is 40 base64-alphabet characters
 * (240 random bits), like an AWS secret access key.
 */
export function generateSigV4KeyPair(): { accessKeyId: string; secretAccessKey: string } {
  return {
    accessKeyId: "RLY" + randomChars(BASE32, 17),
    secretAccessKey: randomChars(BASE64, 40),
  };
}
