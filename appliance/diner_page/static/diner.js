// The diner's ordering page: menu, cart, submit (safe to retry), live order status. No framework, no
// outside asset; every text from the menu or a diner goes into the page with textContent, never as HTML.
"use strict";
(function () {
  // The page is /t/TOKEN on the box, /s/STORE/t/TOKEN on the relay: the API is beside it either way.
  const path = location.pathname, token = path.split("/").filter(Boolean).pop();
  const api = path.slice(0, path.lastIndexOf("/t/")) + "/api/v1/tables/" + encodeURIComponent(token);
  const KEY = "tb." + token + ".";
  const T = {
    zh: {
      search: "搜索菜品", cart: "购物车", add: "加入购物车", submit: "提交订单", total: "合计", items: "份",
      empty: "购物车是空的", remove: "删除", note: "备注（最多140字）", qty: "数量", choose: "请选择",
      required: "必选", upTo: "最多选 {n} 项", atLeast: "至少选 {n} 项", soldOut: "售罄", notNow: "暂不供应",
      waiter: "呼叫服务员", bill: "结账", waiterSent: "已通知服务员", billSent: "已请求结账", requestQueued: "已发送给餐厅",
      orders: "本桌订单", ticket: "单号", sending: "正在提交…", retrying: "网络不稳定，正在重试，订单没有丢失…",
      placed: "下单成功！", waiting: "订单已发出，正在等待餐厅确认…", offline: "餐厅暂时无法通过网络接单：请连接店内 Wi-Fi 点餐。",
      confirmNew: "按新价格提交", serviceCharge: "服务费", close: "关闭",
      allergens: "过敏原", runningTotal: "本桌合计",
      status: {submitted: "已提交", accepted: "已接单", preparing: "制作中", ready: "已做好", served: "已上菜", cancelled: "已取消"},
    },
    en: {
      search: "Search dishes", cart: "Cart", add: "Add to cart", submit: "Place order", total: "Total", items: "items",
      empty: "Your cart is empty", remove: "Remove", note: "Note (up to 140 characters)", qty: "Quantity", choose: "Choose",
      required: "required", upTo: "up to {n}", atLeast: "at least {n}", soldOut: "Sold out", notNow: "Not available now",
      waiter: "Call the waiter", bill: "Ask for the bill", waiterSent: "A waiter is on the way", billSent: "The bill is on its way",
      requestQueued: "Sent to the restaurant",
      orders: "Your orders", ticket: "Ticket", sending: "Sending…", retrying: "The connection is weak; retrying. Your order is not lost…",
      placed: "Order placed!", waiting: "Order sent; waiting for the restaurant to confirm it…",
      offline: "The restaurant is offline: join the store Wi-Fi to order.", confirmNew: "Order at the new price", serviceCharge: "Service charge", close: "Close",
      allergens: "Allergens", runningTotal: "Table total",
      status: {submitted: "Submitted", accepted: "Accepted", preparing: "Being prepared", ready: "Ready", served: "Served", cancelled: "Cancelled"},
    },
    ja: {
      search: "料理を検索", cart: "カート", add: "カートに入れる", submit: "注文する", total: "合計", items: "点",
      empty: "カートは空です", remove: "削除", note: "メモ（140文字まで）", qty: "数量", choose: "選択してください",
      required: "必須", upTo: "{n}つまで", atLeast: "{n}つ以上", soldOut: "売り切れ", notNow: "現在提供していません",
      waiter: "店員を呼ぶ", bill: "お会計", waiterSent: "店員が参ります", billSent: "お会計をお持ちします", requestQueued: "お店に送信しました",
      orders: "ご注文", ticket: "番号", sending: "送信中…", retrying: "接続が不安定です。再送信しています。注文は失われていません…",
      placed: "ご注文を承りました！", waiting: "注文を送信しました。お店の確認を待っています…",
      offline: "お店は現在オフラインです。店内の Wi-Fi に接続して注文してください。", confirmNew: "新しい価格で注文", serviceCharge: "サービス料", close: "閉じる",
      allergens: "アレルゲン", runningTotal: "テーブル合計",
      status: {submitted: "送信済み", accepted: "受付済み", preparing: "調理中", ready: "できあがり", served: "提供済み", cancelled: "キャンセル"},
    },
  };
  const LANG_NAMES = {zh: "中文", en: "EN", ja: "日本語"};
  const ALLERGENS = {
    zh: {gluten: "麸质", crustaceans: "甲壳类", eggs: "蛋", fish: "鱼", peanuts: "花生", soybeans: "大豆", milk: "乳",
         nuts: "坚果", celery: "芹菜", mustard: "芥末", sesame: "芝麻", sulphites: "亚硫酸盐", lupin: "羽扇豆", molluscs: "软体动物"},
  };
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; };
  const store = {get: (k, d) => { try { const v = localStorage.getItem(KEY + k); return v == null ? d : JSON.parse(v); } catch (e) { return d; } },
                 set: (k, v) => { try { localStorage.setItem(KEY + k, JSON.stringify(v)); } catch (e) { /* private mode */ } },
                 del: (k) => { try { localStorage.removeItem(KEY + k); } catch (e) { /* ignore */ } }};

  let info = null, menu = null, lang = null, items = {}, cart = store.get("cart", []), badLine = null;
  let orders = {}, sending = false, recheck = null;
  const t = (k) => (T[lang] || T.en)[k];
  // Chinese where the phone is Chinese, English otherwise, until the store's languages are known.
  lang = (navigator.language || "zh").toLowerCase().startsWith("zh") ? "zh" : "en";

  function money(minor) {
    const exp = menu ? menu.currency_exponent : 2, cur = menu ? menu.currency : "CNY";
    const sym = {CNY: "¥", JPY: "¥", USD: "$", EUR: "€", HKD: "HK$", GBP: "£"}[cur] || cur + " ";
    const v = (minor / Math.pow(10, exp)).toFixed(exp);
    return sym + v.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }
  function halfUp(n, d) { return Math.floor((2 * n + d) / (2 * d)); }
  function unitPrice(line) {
    const item = items[line.item_id]; if (!item) return 0;
    let base = item.price_minor;
    if (item.variants.length) { const v = item.variants.find((x) => x.id === line.variant_id); base = v ? v.price_minor : 0; }
    let delta = 0;
    for (const g of item.option_groups) for (const o of g.options) if (line.option_ids.includes(o.id)) delta += o.price_delta_minor;
    return base + delta;
  }
  function totals() {
    const subtotal = cart.reduce((s, l) => s + unitPrice(l) * l.quantity, 0);
    const service = halfUp(subtotal * (menu ? menu.service_charge_bp : 0), 10000);
    return {subtotal, service, total: subtotal + service};
  }

  // The latest message; shown over the menu, and inside the cart while the cart is open (a modal sheet).
  let lastNotice = null;
  function noticeBox(n, msg) {
    n.replaceChildren(el("span", null, msg.text));
    if (msg.action) {
      const b = el("button", "primary", msg.action.label); b.type = "button"; b.style.marginLeft = ".6em";
      b.onclick = msg.action.run; n.append(b);
    }
    n.className = "msg " + (msg.kind || "");
  }
  function notice(text, kind, action) {
    lastNotice = text ? {text, kind, action} : null;
    const n = $("notice");
    if (lastNotice) noticeBox(n, lastNotice);
    n.classList.toggle("hidden", !text);
    if ($("cart").open) renderCart();
  }
  function errorText(res, body) {
    return (body && body.error && body.error.message) || ("HTTP " + res.status);
  }

  async function getJSON(path) {
    const res = await fetch(api + path + (path.includes("?") ? "&" : "?") + "lang=" + lang, {headers: {Accept: "application/json"}});
    const body = await res.json().catch(() => null);
    if (!res.ok) { const err = new Error(errorText(res, body)); err.status = res.status; err.body = body; throw err; }
    return body;
  }

  function pickLang() {
    const offered = info.store.languages;
    const saved = localStorage.getItem("tb.lang");
    if (saved && offered.includes(saved)) return saved;
    for (const tag of navigator.languages || [navigator.language || ""]) {
      const code = tag.toLowerCase().slice(0, 2);
      if (offered.includes(code)) return code;
    }
    return offered[0];
  }
  function nextLang() {
    const offered = info.store.languages;
    return offered[(offered.indexOf(lang) + 1) % offered.length];
  }

  async function load() {
    try {
      info = await getJSON("");
      lang = pickLang();
      document.documentElement.lang = lang;
      menu = await getJSON("/menu");
    } catch (err) {
      notice(err.message, "err");
      if (!err.status) setTimeout(load, 3000);  // box unreachable: keep trying
      return;
    }
    items = {};
    for (const c of menu.categories) for (const i of c.items) items[i.id] = i;
    render();
    if (info.online === false) notice(t("offline"), "err");  // through the relay, with the box away
    resumePending();
    loadOrders();
    listen();
  }

  function render() {
    $("store").textContent = info.store.name;
    document.title = info.store.name;
    $("table").textContent = info.table ? (lang === "zh" ? "桌号 " : "Table ") + info.table.name : "";
    const other = nextLang();
    $("lang").textContent = LANG_NAMES[other] || other.toUpperCase();
    $("lang").classList.toggle("hidden", other === lang);
    $("search").placeholder = t("search");
    $("search").setAttribute("aria-label", t("search"));
    $("waiter").textContent = t("waiter");
    $("bill").textContent = t("bill");
    const nav = $("cats"), main = $("menu");
    nav.replaceChildren(); main.replaceChildren();
    for (const c of menu.categories) {
      const a = el("a", null, c.name); a.href = "#c" + c.id; nav.append(a);
      const sec = el("section"); sec.id = "c" + c.id; sec.dataset.cat = c.id;
      sec.append(el("h2", null, c.name));
      for (const i of c.items) sec.append(itemRow(i));
      main.append(sec);
    }
    watchCategories();
    filter();
    renderBar();
    if (performance.mark) performance.mark("tb-menu-rendered");  // read by bench/page.py
  }

  function itemRow(i) {
    const b = el("button", "item"); b.type = "button"; b.dataset.id = i.id; b.dataset.name = (i.name + " " + i.description).toLowerCase();
    const unavailable = i.sold_out || !i.available_now;
    if (unavailable) { b.classList.add("out"); b.setAttribute("aria-disabled", "true"); }
    if (i.image) { const img = el("img"); img.loading = "lazy"; img.alt = ""; img.src = i.image; b.append(img); }
    const txt = el("span", "txt");
    const name = el("div", "name", i.name);
    if (i.sold_out) name.append(el("span", "badge", t("soldOut")));
    else if (!i.available_now) name.append(el("span", "badge", t("notNow") + (i.available_hours ? " " + i.available_hours : "")));
    txt.append(name);
    if (i.description) txt.append(el("div", "desc", i.description));
    if (i.allergens.length) txt.append(el("div", "allergens", t("allergens") + ": " + i.allergens.map((a) => (ALLERGENS[lang] || {})[a] || a).join(lang === "zh" ? "、" : ", ")));
    b.append(txt, el("span", "price", money(i.from_price_minor) + (i.variants.length > 1 ? "+" : "")));
    b.onclick = () => { if (!unavailable) openDish(i); };
    return b;
  }

  // The category bar follows scrolling: the current category is the last one whose heading has passed
  // under the bar. One measurement per animation frame, however fast the diner scrolls.
  let watching = false;
  function watchCategories() {
    if (watching) return;
    watching = true;
    let queued = false;
    const update = () => {
      queued = false;
      const nav = $("cats"), edge = nav.getBoundingClientRect().bottom + 8;
      let current = null;
      for (const sec of $("menu").children) {
        if (sec.classList.contains("hidden")) continue;
        if (sec.getBoundingClientRect().top <= edge) current = sec; else break;
      }
      current = current || $("menu").firstElementChild;
      for (const a of nav.children) {
        const on = current && a.getAttribute("href") === "#" + current.id;
        if (on && !a.classList.contains("on")) nav.scrollTo({left: a.offsetLeft - 16, behavior: "smooth"});
        a.classList.toggle("on", !!on);
      }
    };
    window.addEventListener("scroll", () => { if (!queued) { queued = true; requestAnimationFrame(update); } }, {passive: true});
    requestAnimationFrame(update);
  }

  function filter() {
    const q = $("search").value.trim().toLowerCase();
    for (const sec of $("menu").children) {
      let shown = 0;
      for (const b of sec.querySelectorAll(".item")) { const hit = !q || b.dataset.name.includes(q); b.classList.toggle("hidden", !hit); shown += hit; }
      sec.classList.toggle("hidden", !shown);
    }
  }

  function openDish(item) {
    const form = $("dish-form"); form.replaceChildren();
    const line = {item_id: item.id, variant_id: item.variants.length ? item.variants[0].id : null, option_ids: [], quantity: 1, note: ""};
    for (const g of item.option_groups) if (g.min_choices > 0) {
      for (const o of g.options.filter((o) => !o.sold_out).slice(0, g.min_choices)) line.option_ids.push(o.id);
    }
    form.append(el("h3", null, item.name));
    if (item.description) form.append(el("p", "desc", item.description));
    const price = el("strong");
    const addBtn = el("button", "primary grow"); addBtn.type = "button";
    const update = () => {
      price.textContent = money(unitPrice(line) * line.quantity);
      const ok = item.option_groups.every((g) => { const n = g.options.filter((o) => line.option_ids.includes(o.id)).length; return n >= g.min_choices && n <= g.max_choices; });
      addBtn.disabled = !ok;
    };
    if (item.variants.length) {
      const fs = el("fieldset"); fs.append(el("legend", null, t("choose")));
      for (const v of item.variants) {
        const lab = el("label", "choice"); const r = el("input"); r.type = "radio"; r.name = "variant"; r.value = v.id;
        r.checked = v.id === line.variant_id; r.onchange = () => { line.variant_id = v.id; update(); };
        lab.append(r, el("span", null, v.name), el("span", "delta", money(v.price_minor))); fs.append(lab);
      }
      form.append(fs);
    }
    for (const g of item.option_groups) {
      const fs = el("fieldset"); const lg = el("legend", null, g.name + " ");
      const rule = g.min_choices === 1 && g.max_choices === 1 ? t("required") : (g.min_choices ? t("atLeast").replace("{n}", g.min_choices) + ", " : "") + t("upTo").replace("{n}", g.max_choices);
      lg.append(el("small", null, rule)); fs.append(lg);
      const single = g.max_choices === 1;
      for (const o of g.options) {
        const lab = el("label", "choice"); const c = el("input"); c.type = single ? "radio" : "checkbox"; c.name = "g" + g.id; c.value = o.id;
        c.disabled = o.sold_out; c.checked = line.option_ids.includes(o.id);
        c.onchange = () => {
          const mine = g.options.map((x) => x.id);
          if (single) line.option_ids = line.option_ids.filter((id) => !mine.includes(id));
          if (c.checked) {
            const chosen = line.option_ids.filter((id) => mine.includes(id));
            if (!single && chosen.length >= g.max_choices) { c.checked = false; return; }
            line.option_ids.push(o.id);
          } else line.option_ids = line.option_ids.filter((id) => id !== o.id);
          update();
        };
        lab.append(c, el("span", null, o.name + (o.sold_out ? " (" + t("soldOut") + ")" : "")));
        if (o.price_delta_minor) lab.append(el("span", "delta", "+" + money(o.price_delta_minor)));
        fs.append(lab);
      }
      form.append(fs);
    }
    const qty = el("div", "qty"); const minus = el("button", null, "−"), plus = el("button", null, "+"), out = el("output", null, "1");
    minus.type = plus.type = "button"; minus.setAttribute("aria-label", "−1"); plus.setAttribute("aria-label", "+1");
    minus.onclick = () => { line.quantity = Math.max(1, line.quantity - 1); out.textContent = line.quantity; update(); };
    plus.onclick = () => { line.quantity = Math.min(99, line.quantity + 1); out.textContent = line.quantity; update(); };
    qty.append(el("span", null, t("qty")), minus, out, plus);
    form.append(qty);
    const noteLab = el("label", null, t("note")); const note = el("textarea"); note.maxLength = 140; note.id = "dish-note";
    noteLab.htmlFor = "dish-note"; note.oninput = () => { line.note = note.value; };
    form.append(el("div"), noteLab, note);
    const row = el("div", "row"); const close = el("button", null, t("close")); close.type = "button"; close.onclick = () => $("dish").close();
    addBtn.append(el("span", null, t("add") + " "), price);
    addBtn.onclick = () => { line.option_ids.sort((a, b) => a - b); cart.push(line); saveCart(); $("dish").close(); };
    row.append(close, addBtn); form.append(row);
    update();
    $("dish").showModal();
  }

  function saveCart() { store.set("cart", cart); renderBar(); if ($("cart").open) renderCart(); }

  function renderBar() {
    const n = cart.reduce((s, l) => s + l.quantity, 0);
    $("bar-sum").textContent = n ? n + " " + t("items") + " · " + money(totals().total) : t("empty");
    $("open-cart").textContent = t("cart");
    $("open-cart").disabled = !n;
  }

  function describe(line) {
    const item = items[line.item_id]; if (!item) return "";
    const parts = [];
    const v = item.variants.find((x) => x.id === line.variant_id); if (v) parts.push(v.name);
    for (const g of item.option_groups) for (const o of g.options) if (line.option_ids.includes(o.id)) parts.push(o.name);
    if (line.note) parts.push("“" + line.note + "”");
    return parts.join(" · ");
  }

  function renderCart() {
    const body = $("cart-body"); body.replaceChildren(el("h3", null, t("cart")));
    if (lastNotice) { const box = el("div"); box.setAttribute("role", "alert"); noticeBox(box, lastNotice); body.append(box); }
    cart.forEach((line, idx) => {
      const item = items[line.item_id];
      const div = el("div", "line" + (badLine === idx ? " bad" : ""));
      div.append(el("div", "name", (item ? item.name : "?") + " × " + line.quantity + "  " + money(unitPrice(line) * line.quantity)));
      div.append(el("div", "meta", describe(line)));
      const row = el("div", "row");
      const minus = el("button", null, "−"), plus = el("button", null, "+"), rm = el("button", null, t("remove"));
      minus.type = plus.type = rm.type = "button";
      minus.disabled = plus.disabled = rm.disabled = sending && idx < (store.get("pending", {lines: []}).lines.length);
      minus.onclick = () => { if (line.quantity > 1) { line.quantity--; saveCart(); } };
      plus.onclick = () => { if (line.quantity < 99) { line.quantity++; saveCart(); } };
      rm.onclick = () => { cart.splice(idx, 1); badLine = null; saveCart(); };
      row.append(minus, plus, rm); div.append(row); body.append(div);
    });
    const tt = totals();
    if (tt.service) body.append(el("p", null, t("serviceCharge") + " " + money(tt.service)));
    body.append(el("p", "total", t("total") + " " + money(tt.total)));
    const row = el("div", "row"); const close = el("button", null, t("close")); close.type = "button"; close.onclick = () => $("cart").close();
    const go = el("button", "primary grow", t("submit")); go.type = "button"; go.id = "submit"; go.disabled = !cart.length || sending;
    go.onclick = () => submit(null);
    row.append(close, go); body.append(row);
  }

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
    sending = true; if ($("submit")) $("submit").disabled = true;
    if (!waiting) notice(attempt ? t("retrying") : t("sending"));
    let res, body;
    try {
      res = await fetch(api + "/orders?lang=" + lang, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(pending)});
      body = await res.json().catch(() => null);
    } catch (err) {
      setTimeout(() => send(pending, attempt + 1), Math.min(30000, 1000 * Math.pow(2, attempt)));
      return;
    }
    if (res.status >= 500 || res.status === 429) {
      notice(errorText(res, body) + " " + t("retrying"), "err");
      const wait = Number(res.headers.get("Retry-After")) * 1000 || Math.min(30000, 1000 * Math.pow(2, attempt));
      setTimeout(() => send(pending, attempt + 1), wait);
      return;
    }
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
    notice(errorText(res, body), "err");
    if (code === "sold_out" || code === "not_enough_stock" || code === "unavailable_now" || code === "unknown_item") await refreshMenu();
    if ($("cart").open) renderCart(); else if (badLine != null) { renderCart(); $("cart").showModal(); }
  }

  async function refreshMenu() {
    try { menu = await getJSON("/menu"); items = {}; for (const c of menu.categories) for (const i of c.items) items[i.id] = i; render(); } catch (e) { /* keep the old one */ }
  }

  async function loadOrders() {
    try {
      const visit = await getJSON("/orders");
      orders = {}; for (const o of visit.orders) orders[o.id] = o; renderOrders();
    } catch (e) { /* shown by the next action */ }
  }

  function renderOrders() {
    const sec = $("orders"); const list = Object.values(orders).sort((a, b) => b.id - a.id);
    sec.classList.toggle("hidden", !list.length); sec.replaceChildren(el("h2", null, t("orders")));
    let total = 0;
    for (const o of list) {
      if (o.status !== "cancelled") total += o.total_minor;
      const div = el("div", "order"); div.dataset.order = o.id;
      const head = el("div"); head.append(el("span", null, t("ticket") + " " + o.ticket_no + " · "), el("span", "status " + o.status, t("status")[o.status] || o.status));
      div.append(head);
      if (o.status === "cancelled" && o.cancel_reason) div.append(el("div", "reason", o.cancel_reason));
      for (const l of o.lines || []) div.append(el("div", "meta" + (l.status === "voided" ? " out" : ""), l.name + (l.variant ? " (" + l.variant + ")" : "") + " × " + l.quantity));
      div.append(el("div", null, money(o.total_minor)));
      sec.append(div);
    }
    sec.append(el("p", "total", t("runningTotal") + " " + money(total)));
    $("to-orders").textContent = t("orders") + " (" + list.length + ")";
    $("to-orders").classList.toggle("hidden", !list.length);
  }

  function listen() {
    if (!("EventSource" in window)) return;
    const es = new EventSource(api + "/events?lang=" + lang);
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
    es.addEventListener("snapshot", () => loadOrders());
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
    } catch (e) { notice(t("retrying"), "err"); }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("search").oninput = filter;
    $("lang").onclick = async () => {
      lang = nextLang();
      localStorage.setItem("tb.lang", lang); document.documentElement.lang = lang;
      await refreshMenu(); loadOrders();
    };
    $("open-cart").onclick = () => { renderCart(); $("cart").showModal(); };
    $("to-orders").onclick = () => $("orders").scrollIntoView({behavior: "smooth"});
    $("waiter").onclick = () => request("waiter");
    $("bill").onclick = () => request("bill");
    renderBar();
    load();
  });
})();
