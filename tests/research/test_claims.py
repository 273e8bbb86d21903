"""The claim grammar, the analysis plan, and how both are registered (command line, artifact draft, amendments)."""

from __future__ import annotations

import pytest
import yaml

from entrenar_bench.errors import UsageError
from entrenar_bench.research.claims import Plan, parse_claim, plan_from
from entrenar_bench.research.hypotheses import registered_claims, registered_plan
from entrenar_bench.research.prereg import integrity_problems, registrations
from research_support import artifact, entrenar  # noqa: F401  (artifact: a fixture)


def prereg(path, *options: str) -> int:
    return entrenar("research", "preregister", str(path), "--hypothesis", "kd helps", "--methods", "5 runs", *options)


@pytest.mark.parametrize("text, fields", [
    ("kd > none", dict(kind="superiority", a="kd", b="none", metric=None, margin=0.0, within=False)),
    ("kd > none on perplexity by 0.5", dict(kind="superiority", a="kd", b="none", metric="perplexity", margin=0.5)),
    ("kd > none by 0.5 on perplexity", dict(kind="superiority", a="kd", b="none", metric="perplexity", margin=0.5)),
    ("none < kd", dict(kind="superiority", a="kd", b="none")),
    ("LoRA r=16 >= Full fine-tune within 0.01", dict(kind="noninferiority", a="LoRA r=16", b="Full fine-tune",
                                                     margin=0.01, within=True)),
    ("T=2 ≤ T=4 within 0.01", dict(kind="noninferiority", a="T=4", b="T=2")),
    ("T=1 ~ T=2 within 0.001 on accuracy", dict(kind="equivalence", a="T=1", b="T=2", margin=0.001, within=True)),
    ("T=1 ≈ T=2 within 1", dict(kind="equivalence")),
    ("best temperature is 4", dict(kind="best", key="temperature", value="4", a="temperature=4", within=False)),
    ("best T is 4 within 0.01 on val_loss", dict(kind="best", key="T", value="4", margin=0.01, within=True,
                                                 metric="val_loss")),
])
def test_claims_parse(text, fields):
    claim = parse_claim(text, "H1")
    assert {k: getattr(claim, k) for k in fields} == fields
    assert claim.id == "H1" and claim.text == text


def test_an_id_prefix_names_the_claim_and_spaces_are_normalised():
    claim = parse_claim("H7:  kd   >  none ", "H1")
    assert (claim.id, claim.text, claim.a, claim.b) == ("H7", "kd > none", "kd", "none")


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("kd > kd", "compares 'kd' with itself"),
    ("kd > none within 0.1", "'>' takes a margin 'by δ'"),
    ("kd ~ none", "needs a tolerance, 'within δ'"),
    ("kd >= none by 0.1", "needs a tolerance"),
    ("a > b > c", "one comparison per claim"),
    ("kd is good", "expected 'A > B'"),
    ("kd > none by -1", "must be a finite number of at least 0"),
    ("kd ~ none within 0", "above 0"),
    ("kd > none by nan", "finite"),
    ("kd > none by lots", "needs a number"),
    ("kd > none on 3x", "not a metric name"),
    ("kd > none by 1 by 2", "given twice"),
    ("> none", "a group is missing"),
])
def test_bad_claims_are_refused_naming_the_problem(text, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(">", ">")):
        parse_claim(text, "H1")


@pytest.mark.parametrize("values, message", [
    ({"test": "student"}, "test 'student'"), ({"alpha": 0.0}, "alpha"), ({"alpha": 0.7}, "alpha"),
    ({"runs": 1}, "runs 1"), ({"metric": "a-b"}, "metric 'a-b'"), ({"power": 0.8}, "unknown setting 'power'"),
])
def test_bad_plans_are_refused(values, message):
    with pytest.raises(UsageError, match=message):
        plan_from(values)


