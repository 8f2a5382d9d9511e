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


def _remake(cls, message, kwargs):
    return cls(message, **kwargs)
