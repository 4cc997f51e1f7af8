"""The JSON Patch of a response turns the Pod into inject's output, by an independent
RFC 6902 implementation (jsonpatch)."""

import jsonpatch
from hypothesis import given
from hypothesis import strategies as st

from watcher.webhook.patch import diff, pointer

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b/c", "d~e", "name", ""]), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON, JSON)
def test_the_patch_turns_old_into_new(old: object, new: object) -> None:
    document = {"root": old}
    patched = jsonpatch.apply_patch(document, diff(document, {"root": new}))
    assert patched == {"root": new}
    assert [type(v) for v in _leaves(patched)] == [type(v) for v in _leaves({"root": new})]


def _leaves(node: object) -> list[object]:
    if isinstance(node, dict):
        return [leaf for key in sorted(node) for leaf in _leaves(node[key])]
    if isinstance(node, list):
        return [leaf for item in node for leaf in _leaves(item)]
    return [node]


def test_false_is_not_zero() -> None:
    assert diff({"a": 0}, {"a": False}) == [{"op": "replace", "path": "/a", "value": False}]


def test_pointers_escape_slash_and_tilde() -> None:
    assert pointer("/metadata/annotations", "pod-watcher.io/inject") == (
        "/metadata/annotations/pod-watcher.io~1inject"
    )
    assert pointer("", "a~b") == "/a~0b"


def test_a_container_of_another_name_is_replaced_whole() -> None:
    old = {"c": [{"name": "x", "image": "i"}]}
    new = {"c": [{"name": "y", "image": "i"}]}
    assert diff(old, new) == [{"op": "replace", "path": "/c/0", "value": new["c"][0]}]
