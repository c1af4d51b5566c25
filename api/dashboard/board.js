// The alert board: filters, alert cards, and the acknowledge / resolve dialog.

import { ApiError } from "./api.js";
import { hasPosition } from "./mapview.js";
import { placeText } from "./boundaries.js";
import {
  $,
  activate,
  ALERT_TYPES,
  BOARD_LIMIT,
  h,
  i18n,
  invalidate,
  map,
  state,
  STATUS_RANK,
  t,
  toast,
} from "./state.js";
import { canAct, refreshFleetSoon } from "./session.js";
import { mergeAlert } from "./live.js";
import { selectCrate } from "./crate.js";
import { setView } from "./views.js";

// ---------------------------------------------------------------- alert board

// Parsed once per alert copy: the board sorts hundreds of alerts on every redraw.
const raisedMs = new WeakMap();
function raisedAt(a) {
  let v = raisedMs.get(a);
  if (v === undefined) {
    v = Date.parse(a.raised_at) || 0;
    raisedMs.set(a, v);
  }
  return v;
}

export function byNewest(a, b) {
  return raisedAt(b) - raisedAt(a) || (a.id < b.id ? 1 : -1);
}

function districtOf(a) {
  return (a.crate_id && state.crates.get(a.crate_id)?.district) || a.details?.district || "";
}

export function activeAlerts() {
  return [...state.alerts.values()].filter((a) => a.status !== "resolved");
}

function matches(a) {
  const f = state.filters;
  if (f.type && a.type !== f.type) return false;
  if (f.status === "active" ? a.status === "resolved" : f.status !== "all" && a.status !== f.status) return false;
  if (f.district && districtOf(a) !== f.district) return false;
  if (f.kecamatan && a.place?.kecamatan !== f.kecamatan) return false; // where it happened (CONTRACT 2.3)
  return true;
}

export function renderFilters() {
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
  const kecamatan = state.summary.by_kecamatan.map((r) => r.kecamatan).filter(Boolean);
  if (state.filters.kecamatan && !kecamatan.includes(state.filters.kecamatan)) kecamatan.push(state.filters.kecamatan);
  fill("#f-kecamatan", [["", t("filter.all_kecamatan")], ...kecamatan.sort().map((k) => [k, k])], state.filters.kecamatan);
}

export function renderBoard() {
  const all = [...state.alerts.values()];
  const shown = all.filter(matches).sort(byNewest);
  const list = $("#alert-list");
  const focused = document.activeElement?.closest?.("#alert-list li[data-id]")?.dataset.id;
  const cards = shown.slice(0, BOARD_LIMIT).map(cachedCard);
  // Under a burst of stream events most cards are unchanged: keep their nodes, and leave the list alone
  // when nothing moved (rebuilding hundreds of cards per event froze the page at 50 alerts/s).
  reconcile(list, cards);
  for (const id of cardCache.keys()) if (!state.alerts.has(id)) cardCache.delete(id);
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

/**
 * Make `list`'s children exactly `cards`, in order, moving as few nodes as possible: a new alert on top of
 * 300 cards is one insertion and one removal, not 300 of each (each move restyles and relayouts the card).
 */
function reconcile(list, cards) {
  const keep = new Set(cards);
  for (const el of [...list.children]) if (!keep.has(el)) el.remove();
  let at = list.firstElementChild;
  for (const li of cards) {
    if (li === at) at = at.nextElementSibling;
    else list.insertBefore(li, at);
  }
}

// alert id -> [key, card]: a card is drawn again only when something it shows has changed.
const cardCache = new Map();

function cachedCard(a) {
  const crate = a.crate_id ? state.crates.get(a.crate_id) : null;
  const key = [
    a.updated_at, a.status, a.severity, state.fresh.has(a.id), state.selected?.crateId === a.crate_id,
    districtOf(a), crate?.state, canAct(), i18n.lang,
    Math.floor(Date.now() / 30000), // relative times ("2 min ago") age
  ].join("|");
  const held = cardCache.get(a.id);
  if (held && held[0] === key) return held[1];
  const li = alertCard(a);
  cardCache.set(a.id, [key, li]);
  return li;
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
      a.place ? h("span", { class: "alert-place", text: placeText(a.place, t) }) : null,
      crate && crate.state ? h("span", { class: "muted", text: t(`state.${crate.state}`) }) : null,
    ),
    detailLine(a),
    lastAction(a),
    h(
      "div",
      { class: "alert-foot" },
      h("time", { datetime: a.ts, title: `${t("crate.last_seen")}: ${i18n.dateTime(a.raised_at)}`, text: i18n.when(a.ts) }),
      // How long ago it happened, on the service's clock (the demo's simulated day reads consistently).
      h("span", { class: "muted alert-age", text: i18n.relative(a.ts) }),
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
  overdue: ["late_s", "destination"],
  gps_jump: ["distance_km", "speed_kmh"],
  low_battery: ["bat", "threshold"],
};

/** A few details of the alert with units, e.g. "jarak 420 m · koridor 200 m". */
function detailLine(a) {
  const details = { ...(a.details || {}) };
  if (a.type === "overdue" && a.status !== "resolved" && Number.isFinite(details.arrive_by)) {
    // How late the crate is now: the service's clock past the trip's arrive_by.
    details.late_s = i18n.now() / 1000 - details.arrive_by;
  }
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
    if (k === "late_s") return i18n.duration(v);
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

export function selectAlert(a) {
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

export async function submitAction(ev) {
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

export function cancelAction() {
  pending = null;
  $("#action-dialog").close();
}
