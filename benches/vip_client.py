#!/usr/bin/env python3
"""VIP benchmark client: the real VOLTTRON 11 client library against a VIP server.

It runs in the venv that `bash .ci/test` builds (target/vip-venv, from
.ci/python-requirements.txt): `volttron.client.vip.agent.Agent` from volttron-core with
the ZeroMQ core of volttron-lib-zmq (a DEALER socket, CURVE), built the way VOLTTRON's own
standalone clients are (vctl's ControlConnection, `vctl subscribe`): `VolttronCredentials`,
`AgentOptions(heartbeat_autostart=False, enable_store=False)`, `Agent(credentials=,
options=, address=)`, `gevent.spawn(agent.core.run, event)` and `event` set at the
router's welcome.

    python benches/vip_client.py --home DIR --identity ID \
        --publickey=K --secretkey=K [--serverkey=K] [--address ADDR] \
        --publish N --topic T --rpc N --peer P --method M \
        [--args JSON] [--message JSON] [--warmup N] [--timeout S] [--verbose]

1. Connects as ID (CURVE: the keys are VOLTTRON's 43-character URL-safe base64 without
   padding; pass them as --key=K, since one may begin with "-"). VOLTTRON_HOME is set to
   DIR before the library is imported; the address is ADDR, else what the library
   derives from the home (`[volttron] address` in DIR/config, else
   `ipc://@<realpath DIR>/run/vip.socket`). The server key is read by the library from
   DIR/credentials_store/platform.json; --serverkey=K replaces that lookup (the library
   has no other way to take one). Nothing listening on an ipc:// address (for an abstract
   one, read from /proc/net/unix), no welcome within --timeout seconds (default 30), or a
   core that gives up first (libzmq's 50 connect retries) is a failure.
2. Publishes N messages on T (the body is --message, default {"n": i}) one after the
   other, each `.get()`-ed as real agents do (the client first asks the router's peerlist,
   as it does before every publish), and times them: `publish_msgs_per_s` = N / elapsed.
3. Calls P.M N times (positional --args, a JSON list, default []) one after the other,
   each `.get()`-ed and timed: `rpc_rtt_p50_us`, `rpc_rtt_p90_us` (nearest rank).
   --warmup calls (default 1) come first and are not counted: the first call to a peer
   also asks platform.auth for P's protected RPCs.
4. Prints one JSON line on stdout and exits 0:
       {"publish_msgs_per_s": ..., "rpc_rtt_p50_us": ..., "rpc_rtt_p90_us": ...}
   (null for a part run 0 times), plus "publish_n" and "rpc_n".

Any failure (no connection, a publish or call that fails or takes longer than --timeout)
prints one line `vip_client: ...` on stderr and exits 1; bad arguments exit 2. The process
ends with os._exit, so a stuck libzmq socket cannot keep it alive.

How the Rust `perf` example runs it (examples/perf.rs, `vip.python.*` figures): it starts
the platform on a temporary home, makes the bench identity's key pair and an agent that
answers M, then runs

    $VOLTTRON_TEST_PYTHON benches/vip_client.py --home <home> --identity bench.client \
        --publickey=<pub> --secretkey=<sec> --serverkey=<platform pub> \
        --publish 2000 --topic bench/python --rpc 2000 --peer <peer> --method echo

with a deadline, and reads the last stdout line as JSON (VOLTTRON_TEST_PYTHON is the venv
python that `bash .ci/test` exports; without it, target/vip-venv/bin/python).
"""

import argparse
import json
import os
import sys
import time

EXIT_FAILURE = 1


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="vip_client.py",
        description="Benchmark a VIP server with the VOLTTRON 11 client library.",
    )
    p.add_argument("--home", required=True, help="VOLTTRON_HOME for the client library")
    p.add_argument("--identity", required=True, help="the client's VIP identity")
    p.add_argument("--publickey", required=True, help="the client's CURVE public key")
    p.add_argument("--secretkey", required=True, help="the client's CURVE secret key")
    p.add_argument(
        "--serverkey",
        help="the server's CURVE public key (default: the library reads "
        "HOME/credentials_store/platform.json)",
    )
    p.add_argument("--address", help="the VIP address (default: the library's, from HOME)")
    p.add_argument("--publish", type=count, required=True, metavar="N", help="publishes to time")
    p.add_argument("--topic", required=True, help="the topic to publish on")
    p.add_argument("--rpc", type=count, required=True, metavar="N", help="RPC calls to time")
    p.add_argument("--peer", required=True, help="the identity to call")
    p.add_argument("--method", required=True, help="the method to call")
    p.add_argument("--args", type=json_list, default=[], help="the call's arguments, a JSON list")
    p.add_argument(
        "--message",
        type=json.loads,
        default=None,
        help='the publication body, JSON (default {"n": i})',
    )
    p.add_argument("--warmup", type=count, default=1, metavar="N", help="uncounted calls first")
    p.add_argument(
        "--timeout",
        type=seconds,
        default=30.0,
        metavar="S",
        help="bound on connecting and on each publish and call (default 30)",
    )
    p.add_argument("--verbose", action="store_true", help="the library's log on stderr")
    return p.parse_args(argv)


def count(text):
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return n


def seconds(text):
    s = float(text)
    if not s > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return s


def json_list(text):
    value = json.loads(text)
    if not isinstance(value, list):
        raise argparse.ArgumentTypeError(f"{text} is not a JSON list")
    return value


def percentile(sorted_values, p):
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


