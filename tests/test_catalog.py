"""The scenario catalog: all files valid, and every class of bad input gets a clear message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from haymaker.cli import main
from scenarios import CATALOG_DIR
from scenarios.catalog import AREAS, check_files, load_catalog, scenario_files
from scenarios.steps import check_step

GOOD = Path(__file__).resolve().parent / "fixtures" / "repo" / "scenarios" / "compute-01-linux-vm-web-server.yaml"


def test_every_catalog_file_is_a_valid_scenario_of_a_known_area():
    """An invariant of whatever the catalog holds; its size and names are the catalog's own business."""
    catalog = load_catalog()
    assert sorted(p.stem for p in scenario_files()) == catalog.names() != []
    for s in catalog.scenarios.values():
        assert s.area in AREAS and s.name.startswith(f"{s.area}-")
        assert s.phases["deploy"] and s.phases["operate"] and s.phases["cleanup"]


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(text)
    return p


def good_text(name="compute-01-linux-vm-web-server") -> str:
    return GOOD.read_text().replace("name: compute-01-linux-vm-web-server", f"name: {name}")


def errors_for(*paths) -> list[str]:
    _, errors = check_files(list(paths))
    return errors


def test_a_good_file_passes(tmp_path):
    assert errors_for(write(tmp_path, "compute-01-linux-vm-web-server", good_text())) == []


def test_duplicate_keys_are_refused_with_their_lines(tmp_path):
    p = write(tmp_path, "compute-01-linux-vm-web-server", good_text() + "title: Again\n")
    (e,) = errors_for(p)
    assert e.startswith(f"{p}: line ") and "duplicate key 'title'" in e and "keep one of them" in e


def test_name_must_equal_the_file_stem(tmp_path):
    p = write(tmp_path, "compute-09-other", good_text())
    (e,) = errors_for(p)
    assert e == (f"{p}: name: 'compute-01-linux-vm-web-server' differs from the file name: rename the file "
                 "to compute-01-linux-vm-web-server.yaml or set name: compute-09-other")


def test_duplicate_names_across_files(tmp_path):
    a = write(tmp_path, "compute-01-linux-vm-web-server", good_text())
    (tmp_path / "other").mkdir()
    b = write(tmp_path / "other", "compute-01-linux-vm-web-server", good_text())
    (e,) = errors_for(a, b)
    assert e.startswith(f"{b}: name: 'compute-01-linux-vm-web-server' is also used by {a}")


def test_unknown_and_privileged_roles(tmp_path):
    text = good_text().replace("  - Network Contributor\n", "  - Network Wizard\n  - Owner\n")
    p = write(tmp_path, "compute-01-linux-vm-web-server", text)
    assert errors_for(p) == [
        f"{p}: azure_roles[1]: unknown role 'Network Wizard': use a built-in role from components/roles.py",
        f"{p}: azure_roles[2]: 'Owner' can grant access; agents may not hold it: pick a narrower role",
    ]


def test_files_over_256_kib_are_refused_unread(tmp_path):
    p = write(tmp_path, "compute-01-linux-vm-web-server", good_text() + "#" * (257 * 1024) + "\n")
    (e,) = errors_for(p)
    assert e == f"{p}: (file): is {p.stat().st_size // 1024} KiB; catalog files are limited to 256 KiB: split or shorten it"


def test_alias_bomb_is_refused_quickly(tmp_path):
    bomb = textwrap.dedent("""\
        a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
        b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
        c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
        d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
        e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
        f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
        g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
        h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
        i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
        """)
    p = write(tmp_path, "compute-01-linux-vm-web-server", bomb)
    (e,) = errors_for(p)
    assert "YAML anchors and aliases (&name / *name) are not allowed" in e and e.startswith(f"{p}: line ")


def test_invalid_yaml_says_where(tmp_path):
    p = write(tmp_path, "compute-01-linux-vm-web-server", "name: [unclosed\n")
    (e,) = errors_for(p)
    assert e.startswith(f"{p}: line ") and "not valid YAML" in e


def test_empty_and_non_mapping_documents(tmp_path):
    empty = write(tmp_path, "compute-01-linux-vm-web-server", "")
    listy = write(tmp_path, "compute-02-windows-vm-iis", "- a\n- b\n")
    errors = errors_for(empty, listy)
    assert errors == [f"{empty}: (document): the file is empty",
                      f"{listy}: (top level): ['a', 'b'] is not of type 'object'"]


def test_schema_errors_name_the_path_in_the_document(tmp_path):
    text = (good_text().replace("estimated_hourly_cost_usd: 0.03", "estimated_hourly_cost_usd: cheap")
            .replace("    - name: create-nsg\n", "    - name: Create NSG\n"))
    p = write(tmp_path, "compute-01-linux-vm-web-server", text)
    errors = errors_for(p)
    assert f"{p}: estimated_hourly_cost_usd: 'cheap' is not of type 'number'" in errors
    assert any(e.startswith(f"{p}: phases.deploy[1].name: 'Create NSG' is not a valid step name") for e in errors)


