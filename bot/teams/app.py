"""The Teams front end on the Microsoft 365 Agents SDK: a CloudAdapter and an AgentApplication answering through
the shared conversation core (bot/conversation/).

A message is accepted with 202 once the handler has decided whether to answer and claimed it (the durable claim
records the question and where to answer, so another replica answers it if this one dies); it is answered in a
task of its own as a proactive message continuing the conversation from the activity's reference, so a slow
model never makes Teams re-deliver. Re-deliveries (same conversation and activity id) are answered once, across
replicas.
The SDK's default turn-error handler (it sends the exception's text to the user) is replaced: the user gets the
apology with a reference id, the log gets the trace.
"""

from __future__ import annotations

import logging
import uuid
import warnings
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from microsoft_agents.activity import Activity, ActivityTypes, load_configuration_from_env
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.aiohttp import CloudAdapter, jwt_authorization_decorator, start_agent_process
from microsoft_agents.hosting.core import (
    AgentApplication,
    ApplicationOptions,
    MemoryStorage,
    TurnContext,
    TurnState,
)
from yarl import URL

from bot.conversation.actions import ActionEvent, Do
from bot.conversation.core import ConversationCore, Message
from bot.conversation.dialogue import Dialogue
from bot.conversation.durable import claims_of
from bot.conversation.messages import apology
from bot.inflight import Work
from bot.teams import chains
from bot.teams import dialogue_cards as cards
from bot.teams.channel import Inbound, TeamsChannel
from bot.teams.commands import TeamsCommands, parse_command
from bot.teams.config import anonymous_allowed
from bot.teams.format import message, strip_mention
from bot.teams.hosts import ServiceUrlValidator

log = logging.getLogger(__name__)
MESSAGES_PATH = "/api/messages"
ANONYMOUS_WARNING = ("Teams runs in anonymous mode (CONNECTIONS__SERVICE_CONNECTION__SETTINGS__ANONYMOUS_ALLOWED): "
                     "requests to /api/messages are not authenticated. Use it only with the Agents Playground "
                     "on a laptop.")


