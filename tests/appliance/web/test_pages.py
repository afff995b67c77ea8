"""The page a QR code opens: store, table and menu in the diner's language, text never treated as HTML."""

from __future__ import annotations


def test_the_page_shows_store_table_and_menu(client, token):
    r = client.get(f"/t/{token}", headers={"accept-language": "zh-CN"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "小笼天下 Dumpling House" in r.text and "<strong>A1</strong>" in r.text
    assert "担担面" in r.text and "¥28.00" in r.text
    assert "http://" not in r.text.replace('xmlns="http://', "")  # nothing fetched from elsewhere
    en = client.get(f"/t/{token}?lang=en")
    assert "Dan dan noodles" in en.text and "sold out" in en.text


def test_dish_names_are_text_not_html(client, token, db):
    with db:
        db.execute("""UPDATE items SET names = '{"zh": "<script>alert(1)</script>", "en": "x"}'"""
                   " WHERE key = 'mapo_tofu'")
    r = client.get(f"/t/{token}?lang=zh")
    assert "<script>alert(1)</script>" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text


def test_an_old_sticker_says_so_on_the_page(client, token):
    r = client.get(f"/t/{token[:-1]}{'b' if token[-1] != 'b' else 'c'}?lang=en")
    assert r.status_code == 403 and "not valid" in r.text
