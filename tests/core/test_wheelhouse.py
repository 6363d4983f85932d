"""The dependency wheelhouse as rules: platforms, the requirement key, pins and the stamp."""

from __future__ import annotations

from tasks.core import wheelhouse as rules


def test_platform_tags_cover_every_manylinux_up_to_2_28() -> None:
    assert rules.uv_platform("x86_64") == "x86_64-manylinux_2_28"
    tags = rules.pip_platforms("x86_64")
    assert tags[0] == "manylinux_2_28_x86_64" and tags[-1] == "manylinux1_x86_64"
    assert {"manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux_2_5_x86_64"} <= set(tags)
    assert "manylinux_2_29_x86_64" not in tags and not any(tag.startswith("linux_") for tag in tags)
    arm = rules.pip_platforms("aarch64")
    assert arm[0] == "manylinux_2_28_aarch64" and arm[-1] == "manylinux2014_aarch64"


def test_requirement_key_follows_requirements_not_code() -> None:
    base = rules.requirement_key("3.12", "x86_64", None, {"orbit": ["pydantic>=2.6,<3"]}, [])
    assert base == rules.requirement_key("3.12", "x86_64", None, {"Orbit": ["pydantic>=2.6,<3"]}, [])
    changed = [
        rules.requirement_key("3.11", "x86_64", None, {"orbit": ["pydantic>=2.6,<3"]}, []),
        rules.requirement_key("3.12", "aarch64", None, {"orbit": ["pydantic>=2.6,<3"]}, []),
        rules.requirement_key("3.12", "x86_64", "https://pypi.acme/simple", {"orbit": ["pydantic>=2.6,<3"]}, []),
        rules.requirement_key("3.12", "x86_64", None, {"orbit": ["pydantic>=2.7,<3"]}, []),
        rules.requirement_key("3.12", "x86_64", None, {"orbit": ["pydantic>=2.6,<3"], "orbit-aws": []}, []),
        rules.requirement_key("3.12", "x86_64", None, {"orbit": ["pydantic>=2.6,<3"]}, ["x-1.0-py3-none-any.whl"]),
    ]
    assert base not in changed and len(set(changed)) == len(changed)


def test_pins_leave_out_the_project_given_as_paths() -> None:
    compiled = """annotated-types==0.7.0
/work/dist/orbit/orbit-1.0.1-py3-none-any.whl
orbit-aws @ file:///work/dist/orbit_aws-0.2.0-py3-none-any.whl
Pydantic==2.14.4
pydantic-core==2.50.5    # via pydantic
prefect==3.8.3
"""
    pins = rules.parse_pins(compiled, ["orbit", "orbit-aws", "prefect"])
    assert [str(pin) for pin in pins] == ["annotated-types==0.7.0", "pydantic==2.14.4", "pydantic-core==2.50.5"]


def test_present_wheels_are_kept_and_others_dropped() -> None:
    pins = [rules.Pin("pydantic", "2.14.4"), rules.Pin("pydantic-core", "2.50.5"), rules.Pin("typing-extensions", "4.16.0")]
    files = ["pydantic-2.14.4-py3-none-any.whl", "pydantic_core-2.50.5-cp312-cp312-manylinux_2_17_x86_64.whl",
             "pydantic-2.13.0-py3-none-any.whl", "notes.txt"]
    present, missing, unwanted = rules.split_present(pins, files)
    assert present == {pins[0]: files[0], pins[1]: files[1]}
    assert missing == [pins[2]]
    assert unwanted == ["notes.txt", "pydantic-2.13.0-py3-none-any.whl"]


def test_stamp_decides_reuse() -> None:
    stamp = rules.stamp_data("k1", "3.12", "x86_64", [rules.Pin("six", "1.17.0")], {"six-1.17.0-py2.py3-none-any.whl": "a"})
    assert rules.stamp_is_current(stamp, "k1", ["six-1.17.0-py2.py3-none-any.whl"])
    assert not rules.stamp_is_current(stamp, "k2", ["six-1.17.0-py2.py3-none-any.whl"])
    assert not rules.stamp_is_current(stamp, "k1", []), "a deleted wheel means download again"
    assert not rules.stamp_is_current(None, "k1", [])


def test_missing_wheels_are_named_with_python_platform_and_fix() -> None:
    uv = ("error: No solution found when resolving dependencies\n  cause: Because pyspark==3.5.0 has no usable wheels "
          "and you require pyspark==3.5.0, we can conclude that your requirements are unsatisfiable.\n\n"
          "hint: Wheels are required for `pyspark` because building from source is disabled")
    pip = "ERROR: No matching distribution found for Legacy_Lib==0.1"
    assert rules.packages_without_wheels(uv) == ["pyspark"]
    assert rules.packages_without_wheels(pip) == ["legacy-lib"]
    assert rules.packages_without_wheels("error: connection refused") == []
    err = rules.missing_wheels_error(["pyspark"], "3.12", "x86_64", "    ...")
    assert "no wheel of pyspark for Python 3.12 on x86_64-manylinux_2_28" in err.what
    assert err.where == "[images] wheelhouse" and err.fix and "[images] wheelhouse" in err.fix


def test_constraint_lines_pin_what_the_resolver_chose_per_platform() -> None:
    lines = rules.constraint_lines({
        "x86_64": ["dbt-core==2.0.0a4", "pydantic==2.7.0", "uvloop==0.21.0"],
        "aarch64": ["dbt-core==2.0.0a4", "pydantic==2.8.0"],
    })
    assert lines == [
        "dbt-core==2.0.0a4",
        'pydantic==2.7.0 ; platform_machine == "x86_64"',
        'pydantic==2.8.0 ; platform_machine == "aarch64"',
        'uvloop==0.21.0 ; platform_machine == "x86_64"',
    ]
    assert rules.constraint_lines({"x86_64": ["a==1"]}) == ["a==1"]
    assert rules.constraint_lines({}) == []


def test_prerelease_note_names_each_pre_release_taken() -> None:
    pins = [rules.Pin("dbt-core", "2.0.0a4"), rules.Pin("pydantic", "2.7.0"), rules.Pin("x", "1.0rc1")]
    note = rules.prerelease_note(pins)
    assert note is not None
    assert note.startswith("the resolution took pre-releases: dbt-core==2.0.0a4, x==1.0rc1 (")
    assert "pydantic" not in note and "[packages] constraints" in note and "[images] wheelhouse" in note
    assert rules.prerelease_note([rules.Pin("pydantic", "2.7.0")]) is None
