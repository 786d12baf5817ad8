"""A Modbus TCP server on pymodbus (pinned in .ci/python-requirements.txt) for the Modbus
driver's tests and benchmark.

    python modbus_server.py PORT SPEC.json

serves, on 127.0.0.1:PORT, the four tables of one device described by SPEC.json:

    {"unit": 1,
     "sizes": {"coil": 16, "discrete_input": 16, "holding": 1100, "input": 64},
     "points": [
        {"table": "holding", "address": 0, "format": ">f", "value": 1.5, "word_order": "little"},
        {"table": "coil", "address": 3, "value": true},
        {"table": "input", "address": 10, "words": [1, 2, 3]}
     ]}

Each table holds addresses 0..size-1 (zero where no point says otherwise; a size left out
or 0 is 1: pymodbus wants every table); any other address is answered with exception 2
(illegal data address). A point's value is packed
with Python's struct module in its `format` (the byte order is the format's `>`/`<`),
cut into 16-bit registers, most significant byte first, and the registers reversed when
`word_order` is `little`: the layout VOLTTRON's Modbus driver reads. `words` gives raw
registers instead.

It prints `listening PORT` once the socket is bound, then one JSON line per write request
it serves, `{"function": 6, "address": 10, "values": [725]}`, and exits when its stdin
closes (the test that started it ended or dropped its pipe).
"""

import asyncio
import json
import struct
import sys

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

TABLES = ("coil", "discrete_input", "holding", "input")
WRITES = (5, 6, 15, 16)


def registers_of(point):
    if "words" in point:
        return [int(w) for w in point["words"]]
    packed = struct.pack(point["format"], point["value"])
    words = [int.from_bytes(packed[i:i + 2], "big") for i in range(0, len(packed), 2)]
    if point.get("word_order", "big") == "little":
        words.reverse()
    return words


def build_tables(spec):
    sizes = spec["sizes"]
    tables = {t: ([False] if t in ("coil", "discrete_input") else [0]) * max(1, sizes.get(t, 0))
              for t in TABLES}
    for point in spec.get("points", []):
        table, address = tables[point["table"]], point["address"]
        if point["table"] in ("coil", "discrete_input"):
            table[address] = bool(point["value"])
        else:
            for i, word in enumerate(registers_of(point)):
                table[address + i] = word
    return tables


async def log_writes(function_code, _start, address, _count, _registers, set_values):
    if function_code in WRITES and set_values is not None:
        print(json.dumps({"function": function_code, "address": address,
                          "values": [int(v) for v in set_values]}), flush=True)
    return None


async def main(port, spec_path):
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    tables = build_tables(spec)

    def block(name):
        values = tables[name]
        datatype = DataType.BITS if name in ("coil", "discrete_input") else DataType.REGISTERS
        return [SimData(0, values=values, datatype=datatype)]

    device = SimDevice(
        id=spec.get("unit", 1),
        simdata=tuple(block(name) for name in TABLES),
        action=log_writes,
    )
    server = ModbusTcpServer(device, address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    print(f"listening {port}", flush=True)
    # Until stdin closes.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.shutdown()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
