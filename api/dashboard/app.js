// Kawal ops dashboard: login, live alert board, map, crate detail and fleet summary.
// Plain ES modules, no build step. All data comes from this server's /api/v1 (CONTRACT section 2).

import { Api, ApiError, EventStream } from "./api.js";
import { I18n, LANGS } from "./i18n.js";
import { MapView, STATE_COLORS, hasPosition } from "./mapview.js";

const TOKEN_KEY = "kawal.token"; // sessionStorage: the token lives only as long as this browser tab
const NOTICE_KEY = "kawal.notice";
const LANG_KEY = "kawal.lang";
const SOUND_KEY = "kawal.sound";

const ALERT_TYPES = [
  "seal_break", "route_deviation", "unscheduled_stop", "signal_lost", "unexpected_movement",
  "wrong_destination", "overdue", "gps_jump", "low_battery",
];
const STATES = ["in_storage", "in_transit", "arrived", "alerting"];
const STATUS_RANK = { open: 0, acknowledged: 1, resolved: 2 };
const ACTING_ROLES = new Set(["operator", "admin"]);
const BOARD_LIMIT = 300; // cards drawn at once; the filters narrow the rest
const CRATE_LIST_LIMIT = 200;
const FLEET_REFRESH_MS = 15000;
const TRACK_LIMIT = 10000;
const TRACK_LEAD_S = 3600; // also show the hour before departure: movement in storage matters

const i18n = new I18n();
const t = (key, vars) => i18n.t(key, vars);
const $ = (sel) => document.querySelector(sel);

const state = {
  api: null,
  me: null,
  alerts: new Map(), // id -> Alert
  fresh: new Set(), // alert ids that arrived live and have not been drawn yet
  crates: new Map(), // crate_id -> crate summary (GET /crates)
  summary: { by_state: {}, by_district: [] }, // GET /summary: by_district is [{district, total, by_state}]
  filters: { type: "", status: "active", district: "" },
  fleetDistrict: "",
  crateSearch: "",
  selected: null, // { crateId, crate, trip, track, loading }; its alerts are those in `alerts` with its crate_id
  selectSeq: 0,
  sound: localStorage.getItem(SOUND_KEY) !== "off",
  audio: null,
};

let map = null;
let stream = null;

// ---------------------------------------------------------------- small DOM helper (text only, no HTML)

function h(tag, attrs = {}, ...children) {
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
function activate(fn) {
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

function toast(message, kind = "info") {
  const el = h("div", { class: `toast toast-${kind}`, text: message });
  $("#toasts").append(el);
  setTimeout(() => el.classList.add("leaving"), 4000);
  setTimeout(() => el.remove(), 4600);
}

// ---------------------------------------------------------------- rendering is batched per animation frame

const dirty = new Set();
let frame = 0;
function invalidate(...parts) {
  for (const p of parts) dirty.add(p);
  if (!frame) frame = requestAnimationFrame(flush);
}
function flush() {
  frame = 0;
  const parts = new Set(dirty);
  dirty.clear();
  if (parts.has("board")) renderBoard();
  if (parts.has("fleet")) renderFleet();
  if (parts.has("mapAlerts")) map?.setAlerts(activeAlerts());
  if (parts.has("mapCrates")) map?.setCrates([...state.crates.values()]);
  if (parts.has("detail")) renderDetail();
}

// ---------------------------------------------------------------- login and session

async function boot() {
  const saved = localStorage.getItem(LANG_KEY);
  await i18n.load(LANGS.includes(saved) ? saved : "id");
  i18n.apply();
  for (const b of document.querySelectorAll(".js-lang")) b.addEventListener("click", toggleLanguage);
  $("#login-form").addEventListener("submit", onLoginSubmit);
  document.body.classList.remove("booting");

  const notice = sessionStorage.getItem(NOTICE_KEY);
  sessionStorage.removeItem(NOTICE_KEY);
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) {
    try {
      await signIn(token);
      return;
    } catch (err) {
      const revoked = err instanceof ApiError && err.status === 401;
      if (revoked) sessionStorage.removeItem(TOKEN_KEY); // otherwise a reload retries once the server is back
      showLogin(revoked ? t("login.expired") : t("login.unreachable"));
      return;
    }
  }
  showLogin(notice ? t(notice) : "");
}

function showLogin(error) {
  $("#app").hidden = true;
  $("#login").hidden = false;
  const e = $("#login-error");
  e.textContent = error || "";
  e.hidden = !error;
  $("#login-token").focus();
}

async function onLoginSubmit(ev) {
  ev.preventDefault();
  unlockAudio(); // the click is a user gesture: the alarm sound may play from now on
  const token = $("#login-token").value.trim();
  if (!token) return;
  const button = $("#login-submit");
  button.disabled = true;
  button.textContent = t("login.checking");
  try {
    await signIn(token);
  } catch (err) {
    const msg = err instanceof ApiError && err.status === 401 ? t("login.bad_token") : t("login.unreachable");
    showLogin(msg);
  } finally {
    button.disabled = false;
    button.textContent = t("login.submit");
  }
}

async function signIn(token) {
  const api = new Api(token); // while checking, a 401 means a wrong token, not an expired session
  const me = await api.get("/me");
  api.onUnauthorized = sessionExpired;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("#login-token").value = "";
  state.api = api;
  state.me = me;
  startApp();
}

function sessionExpired() {
  leave("login.expired");
}

function leave(notice) {
  stream?.stop();
  sessionStorage.removeItem(TOKEN_KEY);
  if (notice) sessionStorage.setItem(NOTICE_KEY, notice);
  // A fresh page drops every piece of session state at once.
  location.reload();
}

function canAct() {
  return ACTING_ROLES.has(state.me?.role);
}

// ---------------------------------------------------------------- the application

function startApp() {
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#user-name").textContent = state.me.name;
  renderRole();
  wireUi();
  renderFilters();
  renderSound();
  tickClock();
  setInterval(tickClock, 1000);
  // Relative times ("5 min ago") age; redraw them now and then.
  setInterval(() => invalidate("board", "detail"), 30000);

  map = new MapView($("#map"), {
    i18n,
    onSelectCrate: (id) => selectCrate(id),
    onSelectAlert: (a) => selectAlert(a),
  });

  // The stream starts before the first list is read, so nothing raised in between is missed.
  stream = new EventStream("/api/v1/alerts/stream", {
    headers: state.api.headers(),
    onEvent: onStreamEvent,
    onState: renderConnection,
    onUnauthorized: sessionExpired,
  }).start();

  loadConfig();
  loadAlerts();
  loadFleet();
  setInterval(() => {
    loadFleet();
    if (state.selected) refreshSelected();
  }, FLEET_REFRESH_MS);
}

async function loadConfig() {
  try {
    const cfg = await state.api.get("/config");
    if (cfg && cfg.tile_url) map.setTiles(cfg.tile_url, cfg.tile_attribution);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) toast(t("toast.load_failed", { msg: err.message }), "error");
  }
}

