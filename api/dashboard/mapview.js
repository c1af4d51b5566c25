// The map: crates at their last position, alert locations, and one selected trip (plan against track).
// Leaflet comes from the xstatic-leaflet package served by Kawal itself; see router.py. The kecamatan and desa
// boundaries under everything are boundaries.js.

import { BoundaryLayer, CHOROPLETH, placeText } from "./boundaries.js";

const L = window.L;

export const STATE_COLORS = {
  in_storage: "#94a3b8",
  in_transit: "#3b82f6",
  arrived: "#22c55e",
  alerting: "#ef4444",
};
const UNKNOWN_COLOR = "#64748b";
const ROUTE_COLOR = "#c084fc";
const ZONE_COLORS = { origin: "#cbd5e1", destination: "#4ade80", stop: "#c084fc" };
const TRACK_COLOR = "#fbbf24";
// Indonesia as a whole until the first crates arrive.
const DEFAULT_VIEW = { center: [-2.5, 118], zoom: 5 };

/** A usable fix: numbers, and not Null Island (CONTRACT 1.1). */
export function hasPosition(p) {
  return p && Number.isFinite(p.lat) && Number.isFinite(p.lon) && !(p.lat === 0 && p.lon === 0);
}

// Without base-map tiles, a faint grid that pans and zooms with the map gives a sense of scale and motion.
const GridLayer = L.GridLayer.extend({
  createTile() {
    const tile = document.createElement("div");
    tile.className = "grid-tile";
    return tile;
  },
});

// Critical pins that pulse at once: the newest few draw the eye; more only keep the page repainting.
const PULSING_PINS = 12;

function pinIcon(a) {
  const cls = `alert-pin sev-${a.severity} st-${a.status} pulse`;
  return L.divIcon({ className: cls, iconSize: [16, 16], iconAnchor: [8, 8] });
}

// The severity colours of style.css (--critical, ...), read once.
let sevColors = null;
function canvasPinStyle(a) {
  if (!sevColors) {
    const css = getComputedStyle(document.documentElement);
    sevColors = Object.fromEntries(
      ["critical", "major", "minor", "warning"].map((s) => [s, css.getPropertyValue(`--${s}`).trim() || "#94a3b8"]),
    );
  }
  const acknowledged = a.status === "acknowledged";
  return {
    fillColor: sevColors[a.severity] || "#94a3b8", fillOpacity: 1, weight: 2,
    color: acknowledged ? "#93c5fd" : "#f8fafc",
  };
}

function newestOpenCritical(alerts, n) {
  const open = alerts.filter((a) => a.severity === "critical" && a.status === "open" && hasPosition(a));
  open.sort((a, b) => (Date.parse(b.raised_at) || 0) - (Date.parse(a.raised_at) || 0));
  return new Set(open.slice(0, n).map((a) => a.id));
}

export class MapView {
  constructor(el, { i18n, onSelectCrate, onSelectAlert }) {
    this.i18n = i18n;
    this.onSelectCrate = onSelectCrate;
    this.onSelectAlert = onSelectAlert;
    this.map = L.map(el, { minZoom: 3, maxZoom: 19, zoomSnap: 0.5 }).setView(DEFAULT_VIEW.center, DEFAULT_VIEW.zoom);
    this.map.createPane("tripPane").style.zIndex = "410";
    this.map.createPane("cratePane").style.zIndex = "420";
    // Thousands of crates draw fast on one canvas; the selected trip stays SVG (one path per line).
    this.crateRenderer = L.canvas({ pane: "cratePane", padding: 0.3 });
    // Alert pins too, but for the few newest critical ones, which pulse as DOM markers: hundreds of DOM
    // pins made every live update repaint the whole map layer.
    this.map.createPane("alertPane").style.zIndex = "430";
    this.alertRenderer = L.canvas({ pane: "alertPane", padding: 0.3 });
    this.tripRenderer = L.svg({ pane: "tripPane" });
    this.crateLayer = L.layerGroup().addTo(this.map);
    this.alertLayer = L.layerGroup().addTo(this.map);
    this.tripLayer = L.featureGroup().addTo(this.map);
    this.crateMarkers = new Map();
    this.alertMarkers = new Map();
    this.selectedCrate = null;
    this.selection = null;
    this.fitted = false;
    this.base = new GridLayer({ tileSize: 128 }).addTo(this.map);
    this.hasTiles = false;
    this.places = new BoundaryLayer(this.map, { i18n, filled: true });
    this.cratePlaces = new Map(); // crate_id -> place of its last fix
    L.control.scale({ imperial: false, position: "bottomright" }).addTo(this.map);
    this.legend = L.control({ position: "bottomleft" });
    this.legend.onAdd = () => {
      // Collapsible, and closed on smaller screens where it would hide much of the map.
      const box = L.DomUtil.create("details", "map-legend");
      box.open = !window.matchMedia("(max-width: 1279px)").matches;
      this.legendTitle = L.DomUtil.create("summary", "", box);
      this.legendEl = L.DomUtil.create("div", "legend-body", box);
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      this.renderLegend();
      return box;
    };
    this.legend.addTo(this.map);
  }

