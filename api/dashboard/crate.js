// Crate selection and its detail panel: status, trip, seal history, battery, alerts.

import { ApiError } from "./api.js";
import { hasPosition } from "./mapview.js";
import { placeText } from "./boundaries.js";
import { $, activate, h, i18n, invalidate, map, state, t, toast, TRACK_LEAD_S, TRACK_LIMIT } from "./state.js";
import { mergeAlert } from "./live.js";
import { byNewest } from "./board.js";
import { custodySection } from "./custody.js";
import { deliveriesLine } from "./deliveries.js";
import { isNarrow, setSideTab, setView } from "./views.js";

// ---------------------------------------------------------------- crate selection and detail

export async function selectCrate(crateId, { focus = null } = {}) {
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
export async function refreshSelected() {
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
export function refreshSelectedSoon() {
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

export function renderDetail() {
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
        type: "button", class: "btn btn-sm btn-fit", text: t("action.fit"),
        onclick: () => {
          setView("map");
          map.fitSelection();
        },
      }),
      h("button", { type: "button", class: "btn btn-sm btn-close", text: t("action.close"), onclick: closeCrate }),
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
    kv(t("crate.place"), h("span", { class: "crate-place", text: hasPosition(fix) ? placeText(c.place, t) || t("place.outside") : "—" })),
    kv(t("crate.speed"), fix && Number.isFinite(fix.spd) ? `${i18n.num(fix.spd)} ${t("unit.kmh")}` : "—"),
    kv(t("crate.tracker"), h("span", { class: "mono", text: c.tracker_id || "—" })),
    kv(t("crate.district"), c.district || trip?.district || "—"),
    kv(t("crate.track_points"), i18n.num(sel.track.length)),
    kv(t("crate.seq_missing"), Number.isFinite(c.seq_missing) ? h("span", { class: "crate-seq-missing", text: i18n.num(c.seq_missing), title: t("crate.seq_missing_hint") }) : "—"),
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
            deliveriesLine(a),
          ),
        ),
      )
    : h("p", { class: "muted small", text: t("crate.no_alerts") });

  root.replaceChildren(
    header,
    h("section", { class: "detail-section" }, h("h3", { text: t("crate.status") }), status),
    h("section", { class: "detail-section" }, h("h3", { text: t("crate.trip") }), tripSection),
    custodySection(sel.crateId),
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
