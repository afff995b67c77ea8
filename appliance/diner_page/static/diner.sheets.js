// The diner's sheets: the dish sheet (choices, quantity, note), the cart and its bar, the table's orders, and the
// notices. Every text from the menu or a diner goes into the page with textContent, never as HTML.
  Object.assign(T.zh, {
    optional: "可选", none: "不选", noteLabel: "备注", noteTooLong: "备注最多 {n} 个字",
    less: "减一份", more: "加一份", orderNote: "整单备注", quote: ["“", "”"],
  });
  Object.assign(T.en, {
    optional: "optional", none: "None", noteLabel: "Note", noteTooLong: "A note holds at most {n} characters",
    less: "One less", more: "One more", orderNote: "Note for the order", quote: ["“", "”"],
  });
  Object.assign(T.ja, {
    optional: "任意", none: "なし", noteLabel: "メモ", noteTooLong: "メモは {n} 文字までです",
    less: "1つ減らす", more: "1つ増やす", orderNote: "注文メモ", quote: ["「", "」"],
  });

  // A note's length as the box counts it (appliance.contract.decode.clean_note: Python's len, so code points): an
  // emoji is one, where a textarea's maxLength would count two (UTF-16). A composed emoji (a family, a flag, a skin
  // tone) is several code points for both the page and the box, so the two always agree.
  const NOTE_MAX = 140;
  const chars = (s) => Array.from(s).length;
  const quoted = (s) => t("quote")[0] + s + t("quote")[1];

  // -- notices --------------------------------------------------------------------------------------------------
  // One notice at a time, at the top of the bottom bar (the page's bottom padding follows the bar, so nothing on
  // the page is ever out of reach under it), and inside the cart while the cart is open (a modal sheet). A success
  // goes away by itself; an error that needs the diner (an action, a line to change, `stay`) stays until acted on;
  // "sending", "retrying" and "waiting" stay until the next state replaces them.
  const NOTICE_MS = {ok: 4000, err: 8000};
  let lastNotice = null, noticeTimer = null;
  function noticeBox(n, msg) {
    n.replaceChildren(el("span", "text", msg.text));
    if (msg.action) {
      const b = el("button", "primary", msg.action.label); b.type = "button";
      b.onclick = msg.action.run; n.append(b);
    }
    if (msg.closable) {
      const x = el("button", "x", "×"); x.type = "button"; x.setAttribute("aria-label", t("close"));
      x.onclick = () => notice(""); n.append(x);
    }
    n.className = "msg " + (msg.kind || "");
  }
  function notice(text, kind, action, stay) {
    clearTimeout(noticeTimer); noticeTimer = null;
    kind = kind || "";
    // An error about a line of the cart (badLine) or during a submission still being retried stays.
    const staying = !!(action || stay || (kind === "err" && (badLine != null || sending)));
    lastNotice = text ? {text, kind, action, closable: staying && kind === "err" && !action, stay: staying} : null;
    const n = $("notice"), before = barHeight();
    if (lastNotice) noticeBox(n, lastNotice);
    n.classList.toggle("hidden", !text);
    const after = barHeight();
    keepRoom(after);
    if (after > before) window.scrollBy(0, after - before);
    const ms = lastNotice && !staying && NOTICE_MS[kind];
    if (ms) { const mine = lastNotice; noticeTimer = setTimeout(() => { if (lastNotice === mine) notice(""); }, ms); }
    if ($("cart").open) renderCart();
  }

  // The bar (notice, count and total, cart button) is fixed at the bottom: the page keeps room for it below its
  // last control (the room only grows: a notice going away never pulls the page down under a finger). When a
  // notice makes the bar taller the page moves up by as much, so what the diner was looking at stays in view
  // rather than going under it; when it goes away nothing moves.
  let room = 0;
  function barHeight() { return Math.ceil($("bar").getBoundingClientRect().height); }
  function keepRoom(h) {
    if (h > room) { room = h; document.body.style.paddingBottom = h + 16 + "px"; }
  }
  function fitBar() {
    const bar = $("bar"), n = $("notice");
    if (n.parentNode !== bar) bar.prepend(n);
    const fit = () => keepRoom(barHeight());
    if ("ResizeObserver" in window) new ResizeObserver(fit).observe(bar);
    else window.addEventListener("resize", fit);
    fit();
  }
  document.addEventListener("DOMContentLoaded", fitBar);

  // -- shared pieces --------------------------------------------------------------------------------------------
  function iconButton(text, label, onclick) {
    const b = el("button", "icon", text); b.type = "button"; b.setAttribute("aria-label", label); b.onclick = onclick;
    return b;
  }
  function sheetHead(title, dialogId, sub) {
    const head = el("div", "sheet-head"), words = el("div", "title");
    words.append(el("h3", null, title)); if (sub) words.append(sub);
    head.append(words, iconButton("×", t("close"), () => $(dialogId).close()));
    return head;
  }
  // The dish's name in the menu's first language, small under a translation (what a tourist shows the staff).
  function originalName(name, original) {
    if (!original || original === name || (info && info.store.languages[0] === lang)) return null;
    const o = el("div", "orig", original);
    if (info && info.store.languages.length) o.lang = info.store.languages[0];
    return o;
  }

  // -- the dish sheet -------------------------------------------------------------------------------------------
  // Choices scroll; the quantity and the add button stay at the bottom of the sheet, in reach however many
  // choices a dish has. A single choice that may be left out has a "None" choice to take it back.
  function openDish(item) {
    const form = $("dish-form"); form.replaceChildren();
    const line = {item_id: item.id, variant_id: item.variants.length ? item.variants[0].id : null, option_ids: [], quantity: 1, note: ""};
    for (const g of item.option_groups) if (g.min_choices > 0) {
      for (const o of g.options.filter((o) => !o.sold_out).slice(0, g.min_choices)) line.option_ids.push(o.id);
    }
    const body = el("div", "sheet-body"), foot = el("div", "sheet-foot");
    form.append(sheetHead(item.name, "dish", originalName(item.name, item.original_name)), body, foot);
    if (item.image) { const img = el("img", "photo"); img.alt = ""; img.src = item.image; body.append(img); }
    if (item.description) body.append(el("p", "desc", item.description));
    const price = el("strong");
    const addBtn = el("button", "primary grow"); addBtn.type = "button";
    const groups = [];
    const counter = el("span", "note-count"); counter.id = "dish-note-count";
    const update = () => {
      price.textContent = money(unitPrice(line) * line.quantity);
      let ok = true;
      for (const [g, fs] of groups) {
        const n = g.options.filter((o) => line.option_ids.includes(o.id)).length;
        const met = n >= g.min_choices && n <= g.max_choices;
        fs.classList.toggle("need", !met); ok = ok && met;
      }
      const used = chars(line.note), over = used > NOTE_MAX;
      counter.textContent = over ? t("noteTooLong").replace("{n}", NOTE_MAX) + " (" + used + "/" + NOTE_MAX + ")" : used + "/" + NOTE_MAX;
      counter.classList.toggle("over", over);
      addBtn.disabled = !ok || over;
    };
    if (item.variants.length) {
      const fs = el("fieldset"); fs.append(el("legend", null, t("choose")));
      for (const v of item.variants) {
        const lab = el("label", "choice"); const r = el("input"); r.type = "radio"; r.name = "variant"; r.value = v.id;
        r.checked = v.id === line.variant_id; r.onchange = () => { line.variant_id = v.id; update(); };
        lab.append(r, el("span", null, v.name), el("span", "delta", money(v.price_minor))); fs.append(lab);
      }
      body.append(fs);
    }
    for (const g of item.option_groups) {
      const fs = el("fieldset"); const lg = el("legend", null, g.name + " ");
      let rule;
      if (g.min_choices === 1 && g.max_choices === 1) rule = t("required");
      else if (g.min_choices) rule = t("atLeast").replace("{n}", g.min_choices) + ", " + t("upTo").replace("{n}", g.max_choices);
      else rule = t("optional") + (g.max_choices > 1 ? ", " + t("upTo").replace("{n}", g.max_choices) : "");
      lg.append(el("small", null, rule)); fs.append(lg);
      const single = g.max_choices === 1, mine = g.options.map((x) => x.id);
      if (single && g.min_choices === 0) {
        const lab = el("label", "choice none"); const c = el("input"); c.type = "radio"; c.name = "g" + g.id; c.value = "";
        c.checked = true;
        c.onchange = () => { line.option_ids = line.option_ids.filter((id) => !mine.includes(id)); update(); };
        lab.append(c, el("span", null, t("none"))); fs.append(lab);
      }
      for (const o of g.options) {
        const lab = el("label", "choice"); const c = el("input"); c.type = single ? "radio" : "checkbox"; c.name = "g" + g.id; c.value = o.id;
        c.disabled = o.sold_out; c.checked = line.option_ids.includes(o.id);
        c.onchange = () => {
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
      groups.push([g, fs]);
      body.append(fs);
    }
    const noteHead = el("div", "note-head");
    const noteLab = el("label", null, t("noteLabel")); const note = el("textarea"); note.id = "dish-note"; note.rows = 2;
    noteLab.htmlFor = "dish-note"; note.setAttribute("aria-describedby", counter.id);
    note.oninput = () => { line.note = note.value; update(); };
    noteHead.append(noteLab, counter);
    body.append(noteHead, note);
    const qty = el("div", "qty"); const out = el("output", null, "1");
    const minus = iconButton("−", "−1", () => { line.quantity = Math.max(1, line.quantity - 1); out.textContent = line.quantity; update(); });
    const plus = iconButton("+", "+1", () => { line.quantity = Math.min(99, line.quantity + 1); out.textContent = line.quantity; update(); });
    out.setAttribute("aria-label", t("qty"));
    qty.append(minus, out, plus);
    addBtn.append(el("span", null, t("add") + " "), price);
    addBtn.onclick = () => { line.option_ids.sort((a, b) => a - b); cart.push(line); saveCart(); $("dish").close(); };
    foot.append(qty, addBtn);
    update();
    $("dish").showModal();
    body.scrollTop = 0;
  }

  // A changed cart answers an error about the cart as it was (a line refused, a price that changed): it goes.
  let savedCart = JSON.stringify(cart);
  function saveCart() {
    const now = JSON.stringify(cart), changed = now !== savedCart;
    savedCart = now; store.set("cart", cart); renderBar(); renderBadges();
    if (changed && lastNotice && lastNotice.kind === "err" && lastNotice.stay && badLine == null && !sending) notice("");
    if ($("cart").open) renderCart();
  }

  function renderBar() {
    const n = cart.reduce((s, l) => s + l.quantity, 0);
    const sum = $("bar-sum"); sum.replaceChildren();
    if (n) sum.append(el("span", "items-n", n + " " + t("items")), " ", el("strong", "money", money(totals().total)));
    else sum.textContent = t("empty");
    $("open-cart").textContent = t("cart");
    $("open-cart").disabled = !n;
  }

  // What was chosen on a cart line: the variant and options (the note is shown on its own).
  function choices(line) {
    const item = items[line.item_id]; if (!item) return "";
    const parts = [];
    const v = item.variants.find((x) => x.id === line.variant_id); if (v) parts.push(v.name);
    for (const g of item.option_groups) for (const o of g.options) if (line.option_ids.includes(o.id)) parts.push(o.name);
    return parts.join(" · ");
  }

  // -- the cart -------------------------------------------------------------------------------------------------
  // Each line: the dish, its choices and note, its price, and − quantity + (− on the last one takes the line
  // out). The total and the order button stay at the bottom of the sheet.
  function renderCart() {
    const sheet = $("cart-body"), old = sheet.querySelector(".sheet-body"), scroll = old ? old.scrollTop : 0;
    const body = el("div", "sheet-body"), foot = el("div", "sheet-foot");
    sheet.replaceChildren(sheetHead(t("cart"), "cart"), body, foot);
    if (lastNotice) { const box = el("div"); box.setAttribute("role", "alert"); noticeBox(box, lastNotice); body.append(box); }
    const locked = sending ? store.get("pending", {lines: []}).lines.length : 0;
    cart.forEach((line, idx) => {
      const item = items[line.item_id], name = item ? item.name : "?";
      const div = el("div", "line" + (badLine === idx ? " bad" : ""));
      const main = el("div", "line-main");
      main.append(el("div", "name", name));
      const orig = item && originalName(item.name, item.original_name); if (orig) main.append(orig);
      const what = choices(line); if (what) main.append(el("div", "meta", what));
      if (line.note) main.append(el("div", "meta note", quoted(line.note)));
      const side = el("div", "line-side");
      side.append(el("div", "price", money(unitPrice(line) * line.quantity)));
      const step = el("div", "stepper");
      const last = line.quantity <= 1;
      const minus = iconButton("−", (last ? t("remove") : t("less")) + " " + name, () => {
        if (line.quantity > 1) { line.quantity--; if (badLine === idx) badLine = null; } else { cart.splice(idx, 1); badLine = null; }
        saveCart();
      });
      const plus = iconButton("+", t("more") + " " + name, () => { if (line.quantity < 99) { line.quantity++; saveCart(); } });
      minus.disabled = plus.disabled = idx < locked;
      plus.disabled = plus.disabled || line.quantity >= 99;
      const q = el("output", "qty-n", String(line.quantity)); q.setAttribute("aria-label", t("qty") + " " + name);
      step.append(minus, q, plus); side.append(step);
      div.append(main, side); body.append(div);
    });
    if (!cart.length) body.append(el("p", "empty", t("empty")));
    const tt = totals();
    const sums = el("div", "sums");
    if (tt.service) sums.append(el("div", "service", t("serviceCharge") + " " + money(tt.service)));
    const total = el("div", "total"); total.append(el("span", null, t("total")), el("strong", null, money(tt.total)));
    sums.append(total);
    const go = el("button", "primary grow", sending ? t("sending") : t("submit")); go.type = "button"; go.id = "submit";
    go.disabled = !cart.length || sending;
    go.onclick = () => submit(null);
    foot.append(sums, go);
    body.scrollTop = scroll;
  }

  // -- the table's orders ---------------------------------------------------------------------------------------
  // Each card: ticket and status, then every line as the kitchen got it (dish, the name in the menu's first
  // language under a translation, variant and options, note), and the order's total.
  function renderOrders() {
    const sec = $("orders"); const list = Object.values(orders).sort((a, b) => b.id - a.id);
    sec.classList.toggle("hidden", !list.length); sec.replaceChildren(el("h2", null, t("orders")));
    let total = 0;
    for (const o of list) {
      if (o.status !== "cancelled") total += o.total_minor;
      const div = el("div", "order"); div.dataset.order = o.id;
      const head = el("div", "order-head");
      head.append(el("span", "ticket", t("ticket") + " " + o.ticket_no), el("span", "status " + o.status, t("status")[o.status] || o.status));
      div.append(head);
      if (o.status === "cancelled" && o.cancel_reason) div.append(el("div", "reason", o.cancel_reason));
      const ul = el("ul", "olines");
      for (const l of o.lines || []) {
        const li = el("li", "oline" + (l.status === "voided" ? " out" : "")); li.dataset.line = l.line_no;
        const main = el("div", "line-main");
        main.append(el("div", "name", l.name + " × " + l.quantity));
        const known = items[l.item_id];
        const orig = originalName(l.name, l.original_name || (known && known.original_name)); if (orig) main.append(orig);
        const what = [l.variant, ...(l.options || []).map((x) => x.name)].filter(Boolean).join(" · ");
        if (what) main.append(el("div", "meta", what));
        if (l.note) main.append(el("div", "meta note", quoted(l.note)));
        li.append(main, el("div", "price", l.line_total_minor != null ? money(l.line_total_minor) : ""));
        ul.append(li);
      }
      div.append(ul);
      if (o.note) div.append(el("div", "meta note", t("orderNote") + ": " + quoted(o.note)));
      const sum = el("div", "order-total"); sum.append(el("span", null, t("total")), el("strong", null, money(o.total_minor)));
      div.append(sum);
      sec.append(div);
    }
    const all = el("p", "total"); all.append(el("span", null, t("runningTotal")), el("strong", null, money(total)));
    sec.append(all);
    $("to-orders").textContent = t("orders") + " (" + list.length + ")";
    $("to-orders").classList.toggle("hidden", !list.length);
  }
