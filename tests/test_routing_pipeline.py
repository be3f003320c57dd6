"""Routing in the pipeline: escalation exactly below the threshold (both calls recorded; a failing escalation
leaves the first answer), the canary arm, shadow calls that never delay nor reach the user, and daily budgets
that stop a paid model across two replicas on PostgreSQL."""

import asyncio

from llm.adapters.base import OUT_OF_SCOPE
from llm.config import LLMSettings
from llm.factory import ModelFactory
from llm.pipeline import BankingLLMPipeline, PipelineOptions, RequestContext
from llm.routing.policy import Canary, Escalation, RoutingPolicy, Shadow
from storage.database import Database
from tests.scripted import Scripted, ScriptedAdapter, builders
from tests.test_pipeline import make_pipeline


class PaidAdapter(ScriptedAdapter):
    device = "cloud"
    sends_data_off_host = True
    estimated_call_cost_usd = 0.25


async def _calls(db, request_id):
    await db.request_log.flush()
    async with db.reads.connect() as conn:
        from sqlalchemy import select

        from storage.models import ModelCallRecord as C
        rows = (await conn.execute(select(C).where(C.request_id == request_id).order_by(C.seq))).mappings().all()
    return [(r["model"], r["role"], r["outcome"], r["escalated_from"], r["intent"]) for r in rows]


async def test_escalates_exactly_below_the_threshold_and_records_both_calls(db):
    cheap = ScriptedAdapter("cheap").enqueue(Scripted("unsure", "card_arrival", 0.6999),
                                             Scripted("sure", "card_arrival", 0.7))
    strong = ScriptedAdapter("strong", default=Scripted("strong answer", "lost_or_stolen_card", 0.95))
    pipeline = make_pipeline(db, cheap, strong)
    pipeline.switcher.policy = RoutingPolicy(escalation=Escalation("strong", 0.7))
    escalated = await pipeline.generate("Where is my card?")
    kept = await pipeline.generate("Where is my card?")
    assert (escalated.text, escalated.model, escalated.extra["escalated_from"]) == ("strong answer", "strong", "cheap")
    assert (kept.text, kept.model) == ("sure", "cheap") and len(strong.prompts) == 1
    assert await _calls(db, escalated.request_id) == [
        ("cheap", "primary", "ok", None, "card_arrival"),
        ("strong", "escalation", "ok", "cheap", "lost_or_stolen_card")]
    assert await _calls(db, kept.request_id) == [("cheap", "primary", "ok", None, "card_arrival")]
    assert pipeline.live.escalations[("cheap", "strong", "ok")] == 1


async def test_a_failing_escalation_leaves_the_first_answer_and_is_recorded(db):
    cheap = ScriptedAdapter("cheap", default=Scripted("first answer", "card_arrival", 0.3))
    strong = ScriptedAdapter("strong", default=Scripted(error=RuntimeError("down")))
    pipeline = make_pipeline(db, cheap, strong)
    pipeline.switcher.policy = RoutingPolicy(escalation=Escalation("strong", 0.9))
    result = await pipeline.generate("Where is my card?")
    assert (result.text, result.model, result.fallback_from) == ("first answer", "cheap", None)
    assert await _calls(db, result.request_id) == [
        ("cheap", "primary", "ok", None, "card_arrival"), ("strong", "escalation", "error", "cheap", None)]


async def test_out_of_scope_is_escalated_only_when_the_policy_says_so(db):
    cheap = ScriptedAdapter("cheap", default=Scripted("not banking", OUT_OF_SCOPE, 0.1))
    strong = ScriptedAdapter("strong", default=Scripted("strong answer", "card_arrival", 0.95))
    pipeline = make_pipeline(db, cheap, strong)
    pipeline.switcher.policy = RoutingPolicy(escalation=Escalation("strong", 0.9))
    assert (await pipeline.generate("What's the weather?")).model == "cheap"
    pipeline.switcher.policy = RoutingPolicy(escalation=Escalation("strong", 0.9, out_of_scope=True))
    assert (await pipeline.generate("What's the weather?")).model == "strong"