  setTiles(url, attribution) {
    if (!url || this.hasTiles) return;
    this.map.removeLayer(this.base);
    this.base = L.tileLayer(url, { maxZoom: 19, attribution: attribution || "" }).addTo(this.map);
    this.hasTiles = true;
    this.places.filled = false;
    this.places.paint();
    this.map.getContainer().classList.add("has-tiles");
    this.renderLegend();
  }

  renderLegend() {
    if (!this.legendEl) return;
    const t = (k) => this.i18n.t(k);
    const el = this.legendEl;
    this.legendTitle.textContent = t("map.legend");
    el.replaceChildren();
    const row = (swatch, label) => {
      const r = L.DomUtil.create("div", "legend-row", el);
      r.append(swatch, document.createTextNode(label));
    };
    const dot = (color) => {
      const s = L.DomUtil.create("span", "legend-dot");
      s.style.background = color;
      return s;
    };
    const line = (cls) => L.DomUtil.create("span", `legend-line ${cls}`);
    for (const state of Object.keys(STATE_COLORS)) row(dot(STATE_COLORS[state]), t(`state.${state}`));
    row(line("legend-planned"), t("map.planned"));
    row(line("legend-actual"), t("map.actual"));
    row(L.DomUtil.create("span", "legend-pin"), t("map.alert"));
    // The selected trip's origin and destination zones, drawn as rings and labelled on the map.
    for (const end of ["origin", "destination"]) {
      const ring = L.DomUtil.create("span", `legend-ring legend-${end}`);
      ring.style.borderColor = ZONE_COLORS[end];
      row(ring, t(`map.${end}`));
    }
    if (this.places.bounds) {
      // The choropleth's steps in one row: 0, 1, 2–4, 5+ open alerts in the kecamatan.
      const scale = L.DomUtil.create("span", "legend-scale");
      for (const [i, step] of CHOROPLETH.entries()) {
        const next = CHOROPLETH[i + 1];
        const sw = L.DomUtil.create("span", "legend-area", scale);
        sw.style.background = step.color;
        sw.textContent = next ? (next.min - 1 > step.min ? `${step.min}–${next.min - 1}` : `${step.min}`) : `${step.min}+`;
      }
      row(scale, this.i18n.t("map.open_alerts_kecamatan"));
    }
    if (!this.hasTiles) L.DomUtil.create("div", "legend-note", el).textContent = t(this.places.bounds ? "map.boundaries_only" : "map.no_tiles");
  }

  /** The kecamatan and desa boundaries (GET /boundaries); the regency is the first view until crates arrive. */
  setBoundaries(collection) {
    this.places.setData(collection);
    if (!this.fitted && this.places.bounds?.isValid()) this.map.fitBounds(this.places.bounds, { padding: [20, 20] });
    this.renderLegend();
  }

