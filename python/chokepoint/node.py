"""Agents written in Python, on the coordinator's node protocol.

    from chokepoint import node

    class Hoarder(node.Agent):
        def decide(self, obs):                      # obs: a node.Observation
            if obs.price("dy") < 400_00:            # cents per kg
                return [obs.buy("dy", kg=2_000, limit_cents=400_00)]
            return None                              # None: the default decision

    node.run("http://127.0.0.1:7400", secret=SECRET, agents={"CC": Hoarder()},
             scenario="scenarios/tiny.toml")

`run` joins a ``chokepoint serve`` run as an agent node. The coordinator places agents on it
like on any node (and moves more to it when another node is lost), so the node decides every
agent it is given: with the project's own rules (``agents::decide``, through the native module:
the Rust agent-node's decisions exactly), except the agents a Python strategy was given for. A
strategy is a ``node.Agent`` (or any callable) keyed by a nation's code (that nation's stockpile
agency; needs `scenario` for the codes) or by an agent id.

The node says in its Hello that it is not deterministic, so the coordinator journals every batch
of actions it sends: ``chokepoint replay``, ``fork``, ``state`` and the debrief reproduce the run
bit for bit without it. Actions the coordinator cannot accept (a negative quantity, an unknown
commodity, a price beyond a market's bounds) are refused with their reason in rejections.csv and
the run goes on. A strategy that raises, or returns something that is not actions, ends this
node's session with a ``StrategyError`` naming the agent and the tick; the coordinator treats
the node as lost (its agents move to the other nodes, or into the coordinator with
``--local-fallback``, or the run stops, naming the node).
"""

import logging
import queue
import threading
from dataclasses import dataclass
from urllib.parse import urlparse

import grpc

from . import _native, wire
from .errors import DisconnectedError, NodeError, RefusedError, StrategyError

__all__ = ["Agent", "Observation", "Outcome", "run", "STAGES"]

log = logging.getLogger("chokepoint.node")

#: Stage names as the CSV files write them, to the protocol's enum values.
STAGES = {"ore": wire.STAGE_ORE, "refined": wire.STAGE_REFINED}


class Agent:
    """A strategy for the agents it is given: override `decide`. It returns a
    ``wire.AgentActions`` (``obs.actions(...)`` starts one from the default decision), a list
    of ``wire.Order`` (the default decision with those orders instead of its own), or None (the
    default decision unchanged)."""

    def decide(self, obs):
        return None

    def __call__(self, obs):
        return self.decide(obs)


@dataclass(frozen=True)
class Outcome:
    """A completed session: the run's id, the agents the node ran at the end, the ticks it
    decided, and the coordinator's closing words."""
    ok: bool
    reason: str
    run_id: str
    agents: int
    ticks: int
    #: The strategies (nation codes or agent ids, as given) whose agents this node never hosted:
    #: the coordinator placed them on another node, so they never ran here.
    not_run: tuple = ()


class _Names:
    """Nation and commodity codes in index order, from the scenario the coordinator serves."""

    def __init__(self, scenario):
        from . import Scenario
        if not isinstance(scenario, Scenario):
            scenario = Scenario.load(scenario)
        self.nations = list(scenario.nations)
        self.commodities = list(scenario.commodities)

    def nation(self, code):
        try:
            return self.nations.index(code)
        except ValueError:
            raise ValueError(f"unknown nation {code!r} (the scenario's: {', '.join(self.nations)})") from None

    def commodity(self, code):
        try:
            return self.commodities.index(code)
        except ValueError:
            raise ValueError(f"unknown commodity {code!r} (the scenario's: {', '.join(self.commodities)})") from None


