/**
 * Relay-issued SigV4 key pairs, in the shape src/auth/sigv4.ts's generateSigV4KeyPair() gives:
 * access key id "RLY" + 17 characters of [A-Z2-7] (20 like AWS's, ~85 bits), secret 40 characters.
 *
 * Written here because src/auth/sigv4.ts did not exist yet when the CLI was built; switch the
 * import in commands/sigv4.ts to it once it lands (same contract).
 */
import { randomBase62 } from "../../src/auth/api-key.ts";

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
export const SIGV4_ACCESS_KEY_PREFIX = "RLY";
const ACCESS_KEY_RANDOM_CHARS = 17;
const SECRET_CHARS = 40;

export function generateSigV4KeyPair(): { accessKeyId: string; secretAccessKey: string } {
  // 256 is a multiple of 32, so `b & 31` has no modulo bias.
  const bytes = crypto.getRandomValues(new Uint8Array(ACCESS_KEY_RANDOM_CHARS));
  let id = SIGV4_ACCESS_KEY_PREFIX;
  for (const b of bytes) id += BASE32[b & 31];
  return { accessKeyId: id, secretAccessKey: randomBase62(SECRET_CHARS) };
}

/** The relay's access key id format (what `sigv4 revoke` accepts). */
export const SIGV4_ACCESS_KEY_PATTERN = /^RLY[A-Z2-7]{17}$/;