async function loadAlerts() {
  try {
    // Every unresolved alert, however old, plus the most recent history of all statuses.
    const [active, recent] = await Promise.all([
      state.api.get("/alerts", { status: ["open", "acknowledged"], limit: 1000 }),
      state.api.get("/alerts", { limit: 200 }),
    ]);
    for (const a of [...active.items, ...recent.items]) mergeAlert(a);
    invalidate("board", "mapAlerts", "detail");
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) toast(t("toast.load_failed", { msg: err.message }), "error");
  }
}

let fleetLoading = false;
async function loadFleet() {
  if (fleetLoading) return;
  fleetLoading = true;
  try {
    const [crates, summary] = await Promise.all([state.api.get("/crates"), state.api.get("/summary")]);
    state.crates = new Map(crates.items.map((c) => [c.crate_id, c]));
    state.summary = { by_state: summary.by_state || {}, by_district: summary.by_district || [] };
    renderFilters();
    invalidate("fleet", "mapCrates", "board");
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) toast(t("toast.load_failed", { msg: err.message }), "error");
  } finally {
    fleetLoading = false;
  }
}

// Crate states change when alerts do; refresh the fleet soon after a burst of events, not on each one.
let fleetSoon = 0;
function refreshFleetSoon() {
  clearTimeout(fleetSoon);
  fleetSoon = setTimeout(loadFleet, 1200);
}

// ---------------------------------------------------------------- alerts: merge, live stream, alarm

/**
 * Keep the newest known state of an alert: a copy older than the one held (a list read racing a stream event)
 * is ignored. `updated_at` orders the changes; status only moves forward, which orders them without it.
 * Returns whether the alert was new to the page.
 */
function mergeAlert(a) {
  if (!a || typeof a.id !== "string") return false;
  const old = state.alerts.get(a.id);
  if (old) {
    const older = a.updated_at && old.updated_at ? Date.parse(a.updated_at) < Date.parse(old.updated_at) : false;
    if (older || (STATUS_RANK[a.status] ?? 0) < (STATUS_RANK[old.status] ?? 0)) return false;
  }
  state.alerts.set(a.id, a);
  return !old;
}

