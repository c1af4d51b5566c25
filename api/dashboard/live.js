// Alerts from the live stream: merging copies, the alarm flash and sound.

import { $, invalidate, state, STATUS_RANK } from "./state.js";
import { refreshFleetSoon } from "./session.js";
import { refreshSelectedSoon } from "./crate.js";

// ---------------------------------------------------------------- alerts: merge, live stream, alarm

/**
 * Keep the newest known state of an alert: a copy older than the one held (a list read racing a stream event)
 * is ignored. `updated_at` orders the changes; status only moves forward, which orders them without it.
 * Returns whether the alert was new to the page.
 */
export function mergeAlert(a) {
  if (!a || typeof a.id !== "string") return false;
  const old = state.alerts.get(a.id);
  if (old) {
    const older = a.updated_at && old.updated_at ? Date.parse(a.updated_at) < Date.parse(old.updated_at) : false;
    if (older || (STATUS_RANK[a.status] ?? 0) < (STATUS_RANK[old.status] ?? 0)) return false;
  }
  state.alerts.set(a.id, a);
  return !old;
}

export function onStreamEvent(ev) {
  let alert;
  try {
    alert = JSON.parse(ev.data);
  } catch {
    return; // not an alert (e.g. a keep-alive with data); nothing to show
  }
  if (!alert || typeof alert.id !== "string" || typeof alert.type !== "string") return;
  const isNew = mergeAlert(alert);
  if (isNew) state.fresh.add(alert.id);
  // Sound the alarm for the raise itself (live, or replayed after a reconnect), not for a later change of an
  // alert the page had not loaded yet.
  const raised = !alert.history?.length || alert.history.at(-1).action === "raise";
  if (isNew && raised && alert.severity === "critical" && alert.status === "open") raiseAlarm();
  invalidate("board", "mapAlerts");
  if (state.selected && alert.crate_id === state.selected.crateId) {
    invalidate("detail");
    refreshSelectedSoon();
  }
  refreshFleetSoon();
}

// One flash and beep per burst: a storm of seal breaks must not restart the animation (and a page layout)
// for every one of them.
const ALARM_GAP_MS = 1500;
let lastAlarm = -Infinity;

function raiseAlarm() {
  const now = performance.now();
  if (now - lastAlarm < ALARM_GAP_MS) return;
  lastAlarm = now;
  const flash = $("#flash");
  flash.classList.remove("on");
  void flash.offsetWidth; // restart the animation when alarms come in quick succession
  flash.classList.add("on");
  flash.addEventListener("animationend", () => flash.classList.remove("on"), { once: true });
  beep();
}

export function unlockAudio() {
  if (!state.sound) return;
  try {
    state.audio ??= new AudioContext();
    if (state.audio.state === "suspended") state.audio.resume();
  } catch {
    state.audio = null; // no audio device: the flash still shows
  }
}

/** Three short tones, generated: no audio file to load. */
function beep() {
  const ctx = state.audio;
  if (!state.sound || !ctx || ctx.state !== "running") return;
  const t0 = ctx.currentTime + 0.01;
  [880, 660, 880].forEach((freq, i) => {
    const start = t0 + i * 0.2;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "square";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, start);
    gain.gain.exponentialRampToValueAtTime(0.15, start + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.17);
    osc.connect(gain).connect(ctx.destination);
    osc.start(start);
    osc.stop(start + 0.18);
  });
}
