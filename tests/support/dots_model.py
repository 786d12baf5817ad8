"""A calculation service in Python that joins a volttron simulation over MQTT, as a DOTS
model does: paho-mqtt for the broker, protobuf for the lifecycle messages.

Environment (set by the platform, DOTS's names): MQTT_HOST, MQTT_PORT, SIMULATION_ID,
MODEL_ID, CALC_SERVICE_NAME. The model is a PV installation model: for each of its ESDL
objects it outputs `power` every step, the same bell curve as the Rust PV model of the
tests (tests/common/simulation.rs), then sends CalculationsDone. It exits 0 after
SimulationDone. With MODEL_FAIL_AT=<step> it exits 3 at that step instead.

The message classes are built at run time from descriptors that follow the platform's
lifecycle.proto (no protoc needed).
"""

import json
import math
import os
import re
import sys

import paho.mqtt.client as mqtt
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
FILE = descriptor_pb2.FileDescriptorProto(name="lifecycle.proto", syntax="proto3")
MESSAGES = {
    "ReadyForProcessing": [],
    "ModelParameters": [("parameters_dict", 1, F.TYPE_STRING)],
    "Parameterized": [],
    "NewStep": [("parameters_dict", 1, F.TYPE_STRING)],
    "CalculationsDone": [],
    "ErrorOccurred": [("error_message", 1, F.TYPE_STRING)],
    "SimulationDone": [],
    "DataValue": [("time_step_nr", 1, F.TYPE_UINT64), ("value", 2, F.TYPE_DOUBLE)],
}
for name, fields in MESSAGES.items():
    m = FILE.message_type.add(name=name)
    for fname, number, ftype in fields:
        m.field.add(name=fname, number=number, type=ftype, label=F.LABEL_OPTIONAL)
POOL = descriptor_pool.DescriptorPool()
POOL.Add(FILE)
PB = {n: message_factory.GetMessageClass(POOL.FindMessageTypeByName(n)) for n in MESSAGES}

SIM = os.environ["SIMULATION_ID"]
MODEL = os.environ["MODEL_ID"]
SERVICE = os.environ["CALC_SERVICE_NAME"]
FAIL_AT = int(os.environ.get("MODEL_FAIL_AT", "0"))
INBOX = f"/lifecycle/dots-so/model/{SIM}/{MODEL}/"
esdl_ids = []


def pv_power(esdl_id, step):
    index = float(re.sub(r"^[A-Za-z]+", "", esdl_id) or 0)
    hour = ((step - 1) % 96) / 4.0
    sun = max(math.sin(math.pi * (hour - 6.0) / 12.0), 0.0)
    return (1000.0 + 10.0 * index) * sun


def send(client, message, body):
    client.publish(f"/lifecycle/model/dots-so/{SIM}/{MODEL}/{message}", body.SerializeToString(), qos=1)


def on_connect(client, userdata, flags, reason, properties):
    client.subscribe(INBOX + "+", qos=1)


def on_subscribe(client, userdata, mid, reasons, properties):
    client.publish(f"/lifecycle/model/mso/{SIM}/{MODEL}/ReadyForProcessing",
                   PB["ReadyForProcessing"]().SerializeToString(), qos=1)


def on_message(client, userdata, msg):
    kind = msg.topic.rsplit("/", 1)[-1]
    if kind == "ModelParameters":
        m = PB["ModelParameters"].FromString(msg.payload)
        params = json.loads(m.parameters_dict)
        esdl_ids.extend(params["esdl_ids"])
        send(client, "Parameterized", PB["Parameterized"]())
    elif kind == "NewStep":
        m = PB["NewStep"].FromString(msg.payload)
        step = int(json.loads(m.parameters_dict)["time_step_nr"])
        if step == FAIL_AT:
            print(f"{MODEL}: failing at step {step}", file=sys.stderr, flush=True)
            os._exit(3)
        for esdl_id in esdl_ids:
            value = PB["DataValue"](time_step_nr=step, value=pv_power(esdl_id, step))
            client.publish(f"/data/{SERVICE}/model/{SIM}/{esdl_id}/power", value.SerializeToString(), qos=1)
        send(client, "CalculationsDone", PB["CalculationsDone"]())
    elif kind == "SimulationDone":
        client.disconnect()


client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{SIM}-{MODEL}", protocol=mqtt.MQTTv5)
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.connect(os.environ["MQTT_HOST"], int(os.environ["MQTT_PORT"]))
client.loop_forever()
print(f"{MODEL}: done after {len(esdl_ids)} objects", flush=True)