class Observation:
    """What one agent sees at one tick, with the default decision for it.

    ``tick``, ``seed``, ``agent`` (its id), ``kind`` ("nation", "miner", "refiner",
    "manufacturer"), ``nation`` (index) and ``nation_code``; ``cash_cents``; ``public`` (the
    ``wire.PublicView``: markets with their last prices and bounds, announced restrictions),
    ``raw`` (the ``wire.AgentObservation``: holdings, stockpiles, goods in transit), ``spec``
    (the ``wire.AgentSpec``) and ``default`` (the ``wire.AgentActions`` the project's own rule
    decides). Commodities are codes (with a scenario) or indices; money is integer cents,
    quantities integer kilograms, as on the wire.
    """

    def __init__(self, batch, raw, spec, default, names):
        self.tick, self.seed, self.public = batch.tick, batch.seed, batch.public
        self.raw, self.agent, self.spec, self.default = raw, raw.agent, spec, default
        self.kind = spec.WhichOneof("kind")
        self.nation = getattr(spec, self.kind).nation
        self._names = names

    @property
    def nation_code(self):
        return self._names.nations[self.nation] if self._names else str(self.nation)

    @property
    def cash_cents(self):
        return self.raw.cash_cents

    def commodity(self, commodity):
        """A commodity's index, from its code (with a scenario) or its index."""
        if isinstance(commodity, int):
            return commodity
        if self._names is None:
            raise ValueError(f"commodity {commodity!r} by code needs node.run(..., scenario=...)")
        return self._names.commodity(commodity)

    def _market_id(self, commodity, stage):
        return wire.MarketId(commodity=self.commodity(commodity), stage=STAGES[stage])

    def market(self, commodity, stage="refined"):
        """The market's public view (``wire.MarketView``)."""
        wanted = self._market_id(commodity, stage)
        for m in self.public.markets:
            if m.market == wanted:
                return m
        raise KeyError(f"no market {commodity}/{stage}")

    def price(self, commodity, stage="refined"):
        """Last tick's price for this agent's nation, cents per kg: its domestic price where a
        restriction separates it from the world's, else the world price."""
        m = self.market(commodity, stage)
        for p in m.domestic_prices:
            if p.nation == self.nation:
                return p.price_cents_per_kg
        return m.last_price_cents_per_kg

    def holding(self, commodity, stage="refined"):
        """What the agent holds in the market, kg."""
        wanted = self._market_id(commodity, stage)
        return sum(h.quantity_kg for h in self.raw.holdings if h.market == wanted)

    def stockpile(self, commodity):
        """A nation's stockpile of the refined commodity (``wire.StockpileView``), or None."""
        c = self.commodity(commodity)
        return next((s for s in self.raw.stockpiles if s.commodity == c), None)

    def order(self, side, commodity, kg, limit_cents, stage="refined", domestic_only=False):
        """An order (``wire.Order``); `side` is "buy" or "sell"."""
        sides = {"buy": wire.SIDE_BUY, "sell": wire.SIDE_SELL}
        if side not in sides:
            raise ValueError(f"side must be 'buy' or 'sell', not {side!r}")
        return wire.Order(market=self._market_id(commodity, stage), side=sides[side], quantity_kg=kg,
                          limit_cents_per_kg=limit_cents, domestic_only=domestic_only)

    def buy(self, commodity, kg, limit_cents, stage="refined", domestic_only=False):
        return self.order("buy", commodity, kg, limit_cents, stage, domestic_only)

    def sell(self, commodity, kg, limit_cents, stage="refined", domestic_only=False):
        return self.order("sell", commodity, kg, limit_cents, stage, domestic_only)

    def actions(self, orders=None, add=(), produce_kg=None):
        """Actions starting from the default decision (its memory of forecasts included): with
        `orders` instead of its orders if given, then `add`ed orders, and `produce_kg` if given."""
        out = wire.AgentActions()
        out.CopyFrom(self.default)
        if orders is not None:
            del out.orders[:]
            out.orders.extend(orders)
        out.orders.extend(add)
        if produce_kg is not None:
            out.produce_kg = produce_kg
        return out

    def __repr__(self):
        return f"Observation(tick {self.tick}, agent {self.agent}, {self.kind} of {self.nation_code})"


def _target(coordinator, tls):
    """host:port from ``http://host:port`` (``https://`` with `tls`), or a bare ``host:port``."""
    if "://" not in coordinator:
        return coordinator
    url = urlparse(coordinator)
    if url.scheme == "https" and not tls:
        raise NodeError("an https:// coordinator needs tls_ca= (the certificate to trust)")
    if url.scheme == "http" and tls:
        raise NodeError("tls_ca= is given but the coordinator's address is not https://")
    if url.scheme not in ("http", "https") or not url.netloc:
        raise NodeError(f"cannot reach the coordinator at {coordinator}: not an http:// or https:// address")
    return url.netloc


def _channel(coordinator, tls_ca, tls_domain):
    """A channel to the coordinator: plain, or TLS trusting `tls_ca` (a PEM path or bytes), the
    server's name checked against `tls_domain` when given (else the address's host)."""
    options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    target = _target(coordinator, tls_ca is not None)
    if tls_ca is None:
        return grpc.insecure_channel(target, options=options)
    given = isinstance(tls_ca, (bytes, bytearray))
    if given:
        pem = bytes(tls_ca)
    else:
        try:
            with open(tls_ca, "rb") as f:
                pem = f.read()
        except OSError as e:
            raise NodeError(f"cannot read tls_ca {tls_ca}: {e.strerror or e}") from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise NodeError(f"tls_ca {'(bytes)' if given else tls_ca} holds no PEM certificate")
    if tls_domain:
        options.append(("grpc.ssl_target_name_override", tls_domain))
    return grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=pem), options=options)