function onStreamEvent(ev) {
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

function raiseAlarm() {
  const flash = $("#flash");
  flash.classList.remove("on");
  void flash.offsetWidth; // restart the animation when alarms come in quick succession
  flash.classList.add("on");
  flash.addEventListener("animationend", () => flash.classList.remove("on"), { once: true });
  beep();
}

function unlockAudio() {
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

// ---------------------------------------------------------------- alert board

function byNewest(a, b) {
  return (Date.parse(b.raised_at) || 0) - (Date.parse(a.raised_at) || 0) || (a.id < b.id ? 1 : -1);
}

function districtOf(a) {
  return (a.crate_id && state.crates.get(a.crate_id)?.district) || a.details?.district || "";
}

function activeAlerts() {
  return [...state.alerts.values()].filter((a) => a.status !== "resolved");
}

function matches(a) {
  const f = state.filters;
  if (f.type && a.type !== f.type) return false;
  if (f.status === "active" ? a.status === "resolved" : f.status !== "all" && a.status !== f.status) return false;
  if (f.district && districtOf(a) !== f.district) return false;
  return true;
}

function renderFilters() {
  const fill = (sel, options, value) => {
    const el = $(sel);
    const key = JSON.stringify(options);
    if (el.dataset.options !== key) {
      // Rebuilt only when the choices change: a periodic refresh must not close an open drop-down.
      el.dataset.options = key;
      el.replaceChildren(...options.map(([v, label]) => h("option", { value: v, text: label })));
    }
    el.value = options.some(([v]) => v === value) ? value : options[0][0];
  };
  fill("#f-type", [["", t("filter.all_types")], ...ALERT_TYPES.map((x) => [x, t(`type.${x}`)])], state.filters.type);
  fill(
    "#f-status",
    [
      ["active", t("filter.active")],
      ...Object.keys(STATUS_RANK).map((s) => [s, t(`status.${s}`)]),
      ["all", t("filter.all_status")],
    ],
    state.filters.status,
  );
  const districts = new Set(state.summary.by_district.map((r) => r.district));
  for (const c of state.crates.values()) if (c.district) districts.add(c.district);
  if (state.filters.district) districts.add(state.filters.district);
  fill(
    "#f-district",
    [["", t("filter.all_districts")], ...[...districts].filter(Boolean).sort().map((d) => [d, d])],
    state.filters.district,
  );
}

function renderBoard() {
  const all = [...state.alerts.values()];
  const shown = all.filter(matches).sort(byNewest);
  const list = $("#alert-list");
  const focused = document.activeElement?.closest?.("#alert-list li[data-id]")?.dataset.id;
  list.replaceChildren(...shown.slice(0, BOARD_LIMIT).map(alertCard));
  if (focused) list.querySelector(`li[data-id="${CSS.escape(focused)}"]`)?.focus(); // keep keyboard users' place
  state.fresh.clear();
  $("#alert-empty").hidden = shown.length > 0;
  const more = $("#alert-more");
  more.hidden = shown.length <= BOARD_LIMIT;
  more.textContent = t("board.more", { n: shown.length - BOARD_LIMIT });
  $("#board-count").textContent = t("board.count", { shown: shown.length, total: all.length });

  const openCritical = all.filter((a) => a.severity === "critical" && a.status === "open").length;
  const banner = $("#critical-banner");
  banner.hidden = openCritical === 0;
  banner.textContent = t("board.critical_banner", { n: openCritical });
  const open = all.filter((a) => a.status === "open").length;
  const badge = $("#tab-alert-count");
  badge.hidden = open === 0;
  badge.textContent = String(open);
  document.title = (openCritical ? `(${openCritical}) ` : "") + t("app.title");
}

function alertCard(a) {
  const fresh = state.fresh.has(a.id);
  const crate = a.crate_id ? state.crates.get(a.crate_id) : null;
  const district = districtOf(a);
  const selected = state.selected && a.crate_id === state.selected.crateId;
  const li = h(
    "li",
    {
      class: `alert sev-${a.severity} st-${a.status}${fresh ? " fresh" : ""}${selected ? " selected" : ""}`,
      dataset: { id: a.id, type: a.type, status: a.status, crate: a.crate_id || "" },
      ...activate(() => selectAlert(a)),
    },
    h(
      "div",
      { class: "alert-head" },
      h("span", { class: `sev-badge sev-${a.severity}`, text: t(`severity.${a.severity}`) }),
      h("span", { class: "alert-type", text: t(`type.${a.type}`) }),
      h("span", { class: `status-badge st-${a.status}`, text: t(`status.${a.status}`) }),
    ),
    h(
      "div",
      { class: "alert-meta" },
      h("span", { class: "mono strong", text: a.crate_id || a.tracker_id }),
      district ? h("span", { text: district }) : null,
      a.trip_id ? h("span", { class: "mono muted", text: a.trip_id }) : null,
      crate && crate.state ? h("span", { class: "muted", text: t(`state.${crate.state}`) }) : null,
    ),
    detailLine(a),
    lastAction(a),
    h(
      "div",
      { class: "alert-foot" },
      h("time", { datetime: a.ts, title: `${t("crate.last_seen")}: ${i18n.dateTime(a.raised_at)}`, text: i18n.when(a.ts) }),
      h("span", { class: "muted", text: i18n.relative(a.raised_at) }),
      canAct() && a.status !== "resolved"
        ? h(
            "span",
            { class: "alert-actions" },
            a.status === "open"
              ? actionButton(a, "ack")
              : null,
            actionButton(a, "resolve"),
          )
        : null,
    ),
  );
  return li;
}

function actionButton(a, kind) {
  const label = t(kind === "ack" ? "action.ack" : "action.resolve");
  return h("button", { type: "button", class: `btn btn-sm btn-${kind}`, text: label, onclick: () => openAction(a, kind) });
}

// The details worth a glance on the board, per alert type (the detectors put more in; the API has it all).
const DETAIL_KEYS = {
  seal_break: ["seal", "previous"],
  route_deviation: ["distance_m", "corridor_m"],
  unscheduled_stop: ["stopped_min", "max_stop_min"],
  signal_lost: ["silent_s", "max_silence_min", "status"],
  unexpected_movement: ["zone", "distance_m"],
  wrong_destination: ["zone", "stopped_min"],
  overdue: ["destination"],
  gps_jump: ["distance_km", "speed_kmh"],
  low_battery: ["bat", "threshold"],
};

/** A few details of the alert with units, e.g. "jarak 420 m · koridor 200 m". */
function detailLine(a) {
  const details = a.details || {};
  const keys = DETAIL_KEYS[a.type] || Object.keys(details).slice(0, 3);
  const parts = [];
  for (const k of keys) {
    const value = formatDetail(a.type, k, details[k]);
    if (value === null) continue;
    const label = i18n.has(`details.${k}`) ? t(`details.${k}`) : k.replace(/_/g, " ");
    parts.push(`${label} ${value}`);
  }
  return parts.length ? h("div", { class: "alert-details", text: parts.join(" · ") }) : null;
}

/** Who last acknowledged or resolved the alert, and their note (from the alert's history). */
function lastAction(a) {
  const e = [...(a.history || [])].reverse().find((x) => x.action === "ack" || x.action === "resolve");
  if (!e) return null;
  return h(
    "div",
    { class: "alert-note" },
    h("span", { class: `status-badge st-${e.status}`, text: t(`status.${e.status}`) }),
    h("span", { class: "strong", text: e.actor }),
    e.note ? h("span", { class: "grow", text: e.note, title: e.note }) : null,
    h("time", { class: "muted", text: i18n.when(e.at) }),
  );
}

function formatDetail(type, k, v) {
  if (typeof v === "number" && Number.isFinite(v)) {
    if (k.endsWith("_km")) return i18n.distance(v * 1000);
    if (k.endsWith("_m")) return i18n.distance(v);
    if (k.endsWith("_min")) return `${i18n.num(v, 1)} ${t("unit.min")}`;
    if (k.endsWith("_s")) return `${i18n.num(v / 60, 1)} ${t("unit.min")}`;
    if (k.endsWith("_kmh")) return `${i18n.num(v)} ${t("unit.kmh")}`;
    if (type === "low_battery") return `${i18n.num(v)} %`;
    return i18n.num(v, 2);
  }
  if (typeof v === "string" && v) {
    if ((k === "seal" || k === "previous") && i18n.has(`seal.${v}`)) return t(`seal.${v}`);
    return v.length > 60 ? `${v.slice(0, 57)}…` : v;
  }
  return null;
}

function selectAlert(a) {
  if (a.crate_id) selectCrate(a.crate_id, { focus: hasPosition(a) ? a : null });
  else if (hasPosition(a)) {
    map.focus(a.lat, a.lon);
    setView("map");
  }
}

// ---------------------------------------------------------------- acknowledge / resolve

let pending = null;

function openAction(a, kind) {
  pending = { alert: a, kind };
  $("#action-title").textContent = t(kind === "ack" ? "dialog.ack_title" : "dialog.resolve_title");
  $("#action-summary").replaceChildren(
    h("span", { class: `sev-badge sev-${a.severity}`, text: t(`severity.${a.severity}`) }),
    h("strong", { text: ` ${t(`type.${a.type}`)} ` }),
    h("span", { class: "mono", text: a.crate_id || a.tracker_id }),
    h("div", { class: "muted small", text: i18n.dateTime(a.ts) }),
  );
  const note = $("#action-note");
  note.value = "";
  note.placeholder = t(kind === "ack" ? "dialog.note_ack_hint" : "dialog.note_resolve_hint");
  $("#action-error").hidden = true;
  const submit = $("#action-submit");
  submit.textContent = t(kind === "ack" ? "action.ack" : "action.resolve");
  submit.className = `btn ${kind === "ack" ? "btn-primary" : "btn-success"}`;
  submit.disabled = false;
  $("#action-dialog").showModal();
  note.focus();
}

async function submitAction(ev) {
  ev.preventDefault();
  if (!pending) return;
  const { alert, kind } = pending;
  const note = $("#action-note").value.trim();
  const error = $("#action-error");
  if (kind === "resolve" && !note) {
    error.textContent = t("dialog.note_required");
    error.hidden = false;
    return;
  }
  const submit = $("#action-submit");
  submit.disabled = true;
  try {
    const updated = await state.api.post(`/alerts/${encodeURIComponent(alert.id)}/${kind}`, { note });
    mergeAlert(updated);
    invalidate("board", "mapAlerts", "detail");
    refreshFleetSoon();
    pending = null;
    $("#action-dialog").close();
    const what = `${t(`type.${alert.type}`)} · ${alert.crate_id || alert.tracker_id}`;
    toast(t(kind === "ack" ? "toast.acked" : "toast.resolved", { what }), "success");
  } catch (err) {
    const forbidden = err instanceof ApiError && err.status === 403;
    error.textContent = forbidden ? t("toast.forbidden") : t("toast.failed", { msg: err.message });
    error.hidden = false;
    submit.disabled = false;
  }
}

// ---------------------------------------------------------------- crate selection and detail

async function selectCrate(crateId, { focus = null } = {}) {
  const seq = ++state.selectSeq;
  const cached = state.crates.get(crateId) || { crate_id: crateId };
  state.selected = { crateId, crate: cached, trip: null, track: [], loading: true };
  setSideTab("crate");
  if (isNarrow()) setView("crate");
  invalidate("detail", "board");
  try {
    const data = await loadCrate(crateId, cached.trip_id);
    if (seq !== state.selectSeq) return; // another crate was chosen meanwhile
    Object.assign(state.selected, data, { loading: false });
    map.showTrip(crateId, data.trip, data.track, { include: focus ? [[focus.lat, focus.lon]] : [] });
  } catch (err) {
    if (seq !== state.selectSeq) return;
    state.selected.loading = false;
    if (!(err instanceof ApiError && err.status === 401)) toast(t("toast.load_failed", { msg: err.message }), "error");
  }
  invalidate("detail");
}

async function loadCrate(crateId, knownTripId) {
  const id = encodeURIComponent(crateId);
  const [crate, alerts] = await Promise.all([
    state.api.get(`/crates/${id}`),
    state.api.get("/alerts", { crate_id: crateId, limit: 200 }),
  ]);
  const tripId = crate.trip_id ?? knownTripId;
  const trip = tripId ? await state.api.get(`/trips/${encodeURIComponent(tripId)}`) : null;
  const since = trip ? Math.floor(Date.parse(trip.depart_after) / 1000) - TRACK_LEAD_S : undefined;
  const track = await state.api.get(`/crates/${id}/track`, { since, limit: TRACK_LIMIT });
  for (const a of alerts.items) mergeAlert(a); // the detail lists them from there, newest copy first
  return { crate: { ...state.crates.get(crateId), ...crate }, trip, track: track.items };
}

/** Redraw the selected crate with fresh data, keeping the map where the operator left it. */
async function refreshSelected() {
  const sel = state.selected;
  if (!sel || sel.loading) return;
  const seq = state.selectSeq;
  try {
    const data = await loadCrate(sel.crateId, sel.crate.trip_id);
    if (seq !== state.selectSeq) return;
    Object.assign(sel, data);
    map.showTrip(sel.crateId, data.trip, data.track, { fit: false });
    invalidate("detail", "board");
  } catch {
    // The next periodic refresh tries again; a lost token has already sent the user to the login screen.
  }
}

let selectedSoon = 0;
function refreshSelectedSoon() {
  clearTimeout(selectedSoon);
  selectedSoon = setTimeout(refreshSelected, 1000);
}

function alertsOfCrate(crateId) {
  return [...state.alerts.values()].filter((a) => a.crate_id === crateId).sort(byNewest);
}

function closeCrate() {
  state.selectSeq++;
  state.selected = null;
  map.clearTrip();
  setSideTab("fleet");
  invalidate("detail", "board");
}

function kv(label, ...value) {
  return h("div", { class: "kv" }, h("dt", { text: label }), h("dd", {}, ...value));
}

function renderDetail() {
  const sel = state.selected;
  $("#crate-none").hidden = Boolean(sel);
  const root = $("#crate-detail");
  root.hidden = !sel;
  if (!sel) {
    root.replaceChildren();
    return;
  }
  const c = sel.crate;
  const fix = c.last_fix || null;
  const alerts = alertsOfCrate(sel.crateId);
  const crateState = c.state || (alerts.some((a) => a.status !== "resolved") ? "alerting" : null);
  const trip = sel.trip;

  const header = h(
    "div",
    { class: "detail-head" },
    h(
      "div",
      { class: "detail-title" },
      h("h2", { class: "mono", text: c.crate_id }),
      crateState ? h("span", { class: `state-badge state-${crateState}`, text: t(`state.${crateState}`) }) : null,
      sel.loading ? h("span", { class: "spinner", "aria-hidden": "true" }) : null,
    ),
    h(
      "div",
      { class: "detail-buttons" },
      h("button", {
        type: "button", class: "btn btn-sm btn-ghost", text: t("action.fit"),
        onclick: () => {
          setView("map");
          map.fitSelection();
        },
      }),
      h("button", { type: "button", class: "btn btn-sm btn-ghost", text: t("action.close"), onclick: closeCrate }),
    ),
  );

  const seal = c.seal || null;
  const bat = fix && Number.isFinite(fix.bat) ? fix.bat : null;
  const status = h(
    "dl",
    { class: "kvs" },
    kv(t("crate.seal"), sealBadge(seal || "unknown")),
    kv(t("crate.battery"), bat === null ? "—" : batteryGauge(bat)),
    kv(
      t("crate.last_seen"),
      c.last_seen ? `${i18n.dateTime(c.last_seen)} · ${i18n.relative(c.last_seen)}` : t("crate.never"),
    ),
    kv(
      t("crate.position"),
      hasPosition(fix)
        ? `${fix.lat.toFixed(5)}, ${fix.lon.toFixed(5)}` +
          (Number.isFinite(fix.acc) ? ` ±${i18n.num(fix.acc)} ${t("unit.m")}` : "")
        : "—",
    ),
    kv(t("crate.speed"), fix && Number.isFinite(fix.spd) ? `${i18n.num(fix.spd)} ${t("unit.kmh")}` : "—"),
    kv(t("crate.tracker"), h("span", { class: "mono", text: c.tracker_id || "—" })),
    kv(t("crate.district"), c.district || trip?.district || "—"),
    kv(t("crate.track_points"), i18n.num(sel.track.length)),
  );

  const tripSection = trip
    ? h(
        "dl",
        { class: "kvs" },
        kv(t("crate.trip"), h("span", { class: "mono", text: trip.trip_id })),
        kv(t("crate.from"), trip.origin?.name || "—"),
        kv(t("crate.to"), trip.destination?.name || "—"),
        kv(t("crate.depart_after"), i18n.dateTime(trip.depart_after)),
        kv(t("crate.arrive_by"), i18n.dateTime(trip.arrive_by)),
        trip.destination?.open_after ? kv(t("crate.open_after"), i18n.dateTime(trip.destination.open_after)) : null,
        kv(t("crate.corridor"), i18n.distance(trip.corridor_m)),
      )
    : h("p", { class: "muted small", text: c.trip_id ? "…" : t("crate.no_trip") });

  const seals = sealHistory(sel, alerts);
  const sealList = seals.length
    ? h(
        "ol",
        { class: "timeline" },
        seals.map((s) => h("li", {}, sealBadge(s.seal), h("time", { text: i18n.dateTime(s.ts) }))),
      )
    : h("p", { class: "muted small", text: t("crate.no_seal_history") });

  const alertList = alerts.length
    ? h(
        "ol",
        { class: "mini-alerts" },
        alerts.map((a) =>
          h(
            "li",
            {
              class: `mini-alert sev-${a.severity} st-${a.status}`,
              ...activate(() => {
                if (!hasPosition(a)) return;
                setView("map");
                map.focus(a.lat, a.lon);
              }),
            },
            h("span", { class: `sev-dot sev-${a.severity}` }),
            h("span", { class: "grow", text: t(`type.${a.type}`) }),
            h("span", { class: `status-badge st-${a.status}`, text: t(`status.${a.status}`) }),
            h("time", { text: i18n.when(a.ts) }),
          ),
        ),
      )
    : h("p", { class: "muted small", text: t("crate.no_alerts") });

  root.replaceChildren(
    header,
    h("section", { class: "detail-section" }, h("h3", { text: t("crate.status") }), status),
    h("section", { class: "detail-section" }, h("h3", { text: t("crate.trip") }), tripSection),
    h("section", { class: "detail-section" }, h("h3", { text: t("crate.seal_history") }), sealList),
    h("section", { class: "detail-section" }, h("h3", { text: t("crate.alert_history") }), alertList),
  );
}

function sealBadge(seal) {
  return h("span", { class: `seal-badge seal-${seal}`, text: t(`seal.${seal}`) });
}

function batteryGauge(bat) {
  const level = bat < 15 ? " low" : bat < 35 ? " mid" : "";
  const fill = h("span", { style: { width: `${Math.max(0, Math.min(100, bat))}%` } });
  const bar = h("span", { class: `battery-bar${level}` }, fill);
  return h("span", { class: "battery" }, bar, `${i18n.num(bat)} %`);
}

/**
 * Seal readings as a timeline of changes, newest first. Sources: seal states in the track (when the API sends
 * them), the crate's latest seal reading (`seal`, `seal_at`) and the crate's seal-break alerts.
 */
function sealHistory(sel, alerts) {
  const events = [];
  for (const f of sel.track) if (f.seal) events.push({ ts: f.ts, seal: f.seal });
  for (const a of alerts) if (a.type === "seal_break") events.push({ ts: a.ts, seal: a.details?.seal || "open" });
  if (sel.crate.seal && sel.crate.seal_at) events.push({ ts: sel.crate.seal_at, seal: sel.crate.seal });
  events.sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts));
  const changes = [];
  for (const e of events) if (e.seal !== changes.at(-1)?.seal) changes.push(e);
  return changes.reverse();
}

