// The fleet summary: state chips, districts table, crates and open alerts by kecamatan of place, crate list.

import { STATE_COLORS } from "./mapview.js";
import { $, activate, CRATE_LIST_LIMIT, h, i18n, invalidate, state, STATES, t } from "./state.js";
import { selectCrate } from "./crate.js";

// ---------------------------------------------------------------- fleet summary

export function renderFleet() {
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

  renderPlaces();

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

/** Crates by where they are (their last fix) and open alerts by their place, per kecamatan; a click filters
 * the board by that kecamatan. Kecamatan with neither are left out. */
function renderPlaces() {
  const rows = state.summary.by_kecamatan
    .filter((r) => r.crates || r.open_alerts)
    .sort((a, b) => b.open_alerts - a.open_alerts || b.crates - a.crates || (!a.kecamatan - !b.kecamatan));
  $("#place-table tbody").replaceChildren(
    ...rows.map((r) =>
      h(
        "tr",
        {
          class: `${r.kecamatan && r.kecamatan === state.filters.kecamatan ? "selected" : ""}${r.open_alerts ? " has-alerting" : ""}`,
          dataset: { kecamatan: r.kecamatan || "" },
          ...activate(() => {
            if (!r.kecamatan) return;
            state.filters.kecamatan = state.filters.kecamatan === r.kecamatan ? "" : r.kecamatan;
            $("#f-kecamatan").value = state.filters.kecamatan;
            invalidate("fleet", "board");
          }),
        },
        h("td", { text: r.kecamatan || t("fleet.no_place") }),
        h("td", { class: "num", text: i18n.num(r.crates) }),
        h("td", { class: `num${r.open_alerts ? " alerting" : ""}`, text: i18n.num(r.open_alerts) }),
      ),
    ),
  );
}

export function chooseDistrict(d) {
  state.fleetDistrict = d;
  state.filters.district = d;
  $("#f-district").value = d;
  invalidate("fleet", "board");
}
