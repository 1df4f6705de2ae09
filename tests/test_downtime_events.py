"""Downtime plans and answers shared through the hosts' event logs: an administrator publishes a
plan (admin endpoint), owners read the plans touching their VMs and answer with one line (JEA
endpoint, the person from the token), all against the lab's hosts, which run the scripts and the
generated functions."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from console import audit, scripts
from console.config import HostConfig
from console.downtime import (Plan, PlanError, SharedPlans, make_plan, parse_window, read_plans,
                              tally)
from console.errors import HostAccessDenied, InvalidParameter, VMNotFound
from console.hosts import AdminClient, Credentials, JeaClient
from console.inventory import VM
from console.policy import Policy
from lab.auth import LabUser
from lab.demo import demo_policy_text
from lab.hyperv import Durations
from lab.runner import Lab

POLICY = Policy.from_text(demo_policy_text(), "policy.toml")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab.start(durations=Durations.instant(), jea_policy=POLICY) as running:
        yield running


def admin(lab: Lab, host: str = "HV02") -> AdminClient:
    user, password = lab.admin
    return AdminClient(HostConfig(name=host, url=lab.hosts[host].url, endpoint="admin"),
                       Credentials(user, password))


def jea(lab: Lab, user: str, host: str = "HV02") -> JeaClient:
    return JeaClient(HostConfig(name=host, url=lab.hosts[host].url, endpoint="jea"),
                     Credentials(f"LAB\\{user}", lab.credentials[f"LAB\\{user}"]))


def plan_for(lab: Lab, host: str = "HV02", reason: str = "Firmware update",
             start: str = "2099-12-12 22:00") -> Plan:
    client = admin(lab, host)
    try:
        vms = client.inventory()
    finally:
        client.close()
    return make_plan(POLICY, vms, host, parse_window(f"{start}/4h"), reason, "LAB\\adam")


def published(lab: Lab, plan: Plan) -> None:
    client = admin(lab, plan.host)
    try:
        assert client.publish_plan(plan) == plan.id
    finally:
        client.close()


def test_the_inventory_reads_each_vms_automatic_stop_and_start_actions(lab: Lab) -> None:
    client = admin(lab, "HV02")
    try:
        vms = {v.name: v for v in client.inventory()}
    finally:
        client.close()
    assert (vms["office-print"].automatic_stop_action,
            vms["office-print"].automatic_start_action) == ("TurnOff", "Start")
    assert (vms["shop-web02"].automatic_stop_action,
            vms["shop-web02"].automatic_start_action) == ("ShutDown", "StartIfRunning")
    assert vms["payroll-db"].automatic_stop_action == "Save"
    # ... and through the JEA endpoint, whose inventory embeds the same script.
    henry = jea(lab, "henry")
    try:
        assert {v.name: v.automatic_stop_action for v in henry.inventory()}["office-print"] == "TurnOff"
    finally:
        henry.close()


def test_a_published_plan_reaches_the_owners_with_only_their_vms(lab: Lab) -> None:
    plan = plan_for(lab, start="2099-01-10 22:00")
    published(lab, plan)
    entries = [e for e in lab.hosts["HV02"].executor.event_log
               if e.event_id == audit.HOST_PLAN_EVENT_ID]
    assert entries and plan.id in entries[-1].message
    assert json.loads(entries[-1].message)["user"] == "LAB\\adam"  # the session's token
    henry = jea(lab, "henry")  # helpdesk on HV02, payroll-db denied
    try:
        seen = henry.downtime_plans()
    finally:
        henry.close()
    mine = next(p for p in seen.plans if p.plan.id == plan.id)
    assert {i.vm_name for i in mine.plan.items} == {"shop-web02", "office-print", "office-files"}
    assert mine.by == "LAB\\adam" and mine.plan.window == plan.window
    # The administrator reads the whole plan.
    client = admin(lab)
    try:
        whole = next(p for p in client.downtime_plans().plans if p.plan.id == plan.id)
    finally:
        client.close()
    assert whole.plan == plan


def test_an_answer_names_the_person_from_the_token_and_is_tallied(lab: Lab) -> None:
    plan = plan_for(lab, start="2099-02-10 22:00")
    published(lab, plan)
    henry = jea(lab, "henry")
    try:
        done = henry.answer_plan(plan.id, "object", "Not on a Friday night, please")
        assert done["by"] == "LAB\\henry"
        shared = henry.downtime_plans()
    finally:
        henry.close()
    answers = shared.answers_to(plan.id)
    assert [(a.by, a.answer, a.text) for a in answers] == [
        ("LAB\\henry", "object", "Not on a Friday night, please")]
    assert answers[0].sid.endswith("-1102")
    counted = tally(plan, answers, {"lab\\henry": plan.owners[0]})
    assert list(counted.objected) == [plan.owners[0]]


def test_an_answer_to_a_plan_touching_none_of_the_callers_vms_is_refused(lab: Lab) -> None:
    plan = plan_for(lab, "HV01", start="2099-03-10 22:00")
    published(lab, plan)
    hannah = jea(lab, "hannah", "HV01")  # payroll-db on HV02, legacy-ftp on HV03: none here
    try:
        assert not [p for p in hannah.downtime_plans().plans if p.plan.id == plan.id]
        with pytest.raises(HostAccessDenied, match="holds none of the VMs"):
            hannah.answer_plan(plan.id, "approve")
    finally:
        hannah.close()
    log = lab.hosts["HV01"].executor.event_log
    assert not [e for e in log if e.event_id == audit.HOST_ANSWER_EVENT_ID and plan.id in e.message]
    refused = json.loads(next(e for e in reversed(log)
                              if e.event_id == audit.HOST_EVENT_IDS["denied"]).message)
    assert (refused["operation"], refused["user"]) == ("downtime_answer", "LAB\\hannah")


def test_an_answer_to_an_unknown_plan_or_of_two_lines_is_refused(lab: Lab) -> None:
    henry = jea(lab, "henry")
    try:
        with pytest.raises(VMNotFound, match="No downtime plan HV02-20990101-0000-abcdef"):
            henry.answer_plan("HV02-20990101-0000-abcdef", "approve")
        with pytest.raises(InvalidParameter):
            henry.answer_plan("HV02-20990101-0000-abcdef", "approve", "one\nand two")
        with pytest.raises(InvalidParameter):
            henry.answer_plan("HV02-20990101-0000-abcdef", "maybe")
    finally:
        henry.close()


def test_the_jea_endpoint_does_not_publish(lab: Lab) -> None:
    henry = jea(lab, "henry")
    try:
        with pytest.raises(HostAccessDenied, match="default endpoint"):
            henry.publish_plan(plan_for(lab))
    finally:
        henry.close()


def test_a_plan_for_another_host_is_refused_by_the_host(lab: Lab) -> None:
    plan = plan_for(lab, "HV01", start="2099-04-10 22:00")
    client = admin(lab, "HV02")
    try:
        with pytest.raises(InvalidParameter, match="not for this host"):
            client.publish_plan(plan)
    finally:
        client.close()


def test_a_plan_too_long_for_one_event_is_refused_before_and_by_the_host(lab: Lab) -> None:
    plan = plan_for(lab, reason="x" * 40000, start="2099-05-10 22:00")
    with pytest.raises(PlanError, match="with a single VM .*one event holds at most 31,839"):
        plan.check_fits("LAB\\adam")
    client = admin(lab)
    try:
        with pytest.raises(PlanError):
            client.publish_plan(plan)  # refused before anything is sent
        # ... and the host's own check, for a client that sends it anyway.
        with pytest.raises(InvalidParameter, match="an event holds at most 31839"):
            client._read_operation("downtime_publish", plan.publish_params())
    finally:
        client.close()
    assert not [e for e in lab.hosts["HV02"].executor.event_log if plan.id in e.message]


def test_a_plan_of_a_large_host_is_written_in_parts_and_read_whole(lab: Lab) -> None:
    plan = plan_for(lab, start="2099-05-17 22:00")
    extra = tuple(replace(plan.items[0], vm_id=f"{n:08x}-0000-4000-8000-000000000000",
                          vm_name=f"vdi-desktop-{n:03d}", owner="Desktop Team",
                          contact="desktops@lab.example, +1 555 0123") for n in range(240))
    large = replace(plan, items=plan.items + extra)
    parts = large.parts("LAB\\adam")
    assert len(parts) == 2 and sum(len(p.items) for p in parts) == len(large.items)
    assert all(p.id == large.id for p in parts)
    published(lab, large)
    written = [e for e in lab.hosts["HV02"].executor.event_log
               if e.event_id == audit.HOST_PLAN_EVENT_ID and large.id in e.message]
    assert len(written) == 2 and all(len(e.message) <= 31839 for e in written)
    client = admin(lab)
    try:
        whole = next(p for p in client.downtime_plans().plans if p.plan.id == large.id)
    finally:
        client.close()
    assert {i.vm_id for i in whole.plan.items} == {i.vm_id for i in large.items}
    henry = jea(lab, "henry")  # his VMs are in the first part; he answers the whole plan
    try:
        mine = next(p for p in henry.downtime_plans().plans if p.plan.id == large.id)
        assert {i.vm_name for i in mine.plan.items} >= {"shop-web02", "office-print"}
        assert henry.answer_plan(large.id, "approve")["by"] == "LAB\\henry"
    finally:
        henry.close()


def test_the_size_estimate_is_an_upper_bound_of_the_hosts_event() -> None:
    """The lab's ConvertTo-Json writes what 5.1 does save for its escapes; the estimate counts
    each < > & ' six characters, so it is never below the real length."""
    window = parse_window("2099-06-10 22:00/2h")
    plan = make_plan(POLICY, [], "HV02", window, "Disk <firmware> & 'BIOS'", "LAB\\adam")
    short = Plan.from_data({**plan.publish_params()["plan"], "reason": "plain"})
    assert plan.event_length("LAB\\adam") - short.event_length("LAB\\adam") == \
        len("Disk <firmware> & 'BIOS'") - len("plain") + 5 * 5


