"""The package's exceptions. The native module raises these (it imports this module), so a
scenario error carries the file, line, column and field the Rust validator names."""


class ChokepointError(Exception):
    """Base class of every error the package raises on purpose."""


class ScenarioError(ChokepointError, ValueError):
    """A scenario that does not load: `file`, `line` (0 when the file could not be read),
    `column`, `field` (a dotted path such as ``nations[1].stockpiles[0].target_days``) and
    `reason` (the message without its location)."""

    def __init__(self, message, *, file="", line=0, column=0, field="", reason=""):
        super().__init__(message)
        self.file, self.line, self.column, self.field = file, line, column, field
        self.reason = reason or message

    def __reduce__(self):
        kwargs = dict(file=self.file, line=self.line, column=self.column, field=self.field, reason=self.reason)
        return (_remake, (type(self), str(self), kwargs))


class SimulationError(ChokepointError, RuntimeError):
    """A run that cannot go on (an engine invariant violated, a run already complete); `tick`
    is the tick it was at."""

    def __init__(self, message, *, tick=0):
        super().__init__(message)
        self.tick = tick

    def __reduce__(self):
        return (_remake, (type(self), str(self), dict(tick=self.tick)))


class NodeError(ChokepointError, RuntimeError):
    """A Python agent node's session that did not complete (``chokepoint.node.run``)."""


class RefusedError(NodeError):
    """The coordinator refused the node's Hello: `code` is the gRPC status's name
    (``UNAUTHENTICATED`` for a wrong join secret, ``FAILED_PRECONDITION`` for another protocol
    version or run, ...) and `details` its message."""

    def __init__(self, message, *, code="", details=""):
        super().__init__(message)
        self.code, self.details = code, details


class DisconnectedError(NodeError):
    """The session broke (the coordinator died, or dropped this node) after `ticks` ticks, or
    the coordinator finished the run as failed (`reason`)."""

    def __init__(self, message, *, ticks=0, reason=""):
        super().__init__(message)
        self.ticks, self.reason = ticks, reason


class StrategyError(NodeError):
    """A Python strategy raised, or returned something that is not actions, for `agent` at
    `tick`; the node left the run (the coordinator treats it as a lost node). The strategy's
    own exception is the ``__cause__``."""

    def __init__(self, message, *, agent=0, tick=0):
        super().__init__(message)
        self.agent, self.tick = agent, tick


def _remake(cls, message, kwargs):
    return cls(message, **kwargs)
