// The diner page's service worker: keeps each table's page and the menu it last read, so a reload with no
// network still shows the menu (the page then says it is offline). Served at /sw.js by the box and at
// /s/STORE/sw.js by the relay; the page registers it with the scope of its own folder (/t/ or /s/STORE/t/), so
// it controls diner pages only, never the staff screens on the same address.
// Network first: a fresh page and menu when the box answers. The kept copy of a page is shown when the box does
// not answer (no network, or an error from it: the page is marked offline and says so), or when its answer takes
// longer than a second (marked slow: the page reads its menu and table again at once, and the late answer is
// kept for next time); a menu request waits for the network and gets the kept copy only when that fails.
// Orders, events, waiter and bill calls are never kept nor answered from here: they go to the network as if
// there were no worker.
"use strict";
const PAGES = "tb-pages-1", DATA = "tb-data-1";
const WAIT_MS = 1000;  // how long a page may take before its kept copy is shown (a box on the LAN takes ~0.1 s)
const MAX_PAGES = 8, MAX_DATA = 24;  // a phone sees a few tables; the oldest kept copies go first
const BASE = new URL("./", self.location.href).pathname;  // "/" on the box, "/s/STORE/" on the relay
const IS_PAGE = /^t\/[^/]+$/, IS_DATA = /^api\/v1\/tables\/[^/]+(\/menu)?$/;
// A table code the box refuses (forged, re-keyed: 403, 404, 410): its kept page and menu are dropped.
const GONE = new Set([403, 404, 410]);

self.addEventListener("install", () => self.skipWaiting());

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== PAGES && name !== DATA) await caches.delete(name);
    if (self.registration.navigationPreload) await self.registration.navigationPreload.enable();
    await self.clients.claim();  // the first visit's own menu requests are kept too
  })());
});

// The page asks to be kept (on a first visit it was fetched before this worker existed).
self.addEventListener("message", (event) => {
  const url = event.data && event.data.keep;
  if (typeof url !== "string") return;
  const at = new URL(url, self.location.href);
  if (at.origin !== self.location.origin || kind(at) !== "page") return;
  event.waitUntil((async () => {
    const cache = await caches.open(PAGES), key = pageKey(at);
    if (await cache.match(key, {ignoreVary: true})) return;
    try { await keep(cache, key, await fetch(key, {credentials: "same-origin"}), MAX_PAGES); } catch (e) { /* offline */ }
  })());
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  const what = kind(url);
  if (what === "page" && req.mode === "navigate") event.respondWith(page(event, url));
  else if (what === "data") event.respondWith(data(event, req));
});

function kind(url) {
  if (!url.pathname.startsWith(BASE)) return null;
  const rest = url.pathname.slice(BASE.length);
  return IS_PAGE.test(rest) ? "page" : IS_DATA.test(rest) ? "data" : null;
}

// One kept page per table URL, whatever its query (?lang=...).
function pageKey(url) { return url.origin + url.pathname; }

async function page(event, url) {
  const cache = await caches.open(PAGES), key = pageKey(url);
  const network = (async () => (await event.preloadResponse) || fetch(event.request))();
  network.catch(() => null);  // handled below; a rejection nobody awaits is not an error
  const kept = await cache.match(key, {ignoreVary: true});
  if (!kept) {  // a first visit, or a refused code: the network's own answer or error
    const res = await network;
    event.waitUntil(settle(cache, key, res, MAX_PAGES, url));
    return res;
  }
  const answer = await within(network, WAIT_MS);
  if (answer instanceof Response && answer.status < 500) {
    event.waitUntil(settle(cache, key, answer, MAX_PAGES, url));
    return answer;
  }
  const late = answer === LATE;
  if (late) event.waitUntil(network.then((res) => settle(cache, key, res, MAX_PAGES, url)).catch(() => null));
  // The page learns why it got the kept copy from <html data-tb-kept="offline|slow">.
  const html = (await kept.text()).replace("<html", '<html data-tb-kept="' + (late ? "slow" : "offline") + '"');
  return new Response(html, {status: 200, headers: {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}});
}

async function data(event, req) {
  const cache = await caches.open(DATA);
  let res = null;
  try { res = await fetch(req); } catch (e) { /* no network */ }
  if (res && res.status < 500) {
    event.waitUntil(settle(cache, req.url, res, MAX_DATA, new URL(req.url)));
    return res;
  }
  const kept = await cache.match(req.url, {ignoreVary: true});
  if (!kept) return res || Response.error();
  const headers = new Headers(kept.headers);
  headers.set("X-Tablebox-Offline", "1");  // for whoever looks (devtools): this menu may be old
  return new Response(kept.body, {status: kept.status, headers});
}

// The network's answer if it comes within `ms`, LATE if it does not, null if it fails.
const LATE = Symbol("late");
function within(network, ms) {
  let timer;
  const late = new Promise((resolve) => { timer = setTimeout(resolve, ms, LATE); });
  return Promise.race([network.catch(() => null), late]).finally(() => clearTimeout(timer));
}

async function settle(cache, key, res, max, url) {
  if (res.status === 200) await keep(cache, key, res.clone(), max);
  else if (GONE.has(res.status)) await forget(url);
}

async function keep(cache, key, res, max) {
  if (res.status !== 200) return;
  await cache.delete(key, {ignoreVary: true});  // re-added last: the oldest are first in keys()
  await cache.put(key, res);
  const keys = await cache.keys();
  for (const old of keys.slice(0, Math.max(0, keys.length - max))) await cache.delete(old);
}

// Everything kept for the table code in `url` (its page and its data), once the box refuses that code.
async function forget(url) {
  const rest = url.pathname.slice(BASE.length), token = rest.split("/")[rest.startsWith("t/") ? 1 : 3];
  if (!token) return;
  const mine = (u) => { const p = new URL(u).pathname.slice(BASE.length); return p === "t/" + token || p === "api/v1/tables/" + token || p.startsWith("api/v1/tables/" + token + "/"); };
  for (const name of [PAGES, DATA]) {
    const cache = await caches.open(name);
    for (const r of await cache.keys()) if (mine(r.url)) await cache.delete(r);
  }
}
