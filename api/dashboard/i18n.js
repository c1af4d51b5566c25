// Translations (Bahasa Indonesia by default, English on request) and WIB time formatting.

export const LANGS = ["id", "en"];
const LOCALE = { id: "id-ID", en: "en-GB" };
// Election logistics in Jombang run on Western Indonesian Time (UTC+7); the page shows WIB whatever
// the viewer's own machine is set to.
export const TIME_ZONE = "Asia/Jakarta";

export class I18n {
  constructor() {
    this.lang = "id";
    this.dicts = {};
    this.now = () => Date.now(); // the session points this at the service's clock (serviceclock.js)
  }

  async load(lang) {
    if (!this.dicts[lang]) {
      const res = await fetch(`/static/dashboard/i18n_${lang}.json`);
      if (!res.ok) throw new Error(`translations ${lang}: HTTP ${res.status}`);
      this.dicts[lang] = await res.json();
    }
    this.lang = lang;
    this.locale = LOCALE[lang];
    const base = { timeZone: TIME_ZONE, hourCycle: "h23" };
    this.fmtDateTime = new Intl.DateTimeFormat(this.locale, {
      ...base, day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
    this.fmtTime = new Intl.DateTimeFormat(this.locale, { ...base, hour: "2-digit", minute: "2-digit", second: "2-digit" });
    this.fmtDay = new Intl.DateTimeFormat(this.locale, {
      timeZone: TIME_ZONE, year: "numeric", month: "2-digit", day: "2-digit",
    });
    this.fmtRel = new Intl.RelativeTimeFormat(this.locale, { numeric: "auto", style: "short" });
    this.fmtNum = new Intl.NumberFormat(this.locale);
    document.documentElement.lang = lang;
  }

  has(key) {
    return key in (this.dicts[this.lang] || {});
  }

  /** The text for `key`, with `{name}` placeholders filled from `vars`; the key itself if missing. */
  t(key, vars) {
    let s = this.dicts[this.lang]?.[key] ?? this.dicts.id?.[key] ?? key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  }

  /** Fill every element marked with data-i18n (text), data-i18n-placeholder or data-i18n-title. */
  apply(root = document) {
    for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = this.t(el.dataset.i18n);
    for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = this.t(el.dataset.i18nPlaceholder);
    for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = this.t(el.dataset.i18nTitle);
    document.title = this.t("app.title");
  }

  /** "27 Nov 14.03.22 WIB": an RFC 3339 time (or Date) in Jakarta time. */
  dateTime(value) {
    const d = toDate(value);
    return d ? `${this.fmtDateTime.format(d)} ${this.t("time.zone")}` : "—";
  }

  /** Time of day only when it is today in Jakarta, else date and time. */
  when(value, now = new Date(this.now())) {
    const d = toDate(value);
    if (!d) return "—";
    const sameDay = this.fmtDay.format(d) === this.fmtDay.format(now);
    return sameDay ? `${this.fmtTime.format(d)} ${this.t("time.zone")}` : this.dateTime(d);
  }

  clock(now = new Date(this.now())) {
    return `${this.fmtTime.format(now)} ${this.t("time.zone")}`;
  }

  /** "5 mnt lalu" / "5 min ago", against the service's clock (`now`, set by the session). */
  relative(value, now = this.now()) {
    const d = toDate(value);
    if (!d) return "";
    const s = Math.round((d.getTime() - now) / 1000);
    const a = Math.abs(s);
    if (a < 45) return this.fmtRel.format(s, "second");
    if (a < 45 * 60) return this.fmtRel.format(Math.round(s / 60), "minute");
    if (a < 36 * 3600) return this.fmtRel.format(Math.round(s / 3600), "hour");
    return this.fmtRel.format(Math.round(s / 86400), "day");
  }

  /** A duration in seconds: "25 mnt", "2,5 jam" / "25 min", "2.5 h". */
  duration(s) {
    const min = Math.max(0, s) / 60;
    return min < 90 ? `${this.num(min)} ${this.t("unit.min")}` : `${this.num(min / 60, 1)} ${this.t("unit.hour")}`;
  }

  num(n, digits = 0) {
    return new Intl.NumberFormat(this.locale, { maximumFractionDigits: digits }).format(n);
  }

  /** Metres as "850 m" or "2,4 km". */
  distance(m) {
    return m < 1000 ? `${this.num(m)} ${this.t("unit.m")}` : `${this.num(m / 1000, 1)} ${this.t("unit.km")}`;
  }
}

export function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  const d = value instanceof Date ? value : new Date(typeof value === "number" ? value * 1000 : value);
  return Number.isNaN(d.getTime()) ? null : d;
}