def test_the_lab_refuses_a_message_longer_than_an_event_holds(lab: Lab) -> None:
    executor = lab.hosts["HV01"].executor
    before = len(executor.event_log)
    text = ("$ErrorActionPreference='Stop';try{Write-EventLog -LogName Application -Source "
            "HvConsole -EventId 1010 -EntryType Information -Message ('x'*31840);'written'}"
            "catch{\"$($_.Exception.Message)\"}\r\n")
    result = executor.run(LabUser("LAB\\adam", "S-1-5-21-1000-2000-3000-1103", admin=True),
                          " ".join([scripts.EXECUTABLE, *scripts.ARGUMENTS]),
                          lambda: text.encode("ascii"))
    assert b"cannot exceed 31839" in result.stdout, result
    assert len(executor.event_log) == before


def test_shared_plans_keep_the_newest_of_an_id_and_count_what_they_cannot_read() -> None:
    window = parse_window("2099-07-10 22:00/2h")
    plan = make_plan(POLICY, [], "HV02", window, "r", "LAB\\adam")
    data = {"plans": [{"plan": plan.publish_params()["plan"], "by": "LAB\\adam", "time": "b"},
                      {"plan": plan.publish_params()["plan"], "by": "LAB\\adam", "time": "a"},
                      {"plan": {"id": "broken"}}],
            "answers": [{"plan_id": plan.id, "by": "LAB\\x", "answer": "maybe", "time": "c"}],
            "others": 1}
    shared = SharedPlans.from_data("HV02", data)
    assert [p.time for p in shared.plans] == ["b"] and shared.unreadable == 3
    with pytest.raises(PlanError, match="no plans and answers lists"):
        SharedPlans.from_data("HV02", {"plans": []})
    assert shared.current(datetime(2099, 7, 11, tzinfo=window.start.tzinfo) + timedelta(days=1)) == []