def test_all_errors_of_all_files_are_reported(tmp_path):
    a = write(tmp_path, "compute-01-linux-vm-web-server", good_text().replace("area: compute", "area: space"))
    b = write(tmp_path, "compute-02-windows-vm-iis", good_text("compute-02-windows-vm-iis") + "extra: 1\n")
    errors = errors_for(a, b)
    assert len(errors) == 2
    assert errors[0].startswith(f"{a}: area: 'space' is not one of")
    assert errors[1].startswith(f"{b}: (top level): Additional properties are not allowed ('extra' was unexpected)")


def test_cpu_and_memory_must_pair(tmp_path):
    p = write(tmp_path, "compute-01-linux-vm-web-server", good_text().replace("memory: 1Gi", "memory: 4Gi"))
    assert errors_for(p) == [f"{p}: agent: cpu 0.5 needs memory 1Gi (Container Apps consumption: 2 GiB per vCPU)"]


@pytest.mark.parametrize("run, expected", [
    ("az vm list --resource-group ${RESOURCE_GROUP}", []),
    ("az vm list -g prod-rg", ["-g 'prod-rg' names another resource group: use ${RESOURCE_GROUP}"]),
    ("az vm list --resource-group=${RESOURCE_GROUP}x", ["write the option and its value as two arguments"]),
    ("az vm list --subscription 123", ["steps run in the run's subscription only: remove --subscription"]),
    ("az group delete --name ${RESOURCE_GROUP} --yes", ["the stack owns the resource group: do not delete it"]),
    ("az role assignment create --role Owner --assignee x", ["agents may not grant roles"]),
    ("az cognitiveservices account purge --resource-group ${RESOURCE_GROUP} --name a --location ${LOCATION}",
     ["purge is a subscription-scope action agents may not run: remove it, the run's teardown purges"]),
    ("az keyvault purge --name kv-${UNIQUE}", ["purge is a subscription-scope action agents may not run"]),
    ("az vm list --resource-group ${RG}", ["unknown placeholder ${RG}", "--resource-group '${RG}' names another"]),
    ("az vm list --resource-group $RESOURCE_GROUP", ["a bare '$'", "--resource-group '$RESOURCE_GROUP' names"]),
    ("az vm list | grep x", ["shell operator '|'"]),
    ("kubectl get pods", ["start it with 'az '"]),
    ("az policy assignment list --scope /subscriptions/${SUBSCRIPTION_ID}", ["--scope '/subscriptions/${SUBSCRIPTION_ID}' is outside"]),
    ("az ad group create --display-name finance --mail-nickname f", ["Entra objects must be named haymaker-${RUN_ID}-",
                                                                     "az ad group create sets no owner"]),
    ("az rest --method post --url https://graph.microsoft.com/v1.0/groups --body "
     "'{\"displayName\":\"haymaker-${RUN_ID}-ops\",\"owners@odata.bind\":[\"https://graph.microsoft.com/v1.0/directoryObjects/${AGENT_OBJECT_ID}\"]}'", []),
    ("az rest --method post --url https://graph.microsoft.com/v1.0/groups --body '{\"displayName\":\"haymaker-${RUN_ID}-ops\"}'",
     ["lists the agent as owner, or it cannot delete it"]),
    ("az rest --method post --url https://graph.microsoft.com/v1.0/groups --body "
     "'{\"displayName\":\"ops\",\"owners@odata.bind\":[\"https://graph.microsoft.com/v1.0/directoryObjects/${AGENT_OBJECT_ID}\"]}'", ["Entra objects must be named haymaker-${RUN_ID}-"]),
    ("az rest --method post --url https://graph.microsoft.com/v1.0/groups --body not-json", ["--body of a Graph create is not JSON"]),
    ("az vm list --resource-group '${RESOURCE_GROUP}", ["cannot be split into arguments"]),
])
def test_step_checks(run, expected):
    problems = check_step(run)
    assert len(problems) == len(expected), problems
    for fragment in expected:
        assert any(fragment in p for p in problems), (fragment, problems)


def test_validate_command_lists_every_error_and_exits_1(tmp_path, capsys):
    a = write(tmp_path, "compute-01-linux-vm-web-server", good_text() + "title: Again\n")
    b = write(tmp_path, "compute-02-windows-vm-iis", good_text())
    assert main(["scenarios", "validate", str(a), str(b)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{a}: line ") and err[1].startswith(f"{b}: name: ")
    assert err[-1] == "2 problem(s) found"
    assert "Traceback" not in "\n".join(err)


def test_display_path_is_relative_to_the_repo_for_catalog_files():
    from scenarios.catalog import display_path

    assert display_path(CATALOG_DIR / "compute-01-linux-vm-web-server.yaml") == \
        "scenarios/compute-01-linux-vm-web-server.yaml"