class _Strategies:
    """Which agents a Python strategy decides: by agent id, or by nation for nations' agencies."""

    def __init__(self, agents, names):
        self.by_agent, self.by_nation = {}, {}
        for key, strategy in (agents or {}).items():
            if not callable(strategy):
                raise TypeError(f"the strategy for {key!r} is not a node.Agent or a callable")
            if isinstance(key, int):
                self.by_agent[key] = strategy
            elif names is None:
                raise ValueError(f"a strategy keyed by nation ({key!r}) needs node.run(..., scenario=...)")
            else:
                self.by_nation[names.nation(key)] = strategy

    def keys_not_hosted(self, specs, names):
        """The strategies (as given: agent id or nation code) none of whose agents is in
        `specs`, the agents this node hosts."""
        hosted_nations = {spec.nation.nation for spec in specs.values() if spec.WhichOneof("kind") == "nation"}
        missing = [a for a in sorted(self.by_agent) if a not in specs]
        missing += [names.nations[n] if names is not None else n
                    for n in sorted(self.by_nation) if n not in hosted_nations]
        return tuple(missing)

    def get(self, agent, spec):
        if agent in self.by_agent:
            return self.by_agent[agent]
        if spec.WhichOneof("kind") == "nation":
            return self.by_nation.get(spec.nation.nation)
        return None


class _Session:
    """One node's session: the agents it runs and how it decides them."""

    def __init__(self, name, strategies, names):
        self.name, self.strategies, self.names = name, strategies, names
        self.decider = _native.Decider()
        self.specs = {}
        self.run_id, self.ticks, self.last_tick, self.welcomed = "", 0, None, False
        # Strategies (by key as given) not hosted here now, and those never hosted here so far.
        self.not_hosted, self.never_hosted = (), self.strategies.keys_not_hosted({}, names)

    def welcome(self, w):
        self.run_id, self.welcomed = w.run_id, True
        self.assign(w.agents, [])
        log.info("node %s: hosting %d agents as node %d of %d, from tick %d", self.name, len(self.specs),
                 w.node_index + 1, w.node_count, w.first_tick)

    def assign(self, add, remove):
        try:
            self.decider.assign([a.SerializeToString() for a in add], list(remove))
        except ValueError as e:
            raise NodeError(f"the coordinator sent an invalid message: {e}") from None
        for agent in remove:
            self.specs.pop(agent, None)
        self.specs.update((a.agent, a.spec) for a in add)
        self._check_placement()

    def _check_placement(self):
        """Says, once each time it changes, which strategies cannot run on this node because
        the coordinator placed their agents on another one (placement is by the run's layout,
        not by where a strategy is), so a strategy never silently does nothing."""
        missing = self.strategies.keys_not_hosted(self.specs, self.names)
        self.never_hosted = tuple(k for k in self.never_hosted if k in missing)
        if missing and missing != self.not_hosted:
            log.warning("node %s: the strategies for %s do not run here: the coordinator placed their "
                        "agents on another node (this node hosts %d agents); serve with --nodes 1 to "
                        "run every strategy on one node", self.name, ", ".join(map(str, missing)),
                        len(self.specs))
        self.not_hosted = missing

    def not_run(self):
        """The strategies whose agents this node never hosted."""
        return self.never_hosted

    def decide(self, batch):
        """The Actions for a batch: every agent by the default rule, then the strategies'."""
        if not self.welcomed:
            raise NodeError("the coordinator sent an invalid message: observations before welcome")
        try:
            actions = wire.Actions.FromString(self.decider.decide(batch.SerializeToString()))
        except ValueError as e:
            raise NodeError(f"the coordinator sent an invalid message: {e}") from None
        for raw, default in zip(batch.agents, actions.actions):
            strategy = self.strategies.get(raw.agent, self.specs[raw.agent])
            if strategy is not None:
                view = Observation(batch, raw, self.specs[raw.agent], default, self.names)
                default.CopyFrom(self._strategy(strategy, view))
        if self.last_tick != batch.tick:
            self.ticks, self.last_tick = self.ticks + 1, batch.tick
        return actions

    def _strategy(self, strategy, view):
        """One strategy's actions for `view`, or a StrategyError saying what went wrong."""
        where = f"agent {view.agent} ({view.kind} of {view.nation_code}) at tick {view.tick}"
        try:
            result = strategy(view)
        except Exception as e:
            raise StrategyError(f"the strategy for {where} raised {type(e).__name__}: {e}",
                                agent=view.agent, tick=view.tick) from e
        try:
            if result is None:
                return view.default
            if isinstance(result, wire.AgentActions):
                out = wire.AgentActions()
                out.CopyFrom(result)
            elif isinstance(result, (list, tuple)):
                out = view.actions(orders=result)
            else:
                raise TypeError(f"got {type(result).__name__}; decide returns wire.AgentActions, "
                                "a list of wire.Order, or None")
        except (TypeError, ValueError) as e:
            raise StrategyError(f"the strategy for {where} returned malformed actions: {e}",
                                agent=view.agent, tick=view.tick) from e
        out.agent = view.agent
        return out