// ---------------------------------------------------------------- fleet summary

function renderFleet() {
  const byState = state.summary.by_state;
  const total = STATES.reduce((n, s) => n + (byState[s] || 0), 0);
  const chip = (s) =>
    h(
      "li",
      { class: `state-chip state-${s}`, dataset: { state: s }, title: t(`state.${s}`) },
      h("span", { class: "dot", style: { background: STATE_COLORS[s] } }),
      h("span", { class: "chip-count", text: i18n.num(byState[s] || 0) }),
      h("span", { class: "chip-label", text: t(`state.${s}`) }),
    );
  $("#state-chips").replaceChildren(...STATES.map(chip));
  $("#fleet-cards").replaceChildren(
    h(
      "li",
      { class: "state-chip total" },
      h("span", { class: "chip-count", text: i18n.num(total) }),
      h("span", { class: "chip-label", text: t("fleet.total") }),
    ),
    ...STATES.map(chip),
  );

  for (const th of document.querySelectorAll("#district-table th[data-state]")) {
    th.replaceChildren(h("span", { class: "dot", style: { background: STATE_COLORS[th.dataset.state] } }));
    th.title = t(`state.${th.dataset.state}`);
  }
  const rows = state.summary.by_district
    .map((r) => ({ d: r.district || "", counts: r.by_state || {}, total: r.total || 0 }))
    .sort((a, b) => (b.counts.alerting || 0) - (a.counts.alerting || 0) || (!a.d - !b.d) || a.d.localeCompare(b.d));
  $("#district-table tbody").replaceChildren(
    ...rows.map(({ d, counts, total: n }) =>
      h(
        "tr",
        {
          class: `${d === state.fleetDistrict ? "selected" : ""}${counts.alerting ? " has-alerting" : ""}`,
          dataset: { district: d },
          ...activate(() => d && chooseDistrict(d === state.fleetDistrict ? "" : d)),
        },
        h("td", { text: d || t("fleet.no_district") }),
        ...STATES.map((s) =>
          h("td", { class: `num${s === "alerting" && counts[s] ? " alerting" : ""}`, text: i18n.num(counts[s] || 0) }),
        ),
        h("td", { class: "num strong", text: i18n.num(n) }),
      ),
    ),
  );

  const districtChip = $("#fleet-district-chip");
  districtChip.hidden = !state.fleetDistrict;
  districtChip.textContent = `${t("fleet.filtered_by", { d: state.fleetDistrict })} ✕`;

  const q = state.crateSearch.toLowerCase();
  const crates = [...state.crates.values()]
    .filter((c) => !state.fleetDistrict || c.district === state.fleetDistrict)
    .filter((c) => !q || c.crate_id.toLowerCase().includes(q) || (c.tracker_id || "").toLowerCase().includes(q))
    .sort(
      (a, b) =>
        (b.state === "alerting") - (a.state === "alerting") ||
        (b.open_alerts || 0) - (a.open_alerts || 0) ||
        a.crate_id.localeCompare(b.crate_id),
    );
  $("#crate-list").replaceChildren(
    ...crates.slice(0, CRATE_LIST_LIMIT).map((c) =>
      h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            class: `crate-row${state.selected?.crateId === c.crate_id ? " selected" : ""}`,
            dataset: { crate: c.crate_id },
            onclick: () => selectCrate(c.crate_id),
          },
          h("span", {
            class: "dot", style: { background: STATE_COLORS[c.state] || "#64748b" }, title: t(`state.${c.state || "unknown"}`),
          }),
          h("span", { class: "mono strong", text: c.crate_id }),
          h("span", { class: "muted grow", text: c.district || "" }),
          c.open_alerts ? h("span", { class: "count-badge", text: String(c.open_alerts) }) : null,
          h("span", { class: "muted small", text: c.last_seen ? i18n.relative(c.last_seen) : t("crate.never") }),
        ),
      ),
    ),
  );
  const more = $("#crate-more");
  more.hidden = crates.length <= CRATE_LIST_LIMIT;
  more.textContent = t("fleet.more", { n: crates.length - CRATE_LIST_LIMIT });
  if (!state.crates.size) $("#crate-list").append(h("li", { class: "empty small", text: t("fleet.empty") }));
}

