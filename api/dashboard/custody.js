// The crate's chain of custody (CONTRACT 2.6) in the crate detail: its legs in time order, each with its
// handover, seal events and alerts, read from GET /crates/{id}/custody; and the printable receipt.

import { h, i18n, state, t, toast } from "./state.js";

const TTL_MS = 10000; // re-read at most this often per crate while the detail redraws
const cache = new Map(); // crate id -> { at, items }

/** A section that fills itself with the crate's custody timeline; hidden for a crate without trips. */
export function custodySection(crateId) {
  const list = h("ol", { class: "custody-timeline" });
  const button = h("button", {
    type: "button", class: "btn btn-sm btn-ghost", text: t("custody.receipt"),
    onclick: () => openReceipt(crateId).catch((err) => toast(t("toast.load_failed", { msg: err.message }), "error")),
  });
  const el = h(
    "section",
    { class: "detail-section custody", hidden: true, dataset: { custodyFor: crateId } },
    h("div", { class: "section-head" }, h("h3", { text: t("custody.title") }), button),
    list,
  );
  fill(list, el, crateId).catch(() => {}); // a failed read leaves the section hidden; the rest is shown
  return el;
}

async function fill(list, el, crateId) {
  let entry = cache.get(crateId);
  if (!entry || Date.now() - entry.at > TTL_MS) {
    const data = await state.api.get(`/crates/${encodeURIComponent(crateId)}/custody`);
    entry = { at: Date.now(), items: data.items || [] };
    cache.set(crateId, entry);
  }
  if (!entry.items.length) return;
  list.replaceChildren(...entry.items.map((leg, i) => legItem(leg, i + 1)));
  el.hidden = false;
}

function legItem(leg, n) {
  const trip = leg.trip;
  const ho = leg.handover;
  const ok = ho && ho.in_destination && ho.seals_match !== false;
  const kind = !ho ? "pending" : ok ? "ok" : "mismatch";
  const seals = (trip.seals || []).join(", ");
  const changes = leg.seal_events.filter((e) => e.seal !== "closed").length;
  return h(
    "li",
    { class: `custody-leg cl-${kind}`, dataset: { tripId: trip.trip_id, state: kind } },
    h(
      "div",
      { class: "custody-route" },
      h("strong", { text: `${n}. ${trip.origin?.name || "?"} → ${trip.destination?.name || "?"}` }),
      h("span", { class: "muted small", text: ` · ${t(`custody.direction.${trip.direction || "outbound"}`)}` }),
    ),
    seals ? h("div", { class: "small mono", text: `${t("custody.seals")}: ${seals}` }) : null,
    ho ? handoverLine(ho) : h("div", { class: "small muted", text: t("custody.no_handover") }),
    changes ? h("div", { class: "small warn", text: t("custody.seal_events", { n: changes }) }) : null,
    leg.alerts.length
      ? h("div", { class: "small", text: leg.alerts.map((a) => `${t(`type.${a.type}`)} (${t(`status.${a.status}`)})`).join(", ") })
      : null,
    ...leg.flags.map((f) => h("div", { class: "small warn", text: t(`custody.flag.${f}`) })),
  );
}

function handoverLine(ho) {
  const who = ho.receiver.role ? `${ho.receiver.name} (${ho.receiver.role})` : ho.receiver.name;
  const checks = [
    ho.seals_match === null ? null : t(ho.seals_match ? "custody.seals_match" : "custody.seals_differ"),
    t(ho.in_destination ? "custody.at_destination" : "custody.away"),
  ].filter(Boolean);
  return h(
    "div",
    { class: "small" },
    h("span", { text: `${t("custody.handed_to")} ${who} · ${i18n.dateTime(ho.at)} · ${checks.join(" · ")} · ` }),
    h("span", { class: "mono", title: ho.audit_hash, text: `#${ho.audit_hash.slice(0, 12)}` }),
  );
}

/** The receipt needs the bearer token, so it is fetched here and shown from a blob in a new tab. */
async function openReceipt(crateId) {
  const res = await fetch(`/api/v1/crates/${encodeURIComponent(crateId)}/receipt`, {
    headers: { Authorization: `Bearer ${state.api.token}` },
    cache: "no-store",
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const url = URL.createObjectURL(new Blob([await res.text()], { type: "text/html" }));
  window.open(url, "_blank", "noopener");
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
