"""The protocol's message classes (package ``chokepoint.v1`` of proto/chokepoint.proto), as
protobuf classes: ``wire.Observations``, ``wire.AgentActions``, ``wire.Order``, ``wire.MarketId``,
... and the enums' values as constants (``wire.STAGE_REFINED``, ``wire.SIDE_BUY``), as a
``protoc --python_out`` module would have them.

They are built when this module is imported from the descriptor set compiled into the native
module: the very bytes the coordinator serves for gRPC reflection, so the classes are those of the
build they talk to and no generated file can go stale. (The tests check them against
proto/chokepoint.proto compiled afresh with grpcio-tools.)
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from . import _native

PROTOCOL_VERSION = _native.PROTOCOL_VERSION
"""The protocol version this build speaks; the coordinator refuses a node with another."""

PACKAGE = "chokepoint.v1"

_files = descriptor_pb2.FileDescriptorSet.FromString(_native.PROTO_DESCRIPTOR)
POOL = descriptor_pool.DescriptorPool()
for _file in _files.file:
    POOL.Add(_file)
FILE = POOL.FindFileByName(_files.file[0].name)

for _name, _descriptor in FILE.message_types_by_name.items():
    globals()[_name] = message_factory.GetMessageClass(_descriptor)
for _name, _enum in FILE.enum_types_by_name.items():
    globals()[_name] = _enum
    for _value in _enum.values:
        globals()[_value.name] = _value.number

del _name, _descriptor, _enum, _value, _file


def service_method(service, method):
    """The gRPC path of ``service.method``, e.g. ``/chokepoint.v1.AgentNodes/Session``."""
    FILE.services_by_name[service].methods_by_name[method]  # KeyError for a name not in the proto
    return f"/{PACKAGE}.{service}/{method}"
