"""Which image tags are immutable, and what a push may do to the tags already in a registry."""

from __future__ import annotations

from tasks.core import image_tags
from tasks.core.config_images import ImageTags

RULES = image_tags.TagRules(ImageTags().always, ImageTags().release, ImageTags().release_default_python, ImageTags().dev)
SHA = "dd51d1d0e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1"
OURS = "a" * 64


def scheme(version: str, python: str = "3.12", flavor: str = "base") -> dict[str, bool]:
    return image_tags.tag_scheme(RULES, version, python, flavor, "3.12", SHA)


def there(version: str | None, input_hash: str | None = "b" * 64, platforms: tuple[str, ...] = ()) -> image_tags.Pointed:
    return image_tags.Pointed("sha256:" + "c" * 64, input_hash, version, platforms)


def test_full_version_tags_are_immutable_and_the_others_float() -> None:
    assert scheme("3.8.3") == {"3.8.3-python3.12": False, "3.8-python3.12": True, "3-python3.12": True,
                               "3-latest": True}
    assert scheme("3.8.3+acme.72", flavor="kubernetes") == {
        "3.8.3-acme.72-python3.12-kubernetes": False, "3.8-python3.12-kubernetes": True,
        "3-python3.12-kubernetes": True, "3-latest-kubernetes": True}
    assert scheme("3.8.3+72.gdd51d1d", python="3.11") == {"3.8.3-72.gdd51d1d-python3.11": False,
                                                          "sha-dd51d1d-python3.11": False}


def test_scheme_keeps_the_order_of_tags_for() -> None:
    for version in ("3.8.3", "3.9.0rc1", "3.9.0.dev2"):
        assert tuple(scheme(version)) == image_tags.tags_for(RULES, version, "3.12", "base", "3.12", SHA)


def test_a_template_that_names_no_build_floats_and_an_immutable_one_wins() -> None:
    rules = image_tags.TagRules(("{version}-python{python}", "python{python}"), ("{version}-python{python}",), (), ())
    assert image_tags.tag_scheme(rules, "2.0.0", "3.12", "base", "3.12", SHA) == {"2.0.0-python3.12": False,
                                                                                  "python3.12": True}
    assert image_tags.names_the_build("sha-{sha7}") and not image_tags.names_the_build("{minor}-latest")


def test_versions_compare_by_pep_440() -> None:
    assert image_tags.is_newer("3.8.4", "3.8.3")
    assert image_tags.is_newer("3.10.0", "3.9.9")
    assert image_tags.is_newer("3.8.3+acme.2", "3.8.3+acme.1")
    assert image_tags.is_newer("3.8.3", "3.8.3rc1")
    assert not image_tags.is_newer("3.8.3", "3.8.3")
    assert not image_tags.is_newer("3.8.2", "3.8.3")
    assert not image_tags.is_newer(None, "3.8.3") and not image_tags.is_newer("not a version", "3.8.3")


def test_an_immutable_tag_is_pushed_when_new_or_the_same_and_refused_otherwise() -> None:
    assert image_tags.tag_decision(False, None, OURS, "3.8.3") == "push"
    assert image_tags.tag_decision(False, there("3.8.3", OURS), OURS, "3.8.3") == "push"
    assert image_tags.tag_decision(False, there("3.8.3"), OURS, "3.8.3") == "refuse"
    assert image_tags.tag_decision(False, there("3.8.2"), OURS, "3.8.3") == "refuse"
    assert image_tags.tag_decision(False, there(None, None), OURS, "3.8.3") == "refuse", "not built by forkflow"


def test_a_floating_tag_moves_forward_or_sideways_never_back() -> None:
    assert image_tags.tag_decision(True, None, OURS, "3.8.3") == "push"
    assert image_tags.tag_decision(True, there("3.8.2"), OURS, "3.8.3") == "push"
    assert image_tags.tag_decision(True, there("3.8.3"), OURS, "3.8.3") == "push"
    assert image_tags.tag_decision(True, there("3.8.4"), OURS, "3.8.3") == "keep"
    assert image_tags.tag_decision(True, there("3.8.4", OURS), OURS, "3.8.3") == "push", "its own image"
    assert image_tags.tag_decision(True, there(None), OURS, "3.8.3") == "push", "no version label: moved"


def test_plan_refuses_keeps_and_pushes_per_tag() -> None:
    found = {"3.8.3-python3.12": None, "3.8-python3.12": there("3.8.4"), "3-python3.12": there("3.7.0"),
             "3-latest": there("3.8.4")}
    plan = image_tags.plan_tags(scheme("3.8.3"), found, OURS, "3.8.3")
    assert plan.push == ("3.8.3-python3.12", "3-python3.12")
    assert plan.kept == {"3.8-python3.12": "3.8.4", "3-latest": "3.8.4"}
    assert not plan.refused and not plan.current and not plan.up_to_date

    changed = {**found, "3.8.3-python3.12": there("3.8.3")}
    plan = image_tags.plan_tags(scheme("3.8.3"), changed, OURS, "3.8.3")
    assert list(plan.refused) == ["3.8.3-python3.12"] and not plan.up_to_date


def test_plan_is_up_to_date_when_every_tag_is_ours_or_kept() -> None:
    mine = there("3.8.3", OURS)
    found = {"3.8.3-python3.12": mine, "3.8-python3.12": there("3.8.4"), "3-python3.12": mine, "3-latest": mine}
    plan = image_tags.plan_tags(scheme("3.8.3"), found, OURS, "3.8.3")
    assert plan.up_to_date and set(plan.current) == {"3.8.3-python3.12", "3-python3.12", "3-latest"}
    assert plan.kept == {"3.8-python3.12": "3.8.4"}


def test_an_index_counts_as_ours_only_with_every_platform() -> None:
    two = ("linux/amd64", "linux/arm64")
    found = {tag: there("3.8.3", OURS, ("linux/amd64",)) for tag in scheme("3.8.3")}
    plan = image_tags.plan_tags(scheme("3.8.3"), found, OURS, "3.8.3", two)
    assert not plan.up_to_date and not plan.refused and len(plan.push) == 4
    found = {tag: there("3.8.3", OURS, ("linux/amd64", "linux/arm64/v8")) for tag in scheme("3.8.3")}
    assert image_tags.plan_tags(scheme("3.8.3"), found, OURS, "3.8.3", two).up_to_date


def test_the_refusal_says_what_where_and_the_ways_out() -> None:
    error = image_tags.refusal("3.12-base", "127.0.0.1:5001/orbit", {"3.8.3-python3.12": there("3.8.3")}, OURS, "3.8.3")
    text = str(error)
    assert "127.0.0.1:5001/orbit:3.8.3-python3.12: registry digest sha256:" + "c" * 64 in text
    assert "version 3.8.3, input hash " + "b" * 64 in text
    assert f"this build: version 3.8.3, input hash {OURS}" in text
    assert error.where == "127.0.0.1:5001/orbit:3.8.3-python3.12"
    assert error.fix and "new version" in error.fix and "delete the tag" in error.fix