function chooseDistrict(d) {
  state.fleetDistrict = d;
  state.filters.district = d;
  $("#f-district").value = d;
  invalidate("fleet", "board");
}

// ---------------------------------------------------------------- chrome: views, language, clock, sound

function isNarrow() {
  return window.matchMedia("(max-width: 899px)").matches;
}

function setView(view) {
  $("#layout").dataset.view = view;
  for (const b of document.querySelectorAll("#tabs [data-view]")) {
    b.classList.toggle("active", b.dataset.view === view);
    b.setAttribute("aria-selected", String(b.dataset.view === view));
  }
  if (view === "fleet" || view === "crate") setSideTab(view);
  if (view === "map") requestAnimationFrame(() => map?.invalidate());
}

function setSideTab(tab) {
  for (const b of document.querySelectorAll(".side-tabs [data-side]")) {
    b.classList.toggle("active", b.dataset.side === tab);
    b.setAttribute("aria-selected", String(b.dataset.side === tab));
  }
  for (const body of document.querySelectorAll("[data-side-body]")) body.hidden = body.dataset.sideBody !== tab;
}

let wired = false;
function wireUi() {
  if (wired) return;
  wired = true;
  $("#logout").addEventListener("click", () => leave(""));
  $("#sound-toggle").addEventListener("click", () => {
    state.sound = !state.sound;
    localStorage.setItem(SOUND_KEY, state.sound ? "on" : "off");
    if (state.sound) unlockAudio();
    renderSound();
  });
  // Browsers only start audio after a user gesture; the first one arms the alarm sound.
  for (const evName of ["pointerdown", "keydown"]) document.addEventListener(evName, unlockAudio, { once: true });

  for (const b of document.querySelectorAll("#tabs [data-view]")) b.addEventListener("click", () => setView(b.dataset.view));
  for (const b of document.querySelectorAll(".side-tabs [data-side]")) {
    b.addEventListener("click", () => setSideTab(b.dataset.side));
  }
  window.addEventListener("resize", () => map?.invalidate());

  const onFilter = (key, sel) =>
    $(sel).addEventListener("change", (ev) => {
      state.filters[key] = ev.target.value;
      if (key === "district") state.fleetDistrict = ev.target.value;
      invalidate("board", "fleet");
    });
  onFilter("type", "#f-type");
  onFilter("status", "#f-status");
  onFilter("district", "#f-district");
  $("#critical-banner").addEventListener("click", () => {
    state.filters = { type: "seal_break", status: "open", district: "" };
    state.fleetDistrict = "";
    renderFilters();
    setView("alerts");
    invalidate("board", "fleet");
  });
  $("#crate-search").addEventListener("input", (ev) => {
    state.crateSearch = ev.target.value.trim();
    invalidate("fleet");
  });
  $("#fleet-district-chip").addEventListener("click", () => chooseDistrict(""));
  $("#action-form").addEventListener("submit", submitAction);
  $("#action-cancel").addEventListener("click", () => {
    pending = null;
    $("#action-dialog").close();
  });
}

