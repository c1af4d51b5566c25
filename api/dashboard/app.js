// Kawal ops dashboard: login, live alert board, map, crate detail and fleet summary.
// Plain ES modules, no build step. All data comes from this server's /api/v1 (CONTRACT section 2).

import { boot, showLogin } from "./session.js";

boot().catch((err) => {
  document.body.classList.remove("booting");
  showLogin(String(err && err.message ? err.message : err));
});