  /** Open alerts per kecamatan (GET /summary's by_kecamatan), shaded on the map. */
  setKecamatanCounts(rows) {
    this.places.setCounts(rows);
  }

  /** Crates at their last fix, coloured by state; markers are updated in place. */
  setCrates(crates) {
    const seen = new Set();
    const bounds = [];
    for (const c of crates) {
      const fix = c.last_fix;
      if (!hasPosition(fix)) continue;
      seen.add(c.crate_id);
      const ll = [fix.lat, fix.lon];
      bounds.push(ll);
      const color = STATE_COLORS[c.state] || UNKNOWN_COLOR;
      const where = placeText(c.place, (k, v) => this.i18n.t(k, v));
      // Each change asks the canvas for a redraw: a refresh of thousands of crates touches only those that
      // moved or changed state.
      const key = `${fix.lat},${fix.lon},${c.state},${where}`;
      let m = this.crateMarkers.get(c.crate_id);
      if (m && m.kawalKey === key) continue;
      if (!m) {
        m = L.circleMarker(ll, {
          renderer: this.crateRenderer, radius: 6, weight: 1.5, color: "#0b1220", fillOpacity: 0.95,
        });
        m.bindTooltip(c.crate_id, { direction: "top", offset: [0, -6] });
        m.on("click", () => this.onSelectCrate(c.crate_id));
        m.addTo(this.crateLayer);
        this.crateMarkers.set(c.crate_id, m);
      } else {
        m.setLatLng(ll);
      }
      m.setStyle({ fillColor: color, radius: c.state === "alerting" ? 7.5 : 6 });
      m.setTooltipContent(where ? `${c.crate_id} · ${where}` : c.crate_id);
      this.cratePlaces.set(c.crate_id, c.place || null);
      if (c.state === "alerting" && m.kawalState !== "alerting") m.bringToFront();
      m.kawalKey = key;
      m.kawalState = c.state;
    }
    for (const [id, m] of this.crateMarkers) {
      if (!seen.has(id)) {
        this.crateLayer.removeLayer(m);
        this.crateMarkers.delete(id);
      }
    }
    if (!this.fitted && bounds.length) {
      this.fitted = true;
      this.map.fitBounds(bounds, { paddingTopLeft: [40, 40], paddingBottomRight: [40, 64], maxZoom: 14 });
    }
    this.updateSelectedRing();
  }

  /** Where the active alerts happened, one pin each, coloured by severity. */
  setAlerts(alerts) {
    const seen = new Set();
    const pulsing = newestOpenCritical(alerts, PULSING_PINS);
    for (const a of alerts) {
      if (!hasPosition(a)) continue;
      seen.add(a.id);
      const dom = pulsing.has(a.id);
      const look = `${a.severity} ${a.status} ${dom}`;
      const label = `${this.i18n.t(`type.${a.type}`)} · ${a.crate_id || a.tracker_id}`;
      let m = this.alertMarkers.get(a.id);
      if (m && m.isDom !== dom) {
        this.alertLayer.removeLayer(m);
        m = undefined;
      }
      if (!m) {
        m = dom ? this.domPin(a) : L.circleMarker([a.lat, a.lon], { renderer: this.alertRenderer, radius: 7 });
        m.isDom = dom;
        m.on("click", () => this.onSelectAlert(m.alert));
        m.addTo(this.alertLayer);
        this.alertMarkers.set(a.id, m);
      } else if (m.alert.lat !== a.lat || m.alert.lon !== a.lon) {
        m.setLatLng([a.lat, a.lon]); // only what changed is touched: this runs for every alert on each burst
      }
      if (m.look !== look) {
        if (dom) m.setIcon(pinIcon(a));
        else m.setStyle(canvasPinStyle(a));
        m.look = look;
      }
      m.alert = a;
      if (m.tooltipLabel !== label) {
        m.unbindTooltip();
        m.bindTooltip(label, { direction: "top", offset: [0, -8] });
        m.tooltipLabel = label;
      }
    }
    for (const [id, m] of this.alertMarkers) {
      if (!seen.has(id)) {
        this.alertLayer.removeLayer(m);
        this.alertMarkers.delete(id);
      }
    }
  }

