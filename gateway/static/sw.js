// homestream's service worker: the dashboard's shell (page, styles, scripts, icons) is kept
// so the app opens without the gateway; then the page says it is offline (app.js). The API
// and the live connections are never cached: what they show is always the gateway's now.
"use strict";

const SHELL = "homestream-shell-v1";
const FILES = [
  "/",
  "/static/style.css",
  "/static/app.js",
  "/static/automations.js",
  "/static/manifest.webmanifest",
  "/static/icons/icon-192.png",
  "/static/icons/icon-512.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// The shell: the network first (a new version shows at once), the kept copy when it fails.
self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin) return;
  const shell = req.mode === "navigate" ? "/" : url.pathname;
  if (!FILES.includes(shell)) return; // /v1/*, /docs ...: the network only
  event.respondWith(
    fetch(req)
      .then((res) => {
        if (res.ok) {
          const copy = res.clone();
          caches.open(SHELL).then((cache) => cache.put(shell, copy));
        }
        return res;
      })
      .catch(() => caches.match(shell).then((hit) => hit || Response.error())),
  );
});