async def test_canary_users_stay_on_the_canary_and_fall_back_to_the_active_model(db):
    active = ScriptedAdapter("active", default=Scripted("from active"))
    canary = ScriptedAdapter("canary", default=Scripted("from canary"))
    pipeline = make_pipeline(db, active, canary)
    pipeline.switcher.policy = RoutingPolicy(canary=Canary("canary", 50))
    users = [f"U{i}" for i in range(40)]
    first = [(await pipeline.generate("card?", RequestContext(user_id=u))).model for u in users]
    again = [(await pipeline.generate("card?", RequestContext(user_id=u))).model for u in users]
    assert first == again and {"active", "canary"} == set(first)
    on_canary = users[first.index("canary")]
    result = await pipeline.generate("card?", RequestContext(user_id=on_canary))
    assert result.extra["arm"] == "canary"
    assert (await _calls(db, result.request_id))[0][:3] == ("canary", "canary", "ok")
    canary.default = Scripted(error=RuntimeError("canary broke"))
    fell_back = await pipeline.generate("card?", RequestContext(user_id=on_canary))
    assert (fell_back.model, fell_back.fallback_from) == ("active", "canary")


async def test_shadow_calls_never_delay_the_reply_and_never_reach_the_user(db):
    events: list[str] = []
    released = asyncio.Event()
    served = ScriptedAdapter("served", default=Scripted("served answer", "card_arrival", 0.9))
    shadow = ScriptedAdapter("shadow", default=Scripted("shadow answer", "card_arrival", 0.8, gate=released))
    pipeline = make_pipeline(db, served, shadow)
    pipeline.switcher.policy = RoutingPolicy(shadow=Shadow("shadow", 100))
    result = await pipeline.generate("Where is my card?")
    events.append(f"reply:{result.text}")
    [task] = pipeline.shadow_tasks
    for _ in range(10_000):  # the shadow model gets the question, and waits on its gate
        if shadow.prompts:
            break
        await asyncio.sleep(0)
    assert shadow.prompts == ["Where is my card?"] and not task.done()
    task.add_done_callback(lambda _: events.append("shadow done"))
    released.set()
    await task
    assert events == ["reply:served answer", "shadow done"]
    assert result.model == "served" and "shadow" not in result.text
    assert await _calls(db, result.request_id) == [("served", "primary", "ok", None, "card_arrival"),
                                                   ("shadow", "shadow", "ok", None, "card_arrival")]
    assert pipeline.live.shadow_calls[("shadow", True)] == 1
    [arms] = [m for m in await db.routing_metrics() if m["arm"] == "shadow"]
    assert (arms["compared"], arms["agree"]) == (1, 1)


async def test_a_failing_shadow_changes_nothing_for_the_user(db):
    served = ScriptedAdapter("served", default=Scripted("served answer"))
    shadow = ScriptedAdapter("shadow", default=Scripted(error=RuntimeError("shadow down")))
    pipeline = make_pipeline(db, served, shadow)
    pipeline.switcher.policy = RoutingPolicy(shadow=Shadow("shadow", 100))
    result = await pipeline.generate("card?")
    await asyncio.gather(*pipeline.shadow_tasks)
    assert result.text == "served answer"
    assert (await _calls(db, result.request_id))[1][:3] == ("shadow", "shadow", "error")


def _replica(db: Database, paid: PaidAdapter) -> BankingLLMPipeline:
    free = ScriptedAdapter("free", default=Scripted("free answer"))
    options = PipelineOptions(fallback_order=["paid", "free"], budgets={"paid": 1.0})
    return BankingLLMPipeline(ModelFactory(LLMSettings(), builders(paid, free)), db, options, default_model="paid")


async def test_the_budget_stops_a_paid_model_across_two_replicas_on_postgresql(postgres_url):
    a, b = Database(postgres_url, flush_interval_s=0.01), Database(postgres_url, flush_interval_s=0.01)
    await a.upgrade()
    await a.truncate_all()
    try:
        paid_a = PaidAdapter("paid", default=Scripted("paid answer", cost_usd=0.25))
        paid_b = PaidAdapter("paid", default=Scripted("paid answer", cost_usd=0.25))
        replica_a, replica_b = _replica(a, paid_a), _replica(b, paid_b)
        answers = await asyncio.gather(*(replica.generate("card?") for replica in (replica_a, replica_b) * 4))
        assert [r.model for r in answers].count("paid") == 4  # $1.00 / $0.25, shared by both replicas
        later = await replica_b.generate("card?")
        assert (later.model, later.fallback_from) == ("free", "paid")
        assert len(paid_a.prompts) + len(paid_b.prompts) == 4
        assert (await a.spend_on(replica_a.budgets.today())) == {"paid": 1.0}
        assert replica_b.budgets.exhausted("paid") and replica_b.benchmark is None
        calls = await _calls(b, later.request_id)
        assert calls[0][:3] == ("paid", "primary", "skipped")
    finally:
        await a.aclose()
        await b.aclose()