class Failure(Exception):
    pass


def connect(opts):
    """The running agent, or Failure."""
    # Before the library is imported: it reads VOLTTRON_HOME when it builds the core.
    os.environ["VOLTTRON_HOME"] = os.path.abspath(opts.home)
    import gevent
    import gevent.event

    import volttron.client.decorators as decorators
    import volttron.messagebus.zmq.zmq_core as zmq_core  # registers the ZeroMQ core
    from volttron.client.vip.agent import Agent
    from volttron.types.agent_context import AgentOptions
    from volttron.types.auth.auth_credentials import VolttronCredentials
    from volttron.utils import ClientContext

    if opts.serverkey is not None:
        server = VolttronCredentials(identity="platform", publickey=opts.serverkey, secretkey="")

        def server_credentials(address=None):
            return server

        # zmq_core imported the function by name; both builders look it up there.
        zmq_core.get_server_credentials = server_credentials
        decorators.get_server_credentials = server_credentials

    address = opts.address or ClientContext.get_address()
    credentials = VolttronCredentials(
        identity=opts.identity, publickey=opts.publickey, secretkey=opts.secretkey
    )
    options = AgentOptions(
        heartbeat_autostart=False, volttron_home=os.environ["VOLTTRON_HOME"], enable_store=False
    )
    where = f"{address} as {opts.identity}"
    if not listening(address):
        raise Failure(f"cannot connect to {where}: nothing listens there")
    try:
        agent = Agent(credentials=credentials, options=options, address=address)
    except Exception as e:  # the library raises ValueError, KeyError, OSError, ...
        raise Failure(f"cannot set up a client for {where}: {type(e).__name__}: {e}") from e
    welcomed = gevent.event.Event()
    core = gevent.spawn(agent.core.run, welcomed)
    waiter = gevent.spawn(welcomed.wait)
    gevent.wait([waiter, core], count=1, timeout=opts.timeout)
    if not welcomed.is_set():
        if core.ready():
            why = (
                f"the client gave up ({type(core.exception).__name__}: {core.exception})"
                if core.exception
                else "the client gave up (no server listening?)"
            )
        else:
            why = f"no welcome within {opts.timeout:g} s (server down, or the CURVE keys refused?)"
        raise Failure(f"cannot connect to {where}: {why}")
    return agent


def listening(address):
    """False when nothing listens on an ipc:// address (read from /proc/net/unix for an
    abstract one, `@...`, without connecting); True otherwise, tcp:// included."""
    if not address.startswith("ipc://"):
        return True
    path = address[len("ipc://"):].split("?", 1)[0]
    if not path.startswith("@"):
        return os.path.exists(path)
    try:
        with open("/proc/net/unix") as table:
            # Num RefCount Protocol Flags Type St Inode Path; a listening socket has
            # Flags 00010000 (__SO_ACCEPTCON).
            rows = (line.rstrip("\n").split(None, 7) for line in table.readlines()[1:])
            return any(len(r) == 8 and r[7] == path and r[3] == "00010000" for r in rows)
    except OSError:
        return True


def bounded(result, what, timeout):
    import gevent

    try:
        return result.get(timeout=timeout)
    except gevent.Timeout as e:
        raise Failure(f"{what}: no answer within {timeout:g} s") from e
    except Exception as e:
        raise Failure(f"{what}: {type(e).__name__}: {e}") from e


def run(opts):
    agent = connect(opts)
    pubsub, rpc = agent.vip.pubsub, agent.vip.rpc

    published = None
    if opts.publish:
        started = time.perf_counter()
        for i in range(opts.publish):
            message = {"n": i} if opts.message is None else opts.message
            bounded(
                pubsub.publish("pubsub", opts.topic, message=message),
                f"publish {i} on {opts.topic}",
                opts.timeout,
            )
        published = opts.publish / (time.perf_counter() - started)

    rtts = []
    if opts.rpc:
        what = f"call {opts.peer}.{opts.method}"
        for _ in range(opts.warmup):
            bounded(rpc.call(opts.peer, opts.method, *opts.args), what, opts.timeout)
        for _ in range(opts.rpc):
            started = time.perf_counter_ns()
            bounded(rpc.call(opts.peer, opts.method, *opts.args), what, opts.timeout)
            rtts.append((time.perf_counter_ns() - started) / 1000)
        rtts.sort()

    # The router drops the peer (agentstop), bounded: the result is in already.
    try:
        agent.core.stop(timeout=2)
    except Exception:
        pass
    return {
        "publish_msgs_per_s": round(published, 1) if published is not None else None,
        "rpc_rtt_p50_us": round(percentile(rtts, 50), 1) if rtts else None,
        "rpc_rtt_p90_us": round(percentile(rtts, 90), 1) if rtts else None,
        "publish_n": opts.publish,
        "rpc_n": opts.rpc,
    }


def main(argv):
    opts = parse_args(argv)
    import logging

    logging.basicConfig(
        level=logging.DEBUG if opts.verbose else logging.CRITICAL,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    try:
        result = run(opts)
    except Failure as e:
        print(f"vip_client: {e}", file=sys.stderr, flush=True)
        return EXIT_FAILURE
    except ImportError as e:
        print(
            f"vip_client: the VOLTTRON 11 client library is missing ({e}); run it with the "
            "venv's python (bash .ci/test --setup-only builds target/vip-venv)",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_FAILURE
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # Not sys.exit: libzmq's context termination could wait on a socket forever.
    os._exit(code)
