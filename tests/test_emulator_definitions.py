"""The emulator's command line defines cohorts, recommendations, computations and
predictions (a JSON file or flags) before it serves; lookups see them over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import amplitude_async as aa
from amplitude_async._cli import app
from amplitude_async.emulator import Emulator
from amplitude_async.emulator._command import build_parser, emulator_from_args, main

SECRET = "definitions-secret"


def emulator_for(*argv: str) -> Emulator:
    return emulator_from_args(build_parser().parse_args(["--port", "0", *argv]))


async def test_a_definitions_file_and_flags_answer_profile_lookups(tmp_path: Path) -> None:
    definitions = tmp_path / "profiles.json"
    definitions.write_text(
        json.dumps(
            {
                "cohorts": [{"cohort_id": "pro-users", "where": {"plan": "pro"}}],
                "recommendations": [
                    {"rec_id": "rec-home", "items": ["a", "b", "c"], "title": "Home"}
                ],
                "computations": [
                    {"comp_id": "seat-count", "property": "seats", "default": 0},
                    {"comp_id": "tier", "value": "gold"},
                ],
                "predictions": [{"prediction_id": "churn"}],
            }
        )
    )
    emu = emulator_for(
        "--secret-key", SECRET,
        "--definitions", str(definitions),
        "--cohort", "big-teams:plan=team,seats=50",
        "--recommendation", "rec-model-1=sku-1,sku-2",
        "--computation", "plan-name=plan",
        "--prediction", "upsell",
    )  # fmt: skip
    async with emu:
        emu.state.apply(
            1,
            [
                {"user_id": "user-pro-1", "user_properties": {"$set": {"plan": "pro"}}},
                {
                    "user_id": "user-team-1",
                    "user_properties": {"$set": {"plan": "team", "seats": 50}},
                },
            ],
        )
        async with aa.ProfileClient(SECRET, server_url=emu.profile_url) as profiles:
            pro = await profiles.get(
                "user-pro-1", cohort_ids=True, rec_id=["rec-home", "rec-model-1"], computations=True
            )
            team = await profiles.get("user-team-1", cohort_ids=True)
            churn = await profiles.get(
                "user-pro-1", prediction_id="upsell", propensity_type="score"
            )
    assert pro.cohort_ids == ["pro-users"]
    assert team.cohort_ids == ["big-teams"]
    assert pro.recommendations is not None
    assert [sorted(r.items or []) for r in pro.recommendations] == [
        ["a", "b", "c"],
        ["sku-1", "sku-2"],
    ]
    assert pro.computations == {"seat-count": 0, "tier": "gold", "plan-name": "pro"}
    assert churn.propensities  # the shape of a propensity is the emulator's business


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"cohort": []}', "unknown section(s) 'cohort'"),
        ('{"cohorts": [{"cohort_id": "x"}]}', "cohorts[0]: where must be an object"),
        ('{"recommendations": [{"rec_id": "r", "items": "abc"}]}', "items must be a list"),
        ('{"computations": [{"comp_id": "c"}]}', "computations[0]: property must be"),
        ("{not json", "not valid JSON"),
    ],
)
def test_a_bad_definitions_file_is_refused_before_serving(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    definitions = tmp_path / "profiles.json"
    definitions.write_text(content)
    assert main(["--port", "0", "--definitions", str(definitions)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--cohort", "no-rule"),
        ("--cohort", "pro:plan"),
        ("--recommendation", "rec-1="),
        ("--computation", "seats"),
    ],
)
def test_bad_definition_flags_are_usage_errors(flag: str, value: str) -> None:
    result = CliRunner().invoke(app, ["emulator", "--port", "0", flag, value])
    assert result.exit_code == 2
    assert flag in result.output


def test_a_missing_definitions_file_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["emulator", "--port", "0", "--definitions", str(tmp_path / "nope.json")]
    )
    assert result.exit_code == 2
    assert "No such file" in result.output
