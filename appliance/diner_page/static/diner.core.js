// Shared by the page's parts (diner.core.js, diner.net.js, diner.js): the server joins them, in that order,
// inside one function and puts the result into the page itself (appliance.diner_page), so the first view is
// one request. Each part can call the others' functions (function declarations are hoisted).
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
      table: "桌号", language: "语言", categories: "菜品分类", loading: "正在加载菜单…", noMatch: "没有找到相关菜品",
      from: "起", addOne: "加一份", removeOne: "减一份", chooseFor: "选规格", inCart: "已选 {n} 份",
      status: {submitted: "已提交", accepted: "已接单", preparing: "制作中", ready: "已做好", served: "已上菜", cancelled: "已取消"},
    },
    en: {
      search: "Search dishes", cart: "Cart", add: "Add to cart", submit: "Place order", total: "Total", items: "items",
      empty: "Your cart is empty", remove: "Remove", note: "Note (up to 140 characters)", qty: "Quantity", choose: "Choose",
      required: "required", upTo: "up to {n}", atLeast: "at least {n}", soldOut: "Sold out", notNow: "Not available now",
      waiter: "Call waiter", bill: "Bill", waiterSent: "A waiter is on the way", billSent: "The bill is on its way",
      requestQueued: "Sent to the restaurant",
      orders: "Your orders", ticket: "Ticket", sending: "Sending…", retrying: "The connection is weak; retrying. Your order is not lost…",
      placed: "Order placed!", waiting: "Order sent; waiting for the restaurant to confirm it…",
      offline: "The restaurant is offline: join the store Wi-Fi to order.", confirmNew: "Order at the new price", serviceCharge: "Service charge", close: "Close",
      allergens: "Allergens", runningTotal: "Table total",
      table: "Table", language: "Language", categories: "Categories", loading: "Loading the menu…", noMatch: "No dish matches",
      from: "from", addOne: "Add one", removeOne: "Remove one", chooseFor: "Choose options", inCart: "{n} in the cart",
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
      table: "テーブル", language: "言語", categories: "カテゴリー", loading: "メニューを読み込み中…", noMatch: "該当する料理はありません",
      from: "〜", addOne: "1つ追加", removeOne: "1つ減らす", chooseFor: "選択して追加", inCart: "カートに {n} 点",
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

  // short: whole amounts without their zero decimals (¥28, not ¥28.00), as menus print them.
  function money(minor, short) {
    const exp = menu ? menu.currency_exponent : 2, cur = menu ? menu.currency : "CNY";
    const sym = {CNY: "¥", JPY: "¥", USD: "$", EUR: "€", HKD: "HK$", GBP: "£"}[cur] || cur + " ";
    const whole = short && minor % Math.pow(10, exp) === 0;
    const v = (minor / Math.pow(10, exp)).toFixed(whole ? 0 : exp);
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

  function errorText(res, body) {
    return (body && body.error && body.error.message) || ("HTTP " + res.status);
  }

  // `fresh`: the box's own answer or an error, never the service worker's kept copy (sw.js marks that copy with
  // X-Tablebox-Offline when the network failed it).
  async function getJSON(path, fresh) {
    const res = await fetch(api + path + (path.includes("?") ? "&" : "?") + "lang=" + lang, {headers: {Accept: "application/json"}});
    if (fresh && res.headers.get("X-Tablebox-Offline")) throw new Error("kept copy");  // no status: not reached
    const body = await res.json().catch(() => null);
    if (!res.ok) { const err = new Error(errorText(res, body)); err.status = res.status; err.body = body; throw err; }
    return body;
  }

  // The page's base: "/" on the box, "/s/STORE/" on the relay. The language cookie lives there, so the server
  // embeds the diner's language in the page next time (and no other store's page sees it).
  const BASE = path.slice(0, path.lastIndexOf("/t/")) + "/";
  // The cookie first: it is what the server embedded the menu by (the two are set together; localStorage alone
  // is a choice made before the cookie existed).
  function savedLang() {
    const m = /(?:^|;\s*)tb_lang=([a-z]{2,3})(?:;|$)/.exec(document.cookie);
    if (m) return m[1];
    try { return localStorage.getItem("tb.lang"); } catch (e) { return null; /* private mode */ }
  }
  function saveLang(code) {
    try { localStorage.setItem("tb.lang", code); } catch (e) { /* private mode */ }
    document.cookie = "tb_lang=" + code + "; Path=" + BASE + "; Max-Age=31536000; SameSite=Lax";
  }
  function pickLang() {
    const offered = info.store.languages;
    const saved = savedLang();
    if (saved && offered.includes(saved)) return saved;
    for (const tag of navigator.languages || [navigator.language || ""]) {
      const code = tag.toLowerCase().slice(0, 2);
      if (offered.includes(code)) return code;
    }
    return offered[0];
  }
  function nextLang() {
    if (!info) return lang;  // before the store's languages are known there is nothing to switch to
    const offered = info.store.languages;
    return offered[(offered.indexOf(lang) + 1) % offered.length];
  }


  // What the server put into the page (store, table, menu in the phone's language): the first view needs no
  // other request. Absent or unreadable, the page asks the API as before.
  function readBoot() {
    const b = document.getElementById("tb-boot");
    if (!b) return null;
    try { return JSON.parse(b.textContent); } catch (e) { return null; }
  }
