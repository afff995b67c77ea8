// The page's network side: submitting (safe to retry), the table's orders, live events, waiter and bill calls,
// and working offline (the service worker in sw.js keeps the page and the last menu; this part says when the
// phone is offline and sends a waiting order the moment the connection is back).
  Object.assign(T.zh, {
    noNet: "网络已断开：这是上次保存的菜单。仍可点菜，联网后订单会立即发送。",
    queued: "网络已断开：订单已保存，联网后立即发送。",
    notSent: "未能连接餐厅，没有发送，请再试一次。",
  });
  Object.assign(T.en, {
    noNet: "No connection: this is the menu as last saved. You can still order; it is sent as soon as the connection is back.",
    queued: "No connection: your order is kept and is sent as soon as the connection is back.",
    notSent: "Could not reach the restaurant: not sent. Please try again.",
  });
  Object.assign(T.ja, {
    noNet: "オフラインです：前回保存したメニューを表示しています。注文はでき、接続が戻るとすぐに送信されます。",
    queued: "オフラインです：注文は保存されており、接続が戻るとすぐに送信されます。",
    notSent: "お店に接続できず、送信できませんでした。もう一度お試しください。",
  });

  // Retries after a failed send: about 1, 2, 4, 8 s, then about every 10 s (each a little early at random, so
  // the phones of a room do not all come back in the same instant). The `online` event, or the diner coming back
  // to the page, sends at once.
  const RETRY_CAP_MS = 10000;
  let retry = null, wakes = 0, wasOffline = false, ordersLoad = null, ordersSeen = false, es = null;
  function backoff(attempt) { return Math.min(RETRY_CAP_MS, 1000 * Math.pow(2, attempt)) * (0.75 + 0.25 * Math.random()); }
  function retryLater(pending, attempt, ms) {
    if (retry) clearTimeout(retry.timer);
    retry = {pending, attempt, timer: setTimeout(() => { retry = null; send(pending, attempt); }, ms)};
  }
  function wake() {
    wakes++;
    if (retry) { clearTimeout(retry.timer); const r = retry; retry = null; send(r.pending, r.attempt); }
  }

  // A line under the header while the box cannot be reached (no network, or the page came from the service
  // worker's copy): it stays until a request gets through, then the menu is read again.
  function showOffline(on) {
    let b = $("offline");
    if (on && !b) {
      b = el("div", "msg wait"); b.id = "offline"; b.setAttribute("role", "status");
      const top = $("top"); if (top) top.after(b); else document.body.prepend(b);  // under the header, in the flow
    }
    if (b) { b.textContent = t("noNet"); b.classList.toggle("hidden", !on); }
    if (on) wasOffline = true;
  }
  function reachable() {
    if (!wasOffline) return;
    wasOffline = false; showOffline(false); catchUp(0);
  }
  // Back online, the menu and table are read again until the box itself answers: the first requests after the
  // `online` event can still fail (a phone's Wi-Fi up before its address, the worker's network a moment behind
  // the page's), and the worker's kept copy is no newer than what the page shows.
  function catchUp(attempt) {
    refreshMenu(true, true).then((ok) => {
      if (!ok && !wasOffline && attempt < 8) setTimeout(() => { if (!wasOffline) catchUp(attempt + 1); }, backoff(attempt));
    });
  }

  window.addEventListener("online", () => {
    wake();
    if (!menu) return;  // the page is still loading: load() reads the orders and opens the stream
    loadOrders();
    if (!es || es.readyState === 2) listen();
  });
  window.addEventListener("offline", () => showOffline(true));
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") wake(); });

  // The service worker, once the page is up (never in the way of the first view). It needs a secure context:
  // https (the relay) or 127.0.0.1; a phone on the store Wi-Fi at http://192.168.x.y gets none, and the page
  // works as before (no offline reload, the waiting order still goes when the connection is back).
  window.addEventListener("load", () => {
    if (!("serviceWorker" in navigator) || !window.isSecureContext) return;
    navigator.serviceWorker.register(new URL("../sw.js", location.href), {scope: "./"})
      .then(() => navigator.serviceWorker.ready)
      .then((reg) => { if (reg.active) reg.active.postMessage({keep: location.href}); })  // a first visit: keep this page
      .catch(() => { /* no worker: the page works without one */ });
  });
  // One client_key per submission, kept with the exact body until the box answers: a double tap, a
  // timeout followed by a retry, or a reload during submission all resend the same order.
  function submit(expected) {
    if (sending || !cart.length) return;
    let pending = store.get("pending", null);
    if (!pending) {
      pending = {client_key: (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2)).replace(/[^A-Za-z0-9_-]/g, ""),
                 lines: cart.map((l) => ({item_id: l.item_id, variant_id: l.variant_id, option_ids: l.option_ids, quantity: l.quantity, note: l.note}))};
    }
    pending.expected_total_minor = expected != null ? expected : totals().total;
    store.set("pending", pending);
    send(pending, 0);
  }

  function resumePending() { const p = store.get("pending", null); if (p) send(p, 0); }

  async function send(pending, attempt, waiting) {
    clearTimeout(recheck); recheck = null;
    if (retry) { clearTimeout(retry.timer); retry = null; }
    sending = true; if ($("submit")) $("submit").disabled = true;
    const offline = !navigator.onLine;
    if (!waiting) notice(offline ? t("queued") : attempt ? t("retrying") : t("sending"), offline ? "wait" : undefined);
    const woken = wakes;
    let res, body;
    try {
      res = await fetch(api + "/orders?lang=" + lang, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(pending)});
      body = await res.json().catch(() => null);
    } catch (err) {
      if (!navigator.onLine) { notice(t("queued"), "wait"); showOffline(true); }
      retryLater(pending, attempt + 1, woken !== wakes ? 0 : backoff(attempt));  // back online meanwhile: now
      return;
    }
    if (res.status >= 500 || res.status === 429) {
      notice(errorText(res, body) + " " + t("retrying"), "err", null, true);
      retryLater(pending, attempt + 1, Number(res.headers.get("Retry-After")) * 1000 || backoff(attempt));
      return;
    }
    reachable();
    if (res.status === 202) {
      // Through the relay: the order is in the restaurant's inbox, not yet accepted by its box. Asking again
      // with the same body is safe (same client_key): the answer turns into the order, or the box's refusal.
      notice(t("waiting"), "wait");
      recheck = setTimeout(() => send(pending, 0, true), 3000);
      return;
    }
    sending = false;
    if (res.ok) {
      // Lines added while this order was on its way stay in the cart for the next one.
      store.del("pending"); cart = cart.slice(pending.lines.length); badLine = null; saveCart();
      if (!cart.length) $("cart").close();
      notice(t("placed") + " " + t("ticket") + " " + body.ticket_no, "ok");
      orders[body.id] = body; renderOrders();
      return;
    }
    const code = body && body.error && body.error.code;
    if (code === "price_changed") {
      store.del("pending");  // nothing was written: the confirmed order is a new submission of the cart as it is
      const fresh = body.error.details.total_minor;
      notice(errorText(res, body), "err", {label: t("confirmNew") + " " + money(fresh), run: () => { notice(""); submit(fresh); }});
      await refreshMenu();
      if ($("cart").open) renderCart();
      return;
    }
    store.del("pending");  // refused for good: the next tap is a new submission
    const line = body && body.error && body.error.details && body.error.details.line;
    badLine = line ? line - 1 : null;
    notice(errorText(res, body), "err", null, true);  // stays until the diner changes the cart or orders again
    if (code === "sold_out" || code === "not_enough_stock" || code === "unavailable_now" || code === "unknown_item") await refreshMenu();
    if ($("cart").open) renderCart(); else if (badLine != null) { renderCart(); $("cart").showModal(); }
  }

  // The menu read again (after a refusal, a language switch, or coming back online); `withInfo`: the store and
  // table too (open now? taking orders?), both at once.
  // `fresh`: only the box's own answers count (true when both came); a kept copy leaves the page as it is.
  async function refreshMenu(withInfo, fresh) {
    const [m, i] = await Promise.all([getJSON("/menu", fresh).catch(() => null), withInfo ? getJSON("", fresh).catch(() => null) : null]);
    if (i) info = i;
    if (m) { menu = m; items = {}; for (const c of menu.categories) for (const it of c.items) items[it.id] = it; }
    if ((m || i) && info) render();
    if ($("offline")) $("offline").textContent = t("noNet");
    return Boolean(m && (i || !withInfo));
  }

  // The table's orders: read once when the page loads (the event stream's first snapshot only asks again when
  // it shows something the page does not have), and again after a change the events do not carry.
  // The first call is also where the page learns it came from the service worker's copy (data-tb-kept):
  // "offline" (the box did not answer: say so), "slow" (the box answered late: read the menu again now).
  function loadOrders() {
    if (!ordersLoad) {
      const kept = document.documentElement.dataset.tbKept;
      if (kept === "offline" || !navigator.onLine) showOffline(true);
      else if (kept === "slow") refreshMenu(true);
    }
    ordersLoad = (async () => {
      try {
        const visit = await getJSON("/orders");
        orders = {}; for (const o of visit.orders) orders[o.id] = o; renderOrders();
        ordersSeen = true; reachable();
      } catch (e) {
        if (!e.status) showOffline(true);  // the box cannot be reached
        // The worker's copy of a page whose code the box now refuses (re-keyed while the phone was away): the
        // box's own page says why and what to do (the worker drops its copy when it sees that answer).
        else if (document.documentElement.dataset.tbKept && (e.status === 403 || e.status === 410)) location.reload();
      }
    })();
    return ordersLoad;
  }
  function sameOrders(snap) {
    const list = snap && Array.isArray(snap.orders) ? snap.orders : null;
    if (!ordersSeen || !list || list.length !== Object.keys(orders).length) return false;
    return list.every((o) => orders[o.id] && orders[o.id].status === o.status && orders[o.id].total_minor === o.total_minor);
  }

  function listen() {
    if (!("EventSource" in window)) return;
    es = new EventSource(api + "/events?lang=" + lang);
    es.addEventListener("order", (e) => {
      const ev = JSON.parse(e.data);
      if (ev.client_key !== undefined) {  // the relay's shape: {event_id, type, client_key, order, error}
        const pending = store.get("pending", null);
        if (pending && pending.client_key === ev.client_key && recheck) send(pending, 0, true);  // answered: ask now
        else if (ev.order) { orders[ev.order.id] = ev.order; renderOrders(); }
        return;
      }
      const known = orders[ev.order_id];
      if (known) {
        known.status = ev.order_status; known.total_minor = ev.total_minor;
        if (ev.to === "cancelled") known.cancel_reason = ev.reason;
      }
      if (!known || ev.line_no) loadOrders(); else renderOrders();
    });
    es.addEventListener("snapshot", (e) => {
      let snap = null;
      try { snap = JSON.parse(e.data); } catch (err) { /* unreadable: read the orders */ }
      Promise.resolve(ordersLoad).then(() => { if (!sameOrders(snap)) loadOrders(); });
    });
    // Through the relay: the box refused a waiter or bill call it received after the page said "sent".
    es.addEventListener("request", (e) => {
      const ev = JSON.parse(e.data);
      if (ev.type === "refused" && ev.error) notice(ev.error.message, "err");
    });
  }

  async function request(kind) {
    try {
      const res = await fetch(api + "/requests?lang=" + lang, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({kind})});
      const body = await res.json().catch(() => null);
      // 202: through the relay, in the restaurant's inbox but not yet seen by its box: say no more than that
      const done = res.status === 202 ? t("requestQueued") : t(kind === "bill" ? "billSent" : "waiterSent");
      notice(res.ok ? done : errorText(res, body), res.ok ? "ok" : "err");
    } catch (e) { notice(t("notSent"), "err"); showOffline(!navigator.onLine); }  // not retried: the diner decides
  }