def run(coordinator, *, secret, agents=None, scenario=None, name="python-node", run_id="",
        connect_timeout=30.0, heartbeat=2.0, tls_ca=None, tls_domain=None):
    """Joins the run served at `coordinator` (``http://HOST:PORT``) as agent node `name`, with
    the run's join secret, and decides its agents until the coordinator finishes the run. A
    coordinator serving TLS (``serve --tls-cert``) is ``https://HOST:PORT``, with `tls_ca` the
    certificate to trust (a PEM path or bytes) and, if the certificate names another host than
    the address, `tls_domain` the name to check (agent-node's --tls-ca and --tls-domain).

    `agents` maps a nation's code (its stockpile agency; needs `scenario`, the served scenario's
    path or ``chokepoint.Scenario``, for the codes) or an agent id to a strategy (a
    ``node.Agent`` or a callable taking an ``Observation``); every other agent is decided by the
    default rule. Returns an ``Outcome``. Raises ``RefusedError`` (wrong secret, version, run or
    name), ``DisconnectedError`` (the session broke, or the run finished as failed),
    ``StrategyError`` (a strategy raised or returned malformed actions) or ``NodeError``.
    """
    names = _Names(scenario) if scenario is not None else None
    session = _Session(name, _Strategies(agents, names), names)
    channel = _channel(coordinator, tls_ca, tls_domain)
    try:
        grpc.channel_ready_future(channel).result(timeout=connect_timeout)
    except grpc.FutureTimeoutError:
        channel.close()
        raise NodeError(f"cannot reach the coordinator at {coordinator} within {connect_timeout} s") from None
    outbox = queue.Queue()
    outbox.put(wire.NodeMessage(hello=wire.Hello(
        protocol_version=wire.PROTOCOL_VERSION, node_name=name, run_id=run_id, join_secret=secret,
        deterministic=False)))
    stop = threading.Event()

    def requests():
        while (message := outbox.get()) is not None:
            yield message

    def beat():
        while not stop.wait(heartbeat):
            outbox.put(wire.NodeMessage(heartbeat=wire.Heartbeat()))

    call = channel.stream_stream(
        wire.service_method("AgentNodes", "Session"),
        request_serializer=wire.NodeMessage.SerializeToString,
        response_deserializer=wire.CoordinatorMessage.FromString)(requests())
    threading.Thread(target=beat, name=f"{name}-heartbeat", daemon=True).start()
    try:
        return _serve(session, call, outbox)
    finally:
        stop.set()
        outbox.put(None)
        call.cancel()
        channel.close()


def _serve(session, call, outbox):
    """The session's messages until Finish; raises on anything else that ends it."""
    try:
        for message in call:
            body = message.WhichOneof("body")
            if body == "welcome":
                session.welcome(message.welcome)
            elif body == "assign":
                session.assign(message.assign.add, message.assign.remove)
            elif body == "observations":
                actions = session.decide(message.observations)
                outbox.put(wire.NodeMessage(actions=actions))
            elif body == "finish":
                f = message.finish
                if not f.ok:
                    raise DisconnectedError(f"the run failed after {session.ticks} ticks: {f.reason}",
                                            ticks=session.ticks, reason=f.reason)
                return Outcome(True, f.reason, session.run_id, len(session.specs), session.ticks,
                               session.not_run())
            else:
                raise NodeError("the coordinator sent an invalid message: empty message")
    except grpc.RpcError as e:
        code, details = e.code(), e.details()
        if not session.welcomed and code != grpc.StatusCode.UNKNOWN:
            raise RefusedError(f"the coordinator refused this node ({code.name}): {details}",
                               code=code.name, details=details) from None
        raise DisconnectedError(f"lost the coordinator after {session.ticks} ticks: {details}",
                                ticks=session.ticks, reason=details) from None
    raise DisconnectedError(f"lost the coordinator after {session.ticks} ticks: it closed the session",
                            ticks=session.ticks, reason="the coordinator closed the session")
