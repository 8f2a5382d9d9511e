"""chokepoint.node on real processes: a `chokepoint serve` coordinator and a Python node in this
process. With the default decisions only, every output file is byte-identical to the embedded
`chokepoint run`; a Python strategy changes the run and `chokepoint replay` of it passes (the node
says it is not deterministic, so its decisions are journaled); actions the coordinator cannot
accept are refused with their reasons while the run goes on; a strategy that raises or returns
something that is not actions ends the node's session with an error naming agent and tick, and
the coordinator names the lost node (no hang); a wrong join secret is refused. The message
classes are checked against proto/chokepoint.proto compiled afresh with grpcio-tools."""

import filecmp
import queue
import shutil
import subprocess
import threading
import time

import pytest

from chokepoint import node, wire
from chokepoint.errors import NodeError, RefusedError, StrategyError
from conftest import ROOT, TINY

TICKS = "30"
OUTPUTS = ("digests.csv", "markets.csv", "trades.csv", "stockpiles.csv", "shortages.csv", "nations.csv",
           "production.csv", "rejections.csv")


class Served:
    """`chokepoint --db DB serve SCENARIO --nodes 1 --listen 127.0.0.1:0 ...`, with the port and
    join secret it prints; its stderr is collected as it comes."""

    def __init__(self, binary, db, out, *extra):
        self.out = out
        self.proc = subprocess.Popen(
            [binary, "--db", db, "serve", TINY, "--nodes", "1", "--ticks", TICKS, "--out", out,
             "--listen", "127.0.0.1:0", "--quiet", *map(str, extra)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr, found = [], queue.Queue()
        threading.Thread(target=self._read_stdout, args=(found,), daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()
        try:
            self.port, self.secret = found.get(timeout=60)
        except queue.Empty:
            self.proc.kill()
            pytest.fail("the coordinator did not print its port and secret:\n" + "".join(self.stderr))
        self.url = f"http://127.0.0.1:{self.port}"

    def _read_stdout(self, found):
        port = None
        for line in self.proc.stdout:
            if "listening on " in line:
                port = line.split("listening on ")[1].split(";")[0].rsplit(":", 1)[1].strip()
            if "CHOKEPOINT_NODE_SECRET=" in line:
                found.put((port, line.split("CHOKEPOINT_NODE_SECRET=")[1].split()[0]))

    def finish(self):
        """(exit status, everything it wrote to stderr), waiting at most a minute."""
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail("the coordinator did not finish:\n" + "".join(self.stderr))
        time.sleep(0.1)
        return code, "".join(self.stderr)


def embedded(binary, tmp_path):
    out = tmp_path / "embedded"
    subprocess.run([binary, "--db", tmp_path / "db-embedded", "run", TINY, "--ticks", TICKS, "--out", out, "--quiet"],
                   check=True, capture_output=True)
    return out


def chokepoint(binary, db, *args):
    return subprocess.run([binary, "--db", db, *args], capture_output=True, text=True, timeout=120)


def serve_with(binary, tmp_path, agents, *extra):
    """Serves tiny on one Python node deciding with `agents`; returns (outcome, db, out)."""
    db, out = tmp_path / "db", tmp_path / "served"
    served = Served(binary, db, out, *extra)
    outcome = node.run(served.url, secret=served.secret, agents=agents, scenario=TINY, name="py")
    code, stderr = served.finish()
    assert code == 0, stderr
    return outcome, db, out


def test_default_decisions_give_the_embedded_run_byte_for_byte(tmp_path, chokepoint_bin):
    reference = embedded(chokepoint_bin, tmp_path)
    outcome, db, out = serve_with(chokepoint_bin, tmp_path, None)
    assert outcome.ok and outcome.ticks == int(TICKS) and outcome.agents > 0 and outcome.run_id
    for name in OUTPUTS:
        assert filecmp.cmp(reference / name, out / name, shallow=False), f"{name} differs from the embedded run"
    replay = chokepoint(chokepoint_bin, db, "replay", "1")
    assert replay.returncode == 0 and f"all {TICKS} recorded digests match" in replay.stdout, replay


class Hoarder(node.Agent):
    """CC's agency bids for a large block of refined dysprosium every tick from tick 5."""

    def __init__(self):
        self.seen = []

    def decide(self, obs):
        self.seen.append((obs.tick, obs.nation_code, obs.kind))
        if obs.tick < 5:
            return None
        limit = obs.market("dy").price_max_cents_per_kg
        return obs.actions(add=[obs.buy("dy", kg=1_000, limit_cents=min(limit, 2 * obs.price("dy")))])


def test_a_python_strategy_changes_the_run_and_replay_reproduces_it(tmp_path, chokepoint_bin):
    reference = embedded(chokepoint_bin, tmp_path)
    hoarder = Hoarder()
    outcome, db, out = serve_with(chokepoint_bin, tmp_path, {"CC": hoarder})
    assert outcome.ok
    assert hoarder.seen[0] == (0, "CC", "nation") and len(hoarder.seen) == int(TICKS)
    ref, got = (reference / "digests.csv").read_text(), (out / "digests.csv").read_text()
    assert ref.splitlines()[:6] == got.splitlines()[:6], "the strategy only differs from tick 5"
    assert ref != got, "a nation bidding for 1 t a tick changes the run"
    replay = chokepoint(chokepoint_bin, db, "replay", "1")
    assert replay.returncode == 0 and f"all {TICKS} recorded digests match" in replay.stdout, replay
    shown = chokepoint(chokepoint_bin, db, "runs", "show", "1")
    assert "journaled" in shown.stdout, shown.stdout


def test_actions_the_coordinator_cannot_accept_are_refused_and_the_run_goes_on(tmp_path, chokepoint_bin):
    def bad(obs):
        if obs.tick != 3:
            return None
        return obs.actions(add=[obs.buy("dy", kg=-5, limit_cents=100), obs.buy(99, kg=5, limit_cents=100)])

    outcome, db, out = serve_with(chokepoint_bin, tmp_path, {"CC": bad})
    assert outcome.ok and outcome.ticks == int(TICKS)
    rejections = (out / "rejections.csv").read_text()
    assert "malformed action: field `order.quantity_kg` is out of range (-5)" in rejections, rejections
    assert all(line.startswith("3,") for line in rejections.splitlines()[1:]), rejections
    replay = chokepoint(chokepoint_bin, db, "replay", "1")
    assert replay.returncode == 0, replay


@pytest.mark.parametrize("strategy,error", [
    (lambda obs: 1 / 0 if obs.tick == 4 else None, "raised ZeroDivisionError: division by zero"),
    (lambda obs: "buy everything" if obs.tick == 4 else None, "returned malformed actions: got str"),
    (lambda obs: ["an order"] if obs.tick == 4 else None, "returned malformed actions: Expected a message"),
])
def test_a_failing_strategy_ends_the_session_naming_agent_and_tick(tmp_path, chokepoint_bin, strategy, error):
    db, out = tmp_path / "db", tmp_path / "served"
    served = Served(chokepoint_bin, db, out, "--on-node-loss", "stop")
    with pytest.raises(StrategyError) as raised:
        node.run(served.url, secret=served.secret, agents={"CC": strategy}, scenario=TINY, name="py")
    assert raised.value.tick == 4 and error in str(raised.value), raised.value
    assert "agent 2 (nation of CC) at tick 4" in str(raised.value)
    code, stderr = served.finish()
    assert code != 0 and "node py failed at tick 4" in stderr, stderr


def test_a_lost_python_node_is_recovered_from_with_local_fallback(tmp_path, chokepoint_bin):
    db, out = tmp_path / "db", tmp_path / "served"
    served = Served(chokepoint_bin, db, out, "--local-fallback")
    with pytest.raises(StrategyError):
        node.run(served.url, secret=served.secret, agents={"CC": lambda obs: 1 / 0 if obs.tick == 4 else None},
                 scenario=TINY, name="py")
    code, stderr = served.finish()
    assert code == 0, stderr
    # Nothing the node sent differed from the default rule, so the run is the embedded one.
    reference = embedded(chokepoint_bin, tmp_path)
    assert (reference / "digests.csv").read_text() == (out / "digests.csv").read_text()


def test_a_wrong_secret_is_refused(tmp_path, chokepoint_bin):
    served = Served(chokepoint_bin, tmp_path / "db", tmp_path / "served")
    with pytest.raises(RefusedError) as raised:
        node.run(served.url, secret="not-the-secret", name="py")
    assert raised.value.code == "UNAUTHENTICATED", raised.value
    served.proc.terminate()
    served.finish()


def self_signed(tmp_path):
    """A certificate and key for 127.0.0.1 and localhost, made as the README says."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-keyout", key, "-out", cert, "-subj", "/CN=coordinator",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"],
                   check=True, capture_output=True)
    return cert, key


def test_a_python_node_joins_a_tls_run_and_its_outputs_are_the_embedded_runs(tmp_path, chokepoint_bin):
    """Over TLS (serve --tls-cert), the node trusts the certificate it is given; every output
    file equals the embedded run's, and plain text, or TLS without the certificate, is refused."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a self-signed certificate")
    cert, key = self_signed(tmp_path)
    db, out = tmp_path / "db", tmp_path / "served"
    served = Served(chokepoint_bin, db, out, "--tls-cert", cert, "--tls-key", key)
    https = served.url.replace("http://", "https://")
    with pytest.raises(NodeError, match="needs tls_ca"):
        node.run(https, secret=served.secret, name="py")
    with pytest.raises(NodeError, match="not https://"):
        node.run(served.url, secret=served.secret, name="py", tls_ca=cert)
    with pytest.raises(NodeError, match="holds no PEM certificate"):
        node.run(https, secret=served.secret, name="py", tls_ca=key)
    outcome = node.run(https, secret=served.secret, name="py", tls_ca=cert)
    code, stderr = served.finish()
    assert code == 0 and outcome.ok and outcome.ticks == int(TICKS), stderr
    reference = embedded(chokepoint_bin, tmp_path)
    for name in OUTPUTS:
        assert filecmp.cmp(reference / name, out / name, shallow=False), name


def test_a_strategy_for_a_nation_not_in_the_scenario_is_refused_before_joining():
    with pytest.raises(ValueError, match="unknown nation 'ZZ'"):
        node.run("http://127.0.0.1:1", secret="x", agents={"ZZ": node.Agent()}, scenario=TINY)


def test_a_strategy_whose_agent_is_on_another_node_is_named_not_silently_idle(caplog):
    """The coordinator places agents by the run's layout; a strategy for an agent this node was
    not given is named in a warning and in the Outcome, instead of silently never running."""
    ran = []
    strategies = node._Strategies({7: lambda obs: ran.append(obs) or None}, None)
    session = node._Session("py-1", strategies, None)
    with caplog.at_level("WARNING", logger="chokepoint.node"):
        session.welcome(wire.Welcome(run_id="r", node_index=1, node_count=2, first_tick=0))
    assert any("strategies for 7 do not run here" in r.getMessage() for r in caplog.records), caplog.text
    assert session.not_run() == (7,)
    # Given the agent later (another node was lost and its agents moved here), it counts as run.
    miner = wire.HostedAgent(agent=7)
    miner.spec.miner.nation = 0
    miner.spec.miner.capacity_per_tick_kg = 1_000
    miner.spec.miner.unit_cost_cents_per_kg = 100
    miner.spec.miner.inventory_cap_ticks = 4
    session.assign([miner], [])
    assert session.not_hosted == () and session.not_run() == ()


def test_the_message_classes_are_the_repositorys_proto():
    grpc_tools = pytest.importorskip("grpc_tools.protoc", reason="grpcio-tools is not installed")
    import tempfile
    from google.protobuf import descriptor_pb2
    with tempfile.TemporaryDirectory() as d:
        out = f"{d}/set.bin"
        proto = ROOT / "proto" / "proto"
        assert grpc_tools.main(["protoc", f"-I{proto}", f"--descriptor_set_out={out}", "chokepoint.proto"]) == 0
        fresh = descriptor_pb2.FileDescriptorSet.FromString(open(out, "rb").read()).file[0]
    built = wire.FILE
    assert sorted(m.name for m in fresh.message_type) == sorted(built.message_types_by_name)
    for m in fresh.message_type:
        ours = descriptor_pb2.DescriptorProto()
        built.message_types_by_name[m.name].CopyToProto(ours)
        shape = [[(f.name, f.number, f.type, f.label, f.type_name, f.oneof_index) for f in d.field] for d in (m, ours)]
        assert shape[0] == shape[1], m.name
    assert sorted(s.name for s in fresh.service) == sorted(built.services_by_name)
    assert wire.PROTOCOL_VERSION >= 3


@pytest.mark.parametrize("example,args,replayed", [
    ("us_stockpile_node.py", ["--ticks", "40"], "all 40 recorded digests match"),
    ("language_model_nation.py", [], "all 60 recorded digests match"),
])
def test_the_examples_play_and_replay(chokepoint_bin, example, args, replayed):
    import os
    import sys
    env = dict(os.environ, CHOKEPOINT_BIN=str(chokepoint_bin))
    done = subprocess.run([sys.executable, ROOT / "python" / "examples" / example, *args], env=env,
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0 and replayed in done.stdout, done.stdout + done.stderr
