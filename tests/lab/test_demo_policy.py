from datetime import date

from lab.demo import DEMO_POLICY, demo_policy_file
from console.policy import Policy


def test_demo_dates_move_with_today(tmp_path) -> None:
    today = date(2030, 3, 15)
    policy = Policy.load(demo_policy_file(tmp_path, today))
    dated = sorted(g.expires for g in policy.grants if g.expires)
    assert dated == [date(2030, 2, 17), date(2030, 3, 22)]
    # everything else is the file as written
    fixed = Policy.load(DEMO_POLICY)
    assert len(policy.grants) == len(fixed.grants)
    assert [g.principal for g in policy.grants] == [g.principal for g in fixed.grants]
