/** A token bucket: `rate` tokens per second up to `burst`. Pure: time is passed in (ms). */
export class TokenBucket {
  #rate: number;
  #burst: number;
  #tokens: number;
  #at: number;

  constructor(rate: number, burst: number, now: number) {
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = burst;
    this.#at = now;
  }

  /** Applies new limits from the tenant record, keeping the tokens already earned. */
  configure(rate: number, burst: number, now: number): void {
    if (rate === this.#rate && burst === this.#burst) return;
    this.#refill(now);
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = Math.min(this.#tokens, burst);
  }

  #refill(now: number): void {
    if (now > this.#at) {
      this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) / 1000) * this.#rate);
      this.#at = now;
    }
  }

  tryTake(now: number): boolean {
    this.#refill(now);
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return true;
    }
    return false;
  }

  /** Milliseconds until `n` tokens are available (0 when they are); `n` is capped at the burst. */
  waitMs(now: number, n = 1): number {
    this.#refill(now);
    const want = Math.max(1, Math.min(n, this.#burst));
    return this.#tokens >= want ? 0 : Math.ceil(((want - this.#tokens) / this.#rate) * 1000);
  }

  /** Whole tokens left now. */
  remaining(now: number): number {
    this.#refill(now);
    return Math.floor(this.#tokens);
  }

  get rate(): number {
    return this.#rate;
  }
  get burst(): number {
    return this.#burst;
  }
}
