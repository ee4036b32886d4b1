"""Pitfall 8: overspending. Cap what a client may commit; watch the packs run down."""

from __future__ import annotations

import pytest

from kling_testkit.budget import Budget, BudgetExceeded
from kling_testkit.client import KlingClient
from kling_testkit.control import MockControl
from kling_testkit.errors import AccountError


def test_a_budget_refuses_the_task_that_would_overspend(
    kling_mock: MockControl, kling_client: KlingClient
) -> None:
    kling_client.budget = Budget(limit=7)  # units
    kling_client.text2video("shot one", mode="pro", duration="5")  # 3.5 units
    kling_client.text2video("shot two", mode="pro", duration="5")  # 3.5 units
    with pytest.raises(BudgetExceeded, match="7 of 7"):
        kling_client.text2video("shot three")  # 1 more unit would pass 7
    assert len(kling_mock.tasks()) == 2
    kling_mock.clock.advance(3600)
    assert kling_mock.remaining_units("default", "video") == 1000 - 7


def test_a_failed_task_gives_its_units_back(
    kling_mock: MockControl, kling_client: KlingClient
) -> None:
    kling_client.budget = Budget(limit=1)
    kling_mock.configure(failure_rate={"text2video": 1.0})
    task = kling_client.text2video("a storm")
    with pytest.raises(Exception, match="failed"):
        kling_client.wait("text2video", task)
    assert kling_client.budget.remaining == 1


@pytest.mark.kling_config(failure_rate={})
def test_without_a_cap_the_pack_runs_out(
    kling_mock: MockControl, kling_client: KlingClient
) -> None:
    """The default pack holds 1000 units; kling-v2-master costs 10 per 5 s video."""
    kling_mock.configure(concurrency={"video": 1000})
    with pytest.raises(AccountError) as caught:
        for n in range(101):
            kling_client.text2video(f"shot {n}", model_name="kling-v2-master")
    assert caught.value.code == 1102