async function toggleLanguage() {
  const next = i18n.lang === "id" ? "en" : "id";
  await i18n.load(next);
  localStorage.setItem(LANG_KEY, next);
  i18n.apply();
  if (!state.me) return;
  renderRole();
  renderFilters();
  renderSound();
  map?.renderLegend();
  tickClock();
  renderConnection(currentConnection);
  invalidate("board", "fleet", "detail", "mapAlerts");
}

function renderRole() {
  const role = state.me.role;
  const el = $("#user-role");
  el.textContent = t(`role.${role}`);
  el.className = `role-badge role-${role}`;
}

function renderSound() {
  const b = $("#sound-toggle");
  b.setAttribute("aria-pressed", String(state.sound));
  b.classList.toggle("muted-sound", !state.sound);
  b.title = t(state.sound ? "top.sound_on" : "top.sound_off");
  b.setAttribute("aria-label", b.title);
}

let currentConnection = "connecting";
function renderConnection(s) {
  currentConnection = s;
  const el = $("#conn");
  el.className = `conn conn-${s}`;
  el.querySelector(".conn-label").textContent = t(`conn.${s}`);
  el.dataset.state = s;
}

function tickClock() {
  const now = new Date();
  const el = $("#clock");
  el.textContent = i18n.clock(now);
  el.dateTime = now.toISOString();
}

boot().catch((err) => {
  document.body.classList.remove("booting");
  showLogin(String(err && err.message ? err.message : err));
});