def test_the_scripts_ask_for_the_token_never_a_parameter_for_the_person() -> None:
    for operation in ("downtime_publish", "downtime_answer"):
        assert "$a.user" not in scripts.body(operation) and "GetCurrent()" in scripts.body(operation)
        assert "$hvcWho" in scripts.shared_body(operation)



def test_read_plans_counts_an_account_for_the_owner_the_directory_names() -> None:
    window = parse_window("2099-09-10 22:00/2h")
    vm = VM("HV02", "080fa935-119d-5f94-bd91-af6a3ffc1820", "shop-web02", "Running",
            automatic_stop_action="Save", automatic_start_action="Start")
    plan = make_plan(POLICY, [vm], "HV02", window, "disks", "LAB\\adam")
    answer = {"plan_id": plan.id, "by": "LAB\\olivia", "sid": "S-1-5-21-1000-2000-3000-1101",
              "answer": "approve", "text": "ok", "time": "2099-09-01T10:00:00Z"}
    stranger = {**answer, "by": "LAB\\mallory", "sid": "S-1-5-21-1000-2000-3000-1999",
                "answer": "object", "text": "no"}

    class Host:
        def __init__(self, name: str, data: object) -> None:
            self.name, self.data = name, data

        def downtime_plans(self) -> SharedPlans:
            if self.data is None:
                raise HostAccessDenied(f"{self.name} refused the call.", host=self.name)
            return SharedPlans.from_data(self.name, self.data)

    asked: list[str] = []

    def resolve(account: str) -> str:
        asked.append(account)
        return {"S-1-5-21-1000-2000-3000-1101": "Olivia Owner"}.get(account, "")
    read = read_plans([Host("HV02", {"plans": [{"plan": plan.publish_params()["plan"],
                                                "by": "LAB\\adam", "time": "t"}],
                                     "answers": [stranger, answer]}), Host("HV03", None)],
                      resolve)
    assert read.failed == {"HV03": "HV03 refused the call."}
    assert asked == ["S-1-5-21-1000-2000-3000-1101", "S-1-5-21-1000-2000-3000-1999"]  # by SID
    [published] = read.current(window.start - timedelta(days=1))
    text = read.summary(published)
    assert "- shop-web02 (owner Olivia Owner): saved, then started again" in text
    assert "Approved by Olivia Owner: ok (LAB\\olivia, 2099-09-01T10:00:00Z)" in text
    assert "Also answered: LAB\\mallory objected: no" in text  # not an owner: beside the tally
    assert "Answers: 1 approved, 0 objected." in text
