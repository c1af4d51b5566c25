// The offline base map: kecamatan and desa boundaries (GET /api/v1/boundaries) drawn on one canvas, their
// names at a sensible zoom (kecamatan when the regency is in view, desa when zoomed in), a choropleth of
// open alerts per kecamatan, and the selected crate's village outlined and named.

const L = window.L;

const KEC_LABEL_ZOOM = [9, 14]; // kecamatan names from the regency view until the villages take over
const DESA_LABEL_ZOOM = 13; // about 4 km across the screen: village names fit
const KEC_LINE = "#94a3b8";
const DESA_LINE = "rgba(148, 163, 184, .35)";
const SELECTED_LINE = "#f8fafc";
// Open alerts per kecamatan: none, 1, 2-4, 5 or more.
export const CHOROPLETH = [
  { min: 0, color: "#1e293b", opacity: 0.35 },
  { min: 1, color: "#f59e0b", opacity: 0.22 },
  { min: 2, color: "#f97316", opacity: 0.3 },
  { min: 5, color: "#ef4444", opacity: 0.38 },
];

export function choroplethStep(n) {
  let step = CHOROPLETH[0];
  for (const s of CHOROPLETH) if (n >= s.min) step = s;
  return step;
}

/** "Desa X, Kec. Y" for a `place` (an alert's or a crate's), or null without one. */
export function placeText(place, t) {
  if (!place) return null;
  return place.desa
    ? t("place.desa_kecamatan", { desa: place.desa, kecamatan: place.kecamatan })
    : t("place.kecamatan", { kecamatan: place.kecamatan });
}

// A name on the map; `span` stays the same element when Leaflet re-creates the icon.
function label(latlng, text, cls, pane) {
  const span = document.createElement("span");
  span.textContent = text;
  const marker = L.marker(latlng, {
    pane, interactive: false, keyboard: false,
    icon: L.divIcon({ className: `place-label ${cls}`, html: span, iconSize: null }),
  });
  return { marker, span };
}

export class BoundaryLayer {
  constructor(map, { i18n, filled }) {
    this.map = map;
    this.i18n = i18n;
    this.filled = filled; // without tiles the polygons are the base map; with tiles only outlines
    map.createPane("boundaryPane").style.zIndex = "300";
    map.createPane("placeLabelPane").style.zIndex = "405";
    this.renderer = L.canvas({ pane: "boundaryPane", padding: 0.3 });
    this.kecamatan = new Map(); // name -> { layer, marker, span }
    this.desa = new Map(); // code -> { layer, marker, span }
    this.kecLabels = L.layerGroup();
    this.desaLabels = L.layerGroup();
    this.counts = new Map();
    this.selected = null;
    this.bounds = null;
    map.on("zoomend", () => this.showLabels());
  }

  /** Draw a FeatureCollection from GET /api/v1/boundaries. */
  setData(collection) {
    const features = collection?.features || [];
    const desa = features.filter((f) => f.properties?.level === "desa");
    const kec = features.filter((f) => f.properties?.level === "kecamatan");
    const r = this.renderer;
    this.desaLayer = L.geoJSON(
      { type: "FeatureCollection", features: desa },
      { renderer: r, pane: "boundaryPane", interactive: false, style: () => ({ color: DESA_LINE, weight: 0.8, fill: false }) },
    ).addTo(this.map);
    this.desaLayer.eachLayer((layer) => {
      const p = layer.feature.properties;
      const e = { layer, ...label([p.lat, p.lon], p.name, "desa-label", "placeLabelPane") };
      e.marker.addTo(this.desaLabels);
      this.desa.set(p.code, e);
    });
    this.kecLayer = L.geoJSON(
      { type: "FeatureCollection", features: kec },
      { renderer: r, pane: "boundaryPane", interactive: false, style: () => ({ color: KEC_LINE, weight: 1.6 }) },
    ).addTo(this.map);
    this.kecLayer.eachLayer((layer) => {
      const p = layer.feature.properties;
      const e = { layer, ...label([p.lat, p.lon], p.name, "kec-label", "placeLabelPane") };
      e.marker.addTo(this.kecLabels);
      this.kecamatan.set(p.name, e);
    });
    this.attribution = collection.attribution || "";
    if (this.attribution) this.map.attributionControl?.addAttribution(this.attributionHtml());
    this.bounds = this.kecLayer.getBounds();
    this.paint();
    this.showLabels();
  }

  /** The data's own attribution (its licence asks for it), shortened on screen, whole on hover. */
  attributionHtml() {
    const el = document.createElement("span");
    el.className = "boundary-attribution";
    el.textContent = this.attribution;
    el.title = this.attribution;
    return el.outerHTML;
  }

  /** Open alerts per kecamatan name (from GET /summary's by_kecamatan), shaded on the polygons. */
  setCounts(rows) {
    this.counts = new Map((rows || []).filter((r) => r.kecamatan).map((r) => [r.kecamatan, r]));
    this.paint();
  }

  paint() {
    for (const [name, e] of this.kecamatan) {
      const row = this.counts.get(name);
      const n = row ? row.open_alerts : 0;
      const step = choroplethStep(n);
      const opacity = this.filled || n > 0 ? step.opacity : 0;
      // A restyle redraws the whole polygon with all it overlaps; most refreshes change no shade.
      if (e.fillColor !== step.color || e.fillOpacity !== opacity) {
        e.layer.setStyle({ fill: true, fillColor: step.color, fillOpacity: opacity });
        e.fillColor = step.color;
        e.fillOpacity = opacity;
      }
      e.span.textContent = n > 0 ? `${name} · ${n}` : name;
      e.span.classList.toggle("has-alerts", n > 0);
      e.span.title = this.i18n.t("map.kecamatan_summary", { name, crates: row ? row.crates : 0, alerts: n });
    }
  }

  /** Outline and name the village of a crate's place (null clears it). */
  select(place) {
    if (this.selected) {
      this.selected.layer.setStyle({ color: DESA_LINE, weight: 0.8 });
      this.selected.span.classList.remove("selected");
      this.selected = null;
    }
    const e = place?.desa_code ? this.desa.get(place.desa_code) : null;
    if (!e) {
      this.showLabels();
      return;
    }
    e.layer.setStyle({ color: SELECTED_LINE, weight: 2.2 });
    e.layer.bringToFront();
    this.selected = e;
    this.showLabels();
  }

  showLabels() {
    const z = this.map.getZoom();
    const want = (group, on) => {
      if (on && !this.map.hasLayer(group)) group.addTo(this.map);
      if (!on && this.map.hasLayer(group)) this.map.removeLayer(group);
    };
    want(this.kecLabels, z >= KEC_LABEL_ZOOM[0] && z < KEC_LABEL_ZOOM[1]);
    want(this.desaLabels, z >= DESA_LABEL_ZOOM || Boolean(this.selected));
    // Below the village zoom, only the selected crate's village keeps its name.
    const all = z >= DESA_LABEL_ZOOM;
    for (const e of this.desa.values()) {
      e.span.hidden = !all && e !== this.selected;
      e.span.classList.toggle("selected", e === this.selected);
    }
  }
}