class TeamsFrontEnd:
    def __init__(self, runtime: Any, work: Work, sdk_env: Mapping[str, str]):
        self.runtime = runtime
        self.work = work
        config = load_configuration_from_env(sdk_env)
        self.connections = MsalConnectionManager(**config)
        self.auth_config = self.connections.get_default_connection_configuration()
        self.anonymous = anonymous_allowed(sdk_env)
        self.validator = ServiceUrlValidator(runtime.settings.teams_hosts)
        self.adapter = CloudAdapter(connection_manager=self.connections, host_validator=self.validator)
        self.adapter.on_turn_error = self.on_turn_error
        options = ApplicationOptions(storage=MemoryStorage(), start_typing_timer=False,  # typing runs with the
                                     remove_recipient_mention=False)  # model, in the answer's own turn
        self.agent = AgentApplication[TurnState](options, connection_manager=self.connections)
        self.agent.activity(ActivityTypes.message)(self.on_message)
        self.agent.error(self.on_turn_error)
        self.core = ConversationCore(runtime, work)
        self.commands = TeamsCommands(runtime)

    def attach(self, app: web.Application) -> None:
        """POST /api/messages, its JWT validated on that route only (the SDK reads "agent_configuration")."""
        with warnings.catch_warnings():  # the SDK's middleware reads this plain string key
            warnings.simplefilter("ignore", web.NotAppKeyWarning)
            app["agent_configuration"] = self.auth_config
        app.router.add_post(MESSAGES_PATH, jwt_authorization_decorator(self.messages))
        if self.anonymous:
            log.warning(ANONYMOUS_WARNING)

    async def messages(self, request: web.Request) -> web.Response:
        """An invoke (it wants its answer in the response) runs the SDK's turn in the request. Any other activity
        is checked (JSON, conversation, serviceUrl against the allow-list and the token's claim) and accepted with
        202. A message is decided and claimed before the 202 (Teams does not re-deliver an accepted activity, so
        the durable claim must exist first), without the SDK's inbound turn, which would put its cost on every
        202; the answer (or a click's action) runs in a proactive turn of its own. Other activities' SDK turns run
        in a task after the 202."""
        try:
            body = await request.json()
            activity = Activity.model_validate(body)
        except (ValueError, TypeError):
            return web.json_response({"error": "invalid activity"}, status=400)
        if activity.type == ActivityTypes.invoke or activity.delivery_mode == "expectReplies":
            return await start_agent_process(request, self.agent, self.adapter)
        if not activity.type or not activity.conversation or not activity.conversation.id:
            return web.json_response({"error": "the activity needs a type and a conversation id"}, status=400)
        identity = request.get("claims_identity")
        if not self._service_url_allowed(identity, activity.service_url):
            log.warning("Teams activity refused: serviceUrl %s is not allowed", activity.service_url)
            return web.json_response({"error": "serviceUrl not allowed"}, status=401)
        if activity.type == ActivityTypes.message:  # decided and claimed here; the answer runs in a task
            try:
                await self.take(activity, identity)
            except Exception as exc:  # noqa: BLE001 - as in the SDK's turn: the user gets the apology, the log the trace
                self.work.spawn(self.apologise(identity, activity, exc), name=f"teams-apology-{activity.id}")
        else:
            self.work.spawn(self.adapter.process_activity(identity, activity, self.agent.on_turn),
                            name=f"teams-turn-{activity.id}")
        return web.Response(status=202)

    def _service_url_allowed(self, identity: Any, service_url: str | None) -> bool:
        """The allow-list, and the token's serviceurl claim naming the same host (as the SDK's adapter checks)."""
        if not service_url or not self.validator.is_allowed(service_url):
            return False
        claimed = identity.get_claim_value("serviceurl") if identity else None
        return not claimed or (URL(claimed).host or "").casefold() == (URL(service_url).host or "").casefold()

    # -- the inbound turn: decide, then answer in the background ------------------------------------------

    async def on_message(self, context: TurnContext, state: TurnState) -> None:
        """A message in the SDK's inbound turn (an expectReplies delivery; others are taken before their 202)."""
        await self.take(context.activity, context.identity)

    async def take(self, activity: Activity, identity: Any) -> None:
        """Decide whether to answer the message, claim it, and start its answer (or a click's action) in a task."""
        tenant = activity.conversation.tenant_id or (activity.channel_data or {}).get("tenant", {}).get("id")
        allowed = self.runtime.settings.teams_tenants
        if allowed and tenant not in allowed:
            log.warning("Teams activity from tenant %s ignored: not in TEAMS_ALLOWED_TENANTS", tenant)
            return
        kind = activity.conversation.conversation_type or "personal"
        sender = activity.from_property
        where = cards.conversation_key(activity.conversation.id)
        link = cards.conversation_link(activity.conversation.id, activity.id, tenant)
        if activity.value is not None:  # a click on one of our cards (Action.Submit), anywhere
            event = cards.event_of(activity.value, sender.aad_object_id or sender.id, where, link)
            if event is not None and self._may(event):
                self.work.spawn(self.act(identity, activity.model_copy(deep=True), event, kind),
                                name=f"teams-action-{activity.id}")
            return
        mentioned = any(m.mentioned and m.mentioned.id == activity.recipient.id
                        for m in TurnContext.get_mentions(activity))
        text = strip_mention(TurnContext.remove_recipient_mention(activity) if mentioned else activity.text)
        if kind != "personal" and not mentioned:  # a channel follow-up, delivered under ChannelMessage.Read.Group
            if kind != "channel" or not await chains.answered_in(self.runtime.db, activity.conversation.id):
                return
        incoming = Message(source="teams", user=sender.aad_object_id or sender.id, text=text, conversation=where,
                           link=link, delivery=f"teams:{activity.conversation.id}:{activity.id}")
        command = parse_command(incoming.text)
        if command is None:  # a question's claim records the work: another replica answers it if this one dies
            claimed = await self.core.accept(incoming, Inbound(activity, identity, kind))
        else:
            claimed = await self.core.claim(incoming.delivery)
        if claimed:
            self.work.spawn(self.answer(identity, activity.model_copy(deep=True), incoming, kind, command),
                            name=f"teams-answer-{activity.id}")

    async def answer(self, identity: Any, activity: Activity, incoming: Message, kind: str,
                     command: tuple | None) -> None:
        """A proactive turn continuing the conversation: the answer to the claimed question, or the command's
        reply. A question whose turn never started (no token, the connector unreachable) has its claim released
        for another replica's sweeper, rather than held by this replica and never answered."""
        started = False

        async def turn(context: TurnContext) -> None:
            nonlocal started
            started = True
            if command is None:
                await self.core.respond(incoming, self.channel(context, kind))
                if kind == "channel":
                    await chains.mark_answered(self.runtime.db, activity.conversation.id)
            else:
                await self.commands.run(context, incoming.user, *command)

        try:
            if not self.validator.is_allowed(activity.service_url):  # checked on the way in too: never post elsewhere
                log.warning("Teams answer not sent: serviceUrl %s is not allowed", activity.service_url)
                return
            await self.adapter.continue_conversation_with_claims(identity, activity, turn)
        finally:
            if command is None and not started:
                await claims_of(self.runtime).abandon(incoming.delivery)

    def channel(self, context: TurnContext, kind: str) -> TeamsChannel:
        return TeamsChannel(context, kind, self.runtime.settings.teams_handoff_conversation)

    def _may(self, event: ActionEvent) -> bool:
        """"Take it" and "Resolved" count only from TEAMS_HANDOFF_CONVERSATION (a channel's threads included)."""
        if event.do not in (Do.TAKE, Do.RESOLVE):
            return True
        handoff = self.runtime.settings.teams_handoff_conversation
        allowed = bool(handoff) and event.conversation.partition(";")[0] == cards.conversation_key(handoff)
        if not allowed:
            log.warning("Teams %s of case %s ignored: not from the hand-off conversation", event.do, event.value)
        return allowed

    async def act(self, identity: Any, activity: Activity, event: ActionEvent, kind: str) -> None:
        """A click, in a proactive turn continuing the clicked message's conversation: replies go there."""
        if not self.validator.is_allowed(activity.service_url):
            log.warning("Teams click not handled: serviceUrl %s is not allowed", activity.service_url)
            return

        async def turn(context: TurnContext) -> None:
            await Dialogue(self.core).on_action(event, self.channel(context, kind))

        await self.adapter.continue_conversation_with_claims(identity, activity, turn)

    async def apologise(self, identity: Any, activity: Activity, error: Exception) -> None:
        """`on_turn_error` for a message that failed before any turn: in a proactive turn of its conversation."""
        async def turn(context: TurnContext) -> None:
            await self.on_turn_error(context, error)

        await self.adapter.continue_conversation_with_claims(identity, activity, turn)

    async def on_turn_error(self, context: TurnContext, error: Exception) -> None:
        reference = uuid.uuid4().hex[:12]
        log.error("Teams turn failed (reference %s)", reference, exc_info=error)
        try:
            await context.send_activity(message(apology(reference)))
        except Exception as exc:  # noqa: BLE001 - the log has the reference and the trace
            log.warning("could not send the apology %s: %s", reference, type(exc).__name__)
