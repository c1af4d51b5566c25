// Login, session, start of the application and the periodic loads of alerts and fleet.

import { Api, ApiError, EventStream } from "./api.js";
import { LANGS } from "./i18n.js";
import { MapView } from "./mapview.js";
import {
  $,
  ACTING_ROLES,
  FLEET_REFRESH_MS,
  i18n,
  invalidate,
  LANG_KEY,
  map,
  NOTICE_KEY,
  setMap,
  state,
  t,
  toast,
  TOKEN_KEY,
} from "./state.js";
import { mergeAlert, onStreamEvent, unlockAudio } from "./live.js";
import { renderFilters, selectAlert } from "./board.js";
import { refreshSelected, selectCrate } from "./crate.js";
import { followAlertLinks } from "./deliveries.js";
import { CLOCK_SYNC_MS, serviceClockKind, serviceNow, syncServiceClock } from "./serviceclock.js";
import { renderConnection, renderRole, renderSound, tickClock, toggleLanguage, wireUi } from "./views.js";

let stream = null;

// ---------------------------------------------------------------- login and session

export async function boot() {
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

export function showLogin(error) {
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

export function leave(notice) {
  stream?.stop();
  sessionStorage.removeItem(TOKEN_KEY);
  if (notice) sessionStorage.setItem(NOTICE_KEY, notice);
  // A fresh page drops every piece of session state at once.
  location.reload();
}

export function canAct() {
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
  i18n.now = serviceNow;
  tickClock();
  setInterval(tickClock, 1000);
  // Relative times ("5 min ago") age; redraw them now and then (often when the service's clock runs fast).
  setInterval(() => invalidate("board", "detail"), 30000);
  setInterval(syncClock, CLOCK_SYNC_MS);

  setMap(
    new MapView($("#map"), {
      i18n,
      onSelectCrate: (id) => selectCrate(id),
      onSelectAlert: (a) => selectAlert(a),
    }),
  );

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
  followAlertLinks();
  setInterval(() => {
    loadFleet();
    if (state.selected) refreshSelected();
  }, FLEET_REFRESH_MS);
}

async function syncClock() {
  try {
    syncServiceClock(await state.api.get("/config"));
    if (serviceClockKind() === "event") invalidate("board", "detail", "fleet");
  } catch {
    // the next sync tries again; the connection indicator already tells of an unreachable service
  }
}

async function loadConfig() {
  try {
    const cfg = await state.api.get("/config");
    syncServiceClock(cfg);
    if (cfg && cfg.tile_url) map.setTiles(cfg.tile_url, cfg.tile_attribution);
    // The kecamatan and desa boundaries: the base map when there are no tiles, and the choropleth.
    map.setBoundaries(await state.api.get("/boundaries"));
    map.setKecamatanCounts(state.summary.by_kecamatan);
    renderFilters();
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
    state.summary = {
      by_state: summary.by_state || {},
      by_district: summary.by_district || [],
      by_kecamatan: summary.by_kecamatan || [],
    };
    map?.setKecamatanCounts(state.summary.by_kecamatan);
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
export function refreshFleetSoon() {
  clearTimeout(fleetSoon);
  fleetSoon = setTimeout(loadFleet, 1200);
}
