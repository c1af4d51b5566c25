// Where an alert was pushed (webhook and email channels, CONTRACT 2.7) and whether delivery succeeded:
// one line of chips per alert in the crate detail, read from GET /alerts/{id}/deliveries.

import { h, state, t } from "./state.js";
import { selectAlert } from "./board.js";
import { mergeAlert } from "./live.js";

const TTL_MS = 10000; // re-read at most this often per alert; a pending delivery is worth a fresh look
const cache = new Map(); // alert id -> { at, items }

/** An element that fills itself with the alert's deliveries; hidden while the alert went nowhere. */
export function deliveriesLine(alert) {
  const el = h("div", { class: "deliveries small", hidden: true, dataset: { deliveriesFor: alert.id } });
  fill(el, alert.id).catch(() => {}); // a failed read leaves the line hidden; the alert itself is shown
  return el;
}

async function fill(el, id) {
  let entry = cache.get(id);
  if (!entry || Date.now() - entry.at > TTL_MS) {
    const data = await state.api.get(`/alerts/${encodeURIComponent(id)}/deliveries`);
    entry = { at: Date.now(), items: data.items || [] };
    cache.set(id, entry);
  }
  if (!entry.items.length) return;
  const byChannel = new Map();
  for (const d of entry.items) byChannel.set(d.channel, [...(byChannel.get(d.channel) || []), d]);
  el.replaceChildren(
    h("span", { class: "muted", text: t("deliveries.sent_to") }),
    ...[...byChannel].map(([channel, items]) => chip(channel, items)),
  );
  el.hidden = false;
}

function chip(channel, items) {
  const pending = items.filter((d) => d.status === "pending");
  const failing = pending.find((d) => d.attempts > 0);
  const kind = failing ? "failed" : pending.length ? "pending" : "ok";
  const label = failing
    ? t("deliveries.failed", { n: failing.attempts })
    : t(pending.length ? "deliveries.pending" : "deliveries.ok");
  const title = items
    .map((d) => `${d.event}: ${t(`deliveries.status.${d.status}`)}${d.last_error ? ` (${d.last_error})` : ""}`)
    .join("\n");
  return h("span", { class: `delivery-chip dl-${kind}`, title, dataset: { channel, state: kind }, text: `${channel} · ${label}` });
}

/** Notifications link to `/#alert=<id>`: open that alert's crate once signed in, and on later link changes. */
export function followAlertLinks() {
  const open = async () => {
    const m = /^#alert=([A-Za-z0-9._:-]{1,64})$/.exec(location.hash);
    if (!m) return;
    try {
      const alert = await state.api.get(`/alerts/${encodeURIComponent(m[1])}`);
      mergeAlert(alert);
      selectAlert(alert);
    } catch {
      // an unknown or foreign id: the board is shown as usual
    }
  };
  window.addEventListener("hashchange", open);
  open();
}
