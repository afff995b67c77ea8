// The diner's ordering page: header, the categories' rail, the dish rows with their + buttons and counts. No
// framework, no outside asset; every text from the menu or a diner goes into the page with textContent, never as
// HTML. Until the store and its menu are in, every control is disabled (the loading state cannot be tapped) and
// each box already has its final size (nothing shifts when the data arrives).
  let ready = false;

  async function load() {
    try {
      const boot = readBoot();
      if (boot && boot.info && boot.menu) {
        info = boot.info; lang = pickLang();
        menu = boot.lang === lang ? boot.menu : await getJSON("/menu");
      } else {
        info = await getJSON("");
        lang = pickLang();
        menu = await getJSON("/menu");
      }
      document.documentElement.lang = lang;
      // A language chosen before the cookie existed: the cookie follows, so the server embeds it next time.
      if (savedLang() === lang && !document.cookie.split("; ").includes("tb_lang=" + lang)) saveLang(lang);
    } catch (err) {
      notice(err.message, "err", null, !!err.status);  // refused (403, 410...): it stays, nothing else will come
      if (!err.status) setTimeout(load, 3000);  // box unreachable: keep trying
      return;
    }
    items = {};
    for (const c of menu.categories) for (const i of c.items) items[i.id] = i;
    ready = true;
    render();
    if (info.online === false) notice(t("offline"), "err", null, true);  // through the relay, with the box away
    resumePending();
    loadOrders();
    listen();
  }

  // The texts of the page's own controls, in the language known so far: shown (still disabled) while loading.
  function labelControls() {
    $("search").placeholder = t("search");
    $("search").setAttribute("aria-label", t("search"));
    $("waiter").textContent = t("waiter");
    $("bill").textContent = t("bill");
    $("cats").setAttribute("aria-label", t("categories"));
    const other = nextLang();
    const b = $("lang"); b.replaceChildren(el("span", "vh", t("language") + ": "), LANG_NAMES[other] || other.toUpperCase());
    b.classList.toggle("pre", other === lang);  // one language: nothing to switch to (the box keeps its size)
    for (const id of ["search", "waiter", "bill", "lang"]) $(id).disabled = !ready;
    for (const id of ["waiter", "bill"]) $(id).classList.remove("pre");
    if (!ready) {
      const h = $("store").querySelector(".vh"); if (h) h.textContent = t("loading");  // the heading says why it is grey
      $("open-cart").textContent = t("cart"); $("open-cart").classList.remove("pre"); $("open-cart").disabled = true;
      $("bar-sum").textContent = t("loading");
    }
  }

  // The menu is drawn in two steps so that a weak phone shows it sooner: the header, the whole rail and the first
  // categories (enough rows to fill the screen), then the mark the bench reads; the other categories follow a few at
  // a time, one frame after another, below what is on screen (nothing visible moves). Whatever needs the whole list
  // (search, a tap in the rail, the link to the orders) draws the rest at once first: drawAll().
  let drawing = null, drawnOnce = false;  // drawing: {queue: categories not drawn yet, none: "no dish matches"}
  function render() {
    $("store").textContent = info.store.name;
    document.title = info.store.name;
    $("table").textContent = info.table ? t("table") + " " + info.table.name : "";
    labelControls();
    const nav = $("cats"), main = $("menu");
    nav.replaceChildren(); main.replaceChildren();
    watchPhotos();
    const queue = menu.categories.map((c, ci) => {
      const a = el("a", null, c.name); a.href = "#c" + c.id; a.dataset.cat = c.id;
      a.onclick = (e) => { e.preventDefault(); jumpTo(c.id); };
      nav.append(a);
      return [c, ci];
    });
    const none = el("p", "none hidden", t("noMatch"));
    main.append(none);
    drawing = {queue, none};
    main.dataset.drawn = "some";
    // In two steps only on a page's first drawing: a reload or Back (the browser puts the diner back where they
    // were) and a redraw (another language, a changed menu, maybe half-way down the list) draw it all at once, so
    // the page is its full height and nobody is moved.
    const nav0 = performance.getEntriesByType ? performance.getEntriesByType("navigation")[0] : null;
    const steps = !drawnOnce && !(nav0 && (nav0.type === "reload" || nav0.type === "back_forward"));
    drawnOnce = true;
    let rows = 0;
    const screen = steps ? Math.ceil((window.innerHeight || 844) / 108) + 1 : Infinity;  // a row: 108 px or more
    while (queue.length && rows < screen) rows += drawCategory(queue.shift());
    $("main").removeAttribute("aria-busy");
    watchCategories();
    filter();
    renderBar();
    renderBadges();
    if (performance.mark) {
      performance.mark("tb-menu-rendered");  // read by bench/page.py and the tests: the first screen is built
      // ... and on screen: a task queued from the next frame's callback runs once that frame is painted
      requestAnimationFrame(() => setTimeout(() => performance.mark("tb-menu-painted"), 0));
    }
    if (queue.length) drawLater(drawing); else finishDrawing();
  }
  function drawCategory([c, ci]) {
    const sec = el("section"); sec.id = "c" + c.id; sec.dataset.cat = c.id;
    sec.setAttribute("aria-labelledby", "h" + c.id);
    const h = el("h2", null, c.name); h.id = "h" + c.id; sec.append(h);
    for (const i of c.items) sec.append(itemRow(i, ci));
    $("menu").insertBefore(sec, drawing.none);
    return c.items.length;
  }
  // The rest, after the first screen has been painted: about 6 ms of drawing per frame.
  function drawLater(job) {
    const next = () => (document.hidden ? setTimeout(step, 0) : requestAnimationFrame(() => setTimeout(step, 0)));
    const step = () => {
      if (drawing !== job || !job.queue.length) return;  // drawn already (drawAll) or a new render
      const start = performance.now();
      do drawCategory(job.queue.shift()); while (job.queue.length && performance.now() - start < 6);
      if (job.queue.length) next(); else finishDrawing();
      renderBadges();
    };
    next();
  }
  function drawAll() {
    if (!drawing || !drawing.queue.length) return;
    while (drawing.queue.length) drawCategory(drawing.queue.shift());
    finishDrawing();
    renderBadges();
  }
  function finishDrawing() { $("menu").dataset.drawn = "all"; }

  // Row photos are fetched when their row comes within about a screen of the visible part of the page (not the
  // 60 of 64 Chromium's loading="lazy" fetches on a slow line); until then the picture box shows its plain colour.
  let photos = null;
  function watchPhotos() {
    if (photos) photos.disconnect();
    photos = "IntersectionObserver" in window ? new IntersectionObserver((seen) => {
      for (const e of seen) if (e.isIntersecting) { photos.unobserve(e.target); showPhoto(e.target); }
    }, {rootMargin: "100% 0px 100% 0px"}) : null;
  }
  function showPhoto(img) { if (img.dataset.src) { img.src = img.dataset.src; delete img.dataset.src; } }

  // A choice the diner must make (a size, a required option group): + opens the dish sheet instead of adding.
  function needsChoice(i) { return i.variants.length > 1 || i.option_groups.some((g) => g.min_choices > 0); }

  // A drawn stand-in for a missing photo: the dish's first character (in the menu's own language) on a plate,
  // tinted by its category. CSS only: no image request.
  const HUES = [14, 200, 36, 150, 350, 265, 90, 28, 222, 320];
  function placeholder(i, ci) {
    const ph = el("span", "ph", Array.from((i.original_name || i.name).trim())[0] || "·");
    ph.setAttribute("aria-hidden", "true");
    ph.style.setProperty("--h", String(HUES[ci % HUES.length] + (i.id % 3) * 6));
    return ph;
  }

  function itemRow(i, ci) {
    const row = el("div", "item"); row.dataset.id = i.id;
    row.dataset.name = [i.name, i.original_name || "", i.description].join(" ").toLowerCase();
    const unavailable = i.sold_out || !i.available_now;
    const open = el("button", "open"); open.type = "button";
    const pic = el("span", "pic");
    if (i.image) {
      const img = el("img"); img.loading = "lazy"; img.alt = ""; img.width = img.height = 84; img.decoding = "async";
      img.onerror = () => img.replaceWith(placeholder(i, ci));  // a photo that does not come: the drawn one
      // The list-size copy (192 px square, made once by the box); a server that has none sends the photo itself.
      img.dataset.src = i.image + (i.image.includes("?") ? "&" : "?") + "w=192"; pic.append(img);
      if (photos) photos.observe(img); else showPhoto(img);
    } else pic.append(placeholder(i, ci));
    const txt = el("span", "txt");
    const name = el("span", "name", i.name);
    txt.append(name);
    if (i.original_name) { const o = el("span", "orig", i.original_name); o.lang = menu.languages[0] || "zh"; txt.append(o); }
    // Sold out or not served now: said where the + would be; the serving hours beside the name.
    if (!i.sold_out && !i.available_now && i.available_hours) name.append(el("span", "badge", i.available_hours));
    if (i.description) txt.append(el("span", "desc", i.description));
    if (i.allergens.length) txt.append(el("span", "allergens", t("allergens") + ": " + i.allergens.map((a) => (ALLERGENS[lang] || {})[a] || a).join(lang === "zh" ? "、" : ", ")));
    const price = el("span", "price");
    const from = i.variants.length > 1;
    if (from && lang === "en") price.append(el("small", "pre-from", t("from")));
    price.append(money(i.from_price_minor, true));
    if (from && lang !== "en") price.append(el("small", null, t("from")));
    txt.append(price);
    open.append(pic, txt);
    open.onclick = () => { if (!unavailable) openDish(i); };
    if (unavailable) open.setAttribute("aria-disabled", "true");
    const buy = el("div", "buy");
    if (unavailable) buy.append(el("span", "gone", i.sold_out ? t("soldOut") : t("notNow")));
    else {
      const choose = needsChoice(i);
      buy.classList.toggle("choose", choose);
      const sub = el("button", "sub hidden"); sub.type = "button"; sub.append(el("span", "vh", t("removeOne") + ": " + i.name));
      sub.onclick = () => removeOne(i);
      const count = el("span", "count hidden"); count.setAttribute("aria-hidden", "true");  // said by the + instead
      const add = el("button", "add"); add.type = "button";
      add.dataset.label = (choose ? t("chooseFor") : t("addOne")) + ": " + i.name;
      add.append(el("span", "vh", add.dataset.label));
      add.onclick = () => quickAdd(i);
      buy.append(sub, count, add);
    }
    row.append(open, buy);
    return row;
  }

  // Cart lines already on their way to the box (a pending submission) are not touched from the menu.
  function lockedLines() { const p = store.get("pending", null); return p ? p.lines.length : 0; }
  function plainLine(i) {
    const variant = i.variants.length ? i.variants[0].id : null, from = lockedLines();
    for (let n = cart.length - 1; n >= from; n--) {
      const l = cart[n];
      if (l.item_id === i.id && l.variant_id === variant && !l.option_ids.length && !l.note) return l;
    }
    return null;
  }

  function quickAdd(i) {
    if (!ready) return;
    if (needsChoice(i)) { openDish(i); return; }
    const line = plainLine(i);
    if (line) { if (line.quantity >= 99) return; line.quantity++; }
    else cart.push({item_id: i.id, variant_id: i.variants.length ? i.variants[0].id : null, option_ids: [], quantity: 1, note: ""});
    saveCart();
  }

  function removeOne(i) {
    const from = lockedLines();
    let n = cart.length - 1;
    while (n >= from && cart[n].item_id !== i.id) n--;
    if (n < from) return;
    if (cart[n].quantity > 1) cart[n].quantity--; else { cart.splice(n, 1); badLine = null; }
    saveCart();
  }

  // The cart changed: the counts shown on the menu follow (dish rows, categories).
  function renderBadges() {
    if (!ready) return;
    const per = {};
    for (const l of cart) per[l.item_id] = (per[l.item_id] || 0) + l.quantity;
    const from = lockedLines();
    for (const row of $("menu").querySelectorAll(".item")) {
      const id = Number(row.dataset.id), n = per[id] || 0, count = row.querySelector(".count");
      if (!count) continue;
      count.textContent = n; count.classList.toggle("hidden", !n);
      const add = row.querySelector(".add");
      add.firstChild.textContent = add.dataset.label + (n ? " (" + t("inCart").replace("{n}", n) + ")" : "");
      const sub = row.querySelector(".sub");
      const removable = cart.some((l, k) => k >= from && l.item_id === id);
      sub.classList.toggle("hidden", !n || row.querySelector(".buy").classList.contains("choose"));
      sub.disabled = !removable;
    }
    for (const a of $("cats").children) {
      const c = menu.categories.find((x) => String(x.id) === a.dataset.cat);
      const n = c ? c.items.reduce((s, i) => s + (per[i.id] || 0), 0) : 0;
      let badge = a.querySelector(".n");
      if (!n) { if (badge) badge.remove(); continue; }
      if (!badge) { badge = el("span", "n"); a.append(badge); }
      const shown = el("span", null, String(n)); shown.setAttribute("aria-hidden", "true");
      badge.replaceChildren(shown, el("span", "vh", " (" + t("inCart").replace("{n}", n) + ")"));
    }
  }

  // Tapping a category scrolls its first dish to the top (under the bar on narrow screens).
  function jumpTo(id) {
    drawAll();  // a category not drawn yet, and those after it: the page must be its full height to land right
    const sec = $("c" + id); if (!sec) return;
    const top = sec.getBoundingClientRect().top + window.scrollY - navHeight();
    window.scrollTo({top: Math.max(0, Math.round(top)), behavior: "auto"});
    jumped = {sec, y: window.scrollY};
    markCategory(sec);
  }
  function railMode() { return $("cats").offsetHeight > 60; }
  function navHeight() { return railMode() ? 0 : $("cats").offsetHeight; }
  function markCategory(current) {
    const nav = $("cats");
    for (const a of nav.children) {
      const on = !!current && a.dataset.cat === current.dataset.cat;
      if (on && !a.classList.contains("on")) {
        if (railMode()) { if (a.offsetTop < nav.scrollTop || a.offsetTop + a.offsetHeight > nav.scrollTop + nav.clientHeight) nav.scrollTo({top: a.offsetTop - 16}); }
        else nav.scrollTo({left: a.offsetLeft - 16, behavior: "smooth"});
      }
      a.classList.toggle("on", on);
      if (on) a.setAttribute("aria-current", "true"); else a.removeAttribute("aria-current");
    }
  }

  // The rail follows scrolling: the current category is the last one whose top has reached the top of the list.
  // One measurement per animation frame, however fast the diner scrolls.
  let watching = false, jumped = null;
  function watchCategories() {
    if (watching) { requestAnimationFrame(currentCategory); return; }
    watching = true;
    let queued = false;
    window.addEventListener("scroll", () => { if (!queued) { queued = true; requestAnimationFrame(() => { queued = false; currentCategory(); }); } }, {passive: true});
    window.addEventListener("resize", () => requestAnimationFrame(currentCategory), {passive: true});
    requestAnimationFrame(currentCategory);
  }
  function currentCategory() {
    // Just tapped in the rail: that category stays marked even where the page cannot scroll it to the top.
    if (jumped && Math.abs(window.scrollY - jumped.y) < 4) { markCategory(jumped.sec); return; }
    jumped = null;
    const edge = Math.max($("menu").getBoundingClientRect().top, navHeight()) + 8;
    let current = null;
    for (const sec of $("menu").querySelectorAll("section")) {
      if (sec.classList.contains("hidden")) continue;
      if (sec.getBoundingClientRect().top <= edge) current = sec; else break;
    }
    markCategory(current || $("menu").querySelector("section:not(.hidden)"));
  }

  function filter() {
    const q = $("search").value.trim().toLowerCase();
    if (q) drawAll();
    let any = false;
    for (const sec of $("menu").querySelectorAll("section")) {
      let shown = 0;
      for (const b of sec.querySelectorAll(".item")) { const hit = !q || b.dataset.name.includes(q); b.classList.toggle("hidden", !hit); shown += hit; }
      sec.classList.toggle("hidden", !shown);
      const a = $("cats").querySelector('a[data-cat="' + sec.dataset.cat + '"]');
      if (a) a.classList.toggle("hidden", !shown);
      any = any || !!shown;
    }
    const none = $("menu").querySelector(".none"); if (none) none.classList.toggle("hidden", any);
    if (ready) requestAnimationFrame(currentCategory);
  }

  // The rail ends where the bottom bar begins (the bar grows with a notice), so its last entry stays reachable.
  function railFollowsBar() {
    const fit = () => document.documentElement.style.setProperty("--bar", Math.ceil($("bar").getBoundingClientRect().height) + "px");
    if ("ResizeObserver" in window) new ResizeObserver(fit).observe($("bar")); else window.addEventListener("resize", fit);
    fit();
  }

  document.addEventListener("DOMContentLoaded", () => {
    labelControls();
    railFollowsBar();
    $("search").oninput = filter;
    $("lang").onclick = async () => {
      if (!ready) return;
      lang = nextLang();
      saveLang(lang); document.documentElement.lang = lang;
      await refreshMenu(); loadOrders();
    };
    $("open-cart").onclick = () => { if (!ready) return; renderCart(); $("cart").showModal(); };
    $("to-orders").onclick = () => { drawAll(); $("orders").scrollIntoView({behavior: "smooth"}); };
    $("waiter").onclick = () => { if (ready) request("waiter"); };
    $("bill").onclick = () => { if (ready) request("bill"); };
    load();
  });
