/**
 * AES-256-GCM sealing of tenant secrets (AWS secret access keys, session tokens, SigV4 secrets).
 *
 * The key is the SEALING_KEY Worker secret (base64 of 32 bytes); the admin CLI seals with the
 * same key before anything is written to KV. The associated data binds a ciphertext to its tenant
 * and field, so a ciphertext copied into another tenant's record (or another field) fails to open.
 *
 * Wire form: `v1.<base64url iv>.<base64url ciphertext+tag>`. Runs on WebCrypto (Workers, Node 22).
 */

const VERSION = "v1";
const IV_BYTES = 12; // AES-GCM's recommended nonce size (NIST SP 800-38D)
const KEY_BYTES = 32; // AES-256

export class SealingError extends Error {
  override name = "SealingError";
}

const keyCache = new Map<string, Promise<CryptoKey>>();

/** Imports (once per isolate) the AES key from its base64 form. */
export function importSealingKey(base64Key: string | undefined): Promise<CryptoKey> {
  if (!base64Key) return Promise.reject(new SealingError("SEALING_KEY is not set"));
  let key = keyCache.get(base64Key);
  if (!key) {
    key = (async () => {
      let raw: Uint8Array<ArrayBuffer>;
      try {
        raw = base64ToBytes(base64Key.trim());
      } catch {
        throw new SealingError("SEALING_KEY is not valid base64");
      }
      if (raw.length !== KEY_BYTES) {
        throw new SealingError(`SEALING_KEY must decode to ${KEY_BYTES} bytes, not ${raw.length}`);
      }
      return crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
    })();
    key.catch(() => keyCache.delete(base64Key));
    keyCache.set(base64Key, key);
  }
  return key;
}

function aad(tenantId: string, field: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(new TextEncoder().encode(`eventbridge-relay/${VERSION}/${tenantId}/${field}`));
}

export async function seal(key: CryptoKey, tenantId: string, field: string, plaintext: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const ct = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: aad(tenantId, field) },
    key,
    new TextEncoder().encode(plaintext),
  );
  return `${VERSION}.${bytesToBase64Url(iv)}.${bytesToBase64Url(new Uint8Array(ct))}`;
}

/** Opens a sealed value; throws SealingError (never the plaintext) when it cannot. */
export async function unseal(key: CryptoKey, tenantId: string, field: string, sealed: string): Promise<string> {
  const parts = sealed.split(".");
  if (parts.length !== 3 || parts[0] !== VERSION) {
    throw new SealingError(`sealed ${field} is not in the ${VERSION} format`);
  }
  try {
    const iv = base64UrlToBytes(parts[1]!);
    const ct = base64UrlToBytes(parts[2]!);
    const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: aad(tenantId, field) }, key, ct);
    return new TextDecoder().decode(pt);
  } catch {
    throw new SealingError(`sealed ${field} failed to decrypt (wrong key, or not this tenant's)`);
  }
}

// ---- base64 helpers (atob/btoa exist in Workers and Node) ------------------------------------

export function bytesToBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

export function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function bytesToBase64Url(bytes: Uint8Array): string {
  return bytesToBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function base64UrlToBytes(s: string): Uint8Array<ArrayBuffer> {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
  return base64ToBytes(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
}
