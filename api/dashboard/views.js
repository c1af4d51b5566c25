// Page chrome: views and tabs, event wiring, language, role, sound, connection and clock.

import { $, i18n, invalidate, LANG_KEY, map, SOUND_KEY, state, t } from "./state.js";
import { leave } from "./session.js";
import { unlockAudio } from "./live.js";
import { cancelAction, renderFilters, submitAction } from "./board.js";
import { chooseDistrict } from "./fleet.js";
import { serviceClockKind } from "./serviceclock.js";

// ---------------------------------------------------------------- chrome: views, language, clock, sound

export function isNarrow() {
  return window.matchMedia("(max-width: 899px)").matches;
}

export function setView(view) {
  $("#layout").dataset.view = view;
  for (const b of document.querySelectorAll("#tabs [data-view]")) {
    b.classList.toggle("active", b.dataset.view === view);
    b.setAttribute("aria-selected", String(b.dataset.view === view));
  }
  if (view === "fleet" || view === "crate") setSideTab(view);
  if (view === "map") requestAnimationFrame(() => map?.invalidate());
}

export function setSideTab(tab) {
  for (const b of document.querySelectorAll(".side-tabs [data-side]")) {
    b.classList.toggle("active", b.dataset.side === tab);
    b.setAttribute("aria-selected", String(b.dataset.side === tab));
  }
  for (const body of document.querySelectorAll("[data-side-body]")) body.hidden = body.dataset.sideBody !== tab;
}

let wired = false;
export function wireUi() {
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
  onFilter("kecamatan", "#f-kecamatan");
  $("#critical-banner").addEventListener("click", () => {
    state.filters = { type: "seal_break", status: "open", district: "", kecamatan: "" };
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
  $("#action-cancel").addEventListener("click", cancelAction);
}

export async function toggleLanguage() {
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

export function renderRole() {
  const role = state.me.role;
  const el = $("#user-role");
  el.textContent = t(`role.${role}`);
  el.className = `role-badge role-${role}`;
}

export function renderSound() {
  const b = $("#sound-toggle");
  b.setAttribute("aria-pressed", String(state.sound));
  b.classList.toggle("muted-sound", !state.sound);
  b.title = t(state.sound ? "top.sound_on" : "top.sound_off");
  b.setAttribute("aria-label", b.title);
}

let currentConnection = "connecting";
export function renderConnection(s) {
  currentConnection = s;
  const el = $("#conn");
  el.className = `conn conn-${s}`;
  el.querySelector(".conn-label").textContent = t(`conn.${s}`);
  el.dataset.state = s;
}

export function tickClock() {
  // The service's clock: in a replay or the demo, the simulated time that every age on the page uses.
  const now = new Date(i18n.now());
  const el = $("#clock");
  el.textContent = i18n.clock(now);
  el.dateTime = now.toISOString();
  el.title = t(serviceClockKind() === "event" ? "time.event_clock" : "time.wall_clock");
  el.classList.toggle("event-clock", serviceClockKind() === "event");
}
