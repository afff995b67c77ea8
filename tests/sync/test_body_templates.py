"""Body templates (sync/adapters/body_templates.py): the JSON a shop's ERP gets, shaped in the settings file. If these
failed, an ERP would get a number as text or a list flattened into a string, or a settings file could make the box
evaluate something."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sync.adapters.body_templates import OpenValues, TemplateError, encode_body, render


def test_a_template_places_values_with_their_type_and_text_inside_text():
    values = {"total": "80.00", "total_minor": 8000, "total_number": Decimal("80.00"), "table": "A1", "note": None}
    template = {
        "a": "${total_minor}",
        "b": "${total_number}",
        "c": "Table $table, ${total} 元, 100$$",
        "d": "${note}",
        "e": [1, True, "plain"],
        "f": "note: ${note}.",
    }
    body = render(template, values)
    assert body == {
        "a": 8000,
        "b": Decimal("80.00"),
        "c": "Table A1, 80.00 元, 100$",
        "d": None,
        "e": [1, True, "plain"],
        "f": "note: .",
    }
    assert encode_body(body) == (
        '{"a":8000,"b":80.00,"c":"Table A1, 80.00 元, 100$","d":null,"e":[1,true,"plain"],"f":"note: ."}'.encode()
    )


@pytest.mark.parametrize(
    "template,complaint",
    [
        ({"x": "${order_ref.__class__}"}, r"\$\{order_ref.__class__\} is not a value"),
        ({"x": "${__builtins__}"}, r"\$\{__builtins__\} is not a value"),
        ({"x": "{{ cycler.__init__.__globals__.os.popen('id').read() }}"}, None),  # Jinja syntax: plain text here
        ({"x": "{0.__class__}"}, None),  # str.format syntax: plain text here
        ({"x": "$ {total}"}, "write \\$\\$ for a dollar sign"),
        ({"x": "${lines}, more"}, r"is a list: it can only stand alone"),
        ({"$eval": "total"}, r"keys starting with \$ are \$each, \$as and \$do only"),
        ({"x": {"$each": "lines", "$do": {}}}, "a list is written"),
        ({"x": {"$each": "total", "$as": "t", "$do": {}}}, "is not a list"),
    ],
)
def test_a_template_cannot_reach_past_the_values_it_is_given(template, complaint):
    """A settings file holds no code: a template places the adapter's values and nothing else."""
    values = {"order_ref": "a1b2", "total": "80.00", "lines": [{"code": "ND-DDM"}]}
    if complaint is None:
        assert render(template, values) == template  # written as it is, nothing evaluated
        return
    with pytest.raises(TemplateError, match=complaint):
        render(template, values)


def test_an_open_set_of_values_gives_null_for_a_name_it_lacks():
    """A payment's `extra` holds what the box put there: a template naming another key gets null, not an error."""
    values = {"extra": OpenValues({"change_minor": 200})}
    assert render({"c": "${extra.change_minor}", "r": "${extra.received_minor}", "all": "${extra}"}, values) == {
        "c": 200,
        "r": None,
        "all": {"change_minor": 200},
    }
    assert encode_body(render({"all": "${extra}"}, values)) == b'{"all":{"change_minor":200}}'


def test_each_renders_its_template_once_per_element_with_the_outer_values_in_reach():
    values = {"table": "A1", "lines": [{"code": "X", "qty": 2}, {"code": "Y", "qty": 1}]}
    template = {"$each": "lines", "$as": "l", "$do": {"sku": "${l.code}", "n": "${l.qty}", "at": "${table}"}}
    assert render({"items": template}, values) == {
        "items": [{"sku": "X", "n": 2, "at": "A1"}, {"sku": "Y", "n": 1, "at": "A1"}]
    }
    assert render({"items": template}, {**values, "lines": []}) == {"items": []}
    with pytest.raises(TemplateError, match="plain name"):
        render({"$each": "lines", "$as": "l.x", "$do": {}}, values)
