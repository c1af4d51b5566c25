// The service's clock, as GET /api/v1/config reports it (`clock`, `now`). Ages on the page ("5 min ago",
// "late by 20 min") and the header clock are measured against it, so a replay or the demo's simulated day
// (KAWAL_CLOCK=event) reads as one consistent clock instead of simulated times next to browser-clock ages.

export const CLOCK_SYNC_MS = 5000;

const samples = []; // { service, wall } in ms, newest last
let kind = "wall";

/** Record one GET /config answer. */
export function syncServiceClock(cfg) {
  kind = cfg && cfg.clock === "event" ? "event" : "wall";
  const service = cfg && cfg.now ? Date.parse(cfg.now) : NaN;
  if (!Number.isFinite(service)) {
    samples.length = 0;
    return;
  }
  samples.push({ service, wall: Date.now() });
  while (samples.length > 3) samples.shift();
}

/** Simulated seconds per real second: 1 on the wall clock; on the event clock, from the last answers. */
function rate() {
  if (kind === "wall") return 1;
  if (samples.length < 2) return 0;
  const a = samples[0];
  const b = samples[samples.length - 1];
  const dw = b.wall - a.wall;
  return dw > 0 ? Math.max(0, (b.service - a.service) / dw) : 0;
}

/** The service's "now" in ms (the browser's clock until the service has said). */
export function serviceNow() {
  const last = samples[samples.length - 1];
  if (!last) return Date.now();
  let since = Date.now() - last.wall;
  // On the event clock, extrapolate only a little: a replay that stops must not run on in the page.
  if (kind === "event") since = Math.min(since, 2 * CLOCK_SYNC_MS);
  return last.service + since * rate();
}

export function serviceClockKind() {
  return kind;
}
