"""A BACnet/IP device for tests/driver_bacnet.rs, on bacpypes3 (pinned in .ci/python-requirements.txt).

    python bacnet_device.py --address 127.0.0.2/32:47809 --instance 599 [--no-rpm]

Serves, on the given unicast address only (no broadcast is needed on loopback):

    analog-value,1   "Setpoint"     writable (commandable, relinquish-default 21.5), degrees-celsius
    analog-input,1   "Temperature"  present-value 19.25, degrees-celsius, COV increment 0.5
    binary-value,1   "Fan"          writable (commandable, relinquish-default inactive)
    multi-state-value,1 "Mode"      present-value 2 of 3
    analog-value,2   "Longgg..."    a 300-character object-name, to make answers large

With --no-rpm the device does not implement ReadPropertyMultiple (it answers a Reject,
unrecognized-service), as some older controllers do. With --no-segmentation it cannot send an
answer larger than one APDU (it aborts: segmentation-not-supported).

Prints "ready" once its UDP socket is bound. Reads commands from stdin, one a line, and answers one line each:

    get <object-type>,<instance> <property>   ->  value <repr of the value>
    get <object-type>,<instance> priority-array <n>  ->  value <the slot, "null" when empty>
    set <object-type>,<instance> present-value <number>  ->  value <the new value> (as the
                                                  device's own logic would: COV subscribers are notified)
    count <request class>                     ->  value <how many were served: ReadPropertyRequest,
                                                  ReadPropertyMultipleRequest, WritePropertyRequest,
                                                  SubscribeCOVRequest>

Exits when stdin closes (the test that started it has finished or died).
"""

import asyncio
import collections
import sys

from bacpypes3.app import Application
from bacpypes3.argparse import SimpleArgumentParser
from bacpypes3.basetypes import Segmentation
from bacpypes3.local.analog import AnalogInputObject, AnalogValueObjectCmd
from bacpypes3.local.binary import BinaryValueObjectCmd
from bacpypes3.local.multistate import MultiStateValueObject
from bacpypes3.primitivedata import ObjectIdentifier


class CountingApplication(Application):
    """Counts the confirmed requests it is given, by service, for the `count` command."""

    counts = collections.Counter()

    async def indication(self, apdu):
        self.counts[type(apdu).__name__] += 1
        return await super().indication(apdu)


class NoRpmApplication(CountingApplication):
    """An application without ReadPropertyMultiple: bacpypes3 rejects what it has no helper for."""

    do_ReadPropertyMultipleRequest = None


def slot_text(app, words):
    obj = app.get_object_id(parse_object_id(words[1]))
    if obj is None:
        return "error no such object"
    prop = words[2].replace("-", "_")
    parts = prop.split("_")
    attr = parts[0] + "".join(p.title() for p in parts[1:])
    value = getattr(obj, attr)
    if len(words) > 3:
        slot = value[int(words[3]) - 1]
        if slot.null is not None:
            return "value null"
        for choice in ("real", "enumerated", "unsigned", "boolean", "integer", "double"):
            inner = getattr(slot, choice, None)
            if inner is not None:
                return f"value {inner}"
        return f"value {slot}"
    return f"value {value}"


def parse_object_id(text):
    return ObjectIdentifier(text)


async def serve_stdin(app):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        words = line.decode().split()
        if not words:
            continue
        try:
            if words[0] == "get":
                answer = slot_text(app, words)
            elif words[0] == "set" and words[2:3] == ["present-value"]:
                obj = app.get_object_id(parse_object_id(words[1]))
                obj.presentValue = float(words[3])
                answer = f"value {obj.presentValue}"
            elif words[0] == "count":
                answer = f"value {app.counts[words[1]]}"
            else:
                answer = f"error unknown command {words[0]}"
        except Exception as exc:  # answer, do not die: the test reads one line per command
            answer = f"error {exc!r}"
        print(answer, flush=True)


async def main():
    parser = SimpleArgumentParser()
    parser.add_argument("--no-rpm", action="store_true", help="do not implement ReadPropertyMultiple")
    parser.add_argument(
        "--no-segmentation", action="store_true", help="abort (segmentation-not-supported) an answer over one APDU"
    )
    args = parser.parse_args()
    app_class = NoRpmApplication if args.no_rpm else CountingApplication
    app = app_class.from_args(args)
    if args.no_segmentation:
        app.device_object.segmentationSupported = Segmentation.noSegmentation
    app.add_object(
        AnalogValueObjectCmd(
            objectIdentifier=("analog-value", 1),
            objectName="Setpoint",
            presentValue=21.5,
            units="degrees-celsius",
        )
    )
    app.add_object(
        AnalogInputObject(
            objectIdentifier=("analog-input", 1),
            objectName="Temperature",
            presentValue=19.25,
            units="degrees-celsius",
            covIncrement=0.5,
        )
    )
    app.add_object(
        BinaryValueObjectCmd(
            objectIdentifier=("binary-value", 1),
            objectName="Fan",
            presentValue="inactive",
        )
    )
    app.add_object(
        AnalogValueObjectCmd(
            objectIdentifier=("analog-value", 2),
            objectName="Long" + "g" * 296,
            presentValue=0.0,
        )
    )
    app.add_object(
        MultiStateValueObject(
            objectIdentifier=("multi-state-value", 1),
            objectName="Mode",
            presentValue=2,
            numberOfStates=3,
        )
    )
    # "ready" only once the UDP socket is bound: a request sent before would go unanswered.
    assert app.link_layers, "no link layer"
    for link_layer in app.link_layers.values():
        await asyncio.gather(*link_layer.server._transport_tasks)
    print("ready", flush=True)
    try:
        await serve_stdin(app)
    finally:
        app.close()


if __name__ == "__main__":
    asyncio.run(main())