def test_claims_and_plan_are_part_of_the_digested_record(artifact):
    assert prereg(artifact, "--claim", "kd > none on loss", "--claim", "best temperature is 4",
                  "--metric", "perplexity", "--test", "paired", "--alpha", "0.01", "--runs", "5") == 0
    data = yaml.safe_load(artifact.read_text())
    record = data["preregistration"]
    assert [c["id"] for c in record["claims"]] == ["H1", "H2"]
    assert record["claims"][0] == {"id": "H1", "text": "kd > none on loss", "kind": "superiority", "a": "kd",
                                   "b": "none", "metric": "loss", "margin": 0.0, "within": False}
    assert record["plan"] == {"metric": "perplexity", "test": "paired", "alpha": 0.01, "correction": "holm", "runs": 5}
    assert integrity_problems(data) == []
    record["plan"]["alpha"] = 0.05  # edited by hand afterwards: evident
    assert integrity_problems(data) == ["the preregistration was edited after it was recorded "
                                        "(record_sha256 does not match)"]


def test_a_bad_claim_is_one_line_exit_2_and_the_artifact_is_untouched(artifact, capsys):
    before = artifact.read_bytes()
    assert prereg(artifact, "--claim", "kd > none", "--claim", "kd ~ none") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and "'~' needs a tolerance" in err
    assert artifact.read_bytes() == before
    assert prereg(artifact, "--claim", "kd > none", "--alpha", "2") == 2
    assert artifact.read_bytes() == before


def test_claims_drafted_in_the_artifact_move_into_the_record(artifact):
    data = yaml.safe_load(artifact.read_text())
    data.update(claims=["kd > none", {"H9": "none > kd on loss"}], plan={"runs": 5, "metric": "accuracy"})
    artifact.write_text(yaml.safe_dump(data, sort_keys=False))
    assert prereg(artifact, "--claim", "kd >= none within 0.01") == 0
    data = yaml.safe_load(artifact.read_text())
    assert "claims" not in data and "plan" not in data
    record = data["preregistration"]
    assert [(c["id"], c["text"]) for c in record["claims"]] == [
        ("H1", "kd > none"), ("H9", "none > kd on loss"), ("H3", "kd >= none within 0.01")]
    assert record["plan"]["runs"] == 5 and record["plan"]["metric"] == "accuracy"


def test_a_bad_draft_is_refused(artifact, capsys):
    data = yaml.safe_load(artifact.read_text())
    data["claims"] = "kd > none"
    artifact.write_text(yaml.safe_dump(data))
    before = artifact.read_bytes()
    assert prereg(artifact) == 2
    assert "'claims' is not a list" in capsys.readouterr().err
    assert artifact.read_bytes() == before


def test_amendments_add_and_edit_claims_by_id_and_carry_the_plan(artifact):
    assert prereg(artifact, "--claim", "kd > none", "--runs", "5") == 0
    assert prereg(artifact, "--claim", "H1: kd > none by 0.01", "--claim", "none > kd on loss",
                  "--reason", "margin") == 0
    assert prereg(artifact, "--alpha", "0.01", "--reason", "stricter") == 0
    records = registrations(yaml.safe_load(artifact.read_text()))
    claims = registered_claims(records)
    assert [(r.claim.id, r.claim.text, r.record) for r in claims] == [("H1", "kd > none by 0.01", 0),
                                                                      ("H2", "none > kd on loss", 1)]
    assert [i for i, _ in claims[0].edits] == [1] and claims[1].edits == ()
    plan, changes = registered_plan(records)
    assert plan == Plan(alpha=0.01, runs=5) and [i for i, _ in changes] == [2]


def test_an_amendment_restating_a_claim_unchanged_is_no_edit(artifact):
    assert prereg(artifact, "--claim", "kd > none") == 0
    assert prereg(artifact, "--claim", "H1: kd > none") == 0
    (registered,) = registered_claims(registrations(yaml.safe_load(artifact.read_text())))
    assert registered.edits == ()


def test_without_claims_or_plan_the_record_is_as_before(artifact):
    assert prereg(artifact) == 0
    record = yaml.safe_load(artifact.read_text())["preregistration"]
    assert "claims" not in record and "plan" not in record