  domPin(a) {
    return L.marker([a.lat, a.lon], { icon: pinIcon(a), keyboard: false, riseOnHover: true });
  }

  /**
   * Draw one crate's trip: the planned route (dashed), its zones and allowed stops, and the actual track.
   * With `fit`, the view moves to show all of it plus the `include` points (e.g. the alert that was clicked).
   */
  showTrip(crateId, trip, track, { fit = true, include = [] } = {}) {
    this.tripLayer.clearLayers();
    this.selectedCrate = crateId;
    const r = this.tripRenderer;
    if (trip) {
      const zone = (z, cls, color) =>
        L.circle([z.lat, z.lon], {
          renderer: r, radius: z.radius_m || 150, className: `kawal-zone ${cls}`, color, weight: 1.5, fillOpacity: 0.15,
        }).bindTooltip(z.name || "", { direction: "top" });
      // Origin and destination say what they are on the map itself, not only on hover.
      const end = (z, kind) =>
        zone(z, `kawal-${kind}`, ZONE_COLORS[kind]).unbindTooltip().bindTooltip(
          `${this.i18n.t(`map.${kind}`)}: ${z.name || ""}`,
          { permanent: true, direction: "top", className: `zone-label zone-label-${kind}`, offset: [0, -6] },
        );
      this.tripLayer.addLayer(end(trip.origin, "origin"));
      this.tripLayer.addLayer(end(trip.destination, "destination"));
      for (const s of trip.stops || []) this.tripLayer.addLayer(zone(s, "kawal-stop", ZONE_COLORS.stop));
      this.tripLayer.addLayer(
        L.polyline(trip.route, {
          renderer: r, className: "kawal-route", color: ROUTE_COLOR, weight: 4, opacity: 0.9, dashArray: "10 8",
          interactive: false,
        }),
      );
    }
    const points = (track || []).filter(hasPosition).map((f) => [f.lat, f.lon]);
    if (points.length) {
      this.tripLayer.addLayer(
        L.polyline(points, {
          renderer: r, className: "kawal-track", color: TRACK_COLOR, weight: 3.5, opacity: 0.95, interactive: false,
        }),
      );
    }
    this.updateSelectedRing();
    if (fit) this.fitSelection(include);
  }

  clearTrip() {
    this.tripLayer.clearLayers();
    this.selectedCrate = null;
    this.updateSelectedRing();
  }

  updateSelectedRing() {
    this.places.select(this.selectedCrate ? this.cratePlaces.get(this.selectedCrate) : null);
    const m = this.selectedCrate && this.crateMarkers.get(this.selectedCrate);
    if (!m) {
      if (this.selection) this.map.removeLayer(this.selection);
      this.selection = null;
      return;
    }
    if (!this.selection) {
      this.selection = L.circleMarker(m.getLatLng(), {
        renderer: this.tripRenderer, radius: 13, className: "kawal-selected", color: "#f8fafc", weight: 2.5, fill: false,
        interactive: false,
      }).addTo(this.map);
    } else {
      this.selection.setLatLng(m.getLatLng());
    }
  }

  fitSelection(include = []) {
    const b = this.tripLayer.getBounds();
    for (const p of include) b.extend(p);
    // Room at the top for the zone labels and at the bottom for the scale bar and the legend (when open), so
    // neither covers a marker of the trip.
    const legend = this.legend.getContainer();
    const bottom = legend && legend.open ? Math.max(64, legend.offsetHeight + 24) : 64;
    if (b.isValid()) this.map.fitBounds(b, { paddingTopLeft: [36, 48], paddingBottomRight: [36, bottom], maxZoom: 16 });
  }

  focus(lat, lon, zoom = 15) {
    this.map.setView([lat, lon], Math.max(this.map.getZoom(), zoom));
  }

  invalidate() {
    this.map.invalidateSize();
  }
}
