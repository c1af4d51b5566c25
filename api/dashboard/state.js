// Shared state of the dashboard page: constants, the state object, the DOM helper, toasts and the
// once-per-frame redraw (`invalidate` marks parts dirty, `flush` draws them).

import { I18n } from "./i18n.js";
import { activeAlerts, renderBoard } from "./board.js";
import { renderDetail } from "./crate.js";
import { renderFleet } from "./fleet.js";

export const TOKEN_KEY = "kawal.token"; // sessionStorage: the token lives only as long as this browser tab
export const NOTICE_KEY = "kawal.notice";
export const LANG_KEY = "kawal.lang";
export const SOUND_KEY = "kawal.sound";

export const ALERT_TYPES = [
  "seal_break", "route_deviation", "unscheduled_stop", "signal_lost", "unexpected_movement",
  "wrong_destination", "overdue", "gps_jump", "low_battery",
  "fix_lost", "spoofing_suspected", "handover_mismatch",
];
export const STATES = ["in_storage", "in_transit", "arrived", "alerting"];
export const STATUS_RANK = { open: 0, acknowledged: 1, resolved: 2 };
export const ACTING_ROLES = new Set(["operator", "admin"]);
export const BOARD_LIMIT = 300; // cards drawn at once; the filters narrow the rest
export const CRATE_LIST_LIMIT = 200;
export const FLEET_REFRESH_MS = 15000;
export const TRACK_LIMIT = 10000;
export const TRACK_LEAD_S = 3600; // also show the hour before departure: movement in storage matters

export const i18n = new I18n();
export const t = (key, vars) => i18n.t(key, vars);
export const $ = (sel) => document.querySelector(sel);

export const state = {
  api: null,
  me: null,
  alerts: new Map(), // id -> Alert
  fresh: new Set(), // alert ids that arrived live and have not been drawn yet
  crates: new Map(), // crate_id -> crate summary (GET /crates)
  // GET /summary: by_district is [{district, total, by_state}], by_kecamatan [{kecamatan, crates, open_alerts...}]
  summary: { by_state: {}, by_district: [], by_kecamatan: [] },
  filters: { type: "", status: "active", district: "", kecamatan: "" },
  fleetDistrict: "",
  crateSearch: "",
  selected: null, // { crateId, crate, trip, track, loading }; its alerts are those in `alerts` with its crate_id
  selectSeq: 0,
  sound: localStorage.getItem(SOUND_KEY) !== "off",
  audio: null,
};

// Assigned once the app starts (session.js); a live binding, so every module sees the map.
export let map = null;
export function setMap(m) {
  map = m;
}

// ---------------------------------------------------------------- small DOM helper (text only, no HTML)

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style") Object.assign(el.style, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** Attributes that make an element act on click, and on Enter when focused (not when a button inside is used). */
export function activate(fn) {
  return {
    tabindex: "0",
    onclick: (ev) => {
      if (!ev.target.closest("button") || ev.target === ev.currentTarget) fn();
    },
    onkeydown: (ev) => {
      if (ev.key === "Enter" && ev.target === ev.currentTarget) fn();
    },
  };
}

export function toast(message, kind = "info") {
  const el = h("div", { class: `toast toast-${kind}`, text: message });
  $("#toasts").append(el);
  setTimeout(() => el.classList.add("leaving"), 4000);
  setTimeout(() => el.remove(), 4600);
}

// ---------------------------------------------------------------- rendering is batched per animation frame

// A burst of stream events (tens of alerts a second) redraws at most every MIN_FLUSH_MS, so the page keeps
// answering input; a lone change still shows on the next frame.
const MIN_FLUSH_MS = 200;
const dirty = new Set();
let frame = 0;
let later = 0;
let lastFlush = -Infinity;
export function invalidate(...parts) {
  for (const p of parts) dirty.add(p);
  if (frame || later) return;
  const wait = lastFlush + MIN_FLUSH_MS - performance.now();
  if (wait <= 0) frame = requestAnimationFrame(flush);
  else later = setTimeout(() => {
    later = 0;
    frame = requestAnimationFrame(flush);
  }, wait);
}
function flush() {
  frame = 0;
  lastFlush = performance.now();
  const parts = new Set(dirty);
  dirty.clear();
  if (parts.has("board")) renderBoard();
  if (parts.has("fleet")) renderFleet();
  if (parts.has("mapAlerts")) map?.setAlerts(activeAlerts());
  if (parts.has("mapCrates")) map?.setCrates([...state.crates.values()]);
  if (parts.has("detail")) renderDetail();
}
