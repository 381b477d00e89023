/**
 * `fn` at most once every `ms`: the first call runs at once, calls within `ms` of a run are
 * gathered into one run at the end of the interval (so the last call is never lost).
 */
export function throttle(fn: () => void, ms: number): { (): void; cancel(): void } {
  let last = -Infinity;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const run = () => {
    timer = null;
    last = Date.now();
    fn();
  };
  const call = () => {
    if (timer != null) return;
    const wait = last + ms - Date.now();
    if (wait <= 0) run();
    else timer = setTimeout(run, wait);
  };
  call.cancel = () => {
    if (timer != null) clearTimeout(timer);
    timer = null;
  };
  return call;
}

/**
 * Answers in the order asked: `next()` numbers a request, `isCurrent(n)` tells whether no later
 * one was asked since (an older answer that arrives last must not win).
 */
export function sequence() {
  let asked = 0;
  return {
    next: () => ++asked,
    isCurrent: (n: number) => n === asked,
  };
}
